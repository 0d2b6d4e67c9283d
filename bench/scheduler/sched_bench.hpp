// The measurements of the scheduler benchmark, one group per file: each
// returns plain numbers and main.cpp prints them beside their anchors.
//
// Threading: every measurement starts and joins its own threads; the loop (or
// the anchor's worker) runs on loop_cpu(), a cross-thread poster on
// other_cpu().
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

#include <quiesce/scheduler/group.hpp>
#include <quiesce/scheduler/slice_mode.hpp>

#include "../harness.hpp"

namespace quiesce::bench {

namespace sched = quiesce::sched;
using Seconds = std::chrono::duration<double>;

/// A measurement window: the first lap() starts it, every lap() stamps its
/// end, and lap() turns true once `run` has passed. One clock read per lap.
class Window {
public:
    explicit Window(Seconds run) : length_(std::chrono::duration_cast<Clock::duration>(run)) {}
    bool lap() noexcept {
        end_ = Clock::now();
        if (!started_) {
            started_ = true;
            start_ = end_;
        }
        return end_ - start_ >= length_;
    }
    [[nodiscard]] double per_second(std::uint64_t count) const noexcept {
        return static_cast<double>(count) / Seconds(end_ - start_).count();
    }

private:
    Clock::duration length_;
    Clock::time_point start_{}, end_{};
    bool started_ = false;
};

/// A one-shot flag that a loop event (or worker task) sets and the main
/// thread waits for.
class Done {
public:
    void set() noexcept {
        // [D1] release, pairs with [D2]: the run's results happen-before the
        // waiter reads them.
        flag_.store(true, std::memory_order_release);
        flag_.notify_all();
    }
    void wait() const noexcept {
        flag_.wait(false, std::memory_order_acquire);  // [D2] pairs with [D1]
    }

private:
    std::atomic<bool> flag_{false};
};

/// The first CPU of the process's affinity mask: where a Scheduler with
/// pin_threads pins loop 0, and where every anchor's worker is pinned too.
int loop_cpu();
/// The second CPU of the mask (the first if there is only one).
int other_cpu();

/// Runs `fn` on a new thread pinned to `cpu` and returns its result.
template <typename F>
auto run_pinned(int cpu, F&& fn) {
    std::invoke_result_t<F&> result{};
    std::thread thread([&] {
        pin_this_thread(cpu);
        result = fn();
    });
    thread.join();
    return result;
}

// --- 1. dispatch rate on one thread (events/s), dispatch.cpp and
// dispatch_anchors.cpp. `batch` events per driver run.
double ours_chain(Seconds run);
double ours_batch_lambdas(Seconds run, int batch);
double ours_batch_events(Seconds run, int batch);
double ours_events_to_groups(Seconds run, int batch);
double libevent_chain(Seconds run);
double libevent_batch(Seconds run, int batch);
double pool_chain(Seconds run);
double pool_batch(Seconds run, int batch);
/// Events a chain runs per libevent loop pass; a Scheduler runs at most
/// max_events_per_turn (default 1024) per group turn.
inline constexpr int kChainPerPass = 1024;

// --- 2. cross-thread post-to-run latency, latency.cpp.
/// `busy`: the loop (worker) is kept awake by a spinner that yields after
/// every run; otherwise it sleeps before each post.
/// Ours with 500 µs slices on `mode`'s tick source, or with slice 0 (no tick
/// source at all) when `slices` is false.
Latency ours_post_latency(Seconds run, bool busy, bool slices = true,
                          sched::SliceMode mode = sched::SliceMode::kAuto);
Latency pool_post_latency(Seconds run, bool busy);

// --- 3. fiber switch, resume + suspend round trip (ns), fiber.cpp.
double fiber_context_round_trip(Seconds run);
double boost_fiber_round_trip(Seconds run);
double boost_fiber_noinline_round_trip(Seconds run);
/// this_fiber::yield() on a one-loop Scheduler: a whole group turn.
double fiber_yield_round_trip(Seconds run);

// --- 4. need_resched() and CLOCK_THREAD_CPUTIME_ID (ns per call), resched.cpp.
/// On a loop thread, inside a group event, slice long enough not to expire.
double need_resched_ns(Seconds run);
/// Same loop with 500 µs slices: the event returns kAgain when the slice is
/// spent; wall time over all turns divided by the calls made.
double need_resched_expiring_ns(Seconds run);
/// The empty loop the two functions above run in (the loop's own cost).
double empty_loop_ns(Seconds run);
double thread_cputime_ns(Seconds run);
/// `sched_bench callgrind N`: N calls of each, for callgrind --toggle-collect.
int callgrind_main(std::uint64_t calls);
/// CLOCK_MONOTONIC (vDSO), which SliceClock reads at both ends of a turn.
double monotonic_ns(Seconds run);

// --- diagnostics (perf_wake.cpp): `sched_bench perfwake [seconds [rounds]]`.
int perf_wake_main(Seconds run, int rounds);

// --- 5. light groups beside a CPU hog, hog.cpp.
struct HogResult {
    Latency light;
    double hog_cpu_share = 0;  ///< hog CPU time / wall time of the run
    /// The hog's events (its turns): wall and thread CPU time each ran.
    Latency hog_turn_wall, hog_turn_cpu;
};
/// `slice` 0: need_resched() never fires and the hog yields only after 20 ms.
HogResult light_latency_with_hog(Seconds run, std::chrono::microseconds slice);
inline constexpr std::chrono::milliseconds kHogMaxRun{20};
inline constexpr int kLightGroups = 50;

}  // namespace quiesce::bench
