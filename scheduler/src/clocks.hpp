// The two clocks the slice code reads, in nanoseconds. Costs measured here
// (FACTS.md, and again for this module): CLOCK_MONOTONIC 25 ns through the
// vDSO; CLOCK_THREAD_CPUTIME_ID 0.55-1.35 µs, a real system call, so never
// per event.
#pragma once

#include <time.h>

#include <cstdint>

#include <quiesce/base/assert.hpp>

namespace quiesce::sched::detail {

inline std::uint64_t read_clock_ns(clockid_t clock) noexcept {
    timespec ts;
    // Cannot fail for these clocks on the calling thread.
    QUIESCE_CHECK(clock_gettime(clock, &ts) == 0, "clock_gettime failed");
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

/// CLOCK_MONOTONIC: the clock the perf records are stamped with (use_clockid).
inline std::uint64_t mono_ns() noexcept {
    return read_clock_ns(CLOCK_MONOTONIC);
}

/// The calling thread's CPU time, exact. A system call: 0.55-1.35 µs here.
inline std::uint64_t thread_cpu_ns() noexcept {
    return read_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

}  // namespace quiesce::sched::detail
