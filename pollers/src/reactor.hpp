// A loop's own libevent event_base (private): the sched::LoopWaiter that
// FdPoller installs on every loop in FdPlacement::kLoops. The loop sleeps in
// the base's epoll_wait instead of on its futex, polls the base between
// turns while busy, and is woken through an eventfd the base watches, so
// readiness of the loop's descriptors reaches it without a thread hop.
//
// A sleep with a deadline is timed by a timerfd of the reactor's own, set to
// the absolute deadline and left alone while the deadline stays the same: a
// busy loop's polls and its sleeps for the same timer cost no timer system
// call. (libevent's EVENT_BASE_FLAG_PRECISE_TIMER would time them with its
// own timerfd, set again before every epoll_wait, polls included.)
//
// Threading: wait() and poll() on the loop's thread; wake() and the watches'
// event_add()/event_del() from any thread (the base has libevent's locks).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <quiesce/scheduler/loop_waiter.hpp>

struct event;
struct event_base;

namespace quiesce::pollers::detail {

/// A source on a loop's reactor that batches work between polls (an io_uring
/// ring per loop): the reactor calls it on the loop's thread before each poll
/// and before each sleep.
class ReactorSource {
public:
    virtual ~ReactorSource() = default;
    /// Submit what was batched since the last call and deliver what is done;
    /// true if it delivered anything.
    virtual bool flush() noexcept = 0;
};

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

    /// Adds a source; any thread. It is called from the loop's next poll or
    /// sleep on.
    void add_source(ReactorSource* source);
    /// Removes a source; any thread. When it returns, no call to `source` is
    /// in progress or will start (the loop's calls hold the same mutex).
    void remove_source(ReactorSource* source) noexcept;
    /// Flushes every source now; true if one delivered anything. Thread: the
    /// loop's (a fiber that waits on its own loop for a request queued there).
    bool flush() noexcept;

private:
    void release() noexcept;
    /// Makes the timerfd fire at now + `timeout` unless it is set for then
    /// already (within kTimerSlackNs). Thread: the loop's.
    void arm_timer(std::chrono::nanoseconds timeout) noexcept;
    static void on_timer(int fd, short what, void* self) noexcept;

    /// Two deadlines closer than this are the same timer (the loop computes
    /// one deadline from two clock reads, a few ns apart).
    static constexpr std::int64_t kTimerSlackNs = 10'000;
    static constexpr std::int64_t kDisarmed = -1;

    std::mutex sources_mutex_;
    std::vector<ReactorSource*> sources_;  // sources_mutex_
    // relaxed: a hint that spares the mutex when there is no source; a source
    // added meanwhile is seen at the next poll.
    std::atomic<bool> have_sources_{false};

    event_base* base_ = nullptr;
    int wake_fd_ = -1;
    event* wake_event_ = nullptr;
    int timer_fd_ = -1;
    event* timer_event_ = nullptr;
    // The loop's thread only (wait(), poll() and the base's callbacks run there).
    std::int64_t timer_armed_ns_ = kDisarmed;  // CLOCK_MONOTONIC; kDisarmed: not set
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
