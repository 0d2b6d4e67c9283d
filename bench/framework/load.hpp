// The load generator and server processes shared by the framework's
// benchmarks (echo_bench, idle_bench).
#pragma once

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
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace quiesce::bench {

/// Raises the soft descriptor limit to the hard one (many connections).
inline void raise_fd_limit() {
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
}

/// The directory the benchmark binary is in (argv[0]'s).
inline std::string binary_dir(const char* argv0) {
    std::string dir = argv0;
    return dir.substr(0, dir.rfind('/'));
}

/// 127.0.0.1:port.
inline sockaddr_in loopback(int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

inline std::uint64_t now_ns() {
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
    [[nodiscard]] pid_t pid() const { return pid_; }
    /// Resident memory of the server process (VmRSS), KiB.
    [[nodiscard]] long rss_kib() const {
        FILE* status = std::fopen(("/proc/" + std::to_string(pid_) + "/status").c_str(), "r");
        if (status == nullptr) return -1;
        char line[256];
        long kib = -1;
        while (std::fgets(line, sizeof line, status) != nullptr)
            if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::atol(line + 6);
        std::fclose(status);
        return kib;
    }

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

/// Requests per second and latency quantiles of a run (`latencies` in ns;
/// reordered).
inline Result finish_run(std::vector<std::uint32_t>& latencies, std::uint64_t done,
                         std::uint64_t elapsed_ns) {
    Result result;
    result.per_second = static_cast<double>(done) / (static_cast<double>(elapsed_ns) / 1e9);
    if (latencies.empty()) return result;
    auto at = [&](double q) {
        auto index = static_cast<std::size_t>(q * static_cast<double>(latencies.size() - 1));
        std::nth_element(latencies.begin(), latencies.begin() + static_cast<long>(index),
                         latencies.end());
        return latencies[index] / 1000.0;
    };
    result.p50_us = at(0.50);
    result.p99_us = at(0.99);
    return result;
}

/// `connections` clients with one `size`-byte message each in flight, for
/// `seconds`, in this thread.
inline Result ping_pong(int port, int connections, std::size_t size, double seconds) {
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
    Result result = finish_run(latencies, done, now - start);
    for (auto& peer : peers) close(peer.fd);
    close(epoll);
    return result;
}

}  // namespace quiesce::bench
