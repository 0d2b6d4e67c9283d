// Fiber waits on descriptors: wait_ready() (a one-shot watch per wait) and
// FiberFd (one persistent edge-triggered watch for many waits).
//
// Threading: the fiber and the watch's handler are events of the same group,
// so they never run at once and see each other's writes in order; only
// `cancelled` (FiberFd::cancel() from any thread) and the one-shot result
// (written by the handler, read by the fiber: also one group) need atomics.
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>

#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/scheduler/fiber.hpp>

#include "fd_poller_impl.hpp"
#include "fd_watch.hpp"

namespace quiesce::pollers {
namespace {

void require_fiber(const char* what) {
    if (!sched::this_fiber::active())
        throw std::logic_error(std::string(what) + " outside a fiber");
}

}  // namespace

namespace {

// One one-shot watch with `timeout`; its timeout is libevent's (see below).
WaitResult wait_once(FdPoller& poller, int fd, Ready what, std::chrono::nanoseconds timeout) {
    struct Shared {
        std::atomic<int> result{-1};
        sched::FiberWaker waker;
    };
    auto shared = std::make_shared<Shared>();
    shared->waker = sched::this_fiber::waker();
    FdWatch watch;
    const std::error_code error = poller.impl().try_watch(
        fd, sched::Group::current(), what,
        [shared](Ready ready) {
            const bool timed_out = (ready & detail::kTimeoutBit) != 0;
            // relaxed: the fiber reads it in a later event of the same group.
            shared->result.store(
                static_cast<int>(timed_out ? WaitResult::kTimedOut : WaitResult::kReady),
                std::memory_order_relaxed);
            (void)shared->waker.wake();
        },
        WatchOptions{.persistent = false}, timeout, watch);
    if (error) throw std::system_error(error, "pollers::wait_ready(fd " + std::to_string(fd) + ")");
    // relaxed: written by an earlier event of this group (see the file comment).
    while (shared->result.load(std::memory_order_relaxed) < 0) sched::this_fiber::park();
    return static_cast<WaitResult>(shared->result.load(std::memory_order_relaxed));
}

}  // namespace

WaitResult wait_ready(FdPoller& poller, int fd, Ready what, std::chrono::nanoseconds timeout) {
    require_fiber("pollers::wait_ready()");
    using Clock = std::chrono::steady_clock;
    const Clock::time_point deadline =
        timeout.count() < 0 || timeout > std::chrono::hours(24 * 365 * 100)
            ? Clock::time_point::max()
            : Clock::now() + timeout;
    for (;;) {
        const WaitResult result = wait_once(poller, fd, what, timeout);
        if (result != WaitResult::kTimedOut) return result;
        // libevent times the watch on CLOCK_MONOTONIC_COARSE, which may end
        // it up to a tick (4 ms here) early: wait on for what is left.
        const Clock::time_point now = Clock::now();
        if (now >= deadline) return result;
        timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
    }
}

struct FiberFd::State {
    sched::FiberWaker waker;
    std::uint8_t latched = 0;  // readiness not yet consumed by a wait
    std::uint8_t waiting = 0;  // what the fiber waits for now
    bool timed_out = false;
    // The timeout, armed lazily: one timer per FiberFd that stays armed
    // between waits. A wait whose deadline is no earlier than the timer's
    // leaves it alone (a clock read and a store); when it fires, it ends the
    // wait in progress if that wait's deadline has passed, re-arms for that
    // deadline if not, and stays idle if no wait with a deadline is in
    // progress. Waits with one timeout, one after another, cost a timer
    // operation per timeout period instead of two per wait.
    sched::Timer timer;
    std::int64_t armed_for_ns = kNever;  // when `timer` fires; kNever: not armed
    std::int64_t deadline_ns = kNever;   // the wait in progress's; kNever: none
    std::atomic<bool> cancelled{false};
    std::atomic<bool> interrupted{false};

    static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

    static std::int64_t now_ns() noexcept {
        // The scheduler's timer clock (sched::Group::after()).
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    }

    // Makes the timer fire no later than `deadline`. On the fiber's group.
    static void arm(const std::shared_ptr<State>& self, std::int64_t deadline, std::int64_t now) {
        if (self->armed_for_ns <= deadline) return;
        self->timer.cancel();
        self->armed_for_ns = deadline;
        self->timer = sched::Group::current().after(
            std::chrono::nanoseconds(deadline - now), [weak = std::weak_ptr<State>(self)] {
                if (std::shared_ptr<State> state = weak.lock()) fired(state);
            });
    }

    // The timer's event: on the fiber's group, between its turns.
    static void fired(const std::shared_ptr<State>& self) {
        self->armed_for_ns = kNever;
        if (self->waiting == 0 || self->deadline_ns == kNever) return;
        const std::int64_t now = now_ns();
        if (now >= self->deadline_ns) {
            self->timed_out = true;
            (void)self->waker.wake();
        } else {
            arm(self, self->deadline_ns, now);
        }
    }
};

FiberFd::FiberFd(FdPoller& poller, int fd) : fd_(fd), state_(std::make_shared<State>()) {
    require_fiber("pollers::FiberFd");
    state_->waker = sched::this_fiber::waker();
    watch_ = poller.watch(
        fd, sched::Group::current(), kReadWrite,
        [state = state_](Ready ready) {
            state->latched |= static_cast<std::uint8_t>(ready & kReadWrite);
            if ((state->waiting & ready) != 0) (void)state->waker.wake();
        },
        WatchOptions{.persistent = true, .edge_triggered = true});
}

FiberFd::~FiberFd() {
    state_->timer.cancel();  // the watch cancels itself
}

void FiberFd::cancel() noexcept {
    // relaxed: the wake-up below (a post to the group) orders it for the fiber.
    state_->cancelled.store(true, std::memory_order_relaxed);
    watch_.cancel();
    (void)state_->waker.wake();
}

void FiberFd::interrupt() noexcept {
    // [FI1] release, pairs with the acquire exchange in wait().
    state_->interrupted.store(true, std::memory_order_release);
    (void)state_->waker.wake();
}

WaitResult FiberFd::wait_readable(std::chrono::nanoseconds timeout) {
    return wait(kRead, timeout);
}

WaitResult FiberFd::wait_writable(std::chrono::nanoseconds timeout) {
    return wait(kWrite, timeout);
}

WaitResult FiberFd::wait(Ready what, std::chrono::nanoseconds timeout) {
    State& state = *state_;
    state.timed_out = false;
    state.deadline_ns = State::kNever;
    if (timeout.count() >= 0) {
        const std::int64_t now = State::now_ns();
        state.deadline_ns =
            timeout.count() >= State::kNever - now ? State::kNever - 1 : now + timeout.count();
        State::arm(state_, state.deadline_ns, now);
    }
    struct Done {
        State& state;
        ~Done() {
            state.waiting = 0;  // also when the fiber unwinds
            state.deadline_ns = State::kNever;
        }
    } done{state};
    state.waiting = what;
    for (;;) {
        // relaxed: see cancel().
        if (state.cancelled.load(std::memory_order_relaxed)) return WaitResult::kCancelled;
        // [FI1] acquire: what interrupt()'s caller did is visible.
        if (state.interrupted.load(std::memory_order_relaxed) &&
            state.interrupted.exchange(false, std::memory_order_acquire))
            return WaitResult::kInterrupted;
        if ((state.latched & what) != 0) {
            state.latched &= static_cast<std::uint8_t>(~what);
            return WaitResult::kReady;
        }
        if (state.timed_out) return WaitResult::kTimedOut;
        sched::this_fiber::park();
    }
}

}  // namespace quiesce::pollers
