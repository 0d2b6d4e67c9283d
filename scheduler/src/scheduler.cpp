// Scheduler set-up and shutdown: reading the CPU affinity mask, starting one
// loop per CPU, the group registry, stop(), stats, and the RCU stall hook.
//
// Threading: see scheduler_impl.hpp.
#include <sched.h>

#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include <quiesce/base/assert.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "group_core.hpp"
#include "log.hpp"
#include "loop.hpp"
#include "scheduler_impl.hpp"

namespace quiesce::sched {
namespace detail {

/// What the domain's stall hook holds: it may outlive the scheduler (the
/// domain copies the hook before calling it), so it names the scheduler
/// through a pointer cleared under `mutex` at destruction.
struct StallView {
    std::mutex mutex;
    const SchedulerImpl* scheduler = nullptr;  // mutex
};

namespace {

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        throw std::system_error(errno, std::generic_category(), "sched_getaffinity");
    }
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
    return cpus;
}

SchedulerOptions validated(SchedulerOptions options) {
    if (options.max_events_per_turn == 0) {
        throw std::invalid_argument("SchedulerOptions::max_events_per_turn must be at least 1");
    }
    if (options.fiber_stack_size < 16 * 1024) {
        throw std::invalid_argument("SchedulerOptions::fiber_stack_size must be at least 16 KiB");
    }
    if (options.fiber_guard_size < 4096) {
        throw std::invalid_argument("SchedulerOptions::fiber_guard_size must be at least 4 KiB");
    }
    if (options.slice.count() < 0)
        throw std::invalid_argument("SchedulerOptions::slice is negative");
    if (options.name.empty()) options.name = "loop";
    return options;
}

}  // namespace

SchedulerImpl::SchedulerImpl(Scheduler& api, SchedulerOptions options)
    : api_(api),
      options_(validated(std::move(options))),
      balance_interval_ns_(std::chrono::nanoseconds(options_.balance_interval).count()),
      stacks_(options_.fiber_stack_size, StackPool::kDefaultMaxWarm, options_.fiber_guard_size) {
    std::vector<int> cpus = allowed_cpus();
    unsigned count = options_.threads != 0 ? options_.threads : static_cast<unsigned>(cpus.size());
    if (count == 0) count = 1;
    for (unsigned i = 0; i < count; ++i) {
        int cpu = options_.pin_threads && !cpus.empty() ? cpus[i % cpus.size()] : -1;
        loops_.push_back(std::make_unique<Loop>(*this, i, cpu));
    }
    start_loops();
    stall_view_ = std::make_shared<StallView>();
    stall_view_->scheduler = this;
    rcu::Domain::default_domain().set_stall_hook([view = stall_view_](
                                                     const rcu::StallInfo& info) -> std::string {
        std::lock_guard lock(view->mutex);
        return view->scheduler != nullptr ? view->scheduler->describe_stall(info) : std::string();
    });
    logger().debug("scheduler \"{}\": {} loops, slice {} us", options_.name, count,
                   options_.slice.count());
}

void SchedulerImpl::start_loops() {
    unsigned started = 0;
    try {
        for (; started < loops_.size(); ++started) loops_[started]->start();
    } catch (...) {
        for (unsigned i = 0; i < started; ++i) loops_[i]->stop_and_join();
        throw;
    }
}

SchedulerImpl::~SchedulerImpl() {
    stop();
    // A post that passed its closed-check before stop() closed the group may
    // have scheduled it on a loop that has ended: drop it now (no post may
    // race with the destructor itself).
    for (auto& loop : loops_) loop->drain_after_exit();
    {
        std::lock_guard lock(stall_view_->mutex);
        stall_view_->scheduler = nullptr;
    }
    std::lock_guard lock(registry_->mutex);
    registry_->attached = false;
    for (GroupCore* group = registry_->head; group != nullptr; group = group->reg_next) {
        group->scheduler = nullptr;  // closed: its posts fail before using it
    }
}

Group SchedulerImpl::make_group(GroupOptions options) {
    if (options.weight < 1 || options.weight > 64) {
        throw std::invalid_argument("GroupOptions::weight must be 1 to 64");
    }
    unsigned loop = options.loop >= 0
                        ? static_cast<unsigned>(options.loop) % loop_count()
                        // relaxed: only spreads groups
                        : next_loop_.fetch_add(1, std::memory_order_relaxed) % loop_count();
    // relaxed: ids need only be unique
    std::uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
    auto* core = new GroupCore(*this, std::move(options), loop, id);
    {
        std::lock_guard lock(registry_->mutex);
        if (registry_->attached && !registry_->closing) {
            registry_->link(core);
            return Group::adopt(core);
        }
    }
    delete core;  // never linked: the destructor's unlink must not run
    throw std::logic_error("Scheduler::make_group() after stop()");
}

void SchedulerImpl::close_all_groups() {
    std::vector<GroupCore*> open;
    {
        std::lock_guard lock(registry_->mutex);
        registry_->closing = true;  // make_group() fails from now on
        for (GroupCore* group = registry_->head; group != nullptr; group = group->reg_next) {
            if (group->try_ref()) open.push_back(group);
        }
    }
    for (GroupCore* group : open) {
        group->close();
        group->unref();
    }
}

void SchedulerImpl::stop() {
    QUIESCE_CHECK(Loop::current() == nullptr || Loop::current()->scheduler_of() != this,
                  "Scheduler::stop() on one of its own loops would wait for itself");
    std::lock_guard stop_lock(stop_mutex_);
    if (stopped_) return;
    stopped_ = true;
    close_all_groups();
    {
        // The loops run every close handler; wait for the last one.
        std::unique_lock lock(registry_->mutex);
        registry_->changed.wait(lock, [&] { return registry_->unfinished == 0; });
    }
    for (auto& loop : loops_) loop->stop_and_join();
    for (auto& loop : loops_) {
        loop->drain_after_exit();
        loop->timers().clear();
    }
    // Every callback queued so far runs, the loops' own ones included (their
    // QSBR readers handed them to the domain callback thread at exit).
    rcu::Domain::default_domain().barrier();
    std::lock_guard fibers(fibers_mutex_);
    free_fibers_.clear();
    logger().debug("scheduler \"{}\" stopped", options_.name);
}

void SchedulerImpl::reserve_fiber_stack() {
    stacks_.reserve();  // throws std::system_error with the reason
}

void SchedulerImpl::unreserve_fiber_stack() noexcept {
    stacks_.unreserve();
}

std::unique_ptr<FiberContext> SchedulerImpl::acquire_fiber(const std::string& name,
                                                           FiberContext::Entry entry, void* arg) {
    std::unique_ptr<FiberContext> context;
    {
        std::lock_guard lock(fibers_mutex_);
        if (!free_fibers_.empty()) {
            context = std::move(free_fibers_.back());
            free_fibers_.pop_back();
        }
    }
    if (context) {
        stacks_.unreserve();               // the context brings its own stack
        context->reset(entry, arg, name);  // this loop's floating-point state
        return context;
    }
    return std::make_unique<FiberContext>(stacks_, name, entry, arg, /*reserved=*/true);
}

void SchedulerImpl::release_fiber(std::unique_ptr<FiberContext> context) noexcept {
    std::lock_guard lock(fibers_mutex_);
    if (free_fibers_.size() < kMaxFreeFibers) free_fibers_.push_back(std::move(context));
    // else: destroyed here, its stack back to the pool
}

SchedulerStats SchedulerImpl::stats() const {
    SchedulerStats out;
    for (const auto& loop : loops_) out.loops.push_back(loop->stats());
    const StackPoolStats stacks = stacks_.stats();
    out.fiber_stacks.in_use = stacks.in_use;
    out.fiber_stacks.mapped = stacks.slots;
    out.fiber_stacks.guarded = stacks.guarded;
    out.fiber_stacks.canary = stacks.canary;
    out.fiber_stacks.guard_mode = to_string(stacks.mode);
    std::lock_guard lock(registry_->mutex);
    out.groups = registry_->live;
    return out;
}

std::vector<LoopActivity> SchedulerImpl::activity() const {
    std::vector<LoopActivity> out;
    // Under the registry mutex a group read from running() cannot be
    // destroyed: the loop clears it before dropping its reference, and the
    // destructor unlinks under this mutex (as describe_stall()).
    std::lock_guard lock(registry_->mutex);
    for (const auto& loop : loops_) {
        LoopActivity a;
        a.loop = loop->index();
        a.tid = loop->tid();
        const LoopStats counters = loop->stats();
        a.events = counters.events;
        a.turns = counters.turns;
        a.event_seq = loop->event_seq();
        a.queued = loop->ready();
        if (GroupCore* group = loop->running()) {
            a.running = true;
            a.group_id = group->id;
            a.group_name = group->name;
        }
        out.push_back(std::move(a));
    }
    return out;
}

}  // namespace detail

void Scheduler::set_loop_waiter(unsigned index, std::shared_ptr<LoopWaiter> waiter) {
    if (index >= impl_->loop_count()) {
        throw std::logic_error("Scheduler::set_loop_waiter: no loop " + std::to_string(index));
    }
    if (!waiter) throw std::invalid_argument("Scheduler::set_loop_waiter: no waiter");
    impl_->loop(index).set_waiter(std::move(waiter));
}

std::shared_ptr<LoopWaiter> Scheduler::loop_waiter(unsigned index) const {
    if (index >= impl_->loop_count()) return nullptr;
    return impl_->loop(index).waiter();
}

Scheduler::Scheduler(SchedulerOptions options)
    : impl_(std::make_unique<detail::SchedulerImpl>(*this, std::move(options))) {}

Scheduler::~Scheduler() = default;

Group Scheduler::make_group(GroupOptions options) {
    return impl_->make_group(std::move(options));
}
void Scheduler::stop() {
    impl_->stop();
}
unsigned Scheduler::loop_count() const noexcept {
    return impl_->loop_count();
}
const SchedulerOptions& Scheduler::options() const noexcept {
    return impl_->options();
}
SchedulerStats Scheduler::stats() const {
    return impl_->stats();
}

std::vector<LoopActivity> Scheduler::activity() const {
    return impl_->activity();
}

Scheduler* Scheduler::current() noexcept {
    detail::Loop* loop = detail::Loop::current();
    return loop != nullptr ? &loop->scheduler_of()->api() : nullptr;
}

int Scheduler::current_loop() noexcept {
    detail::Loop* loop = detail::Loop::current();
    return loop != nullptr ? static_cast<int>(loop->index()) : -1;
}

}  // namespace quiesce::sched
