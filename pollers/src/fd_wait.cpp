// Fiber waits on descriptors: wait_ready() (a one-shot watch per wait) and
// FiberFd (one persistent edge-triggered watch for many waits).
//
// Threading: the fiber and the watch's handler are events of the same group,
// so they never run at once and see each other's writes in order; only
// `cancelled` (FiberFd::cancel() from any thread) and the one-shot result
// (written by the handler, read by the fiber: also one group) need atomics.
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

WaitResult wait_ready(FdPoller& poller, int fd, Ready what, std::chrono::nanoseconds timeout) {
    require_fiber("pollers::wait_ready()");
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

struct FiberFd::State {
    sched::FiberWaker waker;
    std::uint8_t latched = 0;  // readiness not yet consumed by a wait
    std::uint8_t waiting = 0;  // what the fiber waits for now
    bool timed_out = false;
    std::atomic<bool> cancelled{false};
    std::atomic<bool> interrupted{false};
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

FiberFd::~FiberFd() = default;  // the watch cancels itself

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
    sched::Timer timer;
    state.timed_out = false;
    if (timeout.count() >= 0) {
        timer = sched::Group::current().after(timeout, [state = state_] {
            state->timed_out = true;
            (void)state->waker.wake();
        });
    }
    struct Done {
        State& state;
        sched::Timer& timer;
        ~Done() {
            state.waiting = 0;
            timer.cancel();  // also when the fiber unwinds
        }
    } done{state, timer};
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
