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
#include <exception>
#include <string>

#include <event2/buffer.h>

#include <quiesce/framework/runtime.hpp>

#include "http_parser.hpp"
#include "log.hpp"

namespace quiesce::http {

// ---------------------------------------------------------------- Session --

class Session final : public std::enable_shared_from_this<Session> {
public:
    Session(std::shared_ptr<const Router> router, std::shared_ptr<const ServerOptions> options)
        : router_(std::move(router)), options_(std::move(options)), parser_(*options_) {
        parser_.on_continue = [this] {
            if (conn_ != nullptr) conn_->write("HTTP/1.1 100 Continue\r\n\r\n");
        };
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
    }
    void closed() noexcept {
        closed_.store(true, std::memory_order_release);  // [HS1] pairs with [HS2] in is_open()
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

    void send_head(std::uint64_t seq, const Response& response, std::uint64_t length);
    void send_body(std::uint64_t seq, std::string_view data);
    void send_body(std::uint64_t seq, Buffer& data);
    bool send_file(std::uint64_t seq, int fd, std::uint64_t offset, std::uint64_t length);
    void end_reply(std::uint64_t seq, bool complete);
    void when_drained(std::function<void()> fn);
    void failed(std::uint64_t seq) noexcept;

private:
    void pump();
    void dispatch();
    void refuse(int status);
    void manage_header_timer();
    bool current(std::uint64_t seq) const noexcept { return conn_ != nullptr && seq == seq_; }

    std::shared_ptr<const Router> router_;
    std::shared_ptr<const ServerOptions> options_;
    tcp::Connection* conn_ = nullptr;  // null once closed
    std::weak_ptr<tcp::Connection> weak_conn_;
    sched::Group group_;
    detail::RequestParser parser_;
    Buffer input_;           // read, not parsed yet
    Request request_;        // the one being answered
    std::uint64_t seq_ = 0;  // the request being answered
    sched::Timer header_timer_;
    std::uint64_t timed_message_ = 0;  // the message the header timer is for
    std::function<void()> drained_;
    std::atomic<bool> closed_{false};
    bool busy_ = false;  // a request waits for its reply
    bool pumping_ = false;
    bool resume_posted_ = false;  // pump() waits for the output to drain
    bool must_close_ = false;     // close after the reply under way
    bool eof_ = false;
    bool paused_reading_ = false;
};

void Session::pump() {
    if (pumping_ || conn_ == nullptr) return;
    pumping_ = true;
    while (conn_ != nullptr && !busy_ && !conn_->closing()) {
        if (conn_->output_size() > options_->high_water) {
            // Hold the rest until the replies drain (no reply is under
            // way, so the drain slot is free).
            if (!resume_posted_) {
                resume_posted_ = true;
                when_drained([this] {
                    resume_posted_ = false;
                    pump();
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
        const detail::RequestParser::Step step =
            parser_.feed(static_cast<const char*>(extent.iov_base), extent.iov_len);
        input_.drain(step.used);
        if (step.kind == detail::RequestParser::kRequest) {
            dispatch();
            continue;
        }
        if (step.kind == detail::RequestParser::kError) {
            quiesce::detail::logger().debug("http connection {}: {} ({})", conn_->id(),
                                            parser_.status(), parser_.reason());
            refuse(parser_.status());
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
    const bool decoded = parser_.take(request_);
    ++seq_;
    busy_ = true;
    if (!request_.keep_alive() || parser_.upgrade()) must_close_ = true;  // no upgrades
    if (!decoded) {
        Responder(shared_from_this(), seq_).send(Response::error(400));
        return;
    }
    Responder responder(shared_from_this(), seq_);
    try {
        router_->dispatch(std::move(responder));
    } catch (const std::exception& e) {
        quiesce::detail::logger().warn("http: handler for {} {} threw: {}", request_.method(),
                                       request_.target(), e.what());
        must_close_ = true;  // the Responder's destructor sent 500
    } catch (...) {
        quiesce::detail::logger().warn("http: handler for {} {} threw", request_.method(),
                                       request_.target());
        must_close_ = true;
    }
}

void Session::refuse(int status) {
    // A request we will not parse further: reply with the status, close.
    must_close_ = true;
    ++seq_;
    busy_ = true;
    request_ = Request();  // not HEAD: the error page has a body
    input_.clear();
    Responder(shared_from_this(), seq_).send(Response::error(status));
}

void Session::manage_header_timer() {
    if (!parser_.in_head()) {
        if (timed_message_ != 0) {
            header_timer_.cancel();
            timed_message_ = 0;
        }
        return;
    }
    if (timed_message_ == parser_.messages() || options_->header_timeout.count() == 0) return;
    timed_message_ = parser_.messages();
    std::weak_ptr<Session> weak = weak_from_this();
    const std::uint64_t message = parser_.messages();
    header_timer_ = group_.after(options_->header_timeout, [weak, message] {
        auto self = weak.lock();
        if (!self || self->conn_ == nullptr || !self->parser_.in_head() ||
            self->parser_.messages() != message || self->busy_)
            return;
        quiesce::detail::logger().debug(
            "http connection {}: request head not complete within {} ms", self->conn_->id(),
            self->options_->header_timeout.count());
        self->refuse(408);
    });
}

void Session::send_head(std::uint64_t seq, const Response& response, std::uint64_t length) {
    if (!current(seq)) return;
    detail::HeadContext context;
    context.server = options_->server;
    context.date = detail::cached_date();
    context.close = must_close_ || eof_;
    context.http10 = request_.version_minor() == 0;
    context.head_request = request_.is_head();
    conn_->write(detail::format_head(response, length, context));
}

void Session::send_body(std::uint64_t seq, std::string_view data) {
    if (current(seq) && !request_.is_head()) conn_->write(data);
}

void Session::send_body(std::uint64_t seq, Buffer& data) {
    if (current(seq) && !request_.is_head()) conn_->write(data);
}

bool Session::send_file(std::uint64_t seq, int fd, std::uint64_t offset, std::uint64_t length) {
    if (!current(seq) || request_.is_head()) return true;  // nothing to send, as send_body()
    return conn_->write_file(fd, offset, length);
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
    // back-pressured and on_drain() will come. `fn` runs only while the
    // session is alive and open (closed() drops a stored one).
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
    session_->send_head(seq_, response, response.body.size());
    session_->end_reply(seq_, true);
}

void Responder::start(Response response, std::uint64_t content_length) {
    if (state_ != kPending) return;
    state_ = kStreaming;
    remaining_ =
        session_->request().is_head()
            ? 0  // the head only
            : content_length - std::min<std::uint64_t>(content_length, response.body.size());
    session_->send_head(seq_, response, content_length);
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

bool Responder::write_file(int fd, std::uint64_t offset, std::uint64_t length) {
    if (state_ != kStreaming) return true;  // as write(): nothing more is sent
    const std::uint64_t size = std::min(remaining_, length);
    if (!session_->send_file(seq_, fd, offset, size)) return false;
    remaining_ -= size;
    return true;
}

void Responder::finish() {
    if (state_ != kStreaming) return;
    state_ = kDone;
    session_->end_reply(seq_, remaining_ == 0);
}

void Responder::when_drained(std::function<void()> fn) {
    if (state_ == kStreaming) session_->when_drained(std::move(fn));
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

tcp::ListenerOptions listener_options(const ServerOptions& options) {
    tcp::ListenerOptions listener;
    listener.name = options.name;
    listener.connection.idle_timeout = options.keep_alive_timeout;
    listener.connection.high_water = options.high_water;
    listener.connection.low_water = options.low_water;
    return listener;
}

tcp::Listener& listen(Runtime& runtime, std::string_view address,
                      std::shared_ptr<const Router> router, ServerOptions options) {
    tcp::ListenerOptions listener = listener_options(options);
    return runtime.listen(address, handler_factory(std::move(router), std::move(options)),
                          listener);
}

}  // namespace quiesce::http
