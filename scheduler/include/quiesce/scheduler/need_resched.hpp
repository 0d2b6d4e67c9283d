// need_resched(): has the group running on this loop thread used its slice of
// thread CPU time? Long-running event code polls it and gives the loop back
// when it says so:
//
//     for (Item& item : batch) {
//         process(item);
//         if (sched::need_resched()) return reschedule_rest();  // or yield_if_needed()
//     }
//
// The loop's SliceClock (scheduler/src/slice_clock.hpp) sets a tick pointer
// and a deadline in a thread-local when a group starts; the check is a load
// of a counter that something else advances and a compare. In kPerfEvent mode
// the counter is the head of a perf ring buffer that the kernel moves every
// period of this thread's CPU time; in kWallConfirm mode it is bumped by a
// wall-clock timer's signal. When the compare says the slice may be over, an
// out-of-line slow path confirms it against the thread's CPU time and either
// reports it over or moves the deadline on.
//
// Limits: nothing preempts a group that never asks. One that polls often
// gets [3/4, 5/4] of its nominal CPU time, on average all of it (the tick
// period is half a slice; SliceClock explains the choice and its cost: about
// 12 µs per tick here, 5% of the CPU at 500 µs slices, 2.5% at 1 ms). Where
// perf_event_paranoid makes the perf event exclude the kernel, ticks that
// land in a system call are lost and syscall-heavy groups run longer.
//
// Threading: the thread-local is written only by its thread's SliceClock; the
// counter it points at is written by the kernel or by this thread's signal
// handler and only read here.
#pragma once

#include <quiesce/base/config.hpp>

#include <cstdint>

namespace quiesce::sched {
namespace detail {

/// A counter word written behind the compiler's back (by the kernel or a
/// signal handler); may_alias because the kernel's is a __u64.
using TickWord [[gnu::may_alias]] = std::uint64_t;

/// What non-loop threads point at: never moves, so never reaches a deadline.
inline constexpr TickWord kNoTicks = 0;

/// The calling thread's slice state, set by its SliceClock.
struct SliceTls {
    /// The tick counter (kernel- or signal-written); &kNoTicks off a loop.
    const TickWord* ticks;
    /// need_resched() consults the slow path once *ticks >= deadline.
    /// UINT64_MAX: never (no loop, slice 0, or between slices).
    std::uint64_t deadline;
};

/// Constant-initialised and initial-exec (like rcu's tls_default_reader), so
/// the fast path reaches it %fs-relative with no guard and no call. Defined
/// once, in the library.
[[gnu::tls_model("initial-exec")]] extern constinit thread_local SliceTls tls_slice;

/// Slow path: asks this thread's SliceClock whether the slice is really over.
[[gnu::cold]] bool need_resched_slow() noexcept;

}  // namespace detail

/// True once the group running on this loop thread has used its slice of
/// thread CPU time (time the kernel ran another thread is not charged); it
/// stays true until the loop starts the next slice. False on threads that are
/// not loop threads, and always false with a slice of 0.
/// Thread: any; meaningful on a loop thread between SliceClock::start_slice()
/// calls.
/// Yields: no. Fiber code must not cache the answer (or anything read from the
/// thread-local behind it) across a yield: fibers migrate between loops. The
/// scheduler's out-of-line yield_if_needed() re-reads it after each switch.
/// Memory ordering: none; the counter is read relaxed (it orders nothing).
/// Cost: three loads (the tick pointer and the deadline %fs-relative, the
/// tick word through the pointer), a compare and a not-taken branch until the
/// slice may be over: 4 instructions where the compiler keeps the thread-
/// local's offset in a register (a loop), 5 where it reloads it (an
/// immediate when linked statically; a load from the GOT, so 4 loads, with the
/// shared library). About 0.5 ns per call in a loop, release build. Then,
/// once per tick (twice per slice), a cold call: ~32 ns in kPerfEvent mode,
/// one CLOCK_THREAD_CPUTIME_ID read (0.5-1.4 µs) in kWallConfirm mode.
[[nodiscard]] inline bool need_resched() noexcept {
    // Named directly, not through a reference: g++ 12 with ASan+UBSan checks
    // a reference to a thread-local for null with flags left by ASan's shadow
    // check (a false "member access within null pointer").
    // relaxed: a monotonic counter compared with a deadline; it publishes no
    // data. Not std::atomic_ref: the word may be const (kNoTicks) and is
    // written outside the C++ program (the kernel), so the builtin is used.
    if (__builtin_expect(
            __atomic_load_n(detail::tls_slice.ticks, __ATOMIC_RELAXED) < detail::tls_slice.deadline,
            1))
        return false;
    return detail::need_resched_slow();
}

}  // namespace quiesce::sched
