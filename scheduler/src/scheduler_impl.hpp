// The scheduler's shared state (private): its loops, options, group registry
// and the RCU stall hook that names the group a stalled loop is running.
//
// Threading: loops_ and options_ are fixed after construction; the registry
// has its own mutex; stop() is serialised by stop_mutex_.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <quiesce/rcu/domain.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "fiber_context.hpp"
#include "registry.hpp"
#include "stack_pool.hpp"

namespace quiesce::sched::detail {

class Loop;
struct StallView;

class SchedulerImpl {
public:
    /// Finished fiber contexts kept for reuse.
    static constexpr std::size_t kMaxFreeFibers = 1024;

    SchedulerImpl(Scheduler& api, SchedulerOptions options);
    ~SchedulerImpl();
    SchedulerImpl(const SchedulerImpl&) = delete;
    SchedulerImpl& operator=(const SchedulerImpl&) = delete;

    [[nodiscard]] Loop& loop(unsigned index) noexcept { return *loops_[index % loops_.size()]; }
    [[nodiscard]] unsigned loop_count() const noexcept {
        return static_cast<unsigned>(loops_.size());
    }
    [[nodiscard]] const SchedulerOptions& options() const noexcept { return options_; }
    [[nodiscard]] std::int64_t balance_interval_ns() const noexcept { return balance_interval_ns_; }
    [[nodiscard]] const std::shared_ptr<Registry>& registry() const noexcept { return registry_; }
    [[nodiscard]] Scheduler& api() noexcept { return api_; }

    /// Loops asleep now (a hint for waking one when work piles up).
    [[nodiscard]] int sleepers() const noexcept {
        return sleepers_.load(std::memory_order_relaxed);  // relaxed: a hint
    }
    void add_sleeper(int delta) noexcept {
        sleepers_.fetch_add(delta, std::memory_order_relaxed);  // relaxed: a hint
    }

    Group make_group(GroupOptions options);
    /// Makes sure the next acquire_fiber() finds a stack (spawn() calls it,
    /// so that a spawn that cannot get one fails at the call site). Throws
    /// std::system_error. Thread: any.
    void reserve_fiber_stack();
    /// Gives back a reservation that no acquire_fiber() will use.
    void unreserve_fiber_stack() noexcept;
    /// A fiber context for `entry(arg)`, reused from finished ones when
    /// possible (TSan fibers are costly to make); consumes a reservation.
    /// Never throws for want of a stack. Thread: a loop.
    std::unique_ptr<FiberContext> acquire_fiber(const std::string& name, FiberContext::Entry entry,
                                                void* arg);
    /// Takes back a finished context.
    void release_fiber(std::unique_ptr<FiberContext> context) noexcept;
    void stop();
    [[nodiscard]] SchedulerStats stats() const;
    [[nodiscard]] std::vector<LoopActivity> activity() const;
    /// The stall hook's text for the reader `info` names, or empty.
    [[nodiscard]] std::string describe_stall(const rcu::StallInfo& info) const;

private:
    void start_loops();
    void close_all_groups();

    Scheduler& api_;
    const SchedulerOptions options_;
    const std::int64_t balance_interval_ns_;
    std::vector<std::unique_ptr<Loop>> loops_;
    std::shared_ptr<Registry> registry_ = std::make_shared<Registry>();
    std::shared_ptr<StallView> stall_view_;
    std::atomic<unsigned> next_loop_{0};
    std::atomic<int> sleepers_{0};
    std::atomic<std::uint64_t> next_id_{1};
    StackPool stacks_;
    std::mutex fibers_mutex_;
    std::vector<std::unique_ptr<FiberContext>> free_fibers_;  // fibers_mutex_
    std::mutex stop_mutex_;
    bool stopped_ = false;  // stop_mutex_
};

}  // namespace quiesce::sched::detail
