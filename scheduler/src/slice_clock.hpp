// SliceClock: one per loop thread. It owns the thread's tick source (a perf
// task-clock ring or a wall-clock timer, see slice_mode.hpp), points
// need_resched()'s thread-local at it, decides when a slice of thread CPU
// time is over, and gives the loop this thread's CPU time cheaply for
// per-group accounting.
//
// How the loop uses it (all on the loop thread):
//
//     SliceClock clock(options.slice, options.slice_mode);  // once, first thing
//     std::uint64_t last = clock.cpu_now_ns();
//     for (;;) {
//         Group* group = run_queue.pop();
//         if (group == nullptr) { clock.idle(); sleep_until_posted(); continue; }
//         std::uint64_t now = clock.start_slice(options.slice * group->weight);
//         charge(previous, now - last);  // start_slice() read the clock already
//         last = now;
//         run(group);                    // its events poll need_resched()
//         previous = group;
//     }
//
// Slice length: ticks come every period = slice / kTicksPerSlice of CPU time
// (perf) or of wall time (wall). At the first tick at which the CPU time
// used since start_slice() is at least slice - period / 2, need_resched()
// turns true, so a group that polls it often gets [3/4, 5/4] of its slice,
// on average the slice (measured: p10/p50/p90 of 400/495/600 µs for 500 µs
// slices started at random phases, both modes; back-to-back slices of a hog
// start on a tick and last 499 µs). Why two ticks per slice and not four:
// each tick interrupts the thread, and an interrupt costs ~12 µs here (perf
// hrtimer; ~19 µs for a timer signal). Time stolen from a spinning thread,
// over the 0.75% the idle system steals anyway:
//
//     slice          500 µs   1 ms    2 ms
//     kPerfEvent      5.0%    2.5%    1.3%
//     kWallConfirm    8.0%    4.2%    2.1%
//
// Four ticks per 500 µs slice would cost ~10%. Exact confirmation with
// cpu_now_ns() buys back the precision that counting four ticks (3/4 to 1
// of the slice) would give. Prefer slices of 1 ms or more on VMs like this.
//
// Sparse ticks (both modes): a tick is only of use when a turn runs as long as
// a slice, and a server's turns are mostly microseconds long. On a host where
// a tick costs ~40 µs (a PVM guest: a busy loop lost 15-18% of its CPU to
// ticks every 250 µs) that is most of the loop's overhead. So once the loop
// has run kQuietBeforeSparse of CPU time without a turn reaching its slice,
// the event samples every kSparsePeriod instead (one ioctl()); the first turn
// that reaches its slice then (seen at a sparse tick, or at its end) brings
// the dense period back, another ioctl(). The cost: the first long turn after
// a quiet spell may run up to kSparsePeriod past its slice; the ones after it
// get their slice as above. The wall timer does the same with
// timer_settime().
//
// Threading: constructed, used and destroyed on its loop thread only; the
// kernel (ring) or this thread's signal handler (timer) moves the counter.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include <quiesce/scheduler/need_resched.hpp>
#include <quiesce/scheduler/slice_mode.hpp>

#include "clocks.hpp"
#include "perf_ring.hpp"

namespace quiesce::sched {
namespace detail {
class WallTicker;
}  // namespace detail

class SliceClock {
public:
    static constexpr std::uint64_t kTicksPerSlice = 2;
    /// Shortest tick period; below it the interrupts would eat the CPU.
    static constexpr std::chrono::nanoseconds kMinPeriod{25'000};
    /// The tick period while no turn reaches its slice (when the dense
    /// period, slice / kTicksPerSlice, is shorter).
    static constexpr std::chrono::nanoseconds kSparsePeriod{2'000'000};
    /// Thread CPU time without a turn reaching its slice after which ticks
    /// go sparse.
    static constexpr std::chrono::nanoseconds kQuietBeforeSparse{20'000'000};
    /// kWallConfirm: cpu_now_ns() re-reads CLOCK_THREAD_CPUTIME_ID when its
    /// anchor is older than this, which bounds its error (see cpu_now_ns()).
    static constexpr std::chrono::nanoseconds kWallRefresh{100'000};

    /// Sets up this thread's tick source and points need_resched() at it.
    /// `slice` == 0: need_resched() is always false, no event and no timer
    /// (mode() then reports kWallConfirm, whose clock cpu_now_ns() uses).
    /// kAuto uses a perf event if one opens that counts kernel time, else the
    /// timer, and says why at warn; a forced mode that cannot be set up throws
    /// std::system_error. `kernel_ticks_allowed` false makes it behave as
    /// where perf_event_paranoid forbids counting kernel time (tests).
    /// Thread: the loop thread it will serve; one per thread.
    SliceClock(std::chrono::nanoseconds slice, SliceMode preferred,
               bool kernel_ticks_allowed = true);
    /// Closes the event or timer. Thread: the constructing thread.
    ~SliceClock();
    SliceClock(const SliceClock&) = delete;
    SliceClock& operator=(const SliceClock&) = delete;

    /// The calling thread's clock, or null.
    [[nodiscard]] static SliceClock* current() noexcept;

    [[nodiscard]] SliceMode mode() const noexcept { return mode_; }
    [[nodiscard]] std::chrono::nanoseconds slice() const noexcept;
    /// Tick period now (0 when slices are off): the dense one, or
    /// kSparsePeriod while ticks are sparse.
    [[nodiscard]] std::chrono::nanoseconds period() const noexcept;
    /// True while ticks come every kSparsePeriod (a quiet loop).
    [[nodiscard]] bool ticks_sparse() const noexcept { return period_ns_ != dense_period_ns_; }
    /// How often ticks went sparse or dense again; for tests.
    [[nodiscard]] std::uint64_t tick_switches() const noexcept { return tick_switches_; }
    /// kPerfEvent only: false when perf_event_paranoid forced exclude_kernel,
    /// so ticks that land in a system call are lost and such code overruns.
    [[nodiscard]] bool ticks_in_kernel() const noexcept;

    /// Starts a slice of `slice` CPU time (the default, or slice x weight for
    /// a weighted group; 0 = never expires) for the group the loop is about
    /// to run, and returns this thread's CPU time now (cpu_now_ns()), for the
    /// loop's accounting. Also tells a wall timer stopped by idle() to run.
    /// Cost: perf 29 ns (drains the ring, one CLOCK_MONOTONIC read; no
    /// system call); wall 31 ns, plus one timer_settime() after an idle().
    std::uint64_t start_slice(std::chrono::nanoseconds slice) noexcept;
    std::uint64_t start_slice() noexcept { return start_slice(slice()); }
    /// The same, starting the slice at `now`, which must be the last
    /// cpu_now_ns() result (the loop passes the end of the previous turn
    /// when nothing worth charging ran since): saves a clock read, ~26 ns
    /// per turn. The deadline counts ticks from where they stood at that
    /// reading, so CPU time used since it counts against the slice.
    void start_slice_at(std::chrono::nanoseconds slice, std::uint64_t now) noexcept;

    /// Ends the current slice: need_resched() is false (and reads no clock)
    /// until the next start_slice() or start_slice_at(). The loop calls it
    /// at the end of every turn, so code running between turns (destructors
    /// of dropped events and groups) cannot move the clock's readings.
    /// A turn that reached its slice by the last cpu_now_ns() reading (the
    /// loop reads it just before) makes sparse ticks dense again.
    void end_slice() noexcept;

    /// need_resched()'s slow path: is the current slice over? Once true,
    /// stays true until the next start_slice(), start_slice_at() or
    /// end_slice(). Otherwise moves the
    /// deadline to the next tick at which it could be.
    /// Cost: perf 32 ns; wall one CLOCK_THREAD_CPUTIME_ID read (0.6-1.4 µs).
    [[nodiscard]] bool expired() noexcept;

    /// This thread's CPU time in ns (CLOCK_THREAD_CPUTIME_ID's scale), never
    /// decreasing. Accuracy:
    /// - kPerfEvent: the kernel's task clock, extrapolated with
    ///   CLOCK_MONOTONIC from the last sample or context switch: within a
    ///   few µs over any stretch the thread runs. The task clock leaves out
    ///   part of each context switch (about 11 µs per block-and-wake here),
    ///   so across sleeps it falls behind CLOCK_THREAD_CPUTIME_ID by that
    ///   much per sleep; that time belongs to no group.
    /// - kWallConfirm / slice 0: CLOCK_THREAD_CPUTIME_ID at an anchor plus
    ///   the wall time since, re-anchored by a system call once the anchor
    ///   is kWallRefresh old: never below the true value and at most
    ///   kWallRefresh above it (the excess is time spent switched out).
    /// Cost: perf 26 ns; wall 28 ns, plus a CLOCK_THREAD_CPUTIME_ID read at
    /// most once per kWallRefresh of wall time.
    [[nodiscard]] std::uint64_t cpu_now_ns() noexcept;

    /// The loop is about to block (sleep until posted to). In kWallConfirm
    /// mode this lets the timer stop at its next tick; a no-op with perf
    /// (its clock stops by itself while the thread sleeps).
    void idle() noexcept;

    /// How often the perf ring overflowed (a group ran long without polling
    /// need_resched() and the loop did not call in); each costs one read(2)
    /// to resynchronise the CPU-time anchor. For the loop's statistics.
    [[nodiscard]] std::uint64_t ring_overflows() const noexcept { return ring_overflows_; }

private:
    [[nodiscard]] std::uint64_t estimate(bool exact) noexcept;
    [[nodiscard]] std::uint64_t tick_position() const noexcept;
    [[nodiscard]] std::uint64_t ticks_until(std::uint64_t cpu_ns) const noexcept;
    void calibrate() noexcept;
    /// To the sparse or the dense period; keeps the current one if the
    /// kernel refuses (and stops trying to go sparse).
    void set_sparse(bool sparse) noexcept;
    /// A turn reached its slice at CPU time `now`: restarts the quiet spell
    /// and makes sparse ticks dense.
    void note_overrun(std::uint64_t now) noexcept;
    void log_mode(const char* fallback_reason) const;

    std::uint64_t slice_ns_;
    std::uint64_t period_ns_ = 0;         ///< current tick period
    std::uint64_t dense_period_ns_ = 0;   ///< slice / kTicksPerSlice (at least kMinPeriod)
    bool may_sparse_ = false;             ///< slices on, with a dense period < kSparsePeriod
    std::uint64_t last_overrun_cpu_ = 0;  ///< CPU time of the last turn that reached its slice
    std::uint64_t tick_switches_ = 0;
    SliceMode mode_ = SliceMode::kWallConfirm;
    std::unique_ptr<detail::PerfTaskClock> perf_;
    std::unique_ptr<detail::WallTicker> wall_;
    /// Bytes (perf: one sample record) or counts (wall) per tick.
    std::uint64_t tick_unit_ = 1;

    detail::TaskClockAnchor anchor_;
    detail::FastMono wall_clock_;  ///< CLOCK_MONOTONIC, cheaply, for estimate()
    std::uint64_t offset_ = 0;     ///< CLOCK_THREAD_CPUTIME_ID - task clock, at calibration
    std::uint64_t last_cpu_ = 0;   ///< last cpu_now_ns() result (monotonic clamp)
    std::uint64_t wall_ticks_at_read_ = 0;  ///< wall ticks seen by the last estimate()

    std::uint64_t slice_start_cpu_ = 0;
    std::uint64_t threshold_ = 0;  ///< CPU ns after which a tick ends the slice (dense period)
    bool expired_ = false;
    bool never_ = true;  ///< current slice never expires
    std::uint64_t ring_overflows_ = 0;
};

}  // namespace quiesce::sched
