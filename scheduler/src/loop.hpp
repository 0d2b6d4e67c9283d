// One loop: a thread pinned to a CPU that runs event groups from its inbox,
// reports RCU quiescent states between them, fires its timers, and sleeps on a
// futex when it has nothing to do (private).
//
// Threading: schedule(), wake(), request_steal(), the timer heap and stats()
// are called from any thread; everything else runs on the loop's own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <quiesce/base/mpsc_queue.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "cpu_sample.hpp"
#include "group_core.hpp"
#include "timer_heap.hpp"

namespace quiesce::rcu {
class QsbrReader;
}
namespace quiesce::sched {
class SliceClock;
}

namespace quiesce::sched::detail {

/// A plain FIFO of groups waiting on one loop: no atomic instruction, the
/// loop's thread only (and the stopper after the join).
struct RunFifo {
    RunLink* head = nullptr;
    RunLink* tail = nullptr;
    std::int64_t count = 0;
    void push(RunLink* link) noexcept;
    RunLink* pop() noexcept;
    [[nodiscard]] bool empty() const noexcept { return head == nullptr; }
};

class SchedulerImpl;

class Loop {
public:
    Loop(SchedulerImpl& scheduler, unsigned index, int cpu);
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    /// Starts the thread and waits until it has set itself up (its QSBR
    /// reader, slice clock and signal stack); rethrows its set-up error.
    void start();
    /// Asks the loop to leave once its inbox is empty, and joins it.
    void stop_and_join();

    /// Puts `group` (holding the scheduling token and one reference) on this
    /// loop's run queue, waking the loop if it sleeps. Thread: any.
    void schedule(GroupCore* group) noexcept;
    /// Wakes the loop if it sleeps (no system call if it does not).
    void wake() noexcept;
    /// Hands `waiter` to the loop, which adopts it at its next scheduling
    /// point. Throws std::logic_error if it has one. Thread: any.
    void set_waiter(std::shared_ptr<LoopWaiter> waiter);
    /// The waiter handed over (adopted or not), or null. Thread: any.
    [[nodiscard]] std::shared_ptr<LoopWaiter> waiter() const;
    /// Asks this loop to hand some ready groups to loop `thief`. Thread: any.
    void request_steal(unsigned thief) noexcept;
    /// Pops every group left in the inbox (after the thread ended) and drops
    /// its events and its scheduling reference.
    void drain_after_exit() noexcept;

    [[nodiscard]] TimerHeap& timers() noexcept { return timers_; }
    [[nodiscard]] unsigned index() const noexcept { return index_; }
    [[nodiscard]] int tid() const noexcept {
        return tid_.load(std::memory_order_acquire);  // pairs with the store in thread_main()
    }
    [[nodiscard]] LoopStats stats() const noexcept;
    /// Approximate number of groups waiting in the inbox.
    [[nodiscard]] std::int64_t ready() const noexcept {
        // relaxed: a load estimate
        return ready_local_.load(std::memory_order_relaxed) +
               ready_remote_.load(std::memory_order_relaxed);
    }
    /// Busy fraction of the last balance interval, in 1/1024ths.
    [[nodiscard]] std::uint32_t load() const noexcept {
        return load_.load(std::memory_order_relaxed);  // relaxed: a load estimate
    }
    /// The loop's last (wall, CPU) sample: at start, on each wake-up, and at
    /// least every 10 ms while it runs turns. For the stall hook.
    [[nodiscard]] CpuSample cpu_sample() const noexcept { return sampler_.read(); }
    /// Events started so far (unchanged while one event runs). Thread: any.
    [[nodiscard]] std::uint64_t event_seq() const noexcept {
        return event_seq_.load(std::memory_order_relaxed);  // relaxed: a watcher's snapshot
    }
    /// The group running now (stall hook; read under the registry mutex).
    [[nodiscard]] GroupCore* running() const noexcept {
        return current_.load(std::memory_order_acquire);  // [L1] pairs with the store in run_turn()
    }

    /// The group whose event runs on this thread, or null.
    static GroupCore* current_group() noexcept;
    /// This thread's loop, or null.
    static Loop* current() noexcept;
    [[nodiscard]] SchedulerImpl* scheduler_of() const noexcept { return &scheduler_; }

    /// Without timers, the loop reads the clock (for balancing) once per this
    /// many turns.
    static constexpr unsigned kTurnsPerClockRead = 16;

private:
    void thread_main(std::promise<void>& ready) noexcept;
    void run();
    void run_turn(GroupCore* group);
    bool run_events(GroupCore* group);
    void finish_turn(GroupCore* group, bool more, bool open) noexcept;
    void finish_close(GroupCore* group) noexcept;
    [[noreturn, gnu::cold]] void report_open_read_section(const GroupCore* group) noexcept;
    void fail_group(GroupCore* group, const char* what) noexcept;
    void requeue(GroupCore* group, bool spent) noexcept;
    void between_turns();
    void serve_steal() noexcept;
    void balance(std::int64_t now_ns) noexcept;
    void idle();
    void steal_from_busiest() noexcept;
    void wake_a_sleeper() noexcept;
    void hand_over(Loop& to, std::int64_t count) noexcept;
    void adopt_waiter() noexcept;
    bool spin_before_idle() noexcept;

    SchedulerImpl& scheduler_;
    const unsigned index_;
    const int cpu_;
    std::thread thread_;
    TimerHeap timers_;

    // Owned by the loop thread (set up in thread_main()).
    rcu::QsbrReader* reader_ = nullptr;
    SliceClock* clock_ = nullptr;
    std::chrono::nanoseconds slice_{0};
    std::int64_t next_balance_ns_ = 0;
    std::uint64_t busy_at_balance_ = 0;
    unsigned turns_since_clock_ = 0;
    /// The CPU time at the end of the last turn. While `turn_end_fresh_`
    /// (nothing but bookkeeping ran since: no sleep, callbacks, timers,
    /// balancing or close handler) the next turn starts its slice there
    /// instead of reading the clock again.
    std::uint64_t turn_end_cpu_ = 0;
    bool turn_end_fresh_ = false;
    /// The loop's waiter, once adopted (loop thread), and the CPU time it was
    /// last polled at; waiter_ptr_ publishes it to wakers ([LW1]).
    std::shared_ptr<LoopWaiter> waiter_;
    std::uint64_t last_poll_cpu_ = 0;
    std::uint64_t poll_interval_ns_ = 0;
    std::uint64_t idle_spin_ns_ = 0;

    alignas(128) base::MpscQueue<RunLink, &RunLink::next> inbox_;
    // Groups this loop scheduled itself (from its own events and its
    // waiter's callbacks) and the ones it requeues: a plain FIFO, no locked
    // instruction. What other threads pushed to the inbox is moved behind
    // them before each turn and before each local push, so groups run in the
    // order they became ready and neither side starves. Loop thread only (and the
    // stopper after the join).
    RunFifo local_;
    // Groups whose last turn spent its whole slice and that still have work
    // (a hog giving way): a FIFO of their own. All of them together get one
    // turn per light phase: after such a turn, the groups then in the local
    // queue (`fresh_owed_` of them) run first, and the local queue keeps
    // running (groups that became ready since included) until it is empty
    // or the phase has used a slice of CPU time. A group that gave way early
    // waits for at most one spent slice and the groups ahead of it, the light
    // groups together get about half the loop or more when hogs wait, and the
    // hogs still get a turn per phase. Loop thread only.
    RunFifo spent_;
    std::int64_t fresh_owed_ = 0;
    std::uint64_t light_phase_start_ = 0;  // turn_end_cpu_ when the phase began
    void start_light_phase() noexcept {
        fresh_owed_ = local_.count;
        light_phase_start_ = turn_end_cpu_;
    }
    [[nodiscard]] bool light_phase_over() const noexcept {
        return fresh_owed_ <= 0 &&
               turn_end_cpu_ - light_phase_start_ >= static_cast<std::uint64_t>(slice_.count());
    }
    RunLink* pop_any() noexcept;
    void take_inbox() noexcept;
    [[nodiscard]] bool nothing_queued() const noexcept {
        return local_.empty() && spent_.empty() && inbox_.empty();
    }
    /// 1 while the loop sleeps or is about to; futex word. [W1]/[W2].
    alignas(128) std::atomic<std::uint32_t> sleeping_{0};
    std::atomic<bool> exit_{false};
    std::atomic<std::int32_t> steal_to_{-1};  // a thief's index, or -1
    // The groups waiting (inbox and local queue), as two counts so that the
    // loop's own pushes and pops (most of them) need no atomic
    // read-modify-write: other threads add to ready_remote_; the loop alone
    // writes ready_local_ (it goes negative as the loop pops what others
    // pushed). ready() sums them.
    std::atomic<std::int64_t> ready_remote_{0};
    std::atomic<std::int64_t> ready_local_{0};
    void add_ready_local(std::int64_t delta) noexcept {
        // relaxed: a load estimate with one writer (this loop)
        ready_local_.store(ready_local_.load(std::memory_order_relaxed) + delta,
                           std::memory_order_relaxed);
    }
    std::atomic<std::uint32_t> load_{0};
    std::atomic<GroupCore*> current_{nullptr};
    std::atomic<int> tid_{0};
    std::atomic<std::uint64_t> event_seq_{0};  // written by the loop only
    CpuSampler sampler_;
    // A waiter handed over by set_waiter(): waiter_mutex_ guards it until the
    // loop adopts it; waiter_pending_ tells the loop (relaxed: a hint, the
    // mutex orders the handover).
    mutable std::mutex waiter_mutex_;
    std::shared_ptr<LoopWaiter> pending_waiter_;  // waiter_mutex_
    std::shared_ptr<LoopWaiter> installed_;       // waiter_mutex_: handed over or adopted
    std::atomic<bool> waiter_pending_{false};
    std::atomic<LoopWaiter*> waiter_ptr_{nullptr};
    // Set once by the loop thread before start() returns (ordered by the
    // promise), read by stats().
    SliceMode slice_mode_ = SliceMode::kAuto;
    bool slice_ticks_in_kernel_ = false;

    // Counters: written by the loop thread only (relaxed), read by stats().
    std::atomic<std::uint64_t> turns_{0};
    std::atomic<std::uint64_t> events_{0};
    std::atomic<std::uint64_t> sleeps_{0};
    std::atomic<std::uint64_t> wakeups_{0};  // written by wakers (relaxed RMW)
    std::atomic<std::uint64_t> stolen_{0};
    std::atomic<std::uint64_t> given_{0};
    std::atomic<std::uint64_t> busy_cpu_ns_{0};
};

}  // namespace quiesce::sched::detail
