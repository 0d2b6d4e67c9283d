// Event groups: the unit of scheduling, CPU accounting and migration. The
// events of one group run in the order they were posted and never two at
// once, on whichever loop runs the group (it may move between loops between
// two events). One client connection, one session or one timer user is one
// group; thousands of groups share a few loops.
//
//     sched::Group conn = scheduler.make_group({.name = "client 42",
//                                               .on_close = [] { release(); }});
//     conn.post([&] { handle_request(); });          // from any thread
//     sched::Timer t = conn.after(5s, [&] { idle_timeout(); });
//     conn.close();   // runs on_close on the group's loop, drops what is queued
//
// Limits: an event must not block in the kernel (use a poller, or a fiber
// group); an exception escaping an event is logged and closes its group.
//
// Threading: a Group handle is a reference-counted pointer; copies may be used
// from any thread at once. Memory ordering: everything a thread did before
// post() happens-before the posted event runs; one event of a group
// happens-before the next, also across loops.
#pragma once

#include <quiesce/base/config.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include <quiesce/scheduler/callable_node.hpp>
#include <quiesce/scheduler/event.hpp>
#include <quiesce/scheduler/timer.hpp>

namespace quiesce::sched {

namespace detail {
class GroupCore;
void group_ref(GroupCore* core) noexcept;
void group_unref(GroupCore* core) noexcept;
[[nodiscard]] bool group_accepts(const GroupCore* core) noexcept;
/// Queues `node` and schedules the group; false (node untouched) when closed.
[[nodiscard]] bool post_node(GroupCore* core, EventNode* node) noexcept;
Timer arm_timer(GroupCore* core, std::chrono::nanoseconds delay, std::chrono::nanoseconds period,
                std::function<void()> fn);
}  // namespace detail

struct GroupOptions {
    /// Appears in logs, stall warnings and stats ("group N" when empty).
    std::string name{};
    /// Slice multiplier (1-64): a group of weight 2 runs twice as long per turn.
    unsigned weight = 1;
    /// The loop it starts on; -1 spreads new groups round-robin.
    int loop = -1;
    /// Never migrates: stays on `loop` (or the loop it was first given).
    bool pinned = false;
    /// Runs once, on the group's loop, when the group is closed (by close(),
    /// by an escaping exception, or by Scheduler::stop()), before the events
    /// still queued are dropped.
    std::function<void()> on_close{};
};

/// Counters, read with relaxed loads: a snapshot, not a consistent cut.
/// `cpu_ns` sums the thread CPU time of the group's turns. Back-to-back turns
/// on a loop are charged over contiguous stretches (one clock read per turn),
/// so a turn's charge also holds the loop's bookkeeping just before it (tens
/// of ns: the inbox pop, the quiescent state); RCU callbacks, timers, close
/// handlers and sleeps between turns are charged to no group.
struct GroupStats {
    std::uint64_t events = 0;      ///< events run to completion (kDone)
    std::uint64_t cpu_ns = 0;      ///< thread CPU time of its turns (see above)
    std::uint64_t preempted = 0;   ///< turns ended by need_resched() or kAgain
    std::uint64_t migrations = 0;  ///< times it moved to another loop
    int loop = -1;                 ///< the loop it last ran on (or will)
    bool closed = false;
};

class Group {
public:
    Group() noexcept = default;
    Group(const Group& other) noexcept : core_(other.core_) {
        if (core_ != nullptr) detail::group_ref(core_);
    }
    Group(Group&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
    Group& operator=(Group other) noexcept {
        std::swap(core_, other.core_);
        return *this;
    }
    ~Group() {
        if (core_ != nullptr) detail::group_unref(core_);
    }

    /// Queues `fn` (void() or Status()) to run on the group's loop after
    /// everything posted before it. Returns false, dropping `fn`, when the
    /// group is closed. Thread: any. Cost: a node from this thread's cache, one
    /// exchange, and a wake-up system call only if the target loop sleeps.
    template <typename F>
    bool post(F&& fn) const {
        if (!detail::group_accepts(core_)) return false;
        detail::CallableNode* node = detail::make_callable_node(std::forward<F>(fn));
        if (detail::post_node(core_, node)) return true;
        node->op(node, detail::Action::kDrop);
        return false;
    }

    /// Queues `event` unless it is already queued (then the posts coalesce
    /// into one run); returns false when the group is closed. Allocates
    /// nothing. Thread: any.
    bool post(Event& event) const noexcept {
        if (!detail::group_accepts(core_)) return false;
        if (!event.claim()) return true;
        if (detail::post_node(core_, event.node())) return true;
        event.node()->op(event.node(), detail::Action::kDrop);
        return false;
    }

    /// Closes the group: posts fail from now on, and its loop runs on_close
    /// and drops the events still queued (after the event running now, if
    /// any, returns). Returns false if it was already closed. Thread: any.
    bool close() const noexcept;
    [[nodiscard]] bool closed() const noexcept { return !detail::group_accepts(core_); }

    /// Runs `fn` on this group once, after `delay`. Thread: any.
    template <typename F>
    Timer after(std::chrono::nanoseconds delay, F&& fn) const {
        return detail::arm_timer(core_, delay, std::chrono::nanoseconds(0), std::forward<F>(fn));
    }
    /// Runs `fn` on this group every `period` (first after one period) until
    /// cancelled or the group closes. Thread: any.
    template <typename F>
    Timer every(std::chrono::nanoseconds period, F&& fn) const {
        return detail::arm_timer(core_, period, period, std::forward<F>(fn));
    }

    [[nodiscard]] GroupStats stats() const noexcept;
    [[nodiscard]] const std::string& name() const noexcept;
    [[nodiscard]] explicit operator bool() const noexcept { return core_ != nullptr; }
    friend bool operator==(const Group& a, const Group& b) noexcept { return a.core_ == b.core_; }

    /// The group whose event runs on this thread now (empty off loops).
    [[nodiscard]] static Group current() noexcept;

    /// Internal: adopts one reference to `core`.
    static Group adopt(detail::GroupCore* core) noexcept {
        Group group;
        group.core_ = core;
        return group;
    }
    [[nodiscard]] detail::GroupCore* core() const noexcept { return core_; }

private:
    detail::GroupCore* core_ = nullptr;
};

}  // namespace quiesce::sched
