// libFuzzer target: HTTP requests from bytes to reply heads, as a
// connection handles them (framework/src/http_parser.hpp, http_message.cpp):
// the input (after its first byte, which picks the read size) arrives in
// pieces; every complete request is taken, its path, query, headers and
// Range looked at, and a reply head formatted. Checked: the parser never
// claims more bytes than it was given, limits hold (target, body), an error
// has one of the statuses the server sends, a taken path has no NUL, a
// reply head is one well-formed block whatever the request held.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http_parser.hpp"

namespace {

#define FUZZ_CHECK(cond)               \
    do {                               \
        if (!(cond)) __builtin_trap(); \
    } while (0)

using quiesce::http::Request;
using quiesce::http::Response;
using quiesce::http::detail::RequestParser;

void look_at(const Request& r, const quiesce::http::ServerOptions& options) {
    FUZZ_CHECK(r.target().size() <= options.max_target);
    FUZZ_CHECK(r.body().size() <= options.max_body);
    FUZZ_CHECK(r.path().find('\0') == std::string_view::npos);
    (void)r.query_param("ms");
    (void)r.query_param("");
    (void)r.header("host");
    if (auto range = r.header("Range")) {
        bool unsatisfiable = false;
        auto parsed = quiesce::http::parse_byte_range(*range, 1000, unsatisfiable);
        if (parsed) FUZZ_CHECK(parsed->first <= parsed->last && parsed->last < 1000);
        if (unsatisfiable) FUZZ_CHECK(!parsed);
        const auto ranges = quiesce::http::parse_byte_ranges(*range, 1000, unsatisfiable);
        FUZZ_CHECK(ranges.size() <= 16);
        for (const auto& each : ranges) FUZZ_CHECK(each.first <= each.last && each.last < 1000);
        if (unsatisfiable) FUZZ_CHECK(ranges.empty());
    }
    if (auto since = r.header("If-Modified-Since")) {
        if (auto when = quiesce::http::parse_http_date(*since))
            FUZZ_CHECK(quiesce::http::parse_http_date(quiesce::http::http_date(*when)) == when);
    }
    // A reply whose body echoes the path: the head stays one block.
    Response response = Response::text(200, std::string(r.path()));
    quiesce::http::detail::HeadContext context;
    context.server = "fuzz";
    context.date = "Sun, 06 Nov 1994 08:49:37 GMT";
    context.http10 = r.version_minor() == 0;
    context.head_request = r.is_head();
    context.with_body = false;
    const std::string head =
        quiesce::http::detail::format_head(response, response.body.size(), context);
    FUZZ_CHECK(head.starts_with("HTTP/1.1 200 OK\r\n"));
    FUZZ_CHECK(head.find("\r\n\r\n") == head.size() - 4);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    quiesce::http::ServerOptions options;
    options.max_header_bytes = 2048;
    options.max_target = 512;
    options.max_body = 4096;
    RequestParser parser(options);
    int continues = 0;
    parser.on_continue = [&] { ++continues; };
    const std::size_t piece = 1 + data[0] % 64;
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::size_t offset = 0;
    std::string pending;
    for (;;) {
        if (pending.empty()) {
            if (offset >= input.size()) break;
            const std::size_t n = std::min(piece, input.size() - offset);
            pending.assign(input.substr(offset, n));
            offset += n;
        }
        const RequestParser::Step step = parser.feed(pending.data(), pending.size());
        FUZZ_CHECK(step.used <= pending.size());
        pending.erase(0, step.used);
        if (step.kind == RequestParser::kError) {
            const int status = parser.status();
            FUZZ_CHECK(status == 400 || status == 413 || status == 414 || status == 417 ||
                       status == 431 || status == 505);
            FUZZ_CHECK(parser.feed("x", 1).kind == RequestParser::kError);  // stays failed
            break;
        }
        if (step.kind == RequestParser::kRequest) {
            Request request;
            if (parser.take(request)) look_at(request, options);
            continue;
        }
        FUZZ_CHECK(pending.empty());  // kNeedMore takes everything
    }
    return 0;
}
