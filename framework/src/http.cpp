// HTTP/1.1 on tcp::Connection with llhttp (see http.hpp).
//
// One Session per connection. Bytes read are moved (not copied) into the
// session's own buffer and fed to llhttp one evbuffer extent at a time; the
// parser pauses after each complete message, so exactly one request is
// dispatched at a time and pipelined requests wait, unparsed, until the one
// before them is replied to. While a reply is pending the connection stops
// reading, so a pipelining client is held back by TCP, not by our memory.
#include <quiesce/framework/http.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <exception>
#include <string>

#include <event2/buffer.h>
#include <llhttp.h>

#include <quiesce/framework/runtime.hpp>

#include "log.hpp"

namespace quiesce::http {

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view text) noexcept {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// The Date header, formatted once a second per thread.
std::string_view cached_date() {
    thread_local std::int64_t second = -1;
    thread_local std::string text;
    const std::int64_t now = std::time(nullptr);
    if (now != second) {
        second = now;
        text = http_date(now);
    }
    return text;
}

}  // namespace

// ---------------------------------------------------------------- helpers --

std::string_view reason(int status) noexcept {
    switch (status) {
        case 100:
            return "Continue";
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 204:
            return "No Content";
        case 206:
            return "Partial Content";
        case 301:
            return "Moved Permanently";
        case 302:
            return "Found";
        case 304:
            return "Not Modified";
        case 400:
            return "Bad Request";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 416:
            return "Range Not Satisfiable";
        case 417:
            return "Expectation Failed";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Unknown";
    }
}

std::string http_date(std::int64_t unix_seconds) {
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[40];
    std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                  tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
    return text;
}

std::optional<std::int64_t> parse_http_date(std::string_view text) noexcept {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    if (text.size() != 29 || text.substr(3, 2) != ", " || text.substr(25) != " GMT") return {};
    auto number = [&](std::size_t at, std::size_t digits, int& out) {
        out = 0;
        for (std::size_t i = at; i < at + digits; ++i) {
            if (text[i] < '0' || text[i] > '9') return false;
            out = out * 10 + (text[i] - '0');
        }
        return true;
    };
    std::tm tm{};
    int year = 0;
    int month = -1;
    for (int i = 0; i < 12; ++i)
        if (text.substr(8, 3) == kMonths[i]) month = i;
    if (month < 0 || !number(5, 2, tm.tm_mday) || !number(12, 4, year) ||
        !number(17, 2, tm.tm_hour) || !number(20, 2, tm.tm_min) || !number(23, 2, tm.tm_sec) ||
        text[7] != ' ' || text[11] != ' ' || text[16] != ' ' || text[19] != ':' || text[22] != ':')
        return {};
    tm.tm_mon = month;
    tm.tm_year = year - 1900;
    const std::time_t t = timegm(&tm);
    if (t == static_cast<std::time_t>(-1)) return {};
    return static_cast<std::int64_t>(t);
}

std::optional<std::string> percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) return {};
            const int high = hex(text[i + 1]);
            const int low = hex(text[i + 2]);
            if (high < 0 || low < 0) return {};
            c = static_cast<char>(high * 16 + low);
            i += 2;
        }
        if (c == '\0') return {};
        out += c;
    }
    return out;
}

std::optional<std::string> Request::query_param(std::string_view name) const {
    std::string_view rest = query_;
    while (!rest.empty()) {
        const std::size_t amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        const std::size_t eq = pair.find('=');
        if (pair.substr(0, eq) != name) continue;
        if (eq == std::string_view::npos) return std::string();
        std::string value(pair.substr(eq + 1));
        std::replace(value.begin(), value.end(), '+', ' ');
        return percent_decode(value);
    }
    return {};
}

std::optional<std::string_view> Request::header(std::string_view name) const noexcept {
    for (const Header& header : headers_)
        if (iequals(header.first, name)) return std::string_view(header.second);
    return {};
}

Response Response::text(int status, std::string body, std::string content_type) {
    Response response;
    response.status = status;
    response.body = std::move(body);
    response.content_type = std::move(content_type);
    return response;
}

Response Response::error(int status) {
    return text(status, std::to_string(status) + " " + std::string(reason(status)) + "\n");
}

// ---------------------------------------------------------------- Session --

class Session final : public std::enable_shared_from_this<Session> {
public:
    Session(std::shared_ptr<const Router> router, std::shared_ptr<const ServerOptions> options)
        : router_(std::move(router)), options_(std::move(options)) {
        llhttp_init(&parser_, HTTP_REQUEST, &settings());
        parser_.data = this;
    }

    // tcp::Handler calls (through Adapter).
    void open(tcp::Connection& conn) {
        conn_ = &conn;
        weak_conn_ = conn.shared_from_this();
        group_ = conn.group();
    }
    void data(Buffer& in) {
        input_.append(in);
        pump();
    }
    void eof() {
        eof_ = true;
        if (!busy_) pump();
    }
    void shutdown() {
        must_close_ = true;
        if (!busy_ && conn_ != nullptr) conn_->close();
    }
    void drain() {
        if (drained_) {
            auto fn = std::move(drained_);
            drained_ = nullptr;
            fn();
        }
        if (waiting_drain_) {
            waiting_drain_ = false;
            pump();
        }
    }
    void closed() noexcept {
        closed_.store(true, std::memory_order_release);  // [HS1] pairs with [HS2] in open()
        conn_ = nullptr;
        header_timer_.cancel();
        drained_ = nullptr;
    }

    // Responder calls (on the group).
    [[nodiscard]] bool is_open() const noexcept {
        return !closed_.load(std::memory_order_acquire);  // [HS2] pairs with [HS1]
    }
    const Request& request() const noexcept { return request_; }
    const sched::Group& group() const noexcept { return group_; }
    std::weak_ptr<tcp::Connection> weak_connection() const { return weak_conn_; }

    void send_head(std::uint64_t seq, const Response& response, std::uint64_t length,
                   bool has_body);
    void send_body(std::uint64_t seq, std::string_view data);
    void send_body(std::uint64_t seq, Buffer& data);
    void end_reply(std::uint64_t seq, bool complete);
    void when_drained(std::function<void()> fn);
    void failed(std::uint64_t seq) noexcept;

private:
    static const llhttp_settings_t& settings();
    static Session& of(llhttp_t* parser) { return *static_cast<Session*>(parser->data); }

    void pump();
    void dispatch();
    void refuse(int status);
    void manage_header_timer();
    bool current(std::uint64_t seq) const noexcept { return conn_ != nullptr && seq == seq_; }
    int limit(int status) {
        error_status_ = status;
        return HPE_USER;
    }
    void push_header() {
        if (field_.empty() && value_.empty()) return;
        building_.headers_.emplace_back(std::move(field_), std::string(trim(value_)));
        field_.clear();
        value_.clear();
    }

    // llhttp callbacks
    static int on_message_begin(llhttp_t* p);
    static int on_url(llhttp_t* p, const char* at, std::size_t n);
    static int on_header_field(llhttp_t* p, const char* at, std::size_t n);
    static int on_header_value(llhttp_t* p, const char* at, std::size_t n);
    static int on_headers_complete(llhttp_t* p);
    static int on_body(llhttp_t* p, const char* at, std::size_t n);
    static int on_message_complete(llhttp_t* p);

    std::shared_ptr<const Router> router_;
    std::shared_ptr<const ServerOptions> options_;
    tcp::Connection* conn_ = nullptr;  // null once closed
    std::weak_ptr<tcp::Connection> weak_conn_;
    sched::Group group_;
    llhttp_t parser_{};
    Buffer input_;       // read, not parsed yet
    Request building_;   // the message being parsed
    Request request_;    // the one being answered
    std::string field_;  // header field being parsed
    std::string value_;  // and its value
    std::size_t header_bytes_ = 0;
    int error_status_ = 0;   // a limit a callback hit (431, 414, 413)
    std::uint64_t seq_ = 0;  // the request being answered
    sched::Timer header_timer_;
    std::uint64_t timed_message_ = 0;  // the message the header timer is for
    std::uint64_t messages_ = 0;       // messages begun
    std::function<void()> drained_;
    std::atomic<bool> closed_{false};
    bool in_head_ = false;   // a message began, its headers are not complete
    bool in_value_ = false;  // the last span was a header value
    bool complete_ = false;  // a message was parsed whole
    bool busy_ = false;      // a request waits for its reply
    bool pumping_ = false;
    bool waiting_drain_ = false;
    bool resume_posted_ = false;
    bool must_close_ = false;  // close after the reply under way
    bool eof_ = false;
    bool paused_reading_ = false;
};

const llhttp_settings_t& Session::settings() {
    static const llhttp_settings_t table = [] {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_message_begin = &Session::on_message_begin;
        s.on_url = &Session::on_url;
        s.on_header_field = &Session::on_header_field;
        s.on_header_value = &Session::on_header_value;
        s.on_headers_complete = &Session::on_headers_complete;
        s.on_body = &Session::on_body;
        s.on_message_complete = &Session::on_message_complete;
        return s;
    }();
    return table;
}

int Session::on_message_begin(llhttp_t* p) {
    Session& s = of(p);
    s.building_ = Request();
    s.field_.clear();
    s.value_.clear();
    s.header_bytes_ = 0;
    s.error_status_ = 0;
    s.in_head_ = true;
    s.in_value_ = false;
    ++s.messages_;
    return 0;
}

int Session::on_url(llhttp_t* p, const char* at, std::size_t n) {
    Session& s = of(p);
    s.building_.target_.append(at, n);
    s.header_bytes_ += n;
    if (s.building_.target_.size() > s.options_->max_target) return s.limit(414);
    if (s.header_bytes_ > s.options_->max_header_bytes) return s.limit(431);
    return 0;
}

int Session::on_header_field(llhttp_t* p, const char* at, std::size_t n) {
    Session& s = of(p);
    if (s.in_value_) {
        s.push_header();
        s.in_value_ = false;
    }
    s.field_.append(at, n);
    s.header_bytes_ += n + 4;  // ": " and CRLF
    if (s.header_bytes_ > s.options_->max_header_bytes) return s.limit(431);
    return 0;
}

int Session::on_header_value(llhttp_t* p, const char* at, std::size_t n) {
    Session& s = of(p);
    s.in_value_ = true;
    s.value_.append(at, n);
    s.header_bytes_ += n;
    if (s.header_bytes_ > s.options_->max_header_bytes) return s.limit(431);
    return 0;
}

int Session::on_headers_complete(llhttp_t* p) {
    Session& s = of(p);
    s.push_header();
    s.in_head_ = false;
    Request& r = s.building_;
    r.method_ = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
    r.major_ = llhttp_get_http_major(p);
    r.minor_ = llhttp_get_http_minor(p);
    if (r.major_ != 1) return s.limit(505);
    const bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    if (has_length && p->content_length > s.options_->max_body) return s.limit(413);
    const bool has_body = (has_length && p->content_length > 0) || (p->flags & F_CHUNKED) != 0;
    if (has_body && r.minor_ >= 1) {
        if (auto expect = r.header("Expect")) {
            if (!iequals(*expect, "100-continue")) return s.limit(417);
            if (s.conn_ != nullptr) s.conn_->write("HTTP/1.1 100 Continue\r\n\r\n");
        }
    }
    return 0;
}

int Session::on_body(llhttp_t* p, const char* at, std::size_t n) {
    Session& s = of(p);
    if (s.building_.body_.size() + n > s.options_->max_body) return s.limit(413);
    s.building_.body_.append(at, n);
    return 0;
}

int Session::on_message_complete(llhttp_t* p) {
    Session& s = of(p);
    s.building_.keep_alive_ = llhttp_should_keep_alive(p) != 0;
    s.complete_ = true;
    return HPE_PAUSED;  // one request at a time (see the file comment)
}

void Session::pump() {
    if (pumping_ || conn_ == nullptr) return;
    pumping_ = true;
    while (conn_ != nullptr && !busy_ && !conn_->closing()) {
        if (conn_->output_size() > options_->high_water) {
            // Hold the rest until the replies drain. Decide after this
            // event's writes were flushed (the posted event), so that
            // on_drain() is sure to come if they still wait then.
            if (!resume_posted_) {
                resume_posted_ = true;
                std::weak_ptr<Session> weak = weak_from_this();
                conn_->post([weak](tcp::Connection& conn) {
                    auto self = weak.lock();
                    if (!self) return;
                    self->resume_posted_ = false;
                    if (conn.output_size() > self->options_->high_water)
                        self->waiting_drain_ = true;  // on_drain() resumes
                    else
                        self->pump();
                });
            }
            break;
        }
        if (input_.empty()) {
            if (eof_) {
                // The peer is done sending: a partial request will never
                // complete; everything complete was answered.
                must_close_ = true;
                conn_->close();
            }
            break;
        }
        evbuffer_iovec extent{};
        if (evbuffer_peek(input_.raw(), -1, nullptr, &extent, 1) < 1) break;
        const char* data = static_cast<const char*>(extent.iov_base);
        const llhttp_errno_t error = llhttp_execute(&parser_, data, extent.iov_len);
        std::size_t used = extent.iov_len;
        if (error != HPE_OK) {
            const char* stop = llhttp_get_error_pos(&parser_);
            if (stop != nullptr && stop >= data && stop <= data + extent.iov_len)
                used = static_cast<std::size_t>(stop - data);
        }
        input_.drain(used);
        if (error == HPE_PAUSED || error == HPE_PAUSED_UPGRADE) {
            if (error == HPE_PAUSED_UPGRADE) {
                must_close_ = true;  // no protocol upgrades: answer, then close
                building_.keep_alive_ = false;
            }
            llhttp_resume(&parser_);
            if (complete_) {
                complete_ = false;
                dispatch();
            }
            continue;
        }
        if (error != HPE_OK) {
            // A limit a callback hit has its own status (llhttp reports it
            // as HPE_USER, or HPE_CB_HEADERS_COMPLETE from that callback).
            const int status = error_status_ != 0 ? error_status_ : 400;
            detail::logger().debug("http connection {}: {} ({})", conn_->id(), status,
                                   llhttp_get_error_reason(&parser_));
            refuse(status);
            break;
        }
    }
    pumping_ = false;
    if (conn_ == nullptr) return;
    manage_header_timer();
    // A reply still pending: read no further (the client's next requests
    // wait in the kernel, not here).
    const bool hold = busy_;
    if (hold != paused_reading_) {
        paused_reading_ = hold;
        if (hold)
            conn_->pause_reading();
        else
            conn_->resume_reading();
    }
}

void Session::dispatch() {
    Request& r = building_;
    const std::string_view target = r.target_;
    std::string_view path = target;
    if (path.starts_with("http://") || path.starts_with("https://")) {  // absolute-form
        const std::size_t scheme = path.find("//") + 2;
        const std::size_t slash = path.find('/', scheme);
        path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    }
    const std::size_t question = path.find('?');
    if (question != std::string_view::npos) {
        r.query_ = std::string(path.substr(question + 1));
        path = path.substr(0, question);
    }
    std::optional<std::string> decoded = percent_decode(path);
    request_ = std::move(building_);
    building_ = Request();
    ++seq_;
    busy_ = true;
    if (!request_.keep_alive_) must_close_ = true;
    if (!decoded) {
        Responder(shared_from_this(), seq_).send(Response::error(400));
        return;
    }
    request_.path_ = std::move(*decoded);
    Responder responder(shared_from_this(), seq_);
    try {
        router_->dispatch(std::move(responder));
    } catch (const std::exception& e) {
        detail::logger().warn("http: handler for {} {} threw: {}", request_.method_,
                              request_.target_, e.what());
        must_close_ = true;  // the Responder's destructor sent 500
    } catch (...) {
        detail::logger().warn("http: handler for {} {} threw", request_.method_, request_.target_);
        must_close_ = true;
    }
}

void Session::refuse(int status) {
    // A request we will not parse further: reply with the status, close.
    must_close_ = true;
    ++seq_;
    busy_ = true;
    request_ = Request();
    request_.method_ = "GET";
    request_.keep_alive_ = false;
    input_.clear();
    Responder(shared_from_this(), seq_).send(Response::error(status));
}

void Session::manage_header_timer() {
    if (!in_head_) {
        if (timed_message_ != 0) {
            header_timer_.cancel();
            timed_message_ = 0;
        }
        return;
    }
    if (timed_message_ == messages_ || options_->header_timeout.count() == 0) return;
    timed_message_ = messages_;
    std::weak_ptr<Session> weak = weak_from_this();
    const std::uint64_t message = messages_;
    header_timer_ = group_.after(options_->header_timeout, [weak, message] {
        auto self = weak.lock();
        if (!self || self->conn_ == nullptr || !self->in_head_ || self->messages_ != message ||
            self->busy_)
            return;
        detail::logger().debug("http connection {}: request head not complete within {} ms",
                               self->conn_->id(), self->options_->header_timeout.count());
        self->in_head_ = false;
        self->refuse(408);
    });
}

void Session::send_head(std::uint64_t seq, const Response& response, std::uint64_t length,
                        bool has_body) {
    if (!current(seq)) return;
    std::string head;
    head.reserve(160 + response.body.size());
    head += "HTTP/1.1 ";
    head += std::to_string(response.status);
    head += ' ';
    head += reason(response.status);
    head += "\r\nServer: ";
    head += options_->server;
    head += "\r\nDate: ";
    head += cached_date();
    head += "\r\n";
    const bool bodiless = response.status == 204 || response.status == 304 ||
                          (response.status >= 100 && response.status < 200);
    if (!response.content_type.empty() && !bodiless) {
        head += "Content-Type: ";
        head += response.content_type;
        head += "\r\n";
    }
    for (const Header& header : response.headers) {
        head += header.first;
        head += ": ";
        head += header.second;
        head += "\r\n";
    }
    if (!bodiless) {
        head += "Content-Length: ";
        head += std::to_string(length);
        head += "\r\n";
    }
    if (must_close_ || eof_) {
        head += "Connection: close\r\n";
    } else if (request_.minor_ == 0) {
        head += "Connection: keep-alive\r\n";
    }
    head += "\r\n";
    if (has_body && !request_.is_head() && !bodiless) head += response.body;
    conn_->write(head);
}

void Session::send_body(std::uint64_t seq, std::string_view data) {
    if (current(seq) && !request_.is_head()) conn_->write(data);
}

void Session::send_body(std::uint64_t seq, Buffer& data) {
    if (current(seq) && !request_.is_head()) conn_->write(data);
}

void Session::end_reply(std::uint64_t seq, bool complete) {
    if (!current(seq)) return;
    busy_ = false;
    if (!complete) {
        conn_->abort();  // a short body: the client must not take it for whole
        return;
    }
    if (must_close_) {
        conn_->close();
        return;
    }
    pump();
}

void Session::when_drained(std::function<void()> fn) {
    if (conn_ == nullptr) return;
    // Decided in a later event, after this one's writes were flushed: if
    // the output still exceeds the high-water mark then, the connection is
    // back-pressured and on_drain() will come.
    std::weak_ptr<Session> weak = weak_from_this();
    conn_->post([weak, fn = std::move(fn)](tcp::Connection& conn) mutable {
        auto self = weak.lock();
        if (!self || self->conn_ == nullptr) return;
        if (conn.output_size() <= self->options_->high_water)
            fn();
        else
            self->drained_ = std::move(fn);
    });
}

void Session::failed(std::uint64_t seq) noexcept {
    if (!current(seq)) return;
    must_close_ = true;
    try {
        Responder(shared_from_this(), seq).send(Response::error(500));
    } catch (...) {
        conn_->abort();
    }
}

// -------------------------------------------------------------- Responder --

Responder::Responder(std::shared_ptr<Session> session, std::uint64_t seq)
    : session_(std::move(session)), seq_(seq) {}

Responder::Responder(Responder&& other) noexcept
    : session_(std::move(other.session_)),
      seq_(other.seq_),
      remaining_(other.remaining_),
      state_(std::exchange(other.state_, kDone)) {}

Responder& Responder::operator=(Responder&& other) noexcept {
    if (this != &other) {
        Responder old(std::move(*this));
        session_ = std::move(other.session_);
        seq_ = other.seq_;
        remaining_ = other.remaining_;
        state_ = std::exchange(other.state_, kDone);
    }
    return *this;
}

Responder::~Responder() {
    if (!session_ || state_ == kDone || !session_->is_open()) return;
    if (state_ == kPending) {
        session_->failed(seq_);  // 500, then close
    } else {
        session_->end_reply(seq_, false);
    }
}

const Request& Responder::request() const noexcept {
    return session_->request();
}

void Responder::send(Response response) {
    if (state_ != kPending) return;
    state_ = kDone;
    session_->send_head(seq_, response, response.body.size(), true);
    session_->end_reply(seq_, true);
}

void Responder::start(Response response, std::uint64_t content_length) {
    if (state_ != kPending) return;
    state_ = kStreaming;
    remaining_ =
        session_->request().is_head()
            ? 0  // the head only
            : content_length - std::min<std::uint64_t>(content_length, response.body.size());
    session_->send_head(seq_, response, content_length, true);
    if (remaining_ == 0) finish();
}

void Responder::write(std::string_view data) {
    if (state_ != kStreaming) return;
    const std::size_t size = std::min<std::uint64_t>(remaining_, data.size());
    remaining_ -= size;
    session_->send_body(seq_, data.substr(0, size));
}

void Responder::write(Buffer& data) {
    if (state_ != kStreaming) return;
    if (data.size() > remaining_) data.drain(data.size() - remaining_);  // never past the length
    remaining_ -= data.size();
    session_->send_body(seq_, data);
}

void Responder::finish() {
    if (state_ != kStreaming) return;
    state_ = kDone;
    session_->end_reply(seq_, remaining_ == 0);
}

void Responder::when_drained(std::function<void()> fn) {
    if (session_) session_->when_drained(std::move(fn));
}

bool Responder::defer(std::function<void(Responder&)> fn) && {
    std::shared_ptr<tcp::Connection> conn = session_->weak_connection().lock();
    if (!conn) {
        state_ = kDone;  // nobody to answer
        return false;
    }
    auto holder = std::make_shared<Responder>(std::move(*this));
    const bool posted = conn->post([holder, fn = std::move(fn)](tcp::Connection&) { fn(*holder); });
    if (!posted) holder->state_ = kDone;  // closed meanwhile: drop quietly, on any thread
    return posted;
}

bool Responder::open() const noexcept {
    return session_ && session_->is_open();
}

const sched::Group& Responder::group() const noexcept {
    return session_->group();
}

// ----------------------------------------------------------------- Router --

void Router::get(std::string path, Handler handler) {
    add({"GET", "HEAD"}, std::move(path), std::move(handler));
}

void Router::add(std::vector<std::string> methods, std::string path, Handler handler) {
    routes_.push_back({std::move(path), std::move(methods), std::move(handler), false});
}

void Router::prefix(std::string prefix, Handler handler, std::vector<std::string> methods) {
    routes_.push_back({std::move(prefix), std::move(methods), std::move(handler), true});
}

void Router::dispatch(Responder responder) const {
    const Request& request = responder.request();
    const std::string_view path = request.path();
    const Route* found = nullptr;
    for (const Route& route : routes_) {
        if (!route.prefix && route.path == path) {
            found = &route;
            break;
        }
        if (route.prefix && path.starts_with(route.path) &&
            (found == nullptr || (found->prefix && route.path.size() > found->path.size())))
            found = &route;
    }
    if (found == nullptr) {
        responder.send(Response::error(404));
        return;
    }
    if (std::find(found->methods.begin(), found->methods.end(), request.method()) ==
        found->methods.end()) {
        Response response = Response::error(405);
        std::string allow;
        for (const std::string& method : found->methods) {
            if (!allow.empty()) allow += ", ";
            allow += method;
        }
        response.headers.emplace_back("Allow", std::move(allow));
        responder.send(std::move(response));
        return;
    }
    found->handler(std::move(responder));
}

// ------------------------------------------------------------------ serve --

namespace {

class Adapter final : public tcp::Handler {
public:
    explicit Adapter(std::shared_ptr<Session> session) : session_(std::move(session)) {}
    void on_open(tcp::Connection& conn) override { session_->open(conn); }
    void on_data(tcp::Connection&, Buffer& in) override { session_->data(in); }
    void on_eof(tcp::Connection&) override { session_->eof(); }
    void on_shutdown(tcp::Connection&) override { session_->shutdown(); }
    void on_drain(tcp::Connection&) override { session_->drain(); }
    void on_close(tcp::Connection&, std::error_code) override { session_->closed(); }

private:
    std::shared_ptr<Session> session_;
};

}  // namespace

tcp::HandlerFactory handler_factory(std::shared_ptr<const Router> router, ServerOptions options) {
    auto shared = std::make_shared<const ServerOptions>(std::move(options));
    return [router = std::move(router), shared]() -> std::unique_ptr<tcp::Handler> {
        return std::make_unique<Adapter>(std::make_shared<Session>(router, shared));
    };
}

tcp::Listener& listen(Runtime& runtime, std::string_view address,
                      std::shared_ptr<const Router> router, ServerOptions options) {
    tcp::ListenerOptions listener;
    listener.name = options.name;
    listener.connection.idle_timeout = options.keep_alive_timeout;
    listener.connection.high_water = options.high_water;
    listener.connection.low_water = options.low_water;
    return runtime.listen(address, handler_factory(std::move(router), std::move(options)),
                          listener);
}

}  // namespace quiesce::http
