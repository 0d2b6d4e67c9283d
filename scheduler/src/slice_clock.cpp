// SliceClock: mode selection, slice deadlines and the CPU-time estimate; the
// tick sources themselves are perf_ring.cpp and wall_ticker.cpp.
//
// Threading: everything here runs on the clock's loop thread (see
// slice_clock.hpp); detail::tls_slice and tls_clock belong to that thread.
#include "slice_clock.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

#include <quiesce/base/assert.hpp>

#include "clocks.hpp"
#include "log.hpp"
#include "wall_ticker.hpp"

namespace quiesce::sched {
namespace {

[[gnu::tls_model("initial-exec")]] constinit thread_local SliceClock* tls_clock = nullptr;

constexpr std::uint64_t kSampleBytes = sizeof(perf_event_header) + 16;  // header, time, value

}  // namespace

namespace detail {

constinit thread_local SliceTls tls_slice{&kNoTicks, UINT64_MAX};

bool need_resched_slow() noexcept {
    SliceClock* clock = tls_clock;
    return clock != nullptr && clock->expired();
}

bool tsc_is_clocksource() noexcept {
    static const bool tsc = [] {
        if (read_tsc() == 0) return false;
        std::FILE* file =
            std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
        if (file == nullptr) return false;
        char name[16] = {};
        const bool read = std::fgets(name, sizeof name, file) != nullptr;
        std::fclose(file);
        return read && std::string_view(name) == "tsc\n";
    }();
    return tsc;
}

}  // namespace detail

SliceClock::SliceClock(std::chrono::nanoseconds slice, SliceMode preferred,
                       bool kernel_ticks_allowed)
    : slice_ns_(slice.count() > 0 ? static_cast<std::uint64_t>(slice.count()) : 0) {
    QUIESCE_CHECK(tls_clock == nullptr, "one SliceClock per thread");
    std::string fallback_reason;
    if (slice_ns_ != 0) {
        period_ns_ = std::max<std::uint64_t>(slice_ns_ / kTicksPerSlice,
                                             static_cast<std::uint64_t>(kMinPeriod.count()));
        // kAuto takes the perf event only if it counts kernel time: a user-
        // time-only event drops the ticks that land in system calls, and a
        // network server's groups live in system calls (measured in
        // docs/BENCHMARKS.md: 1.3x the slice on average, 2x at p90, against
        // 1.0x for the wall timer). A forced kPerfEvent takes what it gets.
        const detail::KernelTicks kernel = preferred == SliceMode::kAuto
                                               ? detail::KernelTicks::kRequired
                                           : kernel_ticks_allowed ? detail::KernelTicks::kPreferred
                                                                  : detail::KernelTicks::kExcluded;
        if (preferred == SliceMode::kAuto && !kernel_ticks_allowed) {
            fallback_reason = "perf_event_open counting kernel time: refused (simulated)";
        } else if (preferred != SliceMode::kWallConfirm) {
            try {
                perf_ = std::make_unique<detail::PerfTaskClock>(period_ns_, kernel);
                mode_ = SliceMode::kPerfEvent;
                tick_unit_ = kSampleBytes;
            } catch (const std::system_error& e) {
                if (preferred == SliceMode::kPerfEvent) throw;
                fallback_reason = e.what();
            }
        }
        if (perf_ == nullptr) wall_ = std::make_unique<detail::WallTicker>(period_ns_);
    }
    dense_period_ns_ = period_ns_;
    may_sparse_ = slice_ns_ != 0 && period_ns_ < static_cast<std::uint64_t>(kSparsePeriod.count());
    calibrate();
    last_overrun_cpu_ = last_cpu_;  // quiet from here
    log_mode(fallback_reason.empty() ? nullptr : fallback_reason.c_str());
    // Last, once nothing can throw: the destructor undoes these.
    tls_clock = this;
    const detail::TickWord* ticks = perf_   ? perf_->ring().head_address()
                                    : wall_ ? wall_->ticks_address()
                                            : &detail::kNoTicks;
    detail::tls_slice = {ticks, UINT64_MAX};
}

SliceClock::~SliceClock() {
    QUIESCE_ASSERT(tls_clock == this, "SliceClock destroyed off its loop thread");
    // Before the members go: need_resched() must not read an unmapped ring.
    detail::tls_slice = {&detail::kNoTicks, UINT64_MAX};
    tls_clock = nullptr;
}

SliceClock* SliceClock::current() noexcept {
    return tls_clock;
}

std::chrono::nanoseconds SliceClock::slice() const noexcept {
    return std::chrono::nanoseconds(slice_ns_);
}

std::chrono::nanoseconds SliceClock::period() const noexcept {
    return std::chrono::nanoseconds(period_ns_);
}

bool SliceClock::ticks_in_kernel() const noexcept {
    return perf_ != nullptr && perf_->counts_kernel();
}

void SliceClock::calibrate() noexcept {
    if (perf_ != nullptr) {
        detail::TaskClockAnchor discard;
        (void)perf_->ring().drain(discard);  // records from before the anchor
        const std::uint64_t cpu = detail::thread_cpu_ns();
        const std::uint64_t count = perf_->read_count();  // counted since open: <= cpu
        anchor_ = {count, detail::mono_ns(), true};
        offset_ = cpu > count ? cpu - count : 0;
    } else {
        anchor_ = {detail::thread_cpu_ns(), detail::mono_ns(), true};
    }
    last_cpu_ = offset_ + anchor_.cpu;
}

void SliceClock::log_mode(const char* fallback_reason) const {
    // Quiet when the preferred source works (debug); a fallback is said once
    // per process at warn, with its reason and its cost.
    static std::atomic<bool> warned{false};
    auto& logger = detail::logger();
    const bool fallback =
        fallback_reason != nullptr || (perf_ != nullptr && !perf_->counts_kernel());
    // relaxed: only picks the level of one log line.
    const auto level = fallback && !warned.exchange(true, std::memory_order_relaxed)
                           ? spdlog::level::warn
                           : spdlog::level::debug;
    if (slice_ns_ == 0) {
        logger.log(level,
                   "slice clock: slices off (slice 0); CPU time from CLOCK_THREAD_CPUTIME_ID");
    } else if (perf_ != nullptr) {
        logger.log(level,
                   "slice clock: perf task-clock ring ({} KiB), slice {} us, tick every {} us "
                   "of thread CPU time ({} us after {} ms without a turn reaching its slice){}",
                   perf_->mapped_bytes() / 1024, slice_ns_ / 1000, period_ns_ / 1000,
                   may_sparse_ ? kSparsePeriod.count() / 1000 : period_ns_ / 1000,
                   kQuietBeforeSparse.count() / 1'000'000,
                   perf_->counts_kernel()
                       ? ""
                       : " (user time only, as perf_event_paranoid allows: groups that spend "
                         "their time in system calls overrun their slices; SliceMode::kAuto "
                         "would use the wall timer)");
    } else {
        logger.log(level,
                   "slice clock: wall timer + CLOCK_THREAD_CPUTIME_ID, slice {} us, tick every {} "
                   "us of wall time while busy ({} us after {} ms of CPU without a turn reaching "
                   "its slice; ~19 us per tick){}{}",
                   slice_ns_ / 1000, period_ns_ / 1000,
                   may_sparse_ ? kSparsePeriod.count() / 1000 : period_ns_ / 1000,
                   kQuietBeforeSparse.count() / 1'000'000,
                   fallback_reason != nullptr
                       ? "; the perf task clock is not usable here (it must count kernel time, "
                         "or syscall-heavy groups overrun their slices): "
                       : "",
                   fallback_reason != nullptr ? fallback_reason : "");
    }
}

std::uint64_t SliceClock::estimate(bool exact) noexcept {
    if (perf_ != nullptr) {
        detail::RingReader& ring = perf_->ring();
        if (ring.head() != ring.tail()) {
            const detail::RingDrain seen = ring.drain(anchor_);
            if (__builtin_expect(seen.lost != 0 || seen.full, 0)) {
                ++ring_overflows_;
                // Switch records may be missing: take the kernel's count.
                anchor_ = {perf_->read_count(), detail::mono_ns(), true};
            }
        }
        return offset_ + anchor_.at(wall_clock_.now());
    }
    // Ticks first: the position can only lag the reading, so a deadline
    // counted from it comes early (and is confirmed), never late.
    wall_ticks_at_read_ = wall_ != nullptr ? wall_->ticks() : 0;
    const std::uint64_t wall = wall_clock_.now();
    if (exact || wall - anchor_.wall >= static_cast<std::uint64_t>(kWallRefresh.count())) {
        // The wall stamp is taken before the CPU read, so at() stays an upper bound.
        anchor_ = {detail::thread_cpu_ns(), wall, true};
    }
    return anchor_.at(wall);
}

std::uint64_t SliceClock::cpu_now_ns() noexcept {
    last_cpu_ = std::max(last_cpu_, estimate(false));
    return last_cpu_;
}

std::uint64_t SliceClock::tick_position() const noexcept {
    // Where the ticks stood at the last clock reading (estimate()): perf, the
    // drain consumed the ring up to tail(); wall, the count read before it.
    return perf_ != nullptr ? perf_->ring().tail() : wall_ticks_at_read_;
}

std::uint64_t SliceClock::ticks_until(std::uint64_t cpu_ns) const noexcept {
    // The CPU time cannot reach cpu_ns before ceil(cpu_ns / period) more
    // ticks (CPU time never outruns the ticks' clock); checking then is never
    // late, and at worst one tick early.
    return std::max<std::uint64_t>(1, (cpu_ns + period_ns_ - 1) / period_ns_);
}

std::uint64_t SliceClock::start_slice(std::chrono::nanoseconds slice) noexcept {
    const std::uint64_t now = cpu_now_ns();
    start_slice_at(slice, now);
    return now;
}

void SliceClock::start_slice_at(std::chrono::nanoseconds slice, std::uint64_t now) noexcept {
    QUIESCE_ASSERT(now == last_cpu_, "start_slice_at() needs the last cpu_now_ns() reading");
    if (wall_ != nullptr) wall_->busy();
    if (may_sparse_ && !ticks_sparse() &&
        now - last_overrun_cpu_ >= static_cast<std::uint64_t>(kQuietBeforeSparse.count())) {
        set_sparse(true);
    }
    expired_ = false;
    slice_start_cpu_ = now;
    never_ = period_ns_ == 0 || slice.count() <= 0;
    if (never_) {
        detail::tls_slice.deadline = UINT64_MAX;
        return;
    }
    const auto length = static_cast<std::uint64_t>(slice.count());
    // The dense period's bound, also while ticks are sparse: a sparse tick
    // that finds the slice not yet used re-arms for the next one.
    threshold_ = length > dense_period_ns_ / 2 ? length - dense_period_ns_ / 2 : 0;
    detail::tls_slice.deadline = tick_position() + ticks_until(threshold_) * tick_unit_;
}

void SliceClock::end_slice() noexcept {
    // A turn that never asked need_resched() may have reached its slice too.
    if (!never_ && !expired_ && last_cpu_ - slice_start_cpu_ >= threshold_) note_overrun(last_cpu_);
    never_ = true;
    expired_ = false;
    detail::tls_slice.deadline = UINT64_MAX;
}

bool SliceClock::expired() noexcept {
    if (expired_) return true;
    if (never_) {
        detail::tls_slice.deadline = UINT64_MAX;
        return false;
    }
    // Wall mode confirms with the exact clock; the estimate may run ahead.
    const std::uint64_t now = perf_ != nullptr ? cpu_now_ns() : estimate(true);
    const std::uint64_t used = now > slice_start_cpu_ ? now - slice_start_cpu_ : 0;
    if (used >= threshold_) {
        expired_ = true;
        note_overrun(now);
        detail::tls_slice.deadline = 0;  // every later call lands here and says true
        return true;
    }
    detail::tls_slice.deadline = tick_position() + ticks_until(threshold_ - used) * tick_unit_;
    return false;
}

void SliceClock::note_overrun(std::uint64_t now) noexcept {
    // Long turns are about: ticks go dense (at once, so that the rest of
    // this turn, if it goes on, and the next ones are cut to their slice).
    last_overrun_cpu_ = now;
    if (ticks_sparse()) set_sparse(false);
}

void SliceClock::set_sparse(bool sparse) noexcept {
    const std::uint64_t period =
        sparse ? static_cast<std::uint64_t>(kSparsePeriod.count()) : dense_period_ns_;
    bool done = false;
    if (perf_ != nullptr) {
        done = perf_->set_period(period);
    } else if (wall_ != nullptr) {
        wall_->set_period(period);
        done = true;
    }
    if (done) {
        period_ns_ = period;
        ++tick_switches_;
        return;
    }
    may_sparse_ = false;
    detail::logger().warn("slice clock: the perf event refused a tick period of {} us ({}); {}",
                          period / 1000, std::strerror(errno),
                          ticks_sparse() ? "ticks stay sparse: long turns may overrun their slices"
                                         : "ticks stay dense");
}

void SliceClock::idle() noexcept {
    if (wall_ != nullptr) wall_->idle();
}

}  // namespace quiesce::sched
