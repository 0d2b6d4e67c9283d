// Stall warnings: a grace period that waits longer than stall_timeout names
// the readers holding it up, then warns again at 2x, 4x, ... its age.
//
// Threading: runs on the driver (under gp_mutex_); reads the registry under
// registry_mutex_ and calls the stall hook with no rcu lock held.
#include <fmt/format.h>

#include <algorithm>

#include "domain_impl.hpp"
#include "log.hpp"

namespace quiesce::rcu::detail {
namespace {

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

}  // namespace

void DomainImpl::start_stall_clock() noexcept {
    if (gp_timed_) return;
    gp_timed_ = true;
    gp_started_ = Clock::now();
    next_stall_ = options_.stall_timeout.count() > 0
                      ? std::chrono::nanoseconds(options_.stall_timeout)
                      : std::chrono::nanoseconds::max();
}

std::chrono::nanoseconds DomainImpl::stall_wait_budget() noexcept {
    start_stall_clock();
    if (next_stall_ == std::chrono::nanoseconds::max()) return std::chrono::nanoseconds(-1);
    auto left = next_stall_ - (Clock::now() - gp_started_);
    return std::max<std::chrono::nanoseconds>(left, std::chrono::milliseconds(1));
}

void DomainImpl::stall_check() noexcept {
    start_stall_clock();
    if (next_stall_ == std::chrono::nanoseconds::max()) return;
    auto age = Clock::now() - gp_started_;
    if (age < next_stall_) return;
    warn_stall(age);
    next_stall_ *= 2;  // back off: 1x, 2x, 4x ... the timeout
}

void DomainImpl::warn_stall(Clock::duration age) noexcept {
    std::vector<StallInfo> holdouts;
    try {
        const std::int64_t now = now_ns();
        {
            std::lock_guard lock(registry_mutex_);
            // relaxed loads: a diagnostic snapshot, not a decision.
            for (const QsbrState* state : qsbr_) {
                if (!state->must_report.load(std::memory_order_relaxed)) continue;
                holdouts.push_back({state->name, state->tid, true,
                                    std::chrono::nanoseconds(
                                        now - state->last_qs_ns.load(std::memory_order_relaxed))});
            }
            std::uint64_t phase = hot_.phase.load(std::memory_order_relaxed);
            for (const PreemptibleRecord* record : preemptible_) {
                std::uint64_t ctr = record->reader->ctr.load(std::memory_order_relaxed);
                if ((ctr & kNestMask) == 0 || (ctr & kPhaseBit) == phase) continue;
                holdouts.push_back({"tid " + std::to_string(record->tid), record->tid, false,
                                    std::chrono::duration_cast<std::chrono::nanoseconds>(age)});
            }
        }
        StallHook hook;
        {
            std::lock_guard lock(stall_mutex_);
            hook = stall_hook_;
        }
        std::string text;
        for (const StallInfo& info : holdouts) {
            text +=
                fmt::format("\n  {} reader '{}' (tid {}), {:.1f} ms since its last quiescent state",
                            info.qsbr ? "QSBR" : "preemptible", info.name, info.tid,
                            static_cast<double>(info.since_quiescent.count()) / 1e6);
            if (hook) {
                std::string extra = hook(info);
                if (!extra.empty()) text += ": " + extra;
            }
        }
        if (holdouts.empty()) text = " (no holdout found: it reported just now)";
        logger().warn("domain '{}': grace period stalled for {:.0f} ms, held up by:{}",
                      options_.name, std::chrono::duration<double, std::milli>(age).count(), text);
    } catch (...) {
        // Out of memory or a throwing hook: the warning is lost, the grace
        // period is not.
    }
    // Counted once the warning is out (hook run, line logged): [ST1] release,
    // pairs with the acquire load in Domain::stats(), so whoever sees the
    // count also sees what the hook and the log sink wrote.
    stat_stalls_.fetch_add(1, std::memory_order_release);
}

}  // namespace quiesce::rcu::detail
