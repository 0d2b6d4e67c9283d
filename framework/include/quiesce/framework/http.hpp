// HTTP/1.1 servers on the framework's connections, parsing with llhttp (the
// parser Node.js uses; compiled into the library from Debian's node-llhttp).
//
//     auto router = std::make_shared<http::Router>();
//     router->get("/", [](http::Responder r) { r.send(http::Response::text(200, "hello\n")); });
//     router->prefix("/files/", serve_file);          // every path under /files/
//     http::listen(runtime, "127.0.0.1:8080", router);
//
// What the server does for every route (framework/README.md, "HTTP"):
// - keep-alive and pipelining (requests answered in order, one at a time: a
//   request whose handler has not replied yet holds the ones behind it),
//   HTTP/1.0 (closed after the reply unless it asked for keep-alive), HEAD
//   (the headers GET would send, no body), `Expect: 100-continue`, chunked
//   request bodies; `Date`, `Server`, `Content-Length` on every reply.
// - RFC 9112 framing: Content-Length with Transfer-Encoding, or two
//   different lengths, is 400 and the connection closes (request smuggling).
// - limits: request line and headers over `max_header_bytes` → 431; a
//   target over `max_target` → 414; a body over `max_body` → 413; anything
//   llhttp refuses → 400; each of them closes the connection after the reply.
//   A request head not complete within `header_timeout` of its first byte
//   (slowloris) → 408 and close; a keep-alive connection idle for
//   `keep_alive_timeout` is closed.
// - back-pressure: a client that pipelines requests without reading the
//   replies stops being read once `high_water` bytes of replies wait.
//
// A handler replies through its Responder at once or later (from an AIO
// completion, a timer, an event it posted to the connection's group); a
// Responder dropped without a reply sends 500. Handlers run as events of the
// connection's group; a handler that throws gets 500 and the connection
// closes.
//
// Threading: Router is read-only once listening (any thread); Responder
// members, its destructor included, on the connection's group, except
// defer() (any thread: it moves the Responder into the event it posts).
#pragma once

#include <quiesce/base/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <quiesce/framework/buffer.hpp>
#include <quiesce/framework/tcp.hpp>

namespace quiesce {
class Runtime;
}

namespace quiesce::http {

namespace detail {
class RequestParser;
}

using Header = std::pair<std::string, std::string>;

class Request {
public:
    [[nodiscard]] std::string_view method() const noexcept { return method_; }
    /// The request target as sent ("/files/a%20b.txt?x=1").
    [[nodiscard]] std::string_view target() const noexcept { return target_; }
    /// The target's path, percent-decoded ("/files/a b.txt"). A path that
    /// does not decode (a bad escape, an encoded NUL) is answered 400 before
    /// any handler runs.
    [[nodiscard]] std::string_view path() const noexcept { return path_; }
    /// What follows '?', as sent.
    [[nodiscard]] std::string_view query() const noexcept { return query_; }
    /// The first value of query parameter `name`, percent-decoded.
    [[nodiscard]] std::optional<std::string> query_param(std::string_view name) const;
    /// The first header called `name` (any case), its value trimmed.
    [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept;
    [[nodiscard]] const std::vector<Header>& headers() const noexcept { return headers_; }
    [[nodiscard]] std::string_view body() const noexcept { return body_; }
    [[nodiscard]] unsigned version_major() const noexcept { return major_; }
    [[nodiscard]] unsigned version_minor() const noexcept { return minor_; }
    /// The connection stays open after the reply (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`).
    [[nodiscard]] bool keep_alive() const noexcept { return keep_alive_; }
    [[nodiscard]] bool is_head() const noexcept { return method_ == "HEAD"; }

private:
    friend class detail::RequestParser;
    std::string method_;
    std::string target_;
    std::string path_;
    std::string query_;
    std::vector<Header> headers_;
    std::string body_;
    unsigned major_ = 1;
    unsigned minor_ = 1;
    bool keep_alive_ = true;
};

struct Response {
    int status = 200;
    /// Sent as Content-Type unless empty.
    std::string content_type = "text/plain; charset=utf-8";
    /// More headers (Date, Server, Content-Length and Connection are the
    /// server's).
    std::vector<Header> headers{};
    std::string body{};

    static Response text(int status, std::string body,
                         std::string content_type = "text/plain; charset=utf-8");
    /// A short page for an error status: "404 Not Found\n".
    static Response error(int status);
};

/// The reason phrase of a status code ("Not Found"), "Unknown" if none.
[[nodiscard]] std::string_view reason(int status) noexcept;
/// RFC 9110 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
[[nodiscard]] std::string http_date(std::int64_t unix_seconds);
/// Parses an IMF-fixdate; nullopt if it is not one.
[[nodiscard]] std::optional<std::int64_t> parse_http_date(std::string_view text) noexcept;
/// Decodes %XX escapes (and nothing else); nullopt for a bad escape or NUL.
[[nodiscard]] std::optional<std::string> percent_decode(std::string_view text);

/// One byte range of a `size`-byte body (first and last inclusive).
struct ByteRange {
    std::uint64_t first = 0;
    std::uint64_t last = 0;
};
/// The range a `Range` header value asks for, if it is one satisfiable
/// `bytes=A-B`, `bytes=A-` or `bytes=-N`. nullopt otherwise: several ranges
/// or a malformed value (serve the whole body, as RFC 9110 allows), or, with
/// `unsatisfiable` set, a range past the end (answer 416).
[[nodiscard]] std::optional<ByteRange> parse_byte_range(std::string_view value, std::uint64_t size,
                                                        bool& unsatisfiable) noexcept;
/// The satisfiable ranges of a `Range` header value with one or more
/// comma-separated specs, in the order asked; those past the end are
/// dropped. Empty: a malformed value or more than `max_ranges` specs (serve
/// the whole body), or, with `unsatisfiable` set, no spec satisfiable (416).
/// Whether an `If-Match` / `If-None-Match` value (a list of entity tags,
/// or `*`) names `etag`. `weak`: If-None-Match's weak comparison (a `W/`
/// prefix is ignored); If-Match compares strongly (a weak tag never matches).
[[nodiscard]] bool etag_listed(std::string_view list, std::string_view etag, bool weak) noexcept;
[[nodiscard]] std::vector<ByteRange> parse_byte_ranges(std::string_view value, std::uint64_t size,
                                                       bool& unsatisfiable,
                                                       std::size_t max_ranges = 16);

class Session;

/// The one reply a request gets. Move-only; dropping it unreplied sends 500.
class Responder {
public:
    Responder(Responder&& other) noexcept;
    Responder& operator=(Responder&& other) noexcept;
    Responder(const Responder&) = delete;
    Responder& operator=(const Responder&) = delete;
    ~Responder();

    [[nodiscard]] const Request& request() const noexcept;
    /// Replies (the body, or for HEAD its length only). Later calls do nothing.
    void send(Response response);
    /// Starts a reply whose body comes in pieces: `response.body` is sent
    /// first, then what write() adds, `content_length` bytes in all.
    void start(Response response, std::uint64_t content_length);
    /// Adds body bytes after start(); dropped for HEAD.
    void write(std::string_view data);
    void write(Buffer& data);
    /// Adds `length` body bytes of the file `fd` from `offset`, sent with
    /// sendfile(2) (tcp::Connection::write_file(): only what the page cache
    /// holds, or the loop may block on the disk). False if nothing was
    /// queued: the descriptor could not be duplicated (send the bytes
    /// another way), or the connection refused them as
    /// tcp::Connection::write_file() says (closing, or past max_output,
    /// which aborts it). True for HEAD, which sends none.
    [[nodiscard]] bool write_file(int fd, std::uint64_t offset, std::uint64_t length);
    /// Ends a reply begun with start(). A reply that wrote fewer bytes than
    /// it announced closes the connection (the client sees a short body).
    void finish();
    /// Between start() and finish(): runs `fn` once the connection's queued
    /// output is below its low-water mark (soon if it is already): for a
    /// handler that streams a large body.
    void when_drained(std::function<void()> fn);
    /// Runs `fn(responder)` as a later event of the connection's group (a
    /// long job that gives way). Thread: any. False (fn dropped, nothing
    /// sent) once the connection is closed.
    bool defer(std::function<void(Responder&)> fn) &&;
    /// The connection is still open: a reply can still reach the client.
    [[nodiscard]] bool open() const noexcept;
    /// The connection's group (for AIO completions and timers).
    [[nodiscard]] const sched::Group& group() const noexcept;
    [[nodiscard]] bool replied() const noexcept { return state_ != kPending; }

private:
    friend class Session;
    enum State : std::uint8_t { kPending, kStreaming, kDone };
    Responder(std::shared_ptr<Session> session, std::uint64_t seq);

    std::shared_ptr<Session> session_;
    std::uint64_t seq_ = 0;
    std::uint64_t remaining_ = 0;  // body bytes still owed after start()
    State state_ = kPending;
};

using Handler = std::function<void(Responder)>;

/// Maps paths to handlers: exact paths first, then the longest matching
/// prefix. A path with no route is 404; a method the route does not take is
/// 405 with `Allow`. Built before listening, read-only after.
class Router {
public:
    /// GET (and HEAD) `path` exactly.
    void get(std::string path, Handler handler);
    /// Any of `methods` on `path` exactly ("POST", "PUT", ...).
    void add(std::vector<std::string> methods, std::string path, Handler handler);
    /// GET and HEAD on every path that starts with `prefix` ("/files/").
    void prefix(std::string prefix, Handler handler,
                std::vector<std::string> methods = {"GET", "HEAD"});
    /// Runs the route for the responder's request (or replies 404/405).
    void dispatch(Responder responder) const;

private:
    struct Route {
        std::string path;
        std::vector<std::string> methods;
        Handler handler;
        bool prefix = false;
    };
    std::vector<Route> routes_;
};

struct ServerOptions {
    /// The request line and header fields, together.
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_target = 8 * 1024;
    std::size_t max_body = 1024 * 1024;
    std::chrono::milliseconds header_timeout{10'000};
    std::chrono::milliseconds keep_alive_timeout{75'000};
    /// Replies queued past this stop reading (and parsing) until they drain
    /// below `low_water`.
    std::size_t high_water = 256 * 1024;
    std::size_t low_water = 64 * 1024;
    /// The Server header.
    std::string server = "quiesce";
    /// Logs and group names.
    std::string name = "http";
};

/// Serves `router` on `address` (as Runtime::listen()). Thread: any.
tcp::Listener& listen(Runtime& runtime, std::string_view address,
                      std::shared_ptr<const Router> router, ServerOptions options = {});

/// The listener options listen() uses: the keep-alive timeout as the idle
/// timeout, the high- and low-water marks, the name.
[[nodiscard]] tcp::ListenerOptions listener_options(const ServerOptions& options);

/// The handler factory listen() uses, for a listener set up by hand.
[[nodiscard]] tcp::HandlerFactory handler_factory(std::shared_ptr<const Router> router,
                                                  ServerOptions options = {});

}  // namespace quiesce::http
