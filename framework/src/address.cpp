// Address parsing and printing (see address.hpp).
#include <quiesce/framework/address.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>
#include <initializer_list>
#include <stdexcept>

namespace quiesce::tcp {
namespace {

// Appends the parts (g++ 12 at -O3 warns falsely, -Wrestrict, on chains of
// operator+ over short strings).
std::string join(std::initializer_list<std::string_view> parts) {
    std::string out;
    for (std::string_view part : parts) out.append(part);
    return out;
}

[[noreturn]] void bad(std::string_view text, const std::string& why) {
    throw std::invalid_argument(join({"bad address '", text, "': ", why}));
}

std::uint16_t parse_port(std::string_view text, std::string_view port) {
    if (port.empty()) bad(text, "no port (expected HOST:PORT)");
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value > 65535)
        bad(text, join({"port '", port, "' is not a number from 0 to 65535"}));
    return static_cast<std::uint16_t>(value);
}

}  // namespace

Address::Address() noexcept {
    std::memset(&storage_, 0, sizeof storage_);
}

Address Address::parse(std::string_view text) {
    Address out;
    if (text.substr(0, 5) == "unix:") {
        std::string_view path = text.substr(5);
        sockaddr_un un{};
        if (path.empty()) bad(text, "empty socket path");
        if (path.size() >= sizeof un.sun_path)
            bad(text,
                "socket path longer than " + std::to_string(sizeof un.sun_path - 1) + " bytes");
        if (path.find('\0') != std::string_view::npos) bad(text, "NUL in socket path");
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path, path.data(), path.size());
        std::memcpy(&out.storage_, &un, sizeof un);
        out.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
        return out;
    }
    std::string host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) bad(text, "missing ']' after an IPv6 address");
        host = std::string(text.substr(1, close - 1));
        if (close + 1 >= text.size() || text[close + 1] != ':') bad(text, "no port after ']'");
        port = text.substr(close + 2);
        if (host.empty()) bad(text, "empty IPv6 address");
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) bad(text, "no port (expected HOST:PORT)");
        host = std::string(text.substr(0, colon));
        port = text.substr(colon + 1);
        if (host.find(':') != std::string::npos)
            bad(text, "an IPv6 address needs brackets: [ADDR]:PORT");
    }
    std::uint16_t number = parse_port(text, port);
    if (host.empty()) host = "0.0.0.0";

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    addrinfo* result = nullptr;
    std::string service = std::to_string(number);
    int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &result);
    if (rc != 0 || result == nullptr) {
        // AI_ADDRCONFIG hides loopback families on hosts without other
        // addresses: try once more without it.
        hints.ai_flags = AI_NUMERICSERV;
        if (result != nullptr) freeaddrinfo(result);
        result = nullptr;
        rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &result);
        if (rc != 0 || result == nullptr)
            bad(text, join({"cannot resolve '", host, "': ", gai_strerror(rc)}));
    }
    std::memcpy(&out.storage_, result->ai_addr, result->ai_addrlen);
    out.length_ = result->ai_addrlen;
    freeaddrinfo(result);
    return out;
}

Address Address::from_sockaddr(const sockaddr* address, socklen_t length) {
    Address out;
    if (length > sizeof out.storage_) length = sizeof out.storage_;
    std::memcpy(&out.storage_, address, length);
    out.length_ = length;
    return out;
}

std::uint16_t Address::port() const noexcept {
    if (family() == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    if (family() == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    return 0;
}

std::string Address::to_string() const {
    char host[INET6_ADDRSTRLEN] = {};
    switch (family()) {
        case AF_INET:
            inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, host,
                      sizeof host);
            return join({host, ":", std::to_string(port())});
        case AF_INET6:
            inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, host,
                      sizeof host);
            return join({"[", host, "]:", std::to_string(port())});
        case AF_UNIX: {
            const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
            if (length_ <= offsetof(sockaddr_un, sun_path)) return "unix:(unnamed)";
            std::size_t max = length_ - offsetof(sockaddr_un, sun_path);
            return join({"unix:", std::string_view(un->sun_path, strnlen(un->sun_path, max))});
        }
        default:
            return "(no address)";
    }
}

}  // namespace quiesce::tcp
