// need_resched() against reading CLOCK_THREAD_CPUTIME_ID directly, in ns per
// call, measured inside a group event on a loop thread; and the callgrind
// mode, which runs the same three functions a fixed number of times so that
// `valgrind --tool=callgrind --toggle-collect=NAME` counts their instructions.
//
// The loops put a compiler barrier between calls, as a caller that does work
// between two checks would, so every call reloads what it reads; the empty
// loop with the same barrier gives the loop's own share.
//
// Threading: the measurements run on the loop thread; main waits on Done.
#include <time.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>

#include <quiesce/scheduler/scheduler.hpp>

#include "sched_bench.hpp"
#include "slice_clock.hpp"

extern "C" {
std::uint64_t sched_bench_empty_calls(std::uint64_t n) noexcept;
std::uint64_t sched_bench_need_resched_calls(std::uint64_t n) noexcept;
std::uint64_t sched_bench_clock_calls(std::uint64_t n) noexcept;
std::uint64_t sched_bench_monotonic_calls(std::uint64_t n) noexcept;

[[gnu::noinline]] std::uint64_t sched_bench_empty_calls(std::uint64_t n) noexcept {
    std::uint64_t hits = 0;
    for (std::uint64_t i = 0; i < n; ++i) asm volatile("" : "+r"(hits)::"memory");
    return hits;
}

[[gnu::noinline]] std::uint64_t sched_bench_need_resched_calls(std::uint64_t n) noexcept {
    std::uint64_t hits = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        if (quiesce::sched::need_resched()) ++hits;
        asm volatile("" : "+r"(hits)::"memory");
    }
    return hits;
}

// n reads of `clock`; inlined into each named function below.
[[gnu::always_inline]] static inline std::uint64_t clock_calls(clockid_t clock,
                                                               std::uint64_t n) noexcept {
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        timespec ts{};
        clock_gettime(clock, &ts);
        sum += static_cast<std::uint64_t>(ts.tv_nsec);
        asm volatile("" : "+r"(sum)::"memory");
    }
    return sum;
}

[[gnu::noinline]] std::uint64_t sched_bench_monotonic_calls(std::uint64_t n) noexcept {
    return clock_calls(CLOCK_MONOTONIC, n);
}

[[gnu::noinline]] std::uint64_t sched_bench_clock_calls(std::uint64_t n) noexcept {
    return clock_calls(CLOCK_THREAD_CPUTIME_ID, n);
}
}

namespace quiesce::bench {
namespace {

using namespace std::chrono_literals;

/// Long enough that need_resched() stays on its fast path throughout.
constexpr std::chrono::microseconds kNeverExpires = 60s;

// Runs `measure` as one event of a group on a one-loop Scheduler.
template <typename F>
double on_loop(std::chrono::microseconds slice, F&& measure) {
    sched::SchedulerOptions options;
    options.threads = 1;
    options.slice = slice;
    options.name = "bench";
    sched::Scheduler scheduler(options);
    sched::Group group = scheduler.make_group({.name = "measure"});
    double result = 0;
    Done done;
    group.post([&] {
        result = measure();
        done.set();
    });
    done.wait();
    scheduler.stop();
    return result;
}

double ns_per_call(Seconds run, std::uint64_t (*calls)(std::uint64_t) noexcept,
                   std::uint64_t batch) {
    Window window(run);
    window.lap();
    std::uint64_t total = 0;
    std::uint64_t sink = 0;
    do {
        sink += calls(batch);
        total += batch;
    } while (!window.lap());
    asm volatile("" : : "r"(sink));
    return 1e9 / window.per_second(total);
}

// Calls need_resched() until it says so (true) or `limit` calls were made.
[[gnu::noinline]] bool calls_until_resched(std::uint64_t limit, std::uint64_t& made) noexcept {
    for (std::uint64_t i = 0; i < limit; ++i) {
        if (sched::need_resched()) {
            made += i + 1;
            return true;
        }
        asm volatile("" ::: "memory");
    }
    made += limit;
    return false;
}

struct Expiring {
    explicit Expiring(Seconds run) : window(run) {}
    Window window;
    std::uint64_t calls = 0;
    std::uint64_t turns = 0;
    Done done;
};

// One turn: calls need_resched() until the slice is spent, then gives the
// loop back with kAgain; the window spans every turn and what lies between.
sched::Status expiring_turn(Expiring* state) {
    ++state->turns;
    for (;;) {
        if (state->window.lap()) {
            state->done.set();
            return sched::Status::kDone;
        }
        if (calls_until_resched(1 << 20, state->calls)) return sched::Status::kAgain;
    }
}

}  // namespace

double need_resched_ns(Seconds run) {
    return on_loop(kNeverExpires,
                   [run] { return ns_per_call(run, &sched_bench_need_resched_calls, 1 << 20); });
}

double empty_loop_ns(Seconds run) {
    return on_loop(kNeverExpires,
                   [run] { return ns_per_call(run, &sched_bench_empty_calls, 1 << 20); });
}

double thread_cputime_ns(Seconds run) {
    return on_loop(kNeverExpires,
                   [run] { return ns_per_call(run, &sched_bench_clock_calls, 256); });
}

double monotonic_ns(Seconds run) {
    return on_loop(kNeverExpires,
                   [run] { return ns_per_call(run, &sched_bench_monotonic_calls, 4096); });
}

double need_resched_expiring_ns(Seconds run) {
    sched::SchedulerOptions options;
    options.threads = 1;
    options.slice = 500us;
    options.name = "bench";
    sched::Scheduler scheduler(options);
    sched::Group group = scheduler.make_group({.name = "expiring"});
    Expiring state(run);
    group.post([s = &state] { return expiring_turn(s); });
    state.done.wait();
    scheduler.stop();
    return 1e9 / state.window.per_second(state.calls);
}

int callgrind_main(std::uint64_t calls) {
    std::uint64_t sink = 0;
    sched::SliceMode mode = sched::SliceMode::kAuto;
    on_loop(kNeverExpires, [&] {
        mode = sched::SliceClock::current()->mode();
        sink += sched_bench_empty_calls(calls);
        sink += sched_bench_need_resched_calls(calls);
        sink += sched_bench_clock_calls(calls);
        return 0.0;
    });
    std::printf(
        "ran %" PRIu64
        " calls each of sched_bench_empty_calls, sched_bench_need_resched_calls and "
        "sched_bench_clock_calls in one group event on a loop thread (slice clock: %s; sink "
        "%" PRIu64 ")\ninstructions per call = the function's inclusive Ir / %" PRIu64
        ", e.g.\n  valgrind --tool=callgrind --toggle-collect=sched_bench_need_resched_calls "
        "sched_bench callgrind %" PRIu64 "\n",
        calls, std::string(to_string(mode)).c_str(), sink % 2, calls, calls);
    return 0;
}

}  // namespace quiesce::bench
