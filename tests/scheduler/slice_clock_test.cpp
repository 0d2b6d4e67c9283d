// SliceClock and need_resched() against the real clocks, in both modes (the
// perf mode is skipped with a warning where perf_event_open() is refused).
// Timing on a shared 2-vCPU VM is noisy: bounds are generous, and the
// measurements that can be disturbed by other load are retried.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <system_error>
#include <thread>
#include <vector>

#include <quiesce/scheduler/need_resched.hpp>

#include "death.hpp"
#include "perf_ring.hpp"
#include "slice_clock.hpp"

using namespace std::chrono_literals;
using quiesce::sched::need_resched;
using quiesce::sched::SliceClock;
using quiesce::sched::SliceMode;

namespace {

std::uint64_t thread_cpu() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

bool perf_available() {
    static const bool available = [] {
        try {
            quiesce::sched::detail::PerfTaskClock probe(1'000'000);
            return true;
        } catch (const std::system_error&) {
            return false;
        }
    }();
    return available;
}

// Both modes, or only the fallback (with a warning) where perf is refused.
SliceMode mode_under_test() {
    SliceMode mode = GENERATE(SliceMode::kPerfEvent, SliceMode::kWallConfirm);
    return mode;
}
bool skip(SliceMode mode) {
    if (mode == SliceMode::kPerfEvent && !perf_available()) {
        WARN("perf_event_open refused here: kPerfEvent not tested");
        return true;
    }
    return false;
}

// Polls need_resched() until it says yes or `limit` of wall time passes.
bool spin_until_resched(std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (std::uint64_t i = 0;; ++i) {
        if (need_resched()) return true;
        if ((i & 255) == 0 && std::chrono::steady_clock::now() > deadline) return false;
    }
}

// The wall clock, the thread's CPU time and its run-queue wait
// (/proc/thread-self/schedstat; -1 where the kernel does not keep it).
struct ThreadTimes {
    std::int64_t wall = 0;
    std::int64_t cpu = 0;
    std::int64_t run_delay = 0;
};
ThreadTimes thread_times() {
    ThreadTimes t;
    t.wall = std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
    t.cpu = static_cast<std::int64_t>(thread_cpu());
    long long on_cpu = 0, waited = -1;
    if (FILE* f = std::fopen("/proc/thread-self/schedstat", "r")) {
        if (std::fscanf(f, "%lld %lld", &on_cpu, &waited) != 2) waited = -1;
        std::fclose(f);
    }
    t.run_delay = waited;
    return t;
}

void spin_cpu(std::chrono::nanoseconds cpu) {
    const std::uint64_t end = thread_cpu() + static_cast<std::uint64_t>(cpu.count());
    while (thread_cpu() < end) {
    }
}

// Thread CPU time from start_slice() until need_resched() turns true.
std::uint64_t cpu_to_expiry(SliceClock& clock, std::chrono::nanoseconds slice) {
    const std::uint64_t before = thread_cpu();
    clock.start_slice(slice);
    if (!spin_until_resched()) return UINT64_MAX;
    return thread_cpu() - before;
}

}  // namespace

TEST_CASE("slice modes by name: what command lines give", "[scheduler][unit]") {
    using quiesce::sched::slice_mode_from_string;
    for (SliceMode mode : {SliceMode::kAuto, SliceMode::kPerfEvent, SliceMode::kWallConfirm})
        CHECK(slice_mode_from_string(quiesce::sched::to_string(mode)) == mode);
    CHECK(slice_mode_from_string("wall") == SliceMode::kWallConfirm);
    CHECK_FALSE(slice_mode_from_string("Wall").has_value());
    CHECK_FALSE(slice_mode_from_string("").has_value());
    static_assert(slice_mode_from_string("perf") == SliceMode::kPerfEvent);
}

TEST_CASE("need_resched() is false on a thread without a slice clock", "[scheduler][unit]") {
    bool ever = false;
    std::thread other([&] {
        const std::uint64_t end = thread_cpu() + 20'000'000;
        while (thread_cpu() < end) ever = ever || need_resched();
    });
    other.join();
    CHECK_FALSE(ever);
    CHECK(SliceClock::current() == nullptr);
    CHECK_FALSE(need_resched());
}

TEST_CASE("a slice of 0 never expires and opens no tick source", "[scheduler][unit]") {
    SliceMode mode = mode_under_test();
    SliceClock clock(0ns, mode);
    CHECK(clock.mode() == SliceMode::kWallConfirm);
    CHECK(clock.period() == 0ns);
    clock.start_slice();
    CHECK_FALSE(spin_until_resched(20ms));
    clock.start_slice(1ms);  // a weight cannot switch slices on
    CHECK_FALSE(spin_until_resched(20ms));
}

TEST_CASE("a forced mode is the mode in use", "[scheduler][unit]") {
    SliceMode mode = mode_under_test();
    if (skip(mode)) return;
    SliceClock clock(1ms, mode);
    CHECK(clock.mode() == mode);
    CHECK(clock.period() == 500us);
    CHECK(SliceClock::current() == &clock);
}

TEST_CASE("kAuto picks the perf event where it opens counting kernel time", "[scheduler][unit]") {
    bool kernel_ticks = false;
    try {
        quiesce::sched::detail::PerfTaskClock probe(1'000'000,
                                                    quiesce::sched::detail::KernelTicks::kRequired);
        kernel_ticks = true;
    } catch (const std::system_error&) {
    }
    SliceClock clock(1ms, SliceMode::kAuto);
    CHECK(clock.mode() == (kernel_ticks ? SliceMode::kPerfEvent : SliceMode::kWallConfirm));
}

TEST_CASE("a spinning thread gets need_resched() after about its slice of CPU time",
          "[scheduler][unit]") {
    SliceMode mode = mode_under_test();
    if (skip(mode)) return;
    constexpr auto kSlice = 2ms;
    SliceClock clock(kSlice, mode);
    const std::uint64_t slice = 2'000'000;
    // The lower bound is exact (the clock confirms CPU time); an upper-bound
    // miss can only come from other load, so it gets two more tries.
    std::uint64_t used = 0;
    for (int attempt = 0; attempt < 3; ++attempt) {
        used = cpu_to_expiry(clock, kSlice);
        REQUIRE(used >= slice / 2);
        if (used <= 20 * slice) break;
    }
    CHECK(used <= 20 * slice);
    CHECK(need_resched());  // stays true until the next slice
}

TEST_CASE("a sleeping thread is not charged for the sleep", "[scheduler][unit]") {
    SliceMode mode = mode_under_test();
    if (skip(mode)) return;
    SliceClock clock(2ms, mode);
    clock.start_slice();
    // As a loop does before it sleeps: the wall timer stops at its next tick.
    // Left running, its ticks would interrupt the sleep 20 times, which cost
    // the thread the 1.5 ms after which the slice ends in 1-3 of 30 runs
    // under ASan on a PVM guest (0 of 60 with idle()).
    clock.idle();
    std::this_thread::sleep_for(20ms);  // 10 slices of wall time, ~no CPU
    CHECK_FALSE(need_resched());
    CHECK_FALSE(need_resched());  // also after the slow path moved the deadline
}

TEST_CASE("start_slice() starts a fresh slice", "[scheduler][unit]") {
    SliceMode mode = mode_under_test();
    if (skip(mode)) return;
    SliceClock clock(2ms, mode);
    REQUIRE(cpu_to_expiry(clock, 2ms) != UINT64_MAX);
    REQUIRE(need_resched());
    clock.start_slice();
    CHECK_FALSE(need_resched());
    CHECK(spin_until_resched());
}

TEST_CASE("end_slice() turns need_resched() off until the next slice", "[scheduler][unit]") {
    SliceMode mode = mode_under_test();
    if (skip(mode)) return;
    SliceClock clock(2ms, mode);
    REQUIRE(cpu_to_expiry(clock, 2ms) != UINT64_MAX);
    REQUIRE(need_resched());
    clock.end_slice();
    CHECK_FALSE(need_resched());
    const std::uint64_t reading = clock.cpu_now_ns();
    CHECK_FALSE(spin_until_resched(20ms));  // ~10 slices of CPU: still off
    CHECK(clock.cpu_now_ns() > reading);
    clock.start_slice();
    CHECK_FALSE(need_resched());
    CHECK(spin_until_resched());
}

TEST_CASE("start_slice_at() counts the slice from the reading it is given", "[scheduler][unit]") {
    SliceMode mode = mode_under_test();
    if (skip(mode)) return;
    constexpr auto kSlice = 4ms;
    constexpr std::uint64_t kSliceNs = 4'000'000;
    SliceClock clock(kSlice, mode);
    // The reading is taken before 3 ms of CPU whose ticks (one per 2 ms
    // period) the clock has not drained: the slice still ends about 4 ms of
    // CPU after the reading, neither at once nor late.
    bool passed = false;
    for (int attempt = 0; attempt < 3 && !passed; ++attempt) {
        const std::uint64_t before = thread_cpu();
        const std::uint64_t reading = clock.cpu_now_ns();
        spin_cpu(3ms);
        clock.start_slice_at(kSlice, reading);
        if (!spin_until_resched()) break;
        const std::uint64_t used = thread_cpu() - before;
        INFO("mode " << to_string(mode) << ": CPU from the reading to need_resched(): " << used
                     << " ns; cpu_now_ns() advanced " << clock.cpu_now_ns() - reading << " ns");
        REQUIRE(used >= kSliceNs / 2);  // exact lower bound: expired() confirms
        // It ends at the first tick past slice - period / 2 = 3 ms from the
        // reading, so by slice + period / 2 = 5 ms; counted from the call it
        // would take 6 ms or more. A miss can only be other load: retry.
        passed = used <= kSliceNs + kSliceNs / 4 + kSliceNs / 8;
        if (attempt == 2) CHECK(passed);
    }
    // A reading taken right before: a whole slice.
    const std::uint64_t before = thread_cpu();
    clock.start_slice_at(kSlice, clock.cpu_now_ns());
    CHECK_FALSE(need_resched());
    REQUIRE(spin_until_resched());
    CHECK(thread_cpu() - before >= kSliceNs / 2);
}

namespace {

// need_resched()'s counter: bytes written to the perf ring (a sample per
// tick, plus context-switch records), or the wall timer's ticks.
std::uint64_t tick_word() {
    return __atomic_load_n(quiesce::sched::detail::tls_slice.ticks, __ATOMIC_ACQUIRE);
}

// Turns of `turn` CPU time each, well short of the slice, as a loop runs
// them (a reading, the turn, a reading, end_slice()), for `total` CPU time.
void short_turns(SliceClock& clock, std::chrono::nanoseconds turn, std::chrono::nanoseconds total) {
    const std::uint64_t end = thread_cpu() + static_cast<std::uint64_t>(total.count());
    while (thread_cpu() < end) {
        clock.start_slice();
        spin_cpu(turn);
        (void)clock.cpu_now_ns();
        clock.end_slice();
    }
}

// How far the tick counter moves during `total` CPU time of short turns.
std::uint64_t ticks_over(SliceClock& clock, std::chrono::nanoseconds total) {
    const std::uint64_t before = tick_word();
    short_turns(clock, 50us, total);
    return tick_word() - before;
}

}  // namespace

TEST_CASE("ticks go sparse while turns are short and dense at the first that reaches its slice",
          "[scheduler][unit]") {
    SliceMode mode = mode_under_test();
    if (skip(mode)) return;
    INFO("mode " << to_string(mode));
    constexpr auto kSlice = 500us;
    constexpr std::uint64_t kSliceNs = 500'000;
    SliceClock clock(kSlice, mode);
    REQUIRE(clock.period() == 250us);
    CHECK_FALSE(clock.ticks_sparse());
    // Dense: a tick per 250 µs (of CPU time, or of wall time while busy),
    // ~40 in 10 ms.
    const std::uint64_t dense = ticks_over(clock, 10ms);
    CHECK_FALSE(clock.ticks_sparse());
    // Sparse after kQuietBeforeSparse of short turns. The thread's CPU time
    // counts what the host takes while it stalls the vCPU, so on a shared VM
    // a 50 µs turn now and then counts as reaching its slice: that restarts
    // the quiet spell, or ends a sparse spell early (seen once in about 15 runs
    // here). Hence up to 10 spells to go sparse, and 3 tries at staying so.
    auto until_sparse = [&] {
        for (int i = 0; i < 10 && !clock.ticks_sparse(); ++i)
            short_turns(clock, 50us, SliceClock::kQuietBeforeSparse);
        return clock.ticks_sparse();
    };
    std::uint64_t sparse = 0;
    bool stayed = false;
    for (int attempt = 0; attempt < 3 && !stayed; ++attempt) {
        REQUIRE(until_sparse());
        CHECK(clock.period() == SliceClock::kSparsePeriod);
        // Sparse: a tick per 2 ms, ~5 in 10 ms (context switches add records).
        sparse = ticks_over(clock, 10ms);
        stayed = clock.ticks_sparse();
    }
    INFO("tick counter over 10 ms of short turns: dense " << dense << ", sparse " << sparse);
    CHECK(stayed);
    CHECK(sparse * 3 < dense);
    const std::uint64_t switches = clock.tick_switches();  // odd: sparse now
    CHECK(switches % 2 == 1);

    // A turn that reaches its slice ends at a sparse tick (exact lower
    // bound: expired() confirms), and ticks are dense from its end.
    const std::uint64_t first = cpu_to_expiry(clock, kSlice);
    CHECK(first >= kSliceNs / 2);
    (void)clock.cpu_now_ns();
    clock.end_slice();
    CHECK_FALSE(clock.ticks_sparse());
    CHECK(clock.period() == 250us);
    CHECK(clock.tick_switches() == switches + 1);
    // The long turns after it get their slice to a dense tick: each ends in
    // [375, 625] µs of CPU (sparse ticks would give [375, 2375] µs).
    std::vector<std::uint64_t> turns;
    for (int i = 0; i < 7; ++i) {
        turns.push_back(cpu_to_expiry(clock, kSlice));
        (void)clock.cpu_now_ns();
        clock.end_slice();
    }
    std::sort(turns.begin(), turns.end());
    INFO("CPU per long turn after the first, median " << turns[3] << " ns");
    CHECK(turns[0] >= kSliceNs / 2);
    CHECK(turns[3] <= 2 * kSliceNs);
    CHECK_FALSE(clock.ticks_sparse());
}

TEST_CASE("a weighted slice lasts proportionally longer", "[scheduler][unit]") {
    SliceMode mode = mode_under_test();
    if (skip(mode)) return;
    SliceClock clock(4ms, mode);
    std::vector<std::uint64_t> single, twice;
    for (int i = 0; i < 5; ++i) {
        single.push_back(cpu_to_expiry(clock, 4ms));
        twice.push_back(cpu_to_expiry(clock, 8ms));
    }
    std::sort(single.begin(), single.end());
    std::sort(twice.begin(), twice.end());
    const double ratio = static_cast<double>(twice[2]) / static_cast<double>(single[2]);
    INFO("median CPU to expiry: " << single[2] << " ns for 4 ms, " << twice[2] << " ns for 8 ms");
    // Nominal 2 (each lands in [slice - period/2, slice + period/2]).
    CHECK(ratio > 1.4);
    CHECK(ratio < 3.0);
}

TEST_CASE("cpu_now_ns() never decreases and follows CLOCK_THREAD_CPUTIME_ID", "[scheduler][unit]") {
    SliceMode mode = mode_under_test();
    if (skip(mode)) return;
    {
        SliceClock clock(1ms, mode);
        std::uint64_t previous = clock.cpu_now_ns();
        bool monotonic = true;
        for (int i = 0; i < 20'000; ++i) {
            const std::uint64_t now = clock.cpu_now_ns();
            monotonic = monotonic && now >= previous;
            previous = now;
            if (i % 5'000 == 0) std::this_thread::sleep_for(1ms);
        }
        CHECK(monotonic);

        // Over a stretch of running, both clocks advance alike: the documented
        // bounds are a few µs (perf) and kWallRefresh (wall) at each end; allow
        // 2% + 300 µs for preemption and sanitizer slowness.
        for (int attempt = 0; attempt < 3; ++attempt) {
            const std::uint64_t a0 = clock.cpu_now_ns(), t0 = thread_cpu();
            spin_cpu(20ms);
            const std::uint64_t a1 = clock.cpu_now_ns(), t1 = thread_cpu();
            const double ours = static_cast<double>(a1 - a0), real = static_cast<double>(t1 - t0);
            INFO("cpu_now_ns advanced " << ours << " ns, CLOCK_THREAD_CPUTIME_ID " << real);
            if (attempt == 2) CHECK(std::abs(ours - real) <= 0.02 * real + 300'000);
            if (std::abs(ours - real) <= 0.02 * real + 300'000) break;
        }
    }

    // Absolute: a fresh clock starts at CLOCK_THREAD_CPUTIME_ID and stays
    // close to it over 10 ms of running. The perf task clock falls behind by
    // about 11 µs per switch (time no group used), and in a virtual machine
    // it runs ahead by what the hypervisor takes from the running thread
    // (steal) and what interrupts take: both count on the task clock, never
    // on CLOCK_THREAD_CPUTIME_ID (1.2-2.2 ms over this test's first version
    // in CI rehearsals). That time is measured, not guessed: the wall time of
    // a spin that neither CPU time nor run-queue waiting explain.
    SliceClock fresh(1ms, mode);
    const ThreadTimes before = thread_times();
    const auto gap_of = [&fresh] {
        return static_cast<std::int64_t>(thread_cpu()) -
               static_cast<std::int64_t>(fresh.cpu_now_ns());
    };
    const std::int64_t gap_at_start = gap_of();
    spin_cpu(10ms);
    const std::int64_t gap = gap_of();
    const ThreadTimes after = thread_times();
    const std::int64_t unexplained = (after.wall - before.wall) - (after.cpu - before.cpu) -
                                     (after.run_delay - before.run_delay);
    const std::int64_t lead_allowed = 200'000 + std::max<std::int64_t>(0, unexplained);
    INFO("CLOCK_THREAD_CPUTIME_ID - cpu_now_ns(): " << gap_at_start << " ns at the start, " << gap
                                                    << " ns after 10 ms; unexplained wall time "
                                                    << unexplained << " ns");
    CHECK(gap_at_start > -200'000);
    CHECK(gap_at_start < 2'000'000);
    CHECK(gap > -lead_allowed);
    CHECK(gap < 2'000'000);
}

TEST_CASE("a descheduled thread is not charged for the time others ran", "[scheduler][unit]") {
    SliceMode mode = mode_under_test();
    if (skip(mode)) return;
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 1) {
        WARN("cannot read the CPU affinity mask: test skipped");
        return;
    }
    int cpu = 0;
    while (!CPU_ISSET(cpu, &allowed)) ++cpu;

    // Two threads pinned to one CPU each spin through a 10 ms slice: each
    // gets about half the CPU, so reaching 10 ms of CPU takes about 20 ms of
    // wall time, and need_resched() must wait for the CPU time.
    struct Result {
        std::uint64_t cpu_ns = 0;
        std::uint64_t wall_ns = 0;
        bool fired = false;
        bool pinned = false;
    };
    constexpr auto kSlice = 10ms;
    bool passed = false;
    for (int attempt = 0; attempt < 3 && !passed; ++attempt) {
        Result results[2];
        std::atomic<int> ready{0};
        auto body = [&](Result& result) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            result.pinned = pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
            SliceClock clock(kSlice, mode);
            ready.fetch_add(1, std::memory_order_acq_rel);
            while (ready.load(std::memory_order_acquire) < 2) {
            }
            const auto w0 = std::chrono::steady_clock::now();
            const std::uint64_t c0 = thread_cpu();
            clock.start_slice();
            result.fired = spin_until_resched(10s);
            result.cpu_ns = thread_cpu() - c0;
            result.wall_ns = static_cast<std::uint64_t>(
                std::chrono::nanoseconds(std::chrono::steady_clock::now() - w0).count());
        };
        std::thread a(body, std::ref(results[0]));
        std::thread b(body, std::ref(results[1]));
        a.join();
        b.join();
        passed = true;
        for (const Result& r : results) {
            INFO("attempt " << attempt << ": " << r.cpu_ns << " ns CPU over " << r.wall_ns
                            << " ns wall");
            REQUIRE(r.pinned);
            REQUIRE(r.fired);
            CHECK(r.cpu_ns >= 5'000'000);    // at least half a slice of CPU
            CHECK(r.cpu_ns <= 100'000'000);  // a generous 10 slices
            passed = passed && r.wall_ns * 10 > r.cpu_ns * 13;
        }
    }
    CHECK(passed);  // wall > 1.3 x CPU in some attempt: the off-CPU time was not charged
}

TEST_CASE("a group that never polls and overflows the perf ring does not stop the clock",
          "[scheduler][unit]") {
    if (skip(SliceMode::kPerfEvent)) return;
    // 100 µs slices tick every 50 µs: 150 ms of CPU writes ~3,000 samples,
    // ten times what the 8 KiB ring holds, so the kernel drops records.
    SliceClock clock(100us, SliceMode::kPerfEvent);
    clock.start_slice();
    const std::uint64_t t0 = thread_cpu(), a0 = clock.cpu_now_ns();
    spin_cpu(150ms);
    CHECK(need_resched());  // the head passed the deadline before the ring filled
    const std::uint64_t t1 = thread_cpu(), a1 = clock.cpu_now_ns();  // resynchronised
    const double ours = static_cast<double>(a1 - a0), real = static_cast<double>(t1 - t0);
    INFO("cpu_now_ns advanced " << ours << " ns, CLOCK_THREAD_CPUTIME_ID " << real);
    CHECK(std::abs(ours - real) <= 0.05 * real + 500'000);
    CHECK(clock.ring_overflows() > 0);
    // A fresh slice is not over at once. Under TSan the first one after the
    // overflow was, in 1 run of 15 (cause not pinned down; in that run
    // cpu_now_ns() had moved 0.26 ms more than CLOCK_THREAD_CPUTIME_ID over
    // the spin).
    // Up to three tries; a clock stuck at "over" fails all of them.
    bool fresh = false;
    for (int attempt = 0; attempt < 3 && !fresh; ++attempt) {
        clock.start_slice();
        fresh = !need_resched();
    }
    CHECK(fresh);
    CHECK(spin_until_resched());  // the drained ring moves again
}

QUIESCE_DEATH_CASE(two_slice_clocks_on_one_thread) {
    SliceClock first(1ms, SliceMode::kWallConfirm);
    SliceClock second(1ms, SliceMode::kWallConfirm);
}

TEST_CASE("a second slice clock on one thread is refused", "[scheduler][unit]") {
    auto result = quiesce::test::run_death_case("two_slice_clocks_on_one_thread");
    CHECK(result.aborted);
    CHECK_THAT(result.output, Catch::Contains("one SliceClock per thread"));
}

namespace {

struct TurnCpu {
    double median = 0;  // CPU per turn / slice
    double p90 = 0;
};

// A group that lives in system calls (a 64 KiB read from /dev/zero is a
// kernel memset and copy): runs `turns` slices of it, polling need_resched()
// between calls, and returns the CPU each turn used relative to the slice.
TurnCpu syscall_heavy_turns(SliceClock& clock, std::chrono::nanoseconds slice, int turns) {
    static thread_local std::vector<char> buffer(64 * 1024);
    const int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    std::vector<double> ratios;
    for (int t = 0; t < turns; ++t) {
        const std::uint64_t before = thread_cpu();
        clock.start_slice(slice);
        const auto deadline = std::chrono::steady_clock::now() + 2s;
        while (!need_resched() && std::chrono::steady_clock::now() < deadline) {
            if (read(fd, buffer.data(), buffer.size()) <= 0) FAIL("read of /dev/zero");
        }
        ratios.push_back(static_cast<double>(thread_cpu() - before) /
                         static_cast<double>(slice.count()));
    }
    close(fd);
    std::sort(ratios.begin(), ratios.end());
    return {ratios[ratios.size() / 2], ratios[ratios.size() * 9 / 10]};
}

}  // namespace

TEST_CASE("syscall-heavy groups get their slice in the mode kAuto picks", "[scheduler][unit]") {
    constexpr auto kSlice = 2ms;
    constexpr int kTurns = 30;
    // Where the perf event may count kernel time (root, CAP_PERFMON,
    // perf_event_paranoid <= 1) kAuto takes it; where it may not, kAuto must
    // not take the user-time-only event: the wall timer keeps the bounds.
    for (bool kernel_allowed : {true, false}) {
        CAPTURE(kernel_allowed);
        TurnCpu turns;
        SliceMode mode;
        bool in_kernel = false;
        // Thread CPU time here includes what a stalled vCPU loses, which
        // lengthens a turn after the fact: up to three tries for the upper
        // bounds (the checks are on the last).
        for (int attempt = 0; attempt < 3; ++attempt) {
            std::thread([&] {
                SliceClock clock(kSlice, SliceMode::kAuto, kernel_allowed);
                mode = clock.mode();
                in_kernel = clock.ticks_in_kernel();
                turns = syscall_heavy_turns(clock, kSlice, kTurns);
            }).join();
            if (turns.median <= 1.3 && turns.p90 <= 1.8) break;
        }
        if (mode == SliceMode::kPerfEvent) CHECK(in_kernel);
        if (!kernel_allowed) CHECK(mode == SliceMode::kWallConfirm);
        INFO("kAuto chose " << to_string(mode) << ": CPU per turn / slice, median " << turns.median
                            << ", p90 " << turns.p90);
        CHECK(turns.median >= 0.7);
        CHECK(turns.median <= 1.3);
        CHECK(turns.p90 <= 1.8);
        WARN("kAuto (" << to_string(mode) << (kernel_allowed ? "" : ", kernel ticks refused")
                       << "): syscall-heavy turns use " << turns.median << "x the slice (median), "
                       << turns.p90 << "x (p90)");
    }
    if (!perf_available()) return;
    // For the record: what the user-time-only event gives the same group.
    TurnCpu user_only;
    std::thread([&] {
        SliceClock clock(kSlice, SliceMode::kPerfEvent, /*kernel_ticks_allowed=*/false);
        CHECK_FALSE(clock.ticks_in_kernel());
        user_only = syscall_heavy_turns(clock, kSlice, kTurns);
    }).join();
    WARN("user-time-only perf event: syscall-heavy turns use "
         << user_only.median << "x the slice (median), " << user_only.p90 << "x (p90)");
}

TEST_CASE("the TSC-based monotonic clock tracks CLOCK_MONOTONIC and never goes back",
          "[scheduler][unit]") {
    using quiesce::sched::detail::FastMono;
    using quiesce::sched::detail::mono_ns;
    if (!quiesce::sched::detail::tsc_is_clocksource()) {
        WARN("the kernel does not keep time with the TSC here: FastMono reads CLOCK_MONOTONIC");
    }
    FastMono fast;
    std::uint64_t last = 0;
    std::uint64_t worst_ahead = 0, worst_behind = 0;
    const std::uint64_t end = mono_ns() + 30'000'000;  // 30 ms: calibrated, re-anchored often
    int backwards = 0;
    for (std::uint64_t before = mono_ns(); before < end; before = mono_ns()) {
        const std::uint64_t now = fast.now();
        const std::uint64_t after = mono_ns();
        if (now < last) ++backwards;
        last = now;
        // The reading lies between the two clock reads around it, give or
        // take the rate's error over one re-anchoring interval.
        if (now > after) worst_ahead = std::max(worst_ahead, now - after);
        if (now < before) worst_behind = std::max(worst_behind, before - now);
        if ((before & 0xff) == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    CAPTURE(worst_ahead, worst_behind);
    CHECK(backwards == 0);
    CHECK(worst_ahead < 20'000);  // ns; measured here: well under 1 µs
    CHECK(worst_behind < 20'000);
    // After a sleep longer than a re-anchoring interval it is still right.
    std::this_thread::sleep_for(5ms);
    const std::uint64_t before = mono_ns();
    const std::uint64_t now = fast.now();
    CHECK(now + 20'000 >= before);
    CHECK(now <= mono_ns() + 20'000);
}
