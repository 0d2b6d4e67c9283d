// A loop's timers (private): a binary min-heap of deadlines on the steady
// clock, guarded by a mutex because any thread may arm or cancel. The loop
// reads `next_deadline()` without the lock after each turn and sleeps no
// longer than it; arming an earlier deadline wakes a sleeping loop.
//
// Threading: arm()/remove() from any thread; fire_due() and clear() on the
// loop thread. Heap fields of a TimerState are guarded by the heap's mutex.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include <quiesce/scheduler/group.hpp>

namespace quiesce::sched::detail {

class Loop;
class TimerHeap;

struct TimerState {
    static constexpr std::size_t kNotQueued = std::numeric_limits<std::size_t>::max();

    Group group;                 // where it posts when it fires
    std::function<void()> fn;    // what the posted event runs, or empty when
    Event* event = nullptr;      // ... it posts this Event instead (fiber wake-ups)
    std::int64_t period_ns = 0;  // 0: one-shot
    /// True until it fired (one-shot), was cancelled, or its group closed.
    /// [T1] acq_rel exchange in cancel() and in the one-shot's run: exactly
    /// one of them wins.
    std::atomic<bool> active{true};

    // Guarded by heap->mutex_.
    TimerHeap* heap = nullptr;
    std::int64_t deadline_ns = 0;
    std::size_t index = kNotQueued;

    /// The posted event's body: runs fn unless cancelled meanwhile.
    void run();
};

class TimerHeap {
public:
    explicit TimerHeap(Loop& loop) noexcept : loop_(loop) {}
    TimerHeap(const TimerHeap&) = delete;
    TimerHeap& operator=(const TimerHeap&) = delete;

    /// Queues `timer` to fire at `deadline_ns`. Thread: any.
    void arm(std::shared_ptr<TimerState> timer, std::int64_t deadline_ns);
    /// Takes `timer` out of the heap if it is still there. Thread: any.
    void remove(TimerState* timer) noexcept;

    /// The earliest deadline, or INT64_MAX. Thread: any (relaxed: a hint;
    /// fire_due() re-reads under the lock).
    [[nodiscard]] std::int64_t next_deadline() const noexcept {
        return next_.load(std::memory_order_relaxed);
    }
    /// The same, ordered with the loop's sleeping flag ([W4]).
    [[nodiscard]] std::int64_t next_deadline_seq_cst() const noexcept {
        return next_.load(std::memory_order_seq_cst);
    }
    /// Fires every timer due at `now_ns` (posts its event), re-arms periodic
    /// ones. Returns how many fired. Thread: the loop.
    std::size_t fire_due(std::int64_t now_ns);
    /// Drops every timer (scheduler stop). Thread: the loop, or any after it ended.
    void clear() noexcept;
    [[nodiscard]] std::size_t size() const;

    /// Steady-clock nanoseconds, the time base of deadlines.
    static std::int64_t now_ns() noexcept;

private:
    void push_locked(std::shared_ptr<TimerState> timer);
    std::shared_ptr<TimerState> pop_locked();
    void remove_locked(std::size_t index) noexcept;
    void sift_up(std::size_t index) noexcept;
    void sift_down(std::size_t index) noexcept;
    void place(std::size_t index, std::shared_ptr<TimerState> timer) noexcept;
    void publish_next() noexcept;

    Loop& loop_;
    mutable std::mutex mutex_;
    std::vector<std::shared_ptr<TimerState>> heap_;  // mutex_
    std::atomic<std::int64_t> next_{std::numeric_limits<std::int64_t>::max()};
};

}  // namespace quiesce::sched::detail
