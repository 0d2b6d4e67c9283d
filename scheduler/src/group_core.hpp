// The shared state of one event group (private). A group is scheduled at most
// once at a time: `scheduled` turns true when the first event arrives on an
// idle group, and only the loop that holds it in its run queue runs it.
//
// Threading: producers (any thread) push to `queue` and read `closed`,
// `scheduled` and `home`; the loop that currently owns the scheduling token
// (scheduled == true and the group popped from its inbox) is the only one that
// touches the consumer fields (`again`, `close_done`, the queue's head). The
// token passes between loops through the inboxes ([S3]) and through
// `scheduled` ([S1]/[S2]), which order one owner's accesses before the next's.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <quiesce/base/mpsc_queue.hpp>
#include <quiesce/scheduler/event.hpp>
#include <quiesce/scheduler/group.hpp>

namespace quiesce::sched::detail {

class SchedulerImpl;
struct FiberState;
struct Registry;

/// The link of a group in a loop's inbox (a separate base, so that the inbox
/// sentinel is a bare link and not a whole group).
struct RunLink {
    RunLink* next = nullptr;
};

using EventQueue = base::MpscQueue<EventNode, &EventNode::next>;

class GroupCore : public RunLink {
public:
    GroupCore(SchedulerImpl& scheduler, GroupOptions options, unsigned loop, std::uint64_t id);
    /// Drops every event still queued. Runs on the thread of the last unref.
    ~GroupCore();
    GroupCore(const GroupCore&) = delete;
    GroupCore& operator=(const GroupCore&) = delete;

    void ref() noexcept {
        refs_.fetch_add(1, std::memory_order_relaxed);  // relaxed: the caller already holds one
    }
    /// Takes a reference unless the count already reached zero (the group is
    /// being destroyed). Used by the registry walk in stop().
    bool try_ref() noexcept;
    void unref() noexcept;

    /// Schedules the group on its home loop if it is idle. Thread: any.
    void notify() noexcept;
    bool close() noexcept;

    /// Consumer side: the next event to run (a kAgain event first), or null.
    EventNode* next_event() noexcept {
        if (again != nullptr) {
            EventNode* event = again;
            again = nullptr;
            return event;
        }
        return queue.pop();
    }
    /// Consumer side: drops (without running) every event queued now.
    void drop_pending() noexcept;

    // --- fixed at creation
    const std::uint64_t id;
    const std::string name;
    const unsigned weight;
    const bool pinned;
    std::function<void()> on_close;  // consumer side; cleared once run
    FiberState* fiber = nullptr;     // fiber-backed groups only (set before the first post)

    // --- producers and consumer
    EventQueue queue;
    std::atomic<bool> scheduled{false};
    std::atomic<bool> closed{false};
    /// The loop it runs on or last ran on. Written by that loop (relaxed: a
    /// hint for producers; a stale value only schedules it on the old loop).
    std::atomic<unsigned> home;

    // --- consumer side (the token holder)
    EventNode* again = nullptr;  // an event that returned kAgain, run first next turn
    bool close_done = false;     // on_close ran and the open-group count dropped

    // --- counters: one writer at a time (the token holder), relaxed
    std::atomic<std::uint64_t> events{0};
    std::atomic<std::uint64_t> cpu_ns{0};
    std::atomic<std::uint64_t> preempted{0};
    std::atomic<std::uint64_t> migrations{0};

    // --- the scheduler's registry (under SchedulerImpl::registry_mutex_)
    /// Read by notify() without a lock: a post racing with the scheduler's
    /// destruction is the caller's bug (stop() closes every group first, and
    /// posts to a closed group never get here).
    SchedulerImpl* scheduler;
    std::shared_ptr<Registry> registry;
    bool linked = false;
    GroupCore* reg_prev = nullptr;
    GroupCore* reg_next = nullptr;

private:
    std::atomic<std::uint32_t> refs_{1};
};

inline GroupCore* group_of(RunLink* link) noexcept {
    return static_cast<GroupCore*>(link);
}

}  // namespace quiesce::sched::detail
