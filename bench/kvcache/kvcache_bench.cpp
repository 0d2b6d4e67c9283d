// kvcache against Debian's memcached 1.6, both as processes with the same
// number of threads, driven by the same load generator in one run.
//
//     kvcache_bench [SECONDS per run = 3] [ROUNDS = 3] [SERVER THREADS = 1] [ITEMS for RSS =
//     1000000]
//
// Servers on CPUs 0..T-1, the load generator (one thread, epoll) on the
// last CPU. Each connection keeps one request in flight: 90% get, 10% set,
// keys drawn uniformly from 10,000 32-byte keys loaded before the run.
// Shapes: 50 and 500 connections, 100-byte and 4 KiB values. Medians over
// rounds, the servers alternating within each round. Ratios above 1: ours is
// better (requests/s ours/memcached; latency memcached/ours).
// Then RSS with ITEMS 100-byte items (32-byte keys) in each (-m 1024, so
// memcached holds them all without evicting).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../framework/load.hpp"
#include "../harness.hpp"

namespace {

using namespace quiesce::bench;

constexpr int kKeys = 10'000;

std::string key_name(long i) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "key:%028ld", i);  // 32 bytes
    return buf;
}

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(0);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

int connect_to(int port) {
    sockaddr_in a = loopback(port);
    for (int attempt = 0; attempt < 200; ++attempt) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        close(fd);
        usleep(20'000);
    }
    throw std::runtime_error("cannot connect to port " + std::to_string(port));
}

void send_all(int fd, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n > 0)
            off += static_cast<std::size_t>(n);
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }
}

/// Reads until the data received ends with `suffix` (blocking socket).
void read_until(int fd, std::string_view suffix) {
    std::string got;
    char buf[64 * 1024];
    while (got.size() < suffix.size() ||
           std::string_view(got).substr(got.size() - suffix.size()) != suffix) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) throw std::runtime_error("the server closed a connection");
        got.append(buf, static_cast<std::size_t>(n));
        if (got.size() > 4 * suffix.size() + 8192) got.erase(0, got.size() - suffix.size());
    }
}

/// Loads keys [first, last) with `size`-byte values over one connection,
/// pipelined (noreply sets, a get to wait for them).
void load(int port, long first, long last, std::size_t size) {
    int fd = connect_to(port);
    const std::string value(size, 'v');
    std::string batch;
    for (long i = first; i < last; ++i) {
        batch +=
            "set " + key_name(i) + " 0 0 " + std::to_string(size) + " noreply\r\n" + value + "\r\n";
        if (batch.size() > 256 * 1024 || i + 1 == last) {
            send_all(fd, batch);
            batch.clear();
        }
    }
    send_all(fd, "get " + key_name(first) + "\r\n");
    read_until(fd, "END\r\n");
    close(fd);
}

/// One shape: `connections` clients, one request each in flight.
int g_set_percent = 10;

Result run_mix(int port, int connections, std::size_t size, double seconds) {
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    struct Peer {
        int fd;
        std::string got;
        bool is_get = false;
        std::uint64_t sent_at = 0;
    };
    std::vector<Peer> peers(static_cast<std::size_t>(connections));
    for (std::size_t i = 0; i < peers.size(); ++i) {
        peers[i].fd = connect_to(port);
        fcntl(peers[i].fd, F_SETFL, O_NONBLOCK);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        epoll_ctl(epoll, EPOLL_CTL_ADD, peers[i].fd, &ev);
    }
    std::mt19937 rng(42);
    const std::string value(size, 'w');
    auto issue = [&](Peer& peer) {
        const std::string key = key_name(static_cast<long>(rng() % kKeys));
        peer.is_get = static_cast<int>(rng() % 100) >= g_set_percent;
        const std::string request =
            peer.is_get ? "get " + key + "\r\n"
                        : "set " + key + " 0 0 " + std::to_string(size) + "\r\n" + value + "\r\n";
        peer.got.clear();
        peer.sent_at = now_ns();
        send_all(peer.fd, request);
    };
    for (auto& peer : peers) issue(peer);
    std::vector<std::uint32_t> latencies;
    latencies.reserve(8'000'000);
    std::uint64_t done = 0;
    const std::uint64_t start = now_ns();
    const std::uint64_t end = start + static_cast<std::uint64_t>(seconds * 1e9);
    std::vector<epoll_event> events(512);
    char buf[64 * 1024];
    std::uint64_t now = start;
    while (now < end) {
        int n = epoll_wait(epoll, events.data(), static_cast<int>(events.size()), 100);
        for (int e = 0; e < n; ++e) {
            Peer& peer = peers[events[static_cast<std::size_t>(e)].data.u64];
            ssize_t got = recv(peer.fd, buf, sizeof buf, 0);
            if (got == 0) throw std::runtime_error("the server closed a connection");
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
            }
            peer.got.append(buf, static_cast<std::size_t>(got));
            const std::string_view suffix = peer.is_get ? "END\r\n" : "STORED\r\n";
            if (peer.got.size() >= suffix.size() && peer.got.ends_with(suffix)) {
                const std::uint64_t t = now_ns();
                latencies.push_back(static_cast<std::uint32_t>(
                    std::min<std::uint64_t>(t - peer.sent_at, UINT32_MAX)));
                ++done;
                issue(peer);
            }
        }
        now = now_ns();
    }
    Result result = finish_run(latencies, done, now - start);
    for (auto& peer : peers) close(peer.fd);
    close(epoll);
    return result;
}

/// memcached as a child process on CPUs 0..threads-1 (it prints no port).
struct Memcached {
    pid_t pid = -1;
    int port = 0;
    Memcached(int threads, const char* memory_mb) {
        port = free_port();
        pid = fork();
        if (pid == 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            for (int i = 0; i < threads; ++i) CPU_SET(i, &set);
            sched_setaffinity(0, sizeof set, &set);
            const std::string p = std::to_string(port), t = std::to_string(threads);
            execl("/usr/bin/memcached", "memcached", "-p", p.c_str(), "-U", "0", "-l", "127.0.0.1",
                  "-t", t.c_str(), "-m", memory_mb, "-c", "4096", "-u", "root", nullptr);
            _exit(127);
        }
        close(connect_to(port));
    }
    ~Memcached() {
        kill(pid, SIGTERM);
        waitpid(pid, nullptr, 0);
    }
    [[nodiscard]] long rss_kib() const {
        FILE* status = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
        char line[256];
        long kib = -1;
        while (status && std::fgets(line, sizeof line, status) != nullptr)
            if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::atol(line + 6);
        if (status) std::fclose(status);
        return kib;
    }
};

}  // namespace

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
    const long items = argc > 4 ? std::atol(argv[4]) : 1'000'000;
    g_set_percent = argc > 5 ? std::atoi(argv[5]) : 10;
    const int only = argc > 6 ? std::atoi(argv[6]) : -1;
    raise_fd_limit();
    const std::string dir = binary_dir(argv[0]);
    const std::string ours_binary = dir + "/../examples/kvcache/kvcache";
    const int cpus = static_cast<int>(std::thread::hardware_concurrency());
    std::printf("kvcache benchmark on %s\n", machine().c_str());
    std::printf(
        "%.1f s per run, medians of %d rounds; servers with %d thread(s) on CPUs 0..%d, "
        "the load generator on CPU %d\n",
        seconds, rounds, threads, threads - 1, cpus - 1);
    std::printf(
        "90%% get / 10%% set, 32-byte keys over %d keys, one request in flight per "
        "connection; ratio above 1: ours is better\n\n",
        kKeys);
    pin_this_thread(cpus - 1);
    const std::string t = std::to_string(threads);
    struct Shape {
        int connections;
        std::size_t size;
    };
    const Shape shapes[] = {{50, 100}, {500, 100}, {50, 4096}, {500, 4096}};
    std::printf("%-22s %12s %12s %7s %9s %9s %9s %9s %7s\n", "shape", "ours req/s", "mc req/s",
                "ratio", "ours p50", "mc p50", "ours p99", "mc p99", "p99 x");
    for (int index = 0; index < 4; ++index) {
        if (only >= 0 && index != only) continue;
        const Shape& shape = shapes[index];
        std::vector<std::string> args{"-p", "0", "-t", t, "-m", "1024", "-c", "4096"};
        // KVCACHE_BENCH_ARGS: more flags for kvcache (to compare its options).
        if (const char* extra = std::getenv("KVCACHE_BENCH_ARGS")) {
            std::istringstream words(extra);
            for (std::string w; words >> w;) args.push_back(w);
        }
        Server ours(ours_binary, args, threads);
        Memcached anchor(threads, "1024");
        load(ours.port(), 0, kKeys, shape.size);
        load(anchor.port, 0, kKeys, shape.size);
        std::vector<double> ot, at, o50, a50, o99, a99;
        for (int r = 0; r < rounds; ++r) {
            const bool ours_first = r % 2 == 0;
            for (int i = 0; i < 2; ++i) {
                const bool run_ours = (i == 0) == ours_first;
                const Result res = run_mix(run_ours ? ours.port() : anchor.port, shape.connections,
                                           shape.size, seconds);
                (run_ours ? ot : at).push_back(res.per_second);
                (run_ours ? o50 : a50).push_back(res.p50_us);
                (run_ours ? o99 : a99).push_back(res.p99_us);
            }
        }
        char name[64];
        std::snprintf(name, sizeof name, "%d conns x %zu B", shape.connections, shape.size);
        std::printf("%-22s %12.0f %12.0f %6.2fx %7.1fus %7.1fus %7.1fus %7.1fus %6.2fx\n", name,
                    median(ot), median(at), median(ot) / median(at), median(o50), median(a50),
                    median(o99), median(a99), median(a99) / median(o99));
        std::fflush(stdout);
    }
    if (items > 0) {
        Server ours(ours_binary, {"-p", "0", "-t", t, "-m", "1024"}, threads);
        Memcached anchor(threads, "1024");
        const long ours_before = ours.rss_kib(), anchor_before = anchor.rss_kib();
        for (long first = 0; first < items; first += 100'000) {
            load(ours.port(), first, std::min(items, first + 100'000), 100);
            load(anchor.port, first, std::min(items, first + 100'000), 100);
        }
        const long ours_after = ours.rss_kib(), anchor_after = anchor.rss_kib();
        std::printf("\nRSS with %ld items of 100 bytes (32-byte keys), -m 1024:\n", items);
        std::printf(
            "  ours %ld KiB (%ld at start), memcached %ld KiB (%ld at start); ratio "
            "ours/memcached %.2f; per item: ours %.0f B, memcached %.0f B\n",
            ours_after, ours_before, anchor_after, anchor_before,
            static_cast<double>(ours_after) / static_cast<double>(anchor_after),
            1024.0 * static_cast<double>(ours_after - ours_before) / static_cast<double>(items),
            1024.0 * static_cast<double>(anchor_after - anchor_before) /
                static_cast<double>(items));
    }
    return 0;
}
