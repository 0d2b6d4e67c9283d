// Rebalancing: every connection starts on loop 0 of a two-loop Runtime
// (ListenerOptions::loop) and the scheduler has to move them; its throughput
// against the same server with one loop, in one run.
//
//     balance_bench [SECONDS per run = 3] [ROUNDS = 3] [WORK us = 200] [CONNECTIONS = 64]
//
// Each connection keeps one 64-byte message in flight; the server spends
// WORK µs of CPU on each before it echoes it back, so the load generator (one
// thread, epoll, in this process) needs a few per cent of a CPU. Three
// servers per round, in this order: one loop (the generator on the other
// CPU); two loops with every connection placed on loop 0; two loops with
// connections spread as they arrive (the default, for reference). Medians
// over rounds. Target (issue 16): two loops that rebalance >= 1.8x one loop.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/framework/runtime.hpp>

#include "../harness.hpp"
#include "load.hpp"

namespace {

using namespace quiesce::bench;

constexpr std::size_t kMessage = 64;

/// Echoes each 64-byte message after `work_ns` of CPU.
struct Worker final : quiesce::tcp::Handler {
    explicit Worker(std::uint64_t work_ns) : work_ns_(work_ns) {}
    void on_data(quiesce::tcp::Connection& conn, quiesce::Buffer& in) override {
        while (in.size() >= kMessage) {
            std::string message = in.take(kMessage);
            const std::uint64_t start = thread_cpu_ns();
            volatile std::uint64_t sink = 0;
            while (thread_cpu_ns() - start < work_ns_) {
                for (int i = 0; i < 100; ++i) sink = sink + 1;
            }
            conn.write(message);
        }
    }
    std::uint64_t work_ns_;
};

struct Outcome {
    Result load;
    std::uint64_t moved = 0;  // groups that moved to loop 1 (LoopStats::stolen)
};

/// One server with `threads` loops (connections on `loop`, -1 = spread),
/// driven for `seconds`.
Outcome serve(unsigned threads, int loop, std::uint64_t work_ns, int connections, double seconds) {
    quiesce::Runtime runtime({.threads = threads, .log_level = "warn", .handle_signals = false});
    auto& listener =
        runtime.listen("127.0.0.1:0", [work_ns] { return std::make_unique<Worker>(work_ns); },
                       {.loop = loop, .announce = false});
    std::thread server([&] { runtime.run(); });
    Outcome out;
    out.load = ping_pong(listener.address().port(), connections, kMessage, seconds);
    const quiesce::RuntimeStats stats = runtime.stats();
    if (stats.scheduler.loops.size() > 1) out.moved = stats.scheduler.loops[1].stolen;
    runtime.stop();
    server.join();
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    const int work_us = argc > 3 ? std::atoi(argv[3]) : 200;
    const int connections = argc > 4 ? std::atoi(argv[4]) : 64;
    const std::uint64_t work_ns = static_cast<std::uint64_t>(work_us) * 1000;
    const int cpus = static_cast<int>(std::thread::hardware_concurrency());
    std::printf("quiesce rebalancing benchmark on %s\n", machine().c_str());
    std::printf(
        "%.1f s per run, medians of %d rounds; %d connections, one 64-byte message each in "
        "flight, %d us of server CPU per message\n",
        seconds, rounds, connections, work_us);
    std::printf(
        "one loop: the load generator pinned to CPU %d; two loops: it shares the CPUs with "
        "them\n\n",
        cpus - 1);
    std::vector<double> one, moved_rate, spread_rate, moved_groups;
    for (int round = 0; round < rounds; ++round) {
        Outcome a;
        {
            std::thread load([&] {
                pin_this_thread(cpus - 1);
                a = serve(1, -1, work_ns, connections, seconds);
            });
            load.join();
        }
        Outcome b = serve(2, 0, work_ns, connections, seconds);
        Outcome c = serve(2, -1, work_ns, connections, seconds);
        one.push_back(a.load.per_second);
        moved_rate.push_back(b.load.per_second);
        spread_rate.push_back(c.load.per_second);
        moved_groups.push_back(static_cast<double>(b.moved));
        std::printf(
            "round %d: one loop %.0f/s; two loops, all placed on loop 0: %.0f/s (%.2fx, %llu "
            "moves to loop 1); two loops, spread: %.0f/s (%.2fx)\n",
            round + 1, a.load.per_second, b.load.per_second, b.load.per_second / a.load.per_second,
            static_cast<unsigned long long>(b.moved), c.load.per_second,
            c.load.per_second / a.load.per_second);
        std::fflush(stdout);
    }
    const double base = median(one);
    std::printf(
        "\nmessages/s: one loop %.0f; two loops rebalanced from one %.0f (%.2fx); two loops "
        "spread %.0f (%.2fx)\n",
        base, median(moved_rate), median(moved_rate) / base, median(spread_rate),
        median(spread_rate) / base);
    std::printf("   target (issue 16): two loops rebalanced >= 1.8x one loop\n");
    return 0;
}
