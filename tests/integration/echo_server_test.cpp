// examples/echo_server as its users run it: a child process, real sockets,
// signals. Exactness with 1,000 concurrent clients, SIGTERM during load,
// a forced stop, EMFILE, and the command line's exit codes.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../framework/net.hpp"
#include "server_process.hpp"

using quiesce::test::example_path;
using quiesce::test::ServerProcess;

namespace {

int connect_nonblocking(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    REQUIRE((rc == 0 || errno == EINPROGRESS));
    return fd;
}

char byte_at(std::size_t client, std::size_t offset) {
    return static_cast<char>((offset * 31 + client * 17 + offset / 251) & 0xff);
}

/// Many clients in one thread: each streams its own byte pattern and checks
/// that what comes back is exactly what it sent, in order.
struct Swarm {
    struct Peer {
        int fd = -1;
        std::size_t sent = 0;
        std::size_t received = 0;
        bool eof = false;
        bool corrupt = false;
    };
    std::vector<Peer> peers;
    std::size_t window;

    Swarm(int port, std::size_t count, std::size_t window_bytes) : window(window_bytes) {
        quiesce::test::raise_descriptor_limit();
        peers.resize(count);
        for (auto& peer : peers) peer.fd = connect_nonblocking(port);
    }
    ~Swarm() {
        for (auto& peer : peers)
            if (peer.fd >= 0) ::close(peer.fd);
    }

    /// Sends up to `target` bytes per client (keeping at most `window` in
    /// flight), reads what comes back, until every client got `target` back
    /// or saw EOF, or `limit` passes. `keep_sending`: stop only at EOF.
    void run(std::size_t target, std::chrono::milliseconds limit, bool keep_sending = false) {
        std::vector<pollfd> fds(peers.size());
        char buffer[16384];
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            bool done = true;
            for (std::size_t i = 0; i < peers.size(); ++i) {
                Peer& peer = peers[i];
                fds[i] = {peer.fd, 0, 0};
                if (peer.eof) continue;
                if (!keep_sending && peer.received >= target) continue;
                done = false;
                fds[i].events = POLLIN;
                if ((keep_sending || peer.sent < target) && peer.sent - peer.received < window)
                    fds[i].events |= POLLOUT;
            }
            if (done) return;
            if (::poll(fds.data(), fds.size(), 100) < 0) continue;
            for (std::size_t i = 0; i < peers.size(); ++i) {
                Peer& peer = peers[i];
                if ((fds[i].revents & POLLOUT) != 0) {
                    std::size_t n = std::min(sizeof buffer, window - (peer.sent - peer.received));
                    if (!keep_sending) n = std::min(n, target - peer.sent);
                    for (std::size_t k = 0; k < n; ++k) buffer[k] = byte_at(i, peer.sent + k);
                    ssize_t w = ::send(peer.fd, buffer, n, MSG_NOSIGNAL);
                    if (w > 0) peer.sent += static_cast<std::size_t>(w);
                }
                if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                    ssize_t r = ::recv(peer.fd, buffer, sizeof buffer, 0);
                    if (r > 0) {
                        for (ssize_t k = 0; k < r; ++k)
                            if (buffer[k] !=
                                byte_at(i, peer.received + static_cast<std::size_t>(k)))
                                peer.corrupt = true;
                        peer.received += static_cast<std::size_t>(r);
                    } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                        peer.eof = true;
                        ::close(peer.fd);  // the server lingers until our FIN
                        peer.fd = -1;
                    }
                }
            }
        }
    }
};

}  // namespace

TEST_CASE("1,000 concurrent echo clients each get exactly their bytes back",
          "[integration][echo]") {
    ServerProcess server(example_path("echo_server"),
                         {"--listen", "127.0.0.1:0", "--threads", "2"});
    int port = server.port();
    Swarm swarm(port, 1000, 4096);
    swarm.run(32 * 1024, std::chrono::seconds(60));
    std::size_t exact = 0;
    std::size_t corrupt = 0;
    for (const auto& peer : swarm.peers) {
        if (!peer.corrupt && peer.received == 32 * 1024) ++exact;
        if (peer.corrupt) ++corrupt;
    }
    CHECK(corrupt == 0);
    CHECK(exact == 1000);
    server.signal(SIGTERM);
    CHECK(server.wait_exit() == 0);
}

TEST_CASE("SIGTERM during load: exit 0, every accepted byte echoed", "[integration][echo]") {
    ServerProcess server(example_path("echo_server"),
                         {"--listen", "127.0.0.1:0", "--threads", "2"});
    int port = server.port();
    Swarm swarm(port, 50, 64 * 1024);
    swarm.run(256 * 1024, std::chrono::seconds(30));  // warm: all connected and echoing
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        server.signal(SIGTERM);
    });
    swarm.run(0, std::chrono::seconds(30), /*keep_sending=*/true);  // until every client sees EOF
    stopper.join();
    CHECK(server.wait_exit() == 0);
    std::size_t closed = 0;
    for (const auto& peer : swarm.peers) {
        CHECK_FALSE(peer.corrupt);
        CHECK(peer.received <= peer.sent);
        if (peer.eof) ++closed;
    }
    CHECK(closed == swarm.peers.size());
    CHECK_THAT(server.log(), Catch::Contains("SIGTERM: stopping gracefully"));
}

TEST_CASE("a second SIGTERM forces the stop: exit 1, said in the log", "[integration][echo]") {
    ServerProcess server(example_path("echo_server"),
                         {"--listen", "127.0.0.1:0", "--threads", "1", "--grace-ms", "60000"});
    int port = server.port();
    // A client that sends and never reads: the echoes fill the socket
    // buffers, the server's output waits, and the orderly close (which
    // sends what is queued first) cannot finish before close_timeout (5 s).
    quiesce::test::Client client(quiesce::tcp::Address::parse("127.0.0.1:" + std::to_string(port)));
    const std::string chunk(64 * 1024, 'k');
    int stuck = 0;
    for (int i = 0; i < 4096 && stuck < 20; ++i) {
        ssize_t n = ::send(client.fd(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0) {
            ++stuck;  // the buffers are full: let the server catch up a little, then try again
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    REQUIRE(stuck == 20);
    server.signal(SIGTERM);
    REQUIRE(server.wait_for_log("stopping gracefully"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.signal(SIGTERM);
    CHECK(server.wait_exit(std::chrono::seconds(10)) == 1);
    CHECK_THAT(server.log(), Catch::Contains("forcing"));
}

TEST_CASE("EMFILE pauses accepting; the server serves again once descriptors free up",
          "[integration][echo]") {
    // 64 descriptors in all for the server: its own take about a dozen.
    ServerProcess server(example_path("echo_server"), {"--listen", "127.0.0.1:0", "--threads", "1"},
                         64);
    int port = server.port();
    quiesce::tcp::Address address =
        quiesce::tcp::Address::parse("127.0.0.1:" + std::to_string(port));
    std::vector<std::unique_ptr<quiesce::test::Client>> clients;
    for (int i = 0; i < 80; ++i)
        clients.push_back(std::make_unique<quiesce::test::Client>(address));
    REQUIRE(server.wait_for_log("pausing accepts"));
    clients.front()->send("served");
    CHECK(clients.front()->receive(6) == "served");  // the accepted ones keep being served
    // Free descriptors: the clients waiting in the backlog get accepted.
    clients.erase(clients.begin(), clients.begin() + 40);
    auto& late = clients.back();
    late.get()->send("late");
    CHECK(late->receive(4) == "late");
    server.signal(SIGTERM);
    clients.clear();
    CHECK(server.wait_exit() == 0);
}

TEST_CASE("the command line: --help and --version exit 0, bad values exit 2",
          "[integration][echo]") {
    {
        ServerProcess server(example_path("echo_server"), {"--help"});
        CHECK(server.wait_exit() == 0);
    }
    {
        ServerProcess server(example_path("echo_server"), {"--version"});
        CHECK(server.wait_exit() == 0);
    }
    {
        ServerProcess server(example_path("echo_server"), {"--threads", "lots"});
        CHECK(server.wait_exit() == 2);
        CHECK_THAT(server.log(), Catch::Contains("--threads"));
    }
    {
        ServerProcess server(example_path("echo_server"), {"--listen", "127.0.0.1:99999"});
        CHECK(server.wait_exit() == 2);
        CHECK_THAT(server.log(), Catch::Contains("65535"));
    }
    {
        ServerProcess taken(example_path("echo_server"), {"--listen", "127.0.0.1:0"});
        int port = taken.port();
        ServerProcess server(example_path("echo_server"),
                             {"--listen", "127.0.0.1:" + std::to_string(port)});
        CHECK(server.wait_exit() != 0);
        CHECK_THAT(server.log(),
                   Catch::Contains("cannot listen on 127.0.0.1:" + std::to_string(port)));
    }
}
