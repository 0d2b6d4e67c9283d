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
#include "load.hpp"

namespace {

using namespace quiesce::bench;

}  // namespace

int main(int argc, char** argv) {
    double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
    int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    int threads = argc > 3 ? std::atoi(argv[3]) : 1;
    int only = argc > 4 ? std::atoi(argv[4]) : -1;
    raise_fd_limit();
    const std::string dir = binary_dir(argv[0]);
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
