// The scheduler: one loop thread per CPU, each running event groups
// cooperatively, each a QSBR reader of the default RCU domain.
//
//     sched::Scheduler scheduler({.threads = 2});       // loops start here
//     sched::Group g = scheduler.make_group({.name = "worker"});
//     g.post([] { /* runs on a loop; may read RCU data freely */ });
//     scheduler.stop();                                 // or the destructor
//
// A loop pops a ready group, runs its events until the group is empty or its
// slice of thread CPU time is spent (need_resched()), reports a quiescent
// state, runs a budgeted batch of its own RCU callbacks, and moves on. With
// nothing to run it goes RCU-offline and sleeps on a futex until posted to.
// Idle loops take ready groups from busy ones; a periodic balancer evens out
// loops by recent CPU use. See scheduler/README.md for the algorithm.
//
// Threading: every member may be called from any thread except where noted.
#pragma once

#include <quiesce/base/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <quiesce/scheduler/group.hpp>
#include <quiesce/scheduler/loop_waiter.hpp>
#include <quiesce/scheduler/need_resched.hpp>
#include <quiesce/scheduler/slice_mode.hpp>

namespace quiesce::sched {

namespace detail {
class SchedulerImpl;
}

struct SchedulerOptions {
    /// Loop threads; 0 = one per CPU in the process's affinity mask. More than
    /// that many CPUs is allowed (loops then share CPUs).
    unsigned threads = 0;
    /// Pin loop i to the i-th CPU of the affinity mask.
    bool pin_threads = true;
    /// CPU time a group may run per turn before need_resched() turns true;
    /// zero means never (groups run until empty, at most max_events_per_turn).
    std::chrono::microseconds slice{500};
    /// How need_resched() learns that the slice is spent (see need_resched.hpp).
    SliceMode slice_mode = SliceMode::kAuto;
    /// Events a group may run per turn even when the slice is not spent, so a
    /// group that keeps posting to itself cannot hold a loop with slice 0.
    unsigned max_events_per_turn = 1024;
    /// RCU callbacks a loop runs between two groups.
    std::size_t callback_budget = 64;
    /// Idle loops take ready groups from busy ones.
    bool work_stealing = true;
    /// How often loops compare recent CPU use and move groups (0 = never).
    std::chrono::milliseconds balance_interval{10};
    /// Usable bytes of each fiber stack.
    std::size_t fiber_stack_size = 64 * 1024;
    /// Bytes of the guard region below each fiber stack (whole pages). Larger
    /// than any stack frame the fibers' code has, so that a frame built
    /// without -fstack-clash-protection cannot jump over it: it costs address
    /// space only (scheduler/README.md, "Fiber stacks").
    std::size_t fiber_guard_size = 64 * 1024;
    /// Thread names are "NAME/i"; stall warnings and logs use it too.
    std::string name = "loop";
    /// A loop with a LoopWaiter (set_loop_waiter()) polls it between turns
    /// once per this much of its CPU time while it is busy: the longest an
    /// in-loop source waits for a busy loop (plus one turn).
    std::chrono::microseconds poll_interval{50};
    /// An idle loop looks for work this long (wall time, never past its next
    /// timer) before it sleeps, so that events arriving microseconds apart
    /// (readiness, results handed back by other threads) are taken without a
    /// sleep and a wake-up. A loop with a LoopWaiter polls it meanwhile; one
    /// without calls sched_yield() between looks, so that a thread waiting
    /// for its CPU runs. 0 turns it off. Costs up to this much CPU each time
    /// the loop goes idle.
    std::chrono::microseconds idle_spin{20};
};

/// One loop's counters (relaxed snapshot).
struct LoopStats {
    int cpu = -1;                   ///< pinned CPU, or -1
    std::uint64_t turns = 0;        ///< group turns run
    std::uint64_t events = 0;       ///< events run
    std::uint64_t sleeps = 0;       ///< times it went idle
    std::uint64_t wakeups = 0;      ///< futex wake-ups other threads sent it
    std::uint64_t stolen = 0;       ///< groups it took from other loops
    std::uint64_t given = 0;        ///< groups it handed to other loops
    std::uint64_t busy_cpu_ns = 0;  ///< thread CPU time of group turns (see GroupStats)
    /// How need_resched() measures slices on this loop (kAuto resolved), and
    /// whether its perf event counts kernel time (see SliceMode).
    SliceMode slice_mode = SliceMode::kAuto;
    bool slice_ticks_in_kernel = false;
};

/// The fiber stack pool (scheduler/README.md, "Fiber stacks").
struct FiberStackStats {
    std::uint64_t in_use = 0;   ///< stacks fibers hold now
    std::uint64_t mapped = 0;   ///< stack slots mapped (in use, free or reserved)
    std::uint64_t guarded = 0;  ///< slots with a guard region the hardware enforces
    std::uint64_t canary = 0;   ///< slots checked by a canary only (mapping budget used up)
    /// "MADV_GUARD_INSTALL" (Linux 6.13+), "mprotect", or "auto" before the
    /// first fiber.
    const char* guard_mode = "auto";
};

/// What one loop runs right now (Scheduler::activity()): for live dumps and
/// stall detectors that watch the loops from another thread.
struct LoopActivity {
    unsigned loop = 0;
    int tid = 0;                  ///< the loop thread's kernel thread id
    std::uint64_t events = 0;     ///< events finished so far: unchanged while one runs
    std::uint64_t turns = 0;      ///< group turns finished so far
    std::uint64_t event_seq = 0;  ///< events started so far: unchanged while one event runs
    std::int64_t queued = 0;      ///< groups waiting for it (approximate)
    bool running = false;         ///< a group's event runs now
    std::uint64_t group_id = 0;   ///< the running group's id (0 when none)
    std::string group_name{};     ///< and its name
};

struct SchedulerStats {
    std::vector<LoopStats> loops;
    std::uint64_t groups = 0;  ///< groups alive now
    FiberStackStats fiber_stacks;
};

class Scheduler {
public:
    /// Starts the loops. Throws std::system_error when a thread, futex or
    /// signal stack cannot be set up, std::invalid_argument on bad options.
    explicit Scheduler(SchedulerOptions options = {});
    /// stop(), if not done yet.
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    /// A new, open, idle group. Throws std::logic_error after stop().
    [[nodiscard]] Group make_group(GroupOptions options = {});

    /// A fiber-backed group: its fiber runs `main` on a loop (see fiber.hpp)
    /// and the group closes when `main` returns. Its stack is reserved here:
    /// throws std::system_error (saying why) when none can be mapped, and as
    /// make_group().
    Group spawn(std::function<void()> main, GroupOptions options = {});

    /// Gives loop `index` a waiter: from its next scheduling point on, the
    /// loop sleeps in `waiter->wait()` instead of on its futex, is woken with
    /// `waiter->wake()`, and polls `waiter->poll()` while busy (see
    /// loop_waiter.hpp). Once per loop; the scheduler keeps the waiter until
    /// it is destroyed. Throws std::logic_error if the loop has one already
    /// or `index` is out of range. Thread: any.
    void set_loop_waiter(unsigned index, std::shared_ptr<LoopWaiter> waiter);
    /// The waiter of loop `index` (set_loop_waiter()), or null. Thread: any.
    [[nodiscard]] std::shared_ptr<LoopWaiter> loop_waiter(unsigned index) const;

    /// Stops accepting posts (closes every group: each loop lets the event it
    /// runs finish, then runs close handlers and drops what is queued), joins
    /// every loop thread and waits for every RCU callback queued so far
    /// (Domain::barrier()). Idempotent. Precondition: not on a loop thread.
    void stop();

    [[nodiscard]] unsigned loop_count() const noexcept;
    [[nodiscard]] const SchedulerOptions& options() const noexcept;
    [[nodiscard]] SchedulerStats stats() const;
    /// A snapshot of what every loop runs now. Thread: any. Cost: a mutex
    /// (the group registry's) and a string copy per running group.
    [[nodiscard]] std::vector<LoopActivity> activity() const;

    /// The scheduler whose loop runs the calling thread, or null.
    [[nodiscard]] static Scheduler* current() noexcept;
    /// The index of the calling thread's loop, or -1 off loops.
    [[nodiscard]] static int current_loop() noexcept;

    /// Internal.
    detail::SchedulerImpl& impl() noexcept { return *impl_; }

private:
    std::unique_ptr<detail::SchedulerImpl> impl_;
};

}  // namespace quiesce::sched
