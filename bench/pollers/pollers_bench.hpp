// The pollers benchmark's pieces (bench/pollers): each file measures one
// poller against what a user would pick instead.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <vector>

#include "../harness.hpp"

namespace quiesce::bench {

/// SchedulerOptions::slice for the loops the benchmark starts:
/// BENCH_SLICE_US if set (0 runs them without their perf tick source; see
/// docs/BENCHMARKS.md), else the default 500 us.
inline std::chrono::microseconds slice_from_env() {
    const char* value = std::getenv("BENCH_SLICE_US");
    return std::chrono::microseconds(value != nullptr ? std::atoi(value) : 500);
}

struct FdResult {
    double events_per_sec = 0;
    Latency latency;
};
/// Readiness of `sockets` socket pairs, rounds of one byte each; `gap_us`
/// pauses between rounds (0: back to back).
FdResult ours_fd(int sockets, std::chrono::milliseconds run, int gap_us, bool in_loops);
FdResult libevent_fd(int sockets, std::chrono::milliseconds run, int gap_us);

/// 4 KiB reads at random offsets of a file in the page cache, per second,
/// with `threads` threads (ours: `threads` loops running fibers).
enum class AioShape { kRingThread, kPool, kLoops };
/// `cached_reads`: AioPollerOptions::cached_reads (false: every read goes
/// through the backend).
double ours_aio_reads(AioShape shape, bool cached_reads, unsigned threads,
                      std::chrono::milliseconds run);
double pread_reads(unsigned threads, std::chrono::milliseconds run);

/// Round trips (submit a no-op, get the result back) per second through a
/// pool of `threads` threads, from `clients` fibers or threads.
double ours_offload_round_trips(unsigned threads, unsigned clients, std::chrono::milliseconds run);
double cv_pool_round_trips(unsigned threads, unsigned clients, std::chrono::milliseconds run);

}  // namespace quiesce::bench
