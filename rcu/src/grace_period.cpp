// The grace-period driver: starts a grace period, waits for preemptible
// readers with the two-phase counter flip, arms the QSBR readers and waits for
// the last of them to complete it.
//
// Threading: drive_one() runs under gp_mutex_ on a synchronize() caller or on
// the domain callback thread; complete_gp() runs on whichever thread brings
// qs_pending_ to zero (usually the last QSBR reader to report).
#include <sched.h>

#include <algorithm>
#include <chrono>

#include <quiesce/base/futex.hpp>
#include "domain_impl.hpp"
#include "membarrier.hpp"

namespace quiesce::rcu::detail {

using base::futex_wait;
using base::futex_wake_all;
namespace {

// Spins on a reader before sleeping (liburcu uses 100 too): most read
// sections are shorter than a futex round trip.
constexpr int kActiveAttempts = 100;

inline void cpu_relax() noexcept {
    __builtin_ia32_pause();
}

}  // namespace

GpCookie DomainImpl::snapshot() const noexcept {
    // [S1] pairs with [G0]: the caller's updates before the snapshot are
    // ordered before the load of gp_seq_; if the load misses a grace period's
    // start, that grace period's reader checks see those updates.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    std::uint64_t seq = gp_seq_.load(std::memory_order_relaxed);  // relaxed: ordered by [S1]
    // Idle (even): the next grace period's end. Running (odd): the end of the
    // one after it, since the running one may have checked readers already.
    return GpCookie((seq + 3) & ~std::uint64_t{1});
}

bool DomainImpl::poll(GpCookie cookie) const noexcept {
    // [P1] acquire, pairs with [C1] in complete_gp().
    return gp_seq_.load(std::memory_order_acquire) >= cookie.value();
}

std::uint64_t DomainImpl::completed_seq() const noexcept {
    return gp_seq_.load(std::memory_order_acquire);  // [P1] as in poll()
}

void DomainImpl::synchronize(bool expedited) {
    check_not_forked();
    check_may_wait(expedited ? "synchronize_expedited()" : "synchronize()");
    if (expedited) stat_expedited_.fetch_add(1, std::memory_order_relaxed);  // relaxed: counter
    drive_until(snapshot().value(), expedited);
}

void DomainImpl::drive_until(std::uint64_t cookie, bool expedited) {
    std::lock_guard lock(gp_mutex_);
    // Callers queued on gp_mutex_ share grace periods: one that finds its
    // cookie already passed returns at once.
    while (gp_seq_.load(std::memory_order_acquire) < cookie) drive_one(expedited);  // [P1]
}

void DomainImpl::drive_one(bool expedited) {
    const auto started = std::chrono::steady_clock::now();
    std::uint64_t seq = gp_seq_.load(std::memory_order_relaxed);  // relaxed: we hold gp_mutex_
    QUIESCE_ASSERT((seq & 1) == 0, "a grace period is already running");
    gp_seq_.store(seq + 1, std::memory_order_relaxed);  // relaxed: ordered by [G0]
    // [G0] pairs with [S1] in snapshot() and [O1] in QsbrReader::online():
    // updates made before this grace period's start are visible to readers
    // that we do not wait for.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    gp_timed_ = false;  // the clock is read only once a wait outlasts its spinning
    wait_preemptible(expedited);
    start_qsbr_wait();
    wait_complete(seq + 2, expedited);
    record_gp_latency(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - started)
                                       .count()));
}

void DomainImpl::record_gp_latency(std::uint64_t ns) noexcept {
    // relaxed: statistics; only the driver (under gp_mutex_) writes them.
    stat_gp_ns_total_.fetch_add(ns, std::memory_order_relaxed);
    if (ns > stat_gp_ns_max_.load(std::memory_order_relaxed))
        stat_gp_ns_max_.store(ns, std::memory_order_relaxed);
    std::size_t bucket = 0;
    for (std::uint64_t bound = DomainStats::kGraceBucketBoundNs;
         ns >= bound && bucket + 1 < DomainStats::kGraceBuckets; bound <<= 1)
        ++bucket;
    stat_gp_buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
}

void DomainImpl::smp_mb_master() noexcept {
    if (mode_ == ReadMode::kMembarrier)
        membarrier_all();
    else
        std::atomic_thread_fence(std::memory_order_seq_cst);
}

// True when no preemptible reader is inside a section begun in a phase other
// than `phase`. Caller holds registry_mutex_.
bool DomainImpl::preemptible_idle(std::uint64_t phase) {
    for (PreemptibleRecord* record : preemptible_) {
        // [G4] acquire, pairs with [R2] in PreemptibleReader::unlock().
        std::uint64_t ctr = record->reader->ctr.load(std::memory_order_acquire);
        if ((ctr & kNestMask) != 0 && (ctr & kPhaseBit) != phase) return false;
    }
    return true;
}

void DomainImpl::wait_preemptible(bool expedited) {
    {
        std::lock_guard lock(registry_mutex_);
        // A reader registering later takes registry_mutex_ after us, so its
        // sections see every update made before this grace period.
        if (preemptible_.empty()) return;
    }
    smp_mb_master();  // [M1] pairs with [R1]: readers' ctr stores are visible to the scans below
    // As liburcu: first wait out readers still in a section begun before the
    // previous flip (a reader that loaded the phase just before that flip and
    // stored it after that grace period's scan), then flip and wait out every
    // section begun in the old phase. One flip per grace period.
    std::uint64_t phase = hot_.phase.load(std::memory_order_relaxed);  // driver-only write
    wait_for_phase(phase, expedited);
    phase ^= kPhaseBit;
    std::atomic_thread_fence(std::memory_order_seq_cst);  // [F1] the scan above before the flip
    hot_.phase.store(phase, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // [F2] the flip before the scans below
    wait_for_phase(phase, expedited);
    smp_mb_master();  // [M3] pairs with [R2]: the ended sections' loads precede what follows
}

// Waits until no preemptible reader is inside a section begun in a phase
// other than `phase`: spins, then sleeps on reader_futex (or, expedited,
// yields).
void DomainImpl::wait_for_phase(std::uint64_t phase, bool expedited) {
    bool armed = false;
    for (int attempt = 0;; ++attempt) {
        const bool sleep = !expedited && attempt >= kActiveAttempts;
        if (sleep) {
            // Re-armed on every pass: any outermost unlock (also of a reader
            // we do not wait for) resets it to 0 and wakes us, and a futex
            // word left at 0 would turn the sleeps below into a busy loop.
            armed = true;
            hot_.reader_futex.store(-1, std::memory_order_relaxed);  // ordered by [M2]
            smp_mb_master();  // [M2] pairs with [R3]: -1 is visible before we rescan
        }
        std::unique_lock lock(registry_mutex_);
        if (preemptible_idle(phase)) break;
        lock.unlock();
        if (sleep) {
            futex_wait(hot_.reader_futex, -1, stall_wait_budget());
            stall_check();
        } else if (attempt >= kActiveAttempts) {
            sched_yield();  // expedited: never sleep
            stall_check();
        } else {
            cpu_relax();
        }
    }
    if (armed) {
        smp_mb_master();  // the scans that ended the wait come before the reset
        hot_.reader_futex.store(0, std::memory_order_relaxed);
    }
}

void DomainImpl::start_qsbr_wait() {
    std::lock_guard lock(registry_mutex_);
    if (qsbr_.empty()) {
        // Nobody to arm: a reader registering later sees every update made
        // before now through registry_mutex_. Complete at once.
        complete_gp();
        return;
    }
    std::uint64_t target = hot_.qs_gp.load(std::memory_order_relaxed) + 1;  // driver-only write
    qs_pending_.store(1, std::memory_order_relaxed);  // our bias; published by [G1]
    // [G1] seq_cst, pairs with [Q1] in QsbrReader::quiescent_state().
    hot_.qs_gp.store(target, std::memory_order_seq_cst);
    for (QsbrState* state : qsbr_) {
        qs_pending_.fetch_add(1, std::memory_order_relaxed);  // published by [G2]
        // [G2] seq_cst, pairs with [Q3]; with [G3] against [Q2] it forms a
        // Dekker pair: either the reader's exchange sees `true` and reports,
        // or our load below sees its store of ctr.
        state->must_report.store(true, std::memory_order_seq_cst);
        std::uint64_t ctr = state->ctr.load(std::memory_order_seq_cst);  // [G3]
        if (ctr == 0 || ctr == target) {
            // Offline, or already past `target`: nothing to wait for, unless
            // its exchange took the flag first and will report itself.
            if (state->must_report.exchange(false, std::memory_order_seq_cst))
                qs_pending_.fetch_sub(1, std::memory_order_relaxed);  // bias keeps it > 0
        }
    }
    qs_reported();  // drop the bias: completes here if nobody is left
}

void DomainImpl::qs_reported() noexcept {
    // [Q4] acq_rel: each report releases its reads; the last one acquires all.
    if (qs_pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) complete_gp();
}

void DomainImpl::complete_gp() noexcept {
    std::uint64_t seq = gp_seq_.load(std::memory_order_relaxed);  // odd; only we move it now
    stat_gps_.fetch_add(1, std::memory_order_relaxed);            // relaxed: counter
    // [C1] release, pairs with [P1] (poll, drive_until, callbacks' advance):
    // every read section this grace period waited for happens-before.
    gp_seq_.store(seq + 1, std::memory_order_release);
    // [C2] seq_cst, pairs with [W1] in wait_complete(): a driver that counted
    // itself as a waiter after this load sees the new futex value instead.
    gp_done_futex_.fetch_add(1, std::memory_order_seq_cst);
    if (gp_done_waiters_.load(std::memory_order_seq_cst) != 0) futex_wake_all(&gp_done_futex_);
}

void DomainImpl::wait_complete(std::uint64_t end, bool expedited) {
    for (int attempt = 0; gp_seq_.load(std::memory_order_acquire) < end; ++attempt) {  // [P1]
        if (expedited || attempt < kActiveAttempts) {
            if (attempt < kActiveAttempts)
                cpu_relax();
            else
                sched_yield();
        } else {
            // [W1] seq_cst, pairs with [C2].
            gp_done_waiters_.fetch_add(1, std::memory_order_seq_cst);
            std::uint32_t seen = gp_done_futex_.load(std::memory_order_seq_cst);
            if (gp_seq_.load(std::memory_order_acquire) < end)  // [P1]
                futex_wait(gp_done_futex_, seen, stall_wait_budget());
            gp_done_waiters_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: a hint for [C2]
        }
        if (attempt >= kActiveAttempts) stall_check();
    }
}

void DomainImpl::request_gp(std::uint64_t cookie) {
    check_not_forked();
    std::uint64_t current = gp_requested_.load(std::memory_order_relaxed);
    do {
        if (current >= cookie) return;  // someone asked for this one or a later one
        // [K3] seq_cst: the worker's acquire load sees the request and what
        // preceded it; with [K1]/[K2] no sleeping worker misses it.
    } while (!gp_requested_.compare_exchange_weak(current, cookie, std::memory_order_seq_cst,
                                                  std::memory_order_relaxed));
    wake_worker();
}

}  // namespace quiesce::rcu::detail
