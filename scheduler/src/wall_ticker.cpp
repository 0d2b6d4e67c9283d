// kWallConfirm's timer and its signal handler.
//
// Cost, measured here: a timer signal takes ~19 µs of the interrupted
// thread (median gap in a spinning loop, against ~12 µs for a perf hrtimer
// sample), and the timer stops while the loop sleeps. Unlike the perf event
// it costs nothing at the loop's context switches, which is why the
// framework's servers use it (scheduler/README.md, "Which clock"); the
// scheduler's kAuto falls back to it where perf is refused. Rejected: one-shot arming per slice
// (a 1.5 µs timer_settime() at every group switch); a shared ticker thread (a wake-up and a context
// switch per tick on these 2 vCPUs, and it must learn when loops sleep); CLOCK_THREAD_CPUTIME_ID
// timers (they expire only on the 4 ms scheduler tick).
//
// Threading: see wall_ticker.hpp.
#include "wall_ticker.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <system_error>

#include <quiesce/base/assert.hpp>
#include <quiesce/base/signals.hpp>

namespace quiesce::sched::detail {
namespace {

// The calling thread's ticker, for the handler; initial-exec TLS is safe to
// read in a signal handler.
[[gnu::tls_model("initial-exec")]] constinit thread_local WallTicker* tls_ticker = nullptr;

void install_handler(void (*handler)(int, siginfo_t*, void*)) {
    static std::once_flag once;
    static int error = 0;
    std::call_once(once, [&] {
        struct sigaction old {};
        if (sigaction(tick_signal(), nullptr, &old) != 0) {
            error = errno;
            return;
        }
        const bool ours = (old.sa_flags & SA_SIGINFO) != 0 && old.sa_sigaction == handler;
        if (!ours && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
            error = EBUSY;  // someone else's handler: do not steal the signal
            return;
        }
        struct sigaction action {};
        action.sa_sigaction = handler;
        // SA_RESTART: read/write/futex resume after a tick (epoll_wait and
        // nanosleep still return EINTR, as for any signal). SA_ONSTACK: a
        // tick landing on a nearly full fiber stack uses the thread's
        // sigaltstack when one is set.
        action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        if (sigaction(tick_signal(), &action, nullptr) != 0) error = errno;
    });
    if (error != 0) throw std::system_error(error, std::generic_category(), "sigaction(tick)");
}

}  // namespace

int tick_signal() noexcept {
    return base::tick_signal();  // left unblocked by base::SignalBlock
}

WallTicker::WallTicker(std::uint64_t period_ns) : period_ns_(period_ns) {
    QUIESCE_CHECK(tls_ticker == nullptr, "one WallTicker per thread");
    install_handler(&WallTicker::on_tick);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, tick_signal());
    if (int e = pthread_sigmask(SIG_UNBLOCK, &set, nullptr); e != 0)
        throw std::system_error(e, std::generic_category(), "pthread_sigmask(tick)");

    sigevent event{};
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = tick_signal();
    event._sigev_un._tid = gettid();  // sigev_notify_thread_id: glibc 2.36 lacks the name
    if (timer_create(CLOCK_MONOTONIC, &event, &timer_) != 0)
        throw std::system_error(errno, std::generic_category(), "timer_create(tick)");
    tls_ticker = this;
    // [W0a] pairs with [W0c] in on_tick(): tls_ticker is set before the
    // timer can fire (the compiler may not sink the store below arm()).
    std::atomic_signal_fence(std::memory_order_seq_cst);
    arm(true);
}

WallTicker::~WallTicker() {
    QUIESCE_ASSERT(tls_ticker == this, "WallTicker destroyed off its thread");
    timer_delete(timer_);
    // [W0b] pairs with [W0c] in on_tick(): the timer is gone before
    // tls_ticker is cleared; a tick still pending then finds null.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    tls_ticker = nullptr;
}

std::uint64_t WallTicker::ticks() const noexcept {
    return __atomic_load_n(&ticks_, __ATOMIC_RELAXED);  // relaxed: same-thread handler
}

void WallTicker::arm(bool on) noexcept {
    itimerspec spec{};
    if (on) {
        // Only the thread arms (the handler only disarms): period_ns_ is
        // never read in the handler.
        const auto period = static_cast<long>(period_ns_);
        spec.it_interval = {period / 1'000'000'000, period % 1'000'000'000};
        spec.it_value = spec.it_interval;
    }
    // Cannot fail with a valid timer and an in-range value.
    QUIESCE_CHECK(timer_settime(timer_, 0, &spec, nullptr) == 0, "timer_settime(tick) failed");
}

void WallTicker::on_tick(int, siginfo_t*, void*) noexcept {
    const int saved_errno = errno;
    // [W0c] pairs with [W0a] in the constructor and [W0b] in the destructor.
    WallTicker* self = tls_ticker;
    if (self != nullptr) {
        // relaxed: only this thread reads it, and the handler interrupts it.
        // Coalesced expirations (si_overrun) count once: a tick only asks
        // for a confirmation, it does not measure.
        __atomic_store_n(&self->ticks_, __atomic_load_n(&self->ticks_, __ATOMIC_RELAXED) + 1,
                         __ATOMIC_RELAXED);
        // [WT2] pairs with [WT1] in busy(): the handler runs whole between two
        // instructions of the thread it interrupts, so it either sees idle_
        // cleared or sets stopped_ before busy() loads it. relaxed suffices.
        if (self->idle_.load(std::memory_order_relaxed)) {
            self->arm(false);  // timer_settime() is async-signal-safe
            self->stopped_.store(true, std::memory_order_relaxed);
        }
    }
    errno = saved_errno;
}

void WallTicker::set_period(std::uint64_t period_ns) noexcept {
    period_ns_ = period_ns;
    // Busy (the slice clock calls this between busy() and idle()), so the
    // handler leaves the timer running: re-arm it with the new period.
    // relaxed: as in busy(), pairs with the handler's store of stopped_
    // ([WT2] in on_tick()), which runs whole between two of our instructions.
    if (!stopped_.load(std::memory_order_relaxed)) arm(true);
}

void WallTicker::idle() noexcept {
    idle_.store(true, std::memory_order_relaxed);  // relaxed: read by our own handler
}

void WallTicker::busy() noexcept {
    idle_.store(false, std::memory_order_relaxed);  // relaxed: read by our own handler
    // [WT1] pairs with [WT2] in on_tick(): a handler that runs after this fence
    // sees idle_ false and leaves the timer alone; one that ran before it has
    // set stopped_, which the load below sees.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (__builtin_expect(stopped_.load(std::memory_order_relaxed), 0)) {
        stopped_.store(false, std::memory_order_relaxed);
        arm(true);
        ++restarts_;
    }
}

}  // namespace quiesce::sched::detail
