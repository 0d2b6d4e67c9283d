// The clocks the slice code reads, in nanoseconds. Costs measured here
// (FACTS.md, and again for this module): CLOCK_MONOTONIC 25 ns through the
// vDSO; CLOCK_THREAD_CPUTIME_ID 0.55-1.35 µs, a real system call, so never
// per event; FastMono (below) one rdtsc and a multiply.
//
// Threading: FastMono belongs to one thread (a loop's SliceClock).
#pragma once

#include <time.h>

#include <algorithm>
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

// 128-bit products for the fixed-point rate (a GCC/Clang extension).
__extension__ typedef unsigned __int128 U128;

/// True when the kernel keeps time with the TSC (clocksource "tsc": it found
/// it invariant and synchronised across CPUs). Read once per process.
bool tsc_is_clocksource() noexcept;

/// The TSC, or 0 where there is none to read.
inline std::uint64_t read_tsc() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    return 0;
#endif
}

/// CLOCK_MONOTONIC read as the TSC and a multiply: the slice clock reads it
/// once per group turn, where the vDSO's clock_gettime was 29% of a turn of
/// an otherwise empty group. The TSC's rate in ns is measured against
/// CLOCK_MONOTONIC over the first kCalibrateNs and again at every
/// re-anchoring, once per kRefreshNs, so the rate's error and NTP's slewing
/// stay within tens of ns. Where the kernel does not keep time with the TSC,
/// and until calibrated, it is mono_ns(). Readings never go backwards.
class FastMono {
public:
    FastMono() noexcept : usable_(tsc_is_clocksource()) {}

    std::uint64_t now() noexcept {
        if (!usable_) return mono_ns();
        const std::uint64_t tsc = read_tsc();
        const std::uint64_t ticks = tsc - base_tsc_;
        if (ns_per_tick_q32_ == 0 || ticks >= refresh_ticks_) return anchor();
        const auto ns =
            static_cast<std::uint64_t>((static_cast<U128>(ticks) * ns_per_tick_q32_) >> 32);
        return forward(base_ns_ + ns);
    }

private:
    static constexpr std::uint64_t kCalibrateNs = 500'000;
    static constexpr std::uint64_t kRefreshNs = 1'000'000;
    // Two TSC reads around a vDSO clock read: ~50-150 ticks here; an
    // interrupt is thousands.
    static constexpr std::uint64_t kPairTicks = 2'000;

    // A CLOCK_MONOTONIC reading; re-measures the rate over the window since
    // the last anchor when it is long enough, and anchors there. The pair
    // (TSC, CLOCK_MONOTONIC) is taken between two TSC reads and kept only if
    // they are close: an interrupt or preemption between the reads would
    // otherwise skew the rate by its length over the window.
    std::uint64_t anchor() noexcept {
        const std::uint64_t before = read_tsc();
        const std::uint64_t ns = mono_ns();
        const std::uint64_t after = read_tsc();
        if (after < before || after - before > kPairTicks) return forward(ns);  // try next time
        const std::uint64_t tsc = before + (after - before) / 2;
        if (base_ns_ == 0 || tsc < base_tsc_) {  // first use, or the TSC went back
            base_tsc_ = tsc;
            base_ns_ = ns;
            return forward(ns);
        }
        const std::uint64_t span_ns = ns - base_ns_;
        if (span_ns >= kCalibrateNs && tsc > base_tsc_) {
            ns_per_tick_q32_ =
                static_cast<std::uint64_t>((static_cast<U128>(span_ns) << 32) / (tsc - base_tsc_));
            refresh_ticks_ = ns_per_tick_q32_ == 0
                                 ? UINT64_MAX
                                 : static_cast<std::uint64_t>(
                                       (static_cast<U128>(kRefreshNs) << 32) / ns_per_tick_q32_);
            base_tsc_ = tsc;
            base_ns_ = ns;
        }
        return forward(ns);
    }

    std::uint64_t forward(std::uint64_t ns) noexcept {
        last_ = std::max(last_, ns);
        return last_;
    }

    const bool usable_;
    std::uint64_t base_tsc_ = 0;
    std::uint64_t base_ns_ = 0;
    std::uint64_t ns_per_tick_q32_ = 0;  ///< ns per TSC tick, 32.32 fixed point; 0: not yet known
    std::uint64_t refresh_ticks_ = UINT64_MAX;
    std::uint64_t last_ = 0;
};

}  // namespace quiesce::sched::detail
