// FiberWaitQueue: fibers waiting for room in something guarded by the
// caller's mutex (AIO admission, the offload queue), woken in FIFO order.
//
//     std::unique_lock lock(mutex_);
//     while (full()) waiters_.wait(lock);   // a fiber; parks
//     ...
//     // whoever frees a slot, with mutex_ held:
//     waiters_.notify_one();
//
// Why not a deque of FiberWakers: a fiber's park() also returns for a permit
// left by an earlier, unrelated wake() (a call whose answer it saw before it
// parked). A fiber that left a plain deque on such a return and queued again
// would stand in it twice; the stale entry later takes a notification meant
// for another waiter, which then sleeps with room free and nobody to wake it.
// Here each wait is one node on the fiber's stack, in the queue until a
// notifier takes it out: a return from park() that is not that notification
// parks again.
//
// A notification never goes missing either: a notified fiber whose group
// closes before it runs again (its stack unwinds through park()) passes the
// notification on to the next waiter as it leaves.
//
// Threading: every member with the caller's mutex held; wait() on a fiber.
#pragma once

#include <mutex>

#include <quiesce/scheduler/fiber.hpp>

namespace quiesce::pollers::detail {

class FiberWaitQueue {
public:
    FiberWaitQueue() = default;
    FiberWaitQueue(const FiberWaitQueue&) = delete;
    FiberWaitQueue& operator=(const FiberWaitQueue&) = delete;

    /// Parks the calling fiber until notify_one() picks it or notify_all();
    /// `lock` (held on entry) is released while parked and held again on
    /// return. The caller re-checks its condition: a waiter that loses the
    /// room to a caller that never waited waits again, at the back. Yields:
    /// yes. If the fiber's group closes meanwhile, leaves the queue (passing
    /// on a notification it had taken) and lets the cancellation pass.
    void wait(std::unique_lock<std::mutex>& lock);
    /// Wakes the first waiter whose group is still open. Returns whether one
    /// was woken.
    bool notify_one() noexcept;
    /// Wakes every waiter.
    void notify_all() noexcept;
    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

private:
    enum class State { kWaiting, kNotified, kDeclined };
    struct Node {
        sched::FiberWaker waker;
        State state = State::kWaiting;
        Node* prev = nullptr;
        Node* next = nullptr;
    };
    void push_back(Node& node) noexcept;
    void erase(Node& node) noexcept;
    Node* head_ = nullptr;
    Node* tail_ = nullptr;
};

}  // namespace quiesce::pollers::detail
