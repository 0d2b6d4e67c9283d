// Cross-thread post-to-run latency. A poster thread on other_cpu() stamps an
// event, posts it to a loop (ours) or to the pool's worker (both on
// loop_cpu()), spins until the event has run, pauses, and posts the next. The
// event subtracts the stamp from its own clock read.
//
// "asleep": nothing else runs, so the loop (worker) has gone to sleep on its
// futex (condition variable) during the 200 µs pause and each post wakes it.
// "busy": a spinner keeps it awake, an event that yields after every run
// (ours: returns Status::kAgain, one event per group turn; pool: re-posts
// itself), so a post waits behind at most one spinner run.
//
// Both post a callable of 16 bytes (a pointer and an index): it fits in a
// pooled node (ours) and in std::function's small buffer (no allocation).
//
// Threading: Probe::posted[i] is written by the poster before the post (the
// post publishes it); samples[i] is written by the event and read by the
// poster after it has seen `ran` reach i + 1.
#include <immintrin.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include <quiesce/scheduler/scheduler.hpp>

#include "cv_pool.hpp"
#include "sched_bench.hpp"

namespace quiesce::bench {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMaxSamples = 20'000;
constexpr auto kAsleepPause = 200us;
constexpr auto kBusyPause = 20us;

double to_us(Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

struct Probe {
    std::vector<Clock::time_point> posted = std::vector<Clock::time_point>(kMaxSamples);
    std::vector<double> samples = std::vector<double>(kMaxSamples);
    std::atomic<std::size_t> ran{0};

    void record(std::size_t index) noexcept {
        samples[index] = to_us(Clock::now() - posted[index]);
        // [P1] release, pairs with [P2]: the sample is written before the
        // poster reads it.
        ran.store(index + 1, std::memory_order_release);
    }
    // False if the event did not run within a second (then stop measuring).
    bool wait_for(std::size_t count) const noexcept {
        const auto give_up = Clock::now() + 1s;
        while (ran.load(std::memory_order_acquire) < count) {  // [P2] pairs with [P1]
            _mm_pause();
            if (Clock::now() > give_up) return false;
        }
        return true;
    }
};

// The poster's side, on other_cpu(): `post(index)` queues one event.
template <typename Post>
Latency drive(Seconds run, bool busy, Probe& probe, Post&& post) {
    return run_pinned(other_cpu(), [&] {
        const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(run);
        std::size_t n = 0;
        while (n < kMaxSamples && Clock::now() < deadline) {
            std::this_thread::sleep_for(busy ? kBusyPause : kAsleepPause);
            probe.posted[n] = Clock::now();
            post(n);
            if (!probe.wait_for(n + 1)) break;
            ++n;
        }
        std::vector<double> taken(probe.samples.begin(), probe.samples.begin() + n);
        return summarize(taken);
    });
}

// The pool's spinner: re-posts itself until told to stop.
struct PoolSpinner {
    CvPool* pool;
    const std::atomic<bool>* stop;
    void operator()() const {
        // relaxed: a stop request; the pool's mutex orders everything else
        if (!stop->load(std::memory_order_relaxed)) pool->post(*this);
    }
};

}  // namespace

Latency ours_post_latency(Seconds run, bool busy, bool slices, sched::SliceMode mode) {
    sched::SchedulerOptions options;
    options.threads = 1;
    options.slice = slices ? options.slice : 0us;
    options.slice_mode = mode;
    options.name = "bench";
    sched::Scheduler scheduler(options);
    sched::Group target = scheduler.make_group({.name = "target"});
    sched::Group spinner = scheduler.make_group({.name = "spinner"});
    std::atomic<bool> stop{false};
    if (busy) {
        spinner.post([&stop]() -> sched::Status {
            // relaxed: a stop request; nothing is published with it
            return stop.load(std::memory_order_relaxed) ? sched::Status::kDone
                                                        : sched::Status::kAgain;
        });
    }
    Probe probe;
    Latency result = drive(run, busy, probe, [&](std::size_t index) {
        target.post([&probe, index] { probe.record(index); });
    });
    stop.store(true, std::memory_order_relaxed);  // relaxed: see the spinner
    scheduler.stop();
    return result;
}

Latency pool_post_latency(Seconds run, bool busy) {
    std::atomic<bool> stop{false};
    Probe probe;
    Latency result;
    {
        CvPool pool(loop_cpu());
        if (busy) pool.post(PoolSpinner{&pool, &stop});
        result = drive(run, busy, probe, [&](std::size_t index) {
            pool.post([&probe, index] { probe.record(index); });
        });
        stop.store(true, std::memory_order_relaxed);  // relaxed: see PoolSpinner
    }
    return result;
}

}  // namespace quiesce::bench
