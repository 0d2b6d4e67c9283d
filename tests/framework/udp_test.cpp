// UDP: stackless batches and fiber sockets, round trips from a real client
// socket, truncation and counters.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include <quiesce/framework/runtime.hpp>
#include <quiesce/scheduler/fiber.hpp>

#include "net.hpp"
#include "wait.hpp"

using quiesce::test::RunningRuntime;
using quiesce::test::wait_until;
namespace udp = quiesce::udp;

namespace {

/// A blocking UDP client with a receive timeout.
class Peer {
public:
    explicit Peer(const quiesce::tcp::Address& server) : server_(server) {
        fd_ = ::socket(server.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        timeval tv{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~Peer() { ::close(fd_); }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;
    void send(const std::string& data) {
        REQUIRE(::sendto(fd_, data.data(), data.size(), 0, server_.sockaddr_ptr(),
                         server_.length()) == static_cast<ssize_t>(data.size()));
    }
    std::string receive() {
        char buffer[65536];
        ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
        return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
    }

private:
    quiesce::tcp::Address server_;
    int fd_ = -1;
};

}  // namespace

TEST_CASE("a stackless UDP echo answers every datagram, in batches", "[framework][udp]") {
    RunningRuntime server({});
    udp::Socket& socket = server.runtime.bind_udp(
        "127.0.0.1:0",
        [](udp::Socket& s, const udp::Datagram& d) { s.send_to(d.peer, "echo " + d.data); });
    server.start();
    CHECK(socket.address().port() != 0);
    Peer peer(socket.address());
    for (int i = 0; i < 50; ++i) {
        peer.send("ping " + std::to_string(i));
        REQUIRE(peer.receive() == "echo ping " + std::to_string(i));
    }
    // A burst: every datagram is answered (loopback drops nothing this small).
    for (int i = 0; i < 200; ++i) peer.send("burst " + std::to_string(i));
    int answered = 0;
    for (int i = 0; i < 200; ++i)
        if (peer.receive().rfind("echo burst ", 0) == 0) ++answered;
    CHECK(answered == 200);
    // The counters are added after each system call: the last replies may
    // have arrived before their sendmmsg() was counted.
    REQUIRE(wait_until([&] { return socket.stats().sent == 250; }));
    udp::Stats stats = socket.stats();
    CHECK(stats.received == 250);
    CHECK(stats.receive_calls <= stats.received);
    CHECK(stats.truncated == 0);
}

TEST_CASE("a datagram over max_datagram is dropped and counted", "[framework][udp]") {
    RunningRuntime server({});
    udp::Socket& socket = server.runtime.bind_udp(
        "127.0.0.1:0", [](udp::Socket& s, const udp::Datagram& d) { s.send_to(d.peer, d.data); },
        {.max_datagram = 1000});
    server.start();
    Peer peer(socket.address());
    peer.send(std::string(3000, 'x'));
    peer.send("small");
    CHECK(peer.receive() == "small");
    CHECK(wait_until([&] { return socket.stats().truncated == 1; }));
}

TEST_CASE("a fiber serves UDP in straight lines", "[framework][udp]") {
    RunningRuntime server({});
    server.start();
    std::atomic<int> port{0};
    std::atomic<bool> done{false};
    server.runtime.scheduler().spawn([&] {
        udp::FiberSocket socket(server.runtime, "127.0.0.1:0");
        port = socket.address().port();
        while (auto datagram = socket.recv_from(std::chrono::seconds(5))) {
            if (datagram->data == "stop") break;
            socket.send_to(datagram->peer, "fiber " + datagram->data);
        }
        done = true;
    });
    REQUIRE(wait_until([&] { return port.load() != 0; }));
    Peer peer(quiesce::tcp::Address::parse("127.0.0.1:" + std::to_string(port.load())));
    for (int i = 0; i < 20; ++i) {
        peer.send(std::to_string(i));
        REQUIRE(peer.receive() == "fiber " + std::to_string(i));
    }
    peer.send("stop");
    CHECK(wait_until([&] { return done.load(); }));
}
