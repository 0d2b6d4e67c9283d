// A loop thread's (wall time, thread CPU time) pair, published now and then
// for the stall hook (private): from it and the thread's CPU clock read from
// outside, a stall warning tells a group that hogs its loop from a loop the
// kernel does not run.
//
//     sampler.publish(now_wall_ns);     // loop thread: at start, on waking, every 10 ms
//     CpuSample s = sampler.read();     // any thread: a consistent pair
//
// Threading: one writer (the loop thread), any number of readers; a seqlock
// ([CS1]/[CS2]) gives readers a pair from one publish().
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

namespace quiesce::sched::detail {

struct CpuSample {
    std::int64_t wall_ns = 0;  ///< CLOCK_MONOTONIC when taken
    std::uint64_t cpu_ns = 0;  ///< the loop thread's CLOCK_THREAD_CPUTIME_ID then
};

class CpuSampler {
public:
    /// How often a busy loop publishes (on top of each wake-up).
    static constexpr std::int64_t kIntervalNs = 10'000'000;

    /// Reads this thread's CPU clock (a system call, ~0.5 µs) and publishes
    /// it with `wall_ns`. Thread: the loop thread only.
    void publish(std::int64_t wall_ns) noexcept {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        const std::uint64_t cpu = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
                                  static_cast<std::uint64_t>(ts.tv_nsec);
        const std::uint32_t seq = seq_.load(std::memory_order_relaxed);  // relaxed: one writer
        seq_.store(seq + 1, std::memory_order_relaxed);  // odd: a write is under way
        // [CS1] release fence: the odd sequence is ordered before the data
        // stores (pairs with the acquire fence in read()).
        std::atomic_thread_fence(std::memory_order_release);
        wall_.store(wall_ns, std::memory_order_relaxed);  // relaxed: ordered by [CS1]/[CS2]
        cpu_.store(cpu, std::memory_order_relaxed);
        // [CS2] release, pairs with the acquire load in read(): the data
        // stores happen-before a reader that sees the even sequence.
        seq_.store(seq + 2, std::memory_order_release);
        last_wall_ = wall_ns;
    }

    /// True when the last publish() is kIntervalNs old. Thread: the loop.
    [[nodiscard]] bool due(std::int64_t wall_ns) const noexcept {
        return wall_ns - last_wall_ >= kIntervalNs;
    }

    /// The last published pair. Thread: any.
    [[nodiscard]] CpuSample read() const noexcept {
        for (;;) {
            const std::uint32_t before = seq_.load(std::memory_order_acquire);  // [CS2]
            CpuSample sample{wall_.load(std::memory_order_relaxed),
                             cpu_.load(std::memory_order_relaxed)};
            // [CS1] acquire fence: the data loads come before the re-check.
            std::atomic_thread_fence(std::memory_order_acquire);
            if ((before & 1) == 0 && seq_.load(std::memory_order_relaxed) == before) return sample;
        }
    }

private:
    std::atomic<std::uint32_t> seq_{0};
    std::atomic<std::int64_t> wall_{0};
    std::atomic<std::uint64_t> cpu_{0};
    std::int64_t last_wall_ = 0;  // loop thread only
};

}  // namespace quiesce::sched::detail
