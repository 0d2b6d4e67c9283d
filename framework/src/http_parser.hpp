// RequestParser (private): llhttp with the server's limits, bytes in,
// requests out, one at a time; no sockets, so the fuzz target drives it
// exactly as a connection does.
//
//     RequestParser parser(options);
//     auto step = parser.feed(data, size);   // used: how many bytes it took
//     if (step.kind == RequestParser::kRequest) { Request r; parser.take(r); }
//
// After kRequest the parser stands just past that message: feed the rest
// (data + used) once the request is answered. After kError it takes nothing
// more: status() is the reply (400, 413, 414, 417, 431, 505).
//
// Threading: none (one connection's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <llhttp.h>

#include <quiesce/framework/http.hpp>

namespace quiesce::http::detail {

bool iequals(std::string_view a, std::string_view b) noexcept;
/// Without leading and trailing blanks (spaces, tabs).
std::string_view trim(std::string_view text) noexcept;
/// The Date header's value now, formatted once a second per thread.
std::string_view cached_date();

/// What a reply's head depends on besides the response.
struct HeadContext {
    std::string_view server;
    std::string_view date;
    bool close = false;         ///< the connection ends after this reply
    bool http10 = false;        ///< an HTTP/1.0 request that keeps the connection
    bool head_request = false;  ///< HEAD: no body
    bool with_body = true;      ///< append response.body (unless HEAD or bodiless)
};
/// The status line and headers (and, `with_body`, the body) of a reply
/// announcing `length` body bytes.
std::string format_head(const Response& response, std::uint64_t length, const HeadContext& c);

class RequestParser {
public:
    enum Kind : std::uint8_t { kNeedMore, kRequest, kError };
    struct Step {
        Kind kind = kNeedMore;
        std::size_t used = 0;
    };

    explicit RequestParser(const ServerOptions& options);
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;

    /// Parses from `data`; stops after one whole request, at an error or at
    /// the end of the bytes.
    Step feed(const char* data, std::size_t size);
    /// Moves the request just parsed into `out` (target split, path
    /// percent-decoded). False when its path does not decode: answer 400.
    bool take(Request& out);

    /// The status for kError.
    [[nodiscard]] int status() const noexcept { return status_; }
    /// llhttp's reason for a parse error (for the debug log).
    [[nodiscard]] const char* reason() const noexcept;
    /// A request began and its head is not complete (the header timer runs).
    [[nodiscard]] bool in_head() const noexcept { return in_head_; }
    /// Requests begun so far.
    [[nodiscard]] std::uint64_t messages() const noexcept { return messages_; }
    /// The request just taken asked for a protocol upgrade (not supported:
    /// answer it, then close).
    [[nodiscard]] bool upgrade() const noexcept { return upgrade_; }

    /// Called when a request's head asks `Expect: 100-continue` for a body
    /// it has not sent: the connection writes "100 Continue".
    std::function<void()> on_continue;

private:
    static const llhttp_settings_t& settings();
    static RequestParser& of(llhttp_t* p) { return *static_cast<RequestParser*>(p->data); }
    int limit(int status) {
        status_ = status;
        return HPE_USER;
    }
    void push_header();

    static int on_message_begin(llhttp_t* p);
    static int on_url(llhttp_t* p, const char* at, std::size_t n);
    static int on_header_field(llhttp_t* p, const char* at, std::size_t n);
    static int on_header_value(llhttp_t* p, const char* at, std::size_t n);
    static int on_headers_complete(llhttp_t* p);
    static int on_body(llhttp_t* p, const char* at, std::size_t n);
    static int on_message_complete(llhttp_t* p);

    const ServerOptions& options_;
    llhttp_t parser_{};
    Request building_;
    std::string field_;
    std::string value_;
    std::size_t header_bytes_ = 0;
    std::uint64_t messages_ = 0;
    int status_ = 0;
    bool in_head_ = false;
    bool in_value_ = false;
    bool complete_ = false;
    bool upgrade_ = false;
    bool failed_ = false;
};

}  // namespace quiesce::http::detail
