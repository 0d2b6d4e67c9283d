// The kWallConfirm tick source: a per-thread POSIX timer on CLOCK_MONOTONIC
// whose signal (kTickSignal, delivered to this thread by SIGEV_THREAD_ID)
// bumps a counter that need_resched() compares. Wall time bounds CPU time
// from above, so a tick says the slice *may* be over; SliceClock confirms
// with one read of CLOCK_THREAD_CPUTIME_ID.
//
// Threading: created, used and destroyed on one thread; the signal handler
// runs on that same thread, so the shared words are lock-free atomics used
// with relaxed order plus signal fences ([WT1]/[WT2]).
#pragma once

#include <signal.h>
#include <time.h>

#include <atomic>
#include <cstdint>

#include <quiesce/scheduler/need_resched.hpp>

namespace quiesce::sched::detail {

/// The real-time signal the ticker uses. It must stay unblocked on loop
/// threads (the constructor unblocks it) and be handled by nobody else.
int tick_signal() noexcept;

class WallTicker {
public:
    /// Starts a timer that ticks every `period_ns` of wall time on the calling
    /// thread. Throws std::system_error when the signal is taken by another
    /// handler or the timer cannot be created.
    explicit WallTicker(std::uint64_t period_ns);
    /// Deletes the timer. A tick already pending is delivered harmlessly.
    ~WallTicker();
    WallTicker(const WallTicker&) = delete;
    WallTicker& operator=(const WallTicker&) = delete;

    /// need_resched()'s counter.
    [[nodiscard]] const TickWord* ticks_address() const noexcept { return &ticks_; }
    [[nodiscard]] std::uint64_t ticks() const noexcept;

    /// The thread is about to block: the next tick stops the timer instead
    /// of interrupting the sleep again (one spurious EINTR at most).
    void idle() noexcept;
    /// The thread runs groups again: clears idle() and restarts the timer if
    /// a tick stopped it (one timer_settime(), only after a long idle).
    void busy() noexcept;

    /// Ticks every `period_ns` from now on (one timer_settime()); the next
    /// tick comes a whole new period from now. Call while busy.
    void set_period(std::uint64_t period_ns) noexcept;

    /// How often busy() restarted a timer that idle() let stop; for tests.
    [[nodiscard]] std::uint64_t restarts() const noexcept { return restarts_; }

private:
    static void on_tick(int signo, siginfo_t* info, void* context) noexcept;
    void arm(bool on) noexcept;

    /// Written by the handler on this thread, read by need_resched() (builtin)
    /// and ticks(); plain word so need_resched() can point at it.
    alignas(8) TickWord ticks_ = 0;
    std::atomic<bool> idle_{false};     ///< set by idle(), cleared by busy()
    std::atomic<bool> stopped_{false};  ///< set by the handler, cleared by busy()
    std::uint64_t period_ns_;
    std::uint64_t restarts_ = 0;  ///< owner-only
    timer_t timer_{};
};

}  // namespace quiesce::sched::detail
