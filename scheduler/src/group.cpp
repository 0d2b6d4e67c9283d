// Event groups: reference counting, posting, closing, and the public Group
// members. The run side (turns, going idle, close handling) is in loop.cpp.
//
// Threading: see group_core.hpp. Labels [S1]-[S3], [C1]-[C3] and [RC1] are
// in scheduler/README.md.
#include <cstdint>
#include <memory>
#include <utility>

#include "fiber_state.hpp"
#include "group_core.hpp"
#include "log.hpp"
#include "loop.hpp"
#include "registry.hpp"
#include "scheduler_impl.hpp"

namespace quiesce::sched {
namespace detail {
namespace {

std::string default_name(std::string given, std::uint64_t id) {
    if (!given.empty()) return given;
    std::string name = "group ";
    name += std::to_string(id);
    return name;
}

}  // namespace

GroupCore::GroupCore(SchedulerImpl& owner, GroupOptions options, unsigned loop, std::uint64_t gid)
    : id(gid),
      name(default_name(std::move(options.name), gid)),
      weight(options.weight),
      pinned(options.pinned),
      on_close(std::move(options.on_close)),
      home(loop),
      scheduler(&owner),
      registry(owner.registry()) {}

GroupCore::~GroupCore() {
    if (fiber != nullptr) {
        fiber->finish();  // closed groups did this already; an abandoned one unwinds here
        delete fiber;
    }
    drop_pending();
    std::lock_guard lock(registry->mutex);
    if (!linked) return;  // make_group() failed
    if (!close_done) registry->finished();
    registry->unlink(this);
}

void Registry::link(GroupCore* group) noexcept {
    group->reg_prev = nullptr;
    group->reg_next = head;
    if (head != nullptr) head->reg_prev = group;
    head = group;
    group->linked = true;
    ++live;
    ++unfinished;
}

void Registry::unlink(GroupCore* group) noexcept {
    if (group->reg_prev != nullptr) {
        group->reg_prev->reg_next = group->reg_next;
    } else {
        head = group->reg_next;
    }
    if (group->reg_next != nullptr) group->reg_next->reg_prev = group->reg_prev;
    --live;
}

bool GroupCore::try_ref() noexcept {
    std::uint32_t count = refs_.load(std::memory_order_relaxed);
    while (count != 0) {
        // relaxed: the registry mutex orders this against the destructor's unlink
        if (refs_.compare_exchange_weak(count, count + 1, std::memory_order_relaxed)) return true;
    }
    return false;
}

void GroupCore::unref() noexcept {
    // [RC1] acq_rel, pairs with itself in the other holders' unref(): every
    // holder's accesses happen-before the destructor.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void GroupCore::notify() noexcept {
    // [S1] seq_cst load and exchange, the producer's half of a Dekker pair
    // with [S2] in Loop::finish_turn(): after pushing an event ([MQ1]) either
    // this sees the consumer's `false` and schedules the group, or the
    // consumer's re-check after [S2] sees the push. The exchange's acquire
    // pairs with [S2]'s release: the last turn happens-before the next.
    if (scheduled.load(std::memory_order_seq_cst)) return;
    if (scheduled.exchange(true, std::memory_order_seq_cst)) return;
    ref();  // the run queue's reference, dropped when the group goes idle
    scheduler->loop(home.load(std::memory_order_relaxed)).schedule(this);
}

bool GroupCore::close() noexcept {
    // [C1] seq_cst exchange: its release pairs with the acquire loads of
    // `closed` in post_node() and on the loop ([C2], [C3]); with the [S1]
    // load in notify() it is the closer's half of a Dekker pair with [S2] +
    // [C3], so a turn ending just now either is seen as running (and [C3]
    // sees the close) or is seen idle (and notify() schedules the group).
    if (closed.exchange(true, std::memory_order_seq_cst)) return false;
    notify();
    return true;
}

void GroupCore::drop_pending() noexcept {
    for (;;) {
        EventNode* event = next_event();
        if (event == nullptr) {
            if (queue.empty()) return;
            continue;  // a producer is between [MQ1] and [MQ2]; it is about to link
        }
        event->op(event, Action::kDrop);
    }
}

void group_ref(GroupCore* core) noexcept {
    core->ref();
}
void group_unref(GroupCore* core) noexcept {
    core->unref();
}

bool group_accepts(const GroupCore* core) noexcept {
    // [C2] acquire, pairs with [C1].
    return core != nullptr && !core->closed.load(std::memory_order_acquire);
}

bool post_node(GroupCore* core, EventNode* node) noexcept {
    if (!group_accepts(core)) return false;
    core->queue.push(node);  // [MQ1]/[MQ2]: the event's contents are published
    core->notify();
    return true;
}

}  // namespace detail

bool Group::close() const noexcept {
    return core_ != nullptr && core_->close();
}

GroupStats Group::stats() const noexcept {
    GroupStats out;
    if (core_ == nullptr) return out;
    // relaxed: counters, a snapshot
    out.events = core_->events.load(std::memory_order_relaxed);
    out.cpu_ns = core_->cpu_ns.load(std::memory_order_relaxed);
    out.preempted = core_->preempted.load(std::memory_order_relaxed);
    out.migrations = core_->migrations.load(std::memory_order_relaxed);
    out.loop = static_cast<int>(core_->home.load(std::memory_order_relaxed));
    out.closed = core_->closed.load(std::memory_order_relaxed);
    return out;
}

const std::string& Group::name() const noexcept {
    static const std::string empty;
    return core_ != nullptr ? core_->name : empty;
}

Group Group::current() noexcept {
    detail::GroupCore* core = detail::Loop::current_group();
    if (core == nullptr) return {};
    core->ref();
    return adopt(core);
}

}  // namespace quiesce::sched
