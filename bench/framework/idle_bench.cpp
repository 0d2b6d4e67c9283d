// Many idle connections on few threads: memory per idle connection and what
// they cost the active ones. Servers: examples/echo_server (stackless
// connections) and examples/chat_server (a fiber per connection), each with
// 2 loops, as processes.
//
//     idle_bench [IDLE = 100000] [SECONDS per run = 3]
//
// For each server: resident memory (VmRSS) before and after IDLE connections
// are opened and left idle, divided by IDLE (kernel socket buffers are not
// in it: they are the kernel's, the same for any server); for echo_server,
// 1,000 active connections ping-pong 64 bytes for SECONDS with and without
// the idle ones held. Clients come from 127.0.0.2 and up, 20,000 per source
// address, to stay inside the ephemeral port range. Needs root (or a hard
// RLIMIT_NOFILE of 2 x IDLE + slack): the load generator raises it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "../harness.hpp"
#include "load.hpp"

namespace {

using namespace quiesce::bench;

/// Opens `count` connections to `port`, from 127.0.0.2, 127.0.0.3, ...;
/// returns their descriptors (blocking connects: the backlog takes them
/// while the server accepts).
std::vector<int> open_idle(int port, int count) {
    std::vector<int> fds;
    fds.reserve(static_cast<std::size_t>(count));
    sockaddr_in server{};
    server.sin_family = AF_INET;
    server.sin_port = htons(static_cast<std::uint16_t>(port));
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < count; ++i) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
        sockaddr_in local{};
        local.sin_family = AF_INET;
        local.sin_addr.s_addr = htonl(0x7f000002u + static_cast<std::uint32_t>(i / 20000));
        if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
            connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0)
            throw std::runtime_error(std::string("idle connection ") + std::to_string(i) + ": " +
                                     std::strerror(errno));
        fds.push_back(fd);
    }
    return fds;
}

/// Waits until the server's memory stops growing (it has accepted them all).
long settled_rss(const Server& server) {
    long last = server.rss_kib();
    for (int i = 0; i < 100; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        long now = server.rss_kib();
        if (now == last) return now;
        last = now;
    }
    return last;
}

}  // namespace

int main(int argc, char** argv) {
    int idle = argc > 1 ? std::atoi(argv[1]) : 100000;
    double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
    rlimit limit{};
    limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(2 * idle + 10000);
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        getrlimit(RLIMIT_NOFILE, &limit);
        int fits = static_cast<int>((limit.rlim_max - 10000) / 2);
        std::printf(
            "cannot raise RLIMIT_NOFILE to %d (raising the hard limit needs CAP_SYS_RESOURCE): %d "
            "idle connections instead\n",
            2 * idle + 10000, fits);
        idle = fits;
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    std::string dir = argv[0];
    dir = dir.substr(0, dir.rfind('/'));
    std::printf("quiesce idle-connection benchmark on %s\n", machine().c_str());
    std::printf(
        "%d idle connections per server, 2 loops; active: 1,000 connections x 64 B ping-pong for "
        "%.1f s\n\n",
        idle, seconds);
    {
        Server echo(dir + "/../examples/echo_server/echo_server",
                    {"--threads", "2", "--listen", "127.0.0.1:0", "--idle-timeout", "0",
                     "--log-level", "info"},
                    2);
        Result alone = ping_pong(echo.port(), 1000, 64, seconds);
        long before = settled_rss(echo);
        std::vector<int> fds = open_idle(echo.port(), idle);
        long after = settled_rss(echo);
        Result loaded = ping_pong(echo.port(), 1000, 64, seconds);
        std::printf(
            "echo_server (stackless): RSS %ld -> %ld KiB, %.2f KiB per idle connection (target <= "
            "2)\n",
            before, after, static_cast<double>(after - before) / idle);
        std::printf(
            "  active round trips/s: %.0f alone, %.0f with %d idle: %.2fx (target >= 0.90); p99 "
            "%.1f vs %.1f us\n",
            alone.per_second, loaded.per_second, idle, loaded.per_second / alone.per_second,
            alone.p99_us, loaded.p99_us);
        for (int fd : fds) close(fd);
    }
    {
        Server chat(dir + "/../examples/chat_server/chat_server",
                    {"--threads", "2", "--listen", "127.0.0.1:0", "--log-level", "info"}, 2);
        long before = settled_rss(chat);
        std::vector<int> fds = open_idle(chat.port(), idle);
        long after = settled_rss(chat);
        std::printf(
            "chat_server (a fiber each): RSS %ld -> %ld KiB, %.2f KiB per idle connection (target "
            "<= 8)\n",
            before, after, static_cast<double>(after - before) / idle);
        for (int fd : fds) close(fd);
    }
    return 0;
}
