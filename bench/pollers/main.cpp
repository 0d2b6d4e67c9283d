// bench/pollers: the pollers against what a user would pick instead, in one
// run: FD readiness to handler against a plain libevent event_base (1 and
// 1,000 active sockets; back to back and from idle), 4 KiB random file reads
// against pread() threads, offload round trips against a mutex+condvar pool.
// Ratios above 1: ours is better.
//
// Usage: pollers_bench [seconds-per-run [rounds [sections]]]
//            sections: any of f (fd), a (aio), o (offload); default all
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "pollers_bench.hpp"

using namespace quiesce::bench;

namespace {

int rounds = 3;

template <typename F>
std::vector<double> medians(int count, F&& one) {
    std::vector<std::vector<double>> all(static_cast<std::size_t>(count));
    for (int r = 0; r < rounds; ++r) {
        std::vector<double> got = one();
        for (int i = 0; i < count; ++i)
            all[static_cast<std::size_t>(i)].push_back(got[static_cast<std::size_t>(i)]);
    }
    std::vector<double> out;
    for (auto& v : all) out.push_back(quantile(v, 0.5));
    return out;
}

void fd_rows(std::chrono::milliseconds run) {
    std::printf(
        "\n-- FD readiness to handler, a group per socket on one loop (in loops: the loop "
        "sleeps in its own\n   event_base; poller thread: FdPoller's thread posts to the "
        "loop), vs a libevent event_base on\n   its own thread. The loop / libevent thread "
        "on CPU 0, the writer on CPU 1; edge-triggered; handler reads the byte\n");
    struct Shape {
        int sockets;
        int gap_us;
        const char* name;
    };
    for (Shape shape :
         {Shape{1, 0, "1 socket, back to back"}, Shape{1000, 0, "1000 sockets, back to back"},
          Shape{1, 200, "1 socket, from idle (200 us gaps)"}}) {
        auto m = medians(9, [&] {
            FdResult t = ours_fd(shape.sockets, run, shape.gap_us, false);
            FdResult o = ours_fd(shape.sockets, run, shape.gap_us, true);
            FdResult l = libevent_fd(shape.sockets, run, shape.gap_us);
            return std::vector<double>{o.events_per_sec, o.latency.p50_us, o.latency.p99_us,
                                       t.events_per_sec, t.latency.p50_us, t.latency.p99_us,
                                       l.events_per_sec, l.latency.p50_us, l.latency.p99_us};
        });
        std::printf("%s\n", shape.name);
        row("  in loops: events/s", "k/s", m[0] / 1e3, "libevent", m[6] / 1e3, true);
        row("  in loops: write to handler, p50", "us", m[1], "libevent", m[7], false);
        row("  in loops: write to handler, p99", "us", m[2], "libevent", m[8], false);
        row("  poller thread: events/s", "k/s", m[3] / 1e3, "libevent", m[6] / 1e3, true);
        row("  poller thread: write to handler, p50", "us", m[4], "libevent", m[7], false);
        row("  poller thread: write to handler, p99", "us", m[5], "libevent", m[8], false);
    }
}

void aio_rows(std::chrono::milliseconds run) {
    std::printf(
        "\n-- 4 KiB random reads of a cached 64 MiB file, reads/s (2 threads each; ours: 32 "
        "fibers on 2 loops)\n");
    auto m = medians(6, [&] {
        return std::vector<double>{ours_aio_reads(AioShape::kLoops, true, 2, run),
                                   ours_aio_reads(AioShape::kPool, true, 2, run),
                                   ours_aio_reads(AioShape::kLoops, false, 2, run),
                                   ours_aio_reads(AioShape::kRingThread, false, 2, run),
                                   ours_aio_reads(AioShape::kPool, false, 2, run),
                                   pread_reads(2, run)};
    });
    const char* anchor = "pread, 2 threads";
    row("AioPoller, a ring per loop", "k/s", m[0] / 1e3, anchor, m[5] / 1e3, true);
    row("AioPoller, pread pool fallback (2 threads)", "k/s", m[1] / 1e3, anchor, m[5] / 1e3, true);
    std::printf("  every read through the backend (cached_reads = false):\n");
    row("  a ring per loop", "k/s", m[2] / 1e3, anchor, m[5] / 1e3, true);
    row("  one ring + reaper thread", "k/s", m[3] / 1e3, anchor, m[5] / 1e3, true);
    row("  pread pool (2 threads)", "k/s", m[4] / 1e3, anchor, m[5] / 1e3, true);
}

void offload_rows(std::chrono::milliseconds run) {
    std::printf("\n-- offload round trips/s, a no-op through a pool of 2 threads, 8 callers\n");
    auto m = medians(2, [&] {
        return std::vector<double>{ours_offload_round_trips(2, 8, run),
                                   cv_pool_round_trips(2, 8, run)};
    });
    row("OffloadPool::call from 8 fibers", "k/s", m[0] / 1e3, "mutex+cv pool, 8 threads",
        m[1] / 1e3, true);
}

}  // namespace

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
    if (argc > 2) rounds = std::atoi(argv[2]);
    const std::string sections = argc > 3 ? argv[3] : "fao";
    const auto run = std::chrono::milliseconds(static_cast<long>(seconds * 1000));
    std::printf(
        "quiesce pollers benchmark on %s\n%.1f s per run, medians of %d alternating rounds\n",
        machine().c_str(), seconds, rounds);
    if (sections.find('f') != std::string::npos) fd_rows(run);
    if (sections.find('a') != std::string::npos) aio_rows(run);
    if (sections.find('o') != std::string::npos) offload_rows(run);
    return 0;
}
