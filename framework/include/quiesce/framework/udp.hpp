// UDP: a datagram socket bound to a group, for game and telemetry servers.
//
//     runtime.bind_udp("127.0.0.1:9000", [](udp::Socket& socket, const udp::Datagram& d) {
//         socket.send_to(d.peer, d.data);          // an echo; sent with the batch
//     });
//
// A readiness reads up to `batch` datagrams with one recvmmsg() and calls the
// handler for each, as events of the socket's group; the replies the handler
// queues go out with one sendmmsg() when the batch is done. A datagram larger
// than `max_datagram` is dropped (counted in `truncated`); a send the kernel
// refuses (a full buffer, an unreachable peer) is dropped and counted: UDP
// promises no delivery, and a server must not queue without bound for it.
//
// In a fiber, straight-line:
//
//     udp::FiberSocket socket(runtime, "127.0.0.1:9001");
//     while (auto d = socket.recv_from(5s)) socket.send_to(d->peer, d->data);
//
// Threading: Socket members from its group (the handler) only, except
// close() and stats(); FiberSocket from its fiber only.
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <quiesce/framework/address.hpp>
#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/scheduler/group.hpp>

namespace quiesce {
class Runtime;
}

namespace quiesce::udp {

struct Datagram {
    std::string data;
    tcp::Address peer;
};

struct Options {
    /// Datagrams read per recvmmsg() (and sent per sendmmsg()).
    unsigned batch = 32;
    /// Bytes kept per datagram; larger ones are dropped (and counted).
    std::size_t max_datagram = 2048;
    bool reuse_port = false;
    /// Logs and the group's name.
    std::string name = "udp";
};

struct Stats {
    std::uint64_t received = 0;
    std::uint64_t sent = 0;
    std::uint64_t truncated = 0;      ///< dropped: larger than max_datagram
    std::uint64_t send_dropped = 0;   ///< the kernel refused them
    std::uint64_t receive_calls = 0;  ///< recvmmsg() calls that returned datagrams
};

class Socket;
using Handler = std::function<void(Socket&, const Datagram&)>;

/// A bound datagram socket and the group its handler runs on. Made by
/// Runtime::bind_udp(); the runtime owns it.
class Socket {
public:
    /// Queues a datagram; sent with the current batch (at once outside a
    /// handler call).
    void send_to(const tcp::Address& peer, std::string_view data);
    [[nodiscard]] const tcp::Address& address() const noexcept { return address_; }
    /// The socket's descriptor, for listings. Thread: any, until close().
    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] Stats stats() const noexcept;
    /// Stops receiving and closes the socket. Thread: any.
    void close();

    /// Internal.
    Socket(Runtime& runtime, const tcp::Address& address, Handler handler, Options options);
    ~Socket();
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    void start(pollers::FdPoller& fds);

private:
    void receive_batch();
    void flush() noexcept;
    void close_on_group() noexcept;

    Runtime& runtime_;
    tcp::Address address_;
    Handler handler_;
    const Options options_;
    int fd_ = -1;
    sched::Group group_;
    pollers::FdWatch watch_;
    std::vector<char> buffers_;  // batch x max_datagram
    std::vector<std::pair<tcp::Address, std::string>> outgoing_;
    bool in_batch_ = false;
    bool read_posted_ = false;
    std::atomic<bool> closed_{false};
    std::atomic<std::uint64_t> received_{0}, sent_{0}, truncated_{0}, send_dropped_{0},
        receive_calls_{0};
};

/// A datagram socket for one fiber. Thread: its fiber.
class FiberSocket {
public:
    /// Binds `address` (port 0 picks one). Throws std::invalid_argument or
    /// std::system_error as Runtime::bind_udp(); std::logic_error off a fiber.
    FiberSocket(Runtime& runtime, std::string_view address, std::size_t max_datagram = 65536);
    ~FiberSocket();
    FiberSocket(const FiberSocket&) = delete;
    FiberSocket& operator=(const FiberSocket&) = delete;

    /// The next datagram (truncated ones are dropped), or nullopt when the
    /// timeout passes (negative: none) or the runtime stops. Yields: yes.
    std::optional<Datagram> recv_from(
        std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1));
    /// Sends one datagram; false if the kernel refused it. Never waits.
    bool send_to(const tcp::Address& peer, std::string_view data);
    [[nodiscard]] const tcp::Address& address() const noexcept { return address_; }

private:
    tcp::Address address_;
    int fd_ = -1;
    std::size_t max_datagram_;
    std::unique_ptr<pollers::FiberFd> io_;
};

}  // namespace quiesce::udp
