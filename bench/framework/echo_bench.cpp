// Echo ping-pong: examples/echo_server against the libevent echo server a
// libevent user writes (libevent_echo.cpp), both run as processes with the
// same number of threads, driven by the same load generator in one run.
//
//     echo_bench [SECONDS per run = 3] [ROUNDS = 3] [SERVER THREADS = 1] [SHAPE 0-3 = all]
//
// The servers' threads run on CPUs 0..T-1, the load generator on the last
// CPU. Each connection keeps one message in flight: it sends SIZE bytes,
// waits until SIZE bytes came back (the round trip's latency), sends again.
// Shapes: 64 and 1,000 connections, 64-byte and 4 KiB messages. Medians over
// rounds; the servers alternate within each round. Ratios above 1: ours is
// better (round trips/s ours/anchor; latency anchor/ours).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../harness.hpp"

namespace {

using quiesce::bench::machine;
using quiesce::bench::pin_this_thread;

std::uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

/// A server child process on CPUs 0..threads-1; reads its port from its
/// output ("listening on HOST:PORT").
class Server {
public:
    Server(const std::string& binary, std::vector<std::string> args, int threads) {
        int out[2];
        if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
        pid_ = fork();
        if (pid_ == 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            for (int i = 0; i < threads; ++i) CPU_SET(i, &set);
            sched_setaffinity(0, sizeof set, &set);
            dup2(out[1], 1);
            dup2(out[1], 2);
            std::vector<char*> argv{const_cast<char*>(binary.c_str())};
            for (auto& arg : args) argv.push_back(arg.data());
            argv.push_back(nullptr);
            execv(binary.c_str(), argv.data());
            _exit(127);
        }
        close(out[1]);
        std::string text;
        char chunk[512];
        while (port_ == 0) {
            pollfd p{out[0], POLLIN, 0};
            if (poll(&p, 1, 10'000) <= 0) break;
            ssize_t n = read(out[0], chunk, sizeof chunk);
            if (n <= 0) break;
            text.append(chunk, static_cast<std::size_t>(n));
            auto at = text.find("listening on ");
            auto end = at == std::string::npos ? std::string::npos : text.find('\n', at);
            if (end != std::string::npos) {
                std::string line = text.substr(at, end - at);
                port_ = std::atoi(line.c_str() + line.rfind(':') + 1);
            }
        }
        log_fd_ = out[0];
        if (port_ == 0) throw std::runtime_error(binary + " did not report its port: " + text);
    }
    ~Server() {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
        close(log_fd_);
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    [[nodiscard]] int port() const { return port_; }

private:
    pid_t pid_ = -1;
    int port_ = 0;
    int log_fd_ = -1;
};

struct Result {
    double per_second = 0;
    double p50_us = 0;
    double p99_us = 0;
};

/// `connections` clients with one `size`-byte message each in flight, for
/// `seconds`, in this thread.
Result ping_pong(int port, int connections, std::size_t size, double seconds) {
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    struct Peer {
        int fd;
        std::size_t received = 0;
        std::uint64_t sent_at = 0;
    };
    std::vector<Peer> peers(static_cast<std::size_t>(connections));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string message(size, 'x');
    for (std::size_t i = 0; i < peers.size(); ++i) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
            throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        peers[i].fd = fd;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev);
    }
    auto send_message = [&](Peer& peer) {
        std::size_t off = 0;
        while (off < size) {
            ssize_t n = send(peer.fd, message.data() + off, size - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += static_cast<std::size_t>(n);
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                throw std::runtime_error(std::string("send: ") + std::strerror(errno));
            }
        }
        peer.received = 0;
        peer.sent_at = now_ns();
    };
    for (auto& peer : peers) send_message(peer);
    std::vector<std::uint32_t> latencies;
    latencies.reserve(4'000'000);
    std::uint64_t done = 0;
    const std::uint64_t start = now_ns();
    const std::uint64_t end = start + static_cast<std::uint64_t>(seconds * 1e9);
    std::vector<epoll_event> events(512);
    std::vector<char> buffer(64 * 1024);
    std::uint64_t now = start;
    while (now < end) {
        int n = epoll_wait(epoll, events.data(), static_cast<int>(events.size()), 100);
        for (int e = 0; e < n; ++e) {
            Peer& peer = peers[events[static_cast<std::size_t>(e)].data.u64];
            ssize_t got = recv(peer.fd, buffer.data(), buffer.size(), 0);
            if (got == 0) throw std::runtime_error("the server closed a connection");
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
            }
            peer.received += static_cast<std::size_t>(got);
            if (peer.received >= size) {
                std::uint64_t t = now_ns();
                latencies.push_back(static_cast<std::uint32_t>(
                    std::min<std::uint64_t>(t - peer.sent_at, UINT32_MAX)));
                ++done;
                send_message(peer);
            }
        }
        now = now_ns();
    }
    Result result;
    result.per_second = static_cast<double>(done) / (static_cast<double>(now - start) / 1e9);
    if (!latencies.empty()) {
        auto at = [&](double q) {
            auto index = static_cast<std::size_t>(q * static_cast<double>(latencies.size() - 1));
            std::nth_element(latencies.begin(), latencies.begin() + static_cast<long>(index),
                             latencies.end());
            return latencies[index] / 1000.0;
        };
        result.p50_us = at(0.50);
        result.p99_us = at(0.99);
    }
    for (auto& peer : peers) close(peer.fd);
    close(epoll);
    return result;
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
    int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    int threads = argc > 3 ? std::atoi(argv[3]) : 1;
    int only = argc > 4 ? std::atoi(argv[4]) : -1;
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    std::string dir = argv[0];
    dir = dir.substr(0, dir.rfind('/'));
    const std::string ours_binary = dir + "/../examples/echo_server/echo_server";
    const std::string anchor_binary = dir + "/libevent_echo";
    const int cpus = static_cast<int>(std::thread::hardware_concurrency());
    std::printf("quiesce echo benchmark on %s\n", machine().c_str());
    std::printf(
        "%.1f s per run, medians of %d rounds; servers with %d thread(s) on CPUs 0..%d, the load "
        "generator "
        "(one thread, epoll) on CPU %d\n",
        seconds, rounds, threads, threads - 1, cpus - 1);
    std::printf(
        "ours: examples/echo_server (stackless connections, readiness in the loops); anchor: "
        "libevent "
        "bufferevent echo, one event_base per thread, SO_REUSEPORT\n");
    std::printf("ratio above 1: ours is better (throughput ours/anchor, latency anchor/ours)\n\n");
    pin_this_thread(cpus - 1);
    Server ours(
        ours_binary,
        {"--threads", std::to_string(threads), "--listen", "127.0.0.1:0", "--idle-timeout", "0"},
        threads);
    Server anchor(anchor_binary, {"--threads", std::to_string(threads)}, threads);

    struct Shape {
        int connections;
        std::size_t size;
    };
    const Shape shapes[] = {{64, 64}, {1000, 64}, {64, 4096}, {1000, 4096}};
    for (int index = 0; index < 4; ++index) {
        if (only >= 0 && index != only) continue;
        const Shape& shape = shapes[index];
        std::vector<double> ours_rate, ours_p50, ours_p99, anchor_rate, anchor_p50, anchor_p99;
        for (int round = 0; round < rounds; ++round) {
            Result a = ping_pong(ours.port(), shape.connections, shape.size, seconds);
            Result b = ping_pong(anchor.port(), shape.connections, shape.size, seconds);
            ours_rate.push_back(a.per_second);
            ours_p50.push_back(a.p50_us);
            ours_p99.push_back(a.p99_us);
            anchor_rate.push_back(b.per_second);
            anchor_p50.push_back(b.p50_us);
            anchor_p99.push_back(b.p99_us);
        }
        double r = median(ours_rate), ar = median(anchor_rate);
        double p50 = median(ours_p50), ap50 = median(anchor_p50);
        double p99 = median(ours_p99), ap99 = median(anchor_p99);
        std::printf(
            "%5d conns x %4zu B: round trips/s %9.0f vs %9.0f ratio %.2fx | p50 %7.1f vs %7.1f us "
            "%.2fx | "
            "p99 %7.1f vs %7.1f us %.2fx\n",
            shape.connections, shape.size, r, ar, r / ar, p50, ap50, ap50 / p50, p99, ap99,
            ap99 / p99);
        std::fflush(stdout);
    }
    std::printf(
        "   targets (issue 16): throughput >= 1.0x, p99 >= 1.0x (no worse than libevent)\n");
    return 0;
}
