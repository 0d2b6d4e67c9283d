// Moving ready groups between loops: an idle loop asks the busiest loop for
// work (work requesting: the victim hands groups over itself, at its next
// scheduling point, so a group is never taken from under the loop that owns
// it), and every balance interval a loop that is much busier than the least
// busy one hands it half of its waiting groups. Pinned groups never move.
//
// Threading: request_steal() from any thread; the rest on the loop thread.
// A group in flight is only ever in one inbox ([S3]), so it cannot run on two
// loops, and its events stay in its own queue, so they keep their order.
#include <cstdint>

#include "loop.hpp"
#include "scheduler_impl.hpp"

namespace quiesce::sched::detail {
namespace {

// A loop counts as busier when its load exceeds the other's by this much
// (in 1/1024ths of a CPU): a quarter of a CPU.
constexpr std::uint32_t kImbalance = 256;

}  // namespace

void Loop::request_steal(unsigned thief) noexcept {
    std::int32_t none = -1;
    // relaxed: the request carries no data; the groups travel through the
    // thief's inbox ([S3]). A loop serves one thief at a time.
    steal_to_.compare_exchange_strong(none, static_cast<std::int32_t>(thief),
                                      std::memory_order_relaxed, std::memory_order_relaxed);
}

void Loop::steal_from_busiest() noexcept {
    Loop* victim = nullptr;
    std::int64_t most = 0;
    for (unsigned i = 0; i < scheduler_.loop_count(); ++i) {
        Loop& other = scheduler_.loop(i);
        if (&other == this) continue;
        std::int64_t waiting = other.ready();
        // One waiting group behind a running one is worth taking; a lone
        // waiting group on a loop between turns is about to run there.
        if (waiting >= 2 || (waiting == 1 && other.running() != nullptr)) {
            if (waiting > most) {
                most = waiting;
                victim = &other;
            }
        }
    }
    if (victim != nullptr) victim->request_steal(index_);
}

void Loop::wake_a_sleeper() noexcept {
    for (unsigned i = 1; i < scheduler_.loop_count(); ++i) {
        Loop& other = scheduler_.loop(index_ + i);
        // relaxed: a hint; wake() re-reads with [W2]
        if (other.sleeping_.load(std::memory_order_relaxed) != 0) {
            other.wake();
            return;
        }
    }
}

void Loop::serve_steal() noexcept {
    // relaxed: see request_steal()
    std::int32_t thief = steal_to_.exchange(-1, std::memory_order_relaxed);
    if (thief < 0 || static_cast<unsigned>(thief) == index_) return;
    std::int64_t waiting = ready();
    hand_over(scheduler_.loop(static_cast<unsigned>(thief)), waiting - waiting / 2);
}

void Loop::hand_over(Loop& to, std::int64_t count) noexcept {
    // Look at no more groups than were waiting: pinned ones go back behind.
    std::int64_t looked = 0;
    std::int64_t limit = ready();
    take_inbox();
    // Hogs first (they are the CPU time to share out), each looked at once.
    std::int64_t spent_left = spent_.count;
    while (count > 0 && looked < limit) {
        const bool spent = spent_left-- > 0;
        RunLink* link = spent ? spent_.pop() : local_.pop();
        if (link == nullptr) return;
        ++looked;
        add_ready_local(-1);
        GroupCore* group = group_of(link);
        if (group->pinned) {
            requeue(group, spent);
            continue;
        }
        to.schedule(group);  // [S3]: the token and the reference move with it
        given_.store(given_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        --count;
    }
}

void Loop::balance(std::int64_t now_ns) noexcept {
    std::int64_t interval = scheduler_.balance_interval_ns();
    std::int64_t elapsed = now_ns - (next_balance_ns_ - interval);
    next_balance_ns_ = now_ns + interval;
    std::uint64_t busy = busy_cpu_ns_.load(std::memory_order_relaxed);  // own counter
    std::uint64_t used = busy - busy_at_balance_;
    busy_at_balance_ = busy;
    if (elapsed <= 0) return;
    std::uint64_t share = used * 1024 / static_cast<std::uint64_t>(elapsed);
    std::uint32_t mine = static_cast<std::uint32_t>(share > 1024 ? 1024 : share);
    load_.store(mine, std::memory_order_relaxed);  // relaxed: a load estimate
    if (interval == 0 || ready() < 2) return;
    Loop* target = nullptr;
    std::uint32_t lowest = mine;
    for (unsigned i = 0; i < scheduler_.loop_count(); ++i) {
        Loop& other = scheduler_.loop(i);
        if (&other != this && other.load() < lowest) {
            lowest = other.load();
            target = &other;
        }
    }
    if (target != nullptr && mine - lowest >= kImbalance) hand_over(*target, ready() / 2);
}

}  // namespace quiesce::sched::detail
