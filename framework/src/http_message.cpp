// The message side of HTTP (see http.hpp): status reasons, dates, percent-
// decoding, query and header lookup, byte ranges, and a reply's head as it
// goes on the wire. No sockets: the fuzz target links this alone.
#include <quiesce/framework/http.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <string>

#include "http_parser.hpp"

namespace quiesce::http {

namespace {

constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

}  // namespace

namespace detail {

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

std::string format_head(const Response& response, std::uint64_t length, const HeadContext& c) {
    std::string head;
    head.reserve(160 + (c.with_body ? response.body.size() : 0));
    head += "HTTP/1.1 ";
    head += std::to_string(response.status);
    head += ' ';
    head += reason(response.status);
    head += "\r\nServer: ";
    head += c.server;
    head += "\r\nDate: ";
    head += c.date;
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
    if (c.close) {
        head += "Connection: close\r\n";
    } else if (c.http10) {
        head += "Connection: keep-alive\r\n";
    }
    head += "\r\n";
    if (c.with_body && !c.head_request && !bodiless) head += response.body;
    return head;
}

}  // namespace detail

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
        case 412:
            return "Precondition Failed";
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
        if (detail::iequals(header.first, name)) return std::string_view(header.second);
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

namespace {

enum class Spec { kOk, kMalformed, kPastEnd };

// One range spec ("A-B", "A-", "-N") of a `size`-byte body.
Spec parse_range_spec(std::string_view spec, std::uint64_t size, ByteRange& range) noexcept {
    spec = detail::trim(spec);
    const std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return Spec::kMalformed;
    auto number = [](std::string_view text, std::uint64_t& out) {
        if (text.empty()) return false;
        auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
        return error == std::errc() && end == text.data() + text.size();
    };
    const std::string_view first_text = spec.substr(0, dash);
    const std::string_view last_text = spec.substr(dash + 1);
    if (first_text.empty()) {  // "-N": the last N bytes
        std::uint64_t suffix = 0;
        if (!number(last_text, suffix)) return Spec::kMalformed;
        if (suffix == 0 || size == 0) return Spec::kPastEnd;
        range.first = size - std::min(suffix, size);
        range.last = size - 1;
        return Spec::kOk;
    }
    if (!number(first_text, range.first)) return Spec::kMalformed;
    if (last_text.empty()) {
        range.last = size == 0 ? 0 : size - 1;
    } else if (!number(last_text, range.last) || range.last < range.first) {
        return Spec::kMalformed;  // ignored, as RFC 9110 says
    }
    if (range.first >= size) return Spec::kPastEnd;
    range.last = std::min(range.last, size - 1);
    return Spec::kOk;
}

}  // namespace

std::vector<ByteRange> parse_byte_ranges(std::string_view value, std::uint64_t size,
                                         bool& unsatisfiable, std::size_t max_ranges) {
    unsatisfiable = false;
    std::vector<ByteRange> ranges;
    if (!value.starts_with("bytes=")) return ranges;
    value.remove_prefix(6);
    std::size_t specs = 0;
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        const std::string_view spec = value.substr(0, comma);
        value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
        if (++specs > max_ranges) return {};
        ByteRange range;
        switch (parse_range_spec(spec, size, range)) {
            case Spec::kOk:
                ranges.push_back(range);
                break;
            case Spec::kMalformed:
                return {};
            case Spec::kPastEnd:
                break;
        }
    }
    unsatisfiable = ranges.empty() && specs > 0;
    return ranges;
}

bool etag_listed(std::string_view list, std::string_view etag, bool weak) noexcept {
    if (detail::trim(list) == "*") return true;
    while (!list.empty()) {
        const std::size_t comma = list.find(',');
        std::string_view tag = detail::trim(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        if (tag.starts_with("W/")) {
            if (!weak) continue;
            tag.remove_prefix(2);
        }
        if (tag == etag) return true;
    }
    return false;
}

std::optional<ByteRange> parse_byte_range(std::string_view value, std::uint64_t size,
                                          bool& unsatisfiable) noexcept {
    unsatisfiable = false;
    if (!value.starts_with("bytes=")) return {};
    value.remove_prefix(6);
    if (value.find(',') != std::string_view::npos) return {};  // several ranges: send it all
    ByteRange range;
    switch (parse_range_spec(value, size, range)) {
        case Spec::kOk:
            return range;
        case Spec::kPastEnd:
            unsatisfiable = true;
            return {};
        case Spec::kMalformed:
            return {};
    }
    return {};
}

}  // namespace quiesce::http
