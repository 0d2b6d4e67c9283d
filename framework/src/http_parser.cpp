// RequestParser: llhttp callbacks, the limits, one request at a time (see
// http_parser.hpp).
#include "http_parser.hpp"

namespace quiesce::http::detail {

RequestParser::RequestParser(const ServerOptions& options) : options_(options) {
    llhttp_init(&parser_, HTTP_REQUEST, &settings());
    parser_.data = this;
}

const llhttp_settings_t& RequestParser::settings() {
    static const llhttp_settings_t table = [] {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_message_begin = &RequestParser::on_message_begin;
        s.on_url = &RequestParser::on_url;
        s.on_header_field = &RequestParser::on_header_field;
        s.on_header_value = &RequestParser::on_header_value;
        s.on_headers_complete = &RequestParser::on_headers_complete;
        s.on_body = &RequestParser::on_body;
        s.on_message_complete = &RequestParser::on_message_complete;
        return s;
    }();
    return table;
}

const char* RequestParser::reason() const noexcept {
    const char* text = llhttp_get_error_reason(&parser_);
    return text != nullptr ? text : "";
}

RequestParser::Step RequestParser::feed(const char* data, std::size_t size) {
    if (failed_) return {kError, 0};
    if (size == 0) return {kNeedMore, 0};
    const llhttp_errno_t error = llhttp_execute(&parser_, data, size);
    Step step{kNeedMore, size};
    if (error == HPE_OK) return step;
    const char* stop = llhttp_get_error_pos(&parser_);
    if (stop != nullptr && stop >= data && stop <= data + size)
        step.used = static_cast<std::size_t>(stop - data);
    if ((error == HPE_PAUSED || error == HPE_PAUSED_UPGRADE) && complete_) {
        // The message is whole: stand just past it.
        upgrade_ = error == HPE_PAUSED_UPGRADE;
        if (upgrade_)
            llhttp_resume_after_upgrade(&parser_);
        else
            llhttp_resume(&parser_);
        step.kind = kRequest;
        return step;
    }
    // A limit a callback hit has its own status (llhttp reports it as
    // HPE_USER, or as the failure of the callback that hit it).
    failed_ = true;
    if (status_ == 0) status_ = 400;
    step.kind = kError;
    return step;
}

bool RequestParser::take(Request& out) {
    complete_ = false;
    out = std::move(building_);
    building_ = Request();
    std::string_view path = out.target_;
    if (path.starts_with("http://") || path.starts_with("https://")) {  // absolute-form
        const std::size_t authority = path.find("//") + 2;
        const std::size_t slash = path.find('/', authority);
        path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    }
    const std::size_t question = path.find('?');
    if (question != std::string_view::npos) {
        out.query_ = std::string(path.substr(question + 1));
        path = path.substr(0, question);
    }
    std::optional<std::string> decoded = percent_decode(path);
    if (!decoded) return false;
    out.path_ = std::move(*decoded);
    return true;
}

void RequestParser::push_header() {
    if (field_.empty() && value_.empty()) return;
    building_.headers_.emplace_back(std::move(field_), std::string(trim(value_)));
    field_.clear();
    value_.clear();
}

int RequestParser::on_message_begin(llhttp_t* p) {
    RequestParser& s = of(p);
    s.building_ = Request();
    s.field_.clear();
    s.value_.clear();
    s.header_bytes_ = 0;
    s.status_ = 0;
    s.in_head_ = true;
    s.in_value_ = false;
    s.upgrade_ = false;
    ++s.messages_;
    return 0;
}

int RequestParser::on_url(llhttp_t* p, const char* at, std::size_t n) {
    RequestParser& s = of(p);
    s.building_.target_.append(at, n);
    s.header_bytes_ += n;
    if (s.building_.target_.size() > s.options_.max_target) return s.limit(414);
    if (s.header_bytes_ > s.options_.max_header_bytes) return s.limit(431);
    return 0;
}

int RequestParser::on_header_field(llhttp_t* p, const char* at, std::size_t n) {
    RequestParser& s = of(p);
    if (s.in_value_) {
        s.push_header();
        s.in_value_ = false;
    }
    s.field_.append(at, n);
    s.header_bytes_ += n + 4;  // ": " and CRLF
    if (s.header_bytes_ > s.options_.max_header_bytes) return s.limit(431);
    return 0;
}

int RequestParser::on_header_value(llhttp_t* p, const char* at, std::size_t n) {
    RequestParser& s = of(p);
    s.in_value_ = true;
    s.value_.append(at, n);
    s.header_bytes_ += n;
    if (s.header_bytes_ > s.options_.max_header_bytes) return s.limit(431);
    return 0;
}

int RequestParser::on_headers_complete(llhttp_t* p) {
    RequestParser& s = of(p);
    s.push_header();
    s.in_head_ = false;
    Request& r = s.building_;
    r.method_ = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
    r.major_ = llhttp_get_http_major(p);
    r.minor_ = llhttp_get_http_minor(p);
    if (r.major_ != 1) return s.limit(505);
    const bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    if (has_length && p->content_length > s.options_.max_body) return s.limit(413);
    const bool has_body = (has_length && p->content_length > 0) || (p->flags & F_CHUNKED) != 0;
    if (has_body && r.minor_ >= 1) {
        if (auto expect = r.header("Expect")) {
            if (!iequals(*expect, "100-continue")) return s.limit(417);
            if (s.on_continue) s.on_continue();
        }
    }
    return 0;
}

int RequestParser::on_body(llhttp_t* p, const char* at, std::size_t n) {
    RequestParser& s = of(p);
    if (s.building_.body_.size() + n > s.options_.max_body) return s.limit(413);
    s.building_.body_.append(at, n);
    return 0;
}

int RequestParser::on_message_complete(llhttp_t* p) {
    RequestParser& s = of(p);
    s.building_.keep_alive_ = llhttp_should_keep_alive(p) != 0;
    s.complete_ = true;
    return HPE_PAUSED;  // one request at a time
}

}  // namespace quiesce::http::detail
