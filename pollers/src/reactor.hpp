// A loop's own libevent event_base (private): the sched::LoopWaiter that
// FdPoller installs on every loop in FdPlacement::kLoops. The loop sleeps in
// the base's epoll_wait instead of on its futex, polls the base between
// turns while busy, and is woken through an eventfd the base watches, so
// readiness of the loop's descriptors reaches it without a thread hop.
//
// Threading: wait() and poll() on the loop's thread; wake() and the watches'
// event_add()/event_del() from any thread (the base has libevent's locks).
#pragma once

#include <chrono>
#include <memory>

#include <quiesce/scheduler/loop_waiter.hpp>

struct event;
struct event_base;

namespace quiesce::pollers::detail {

class Reactor final : public sched::LoopWaiter {
public:
    /// Throws std::system_error when the base or the eventfd cannot be made.
    Reactor();
    ~Reactor() override;
    Reactor(const Reactor&) = delete;
    Reactor& operator=(const Reactor&) = delete;

    void wait(std::chrono::nanoseconds timeout) noexcept override;
    void wake() noexcept override;
    void poll() noexcept override;

    [[nodiscard]] event_base* base() const noexcept { return base_; }

private:
    void release() noexcept;

    event_base* base_ = nullptr;
    int wake_fd_ = -1;
    event* wake_event_ = nullptr;
    event* timeout_event_ = nullptr;
};

}  // namespace quiesce::pollers::detail

namespace quiesce::sched {
class Scheduler;
}

namespace quiesce::pollers::detail {

/// The Reactor of loop `index` of `scheduler`, installed on first use (the
/// FdPoller and the AioPoller in their kLoops placements share it). Throws
/// std::logic_error if the loop has a waiter that is not a Reactor.
/// Thread: any.
std::shared_ptr<Reactor> reactor_for(sched::Scheduler& scheduler, unsigned index);

}  // namespace quiesce::pollers::detail
