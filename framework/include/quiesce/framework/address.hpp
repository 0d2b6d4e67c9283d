// Address: where a listener listens or a peer is, as given on a command line.
//
//     tcp::Address::parse("127.0.0.1:11211");   // IPv4
//     tcp::Address::parse("[::1]:0");           // IPv6; port 0 picks a free port
//     tcp::Address::parse("localhost:8080");    // a name (resolved once, first result)
//     tcp::Address::parse(":8080");             // every IPv4 interface
//     tcp::Address::parse("unix:/run/echo.sock");  // a Unix-domain socket
//
// Threading: a value type.
#pragma once

#include <quiesce/base/config.hpp>

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace quiesce::tcp {

class Address {
public:
    Address() noexcept;
    /// Parses HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH. Throws
    /// std::invalid_argument with a message naming the text and what is wrong.
    static Address parse(std::string_view text);
    /// From a socket address the kernel gave (accept, getsockname).
    static Address from_sockaddr(const sockaddr* address, socklen_t length);

    [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
    [[nodiscard]] bool is_unix() const noexcept { return family() == AF_UNIX; }
    /// The port (0 for Unix-domain addresses).
    [[nodiscard]] std::uint16_t port() const noexcept;
    /// "127.0.0.1:8080", "[::1]:8080" or "unix:/path".
    [[nodiscard]] std::string to_string() const;

    [[nodiscard]] const sockaddr* sockaddr_ptr() const noexcept {
        return reinterpret_cast<const sockaddr*>(&storage_);
    }
    [[nodiscard]] socklen_t length() const noexcept { return length_; }

private:
    sockaddr_storage storage_;
    socklen_t length_ = 0;
};

}  // namespace quiesce::tcp
