// The cold state of a Domain (private): registry of readers, the
// grace-period driver, the domain callback thread and barrier().
//
// Threading: gp_mutex_ is held by the one thread driving a grace period
// (a synchronize() caller or the callback thread); registry_mutex_ guards the
// reader lists; queue_mutex_ guards the callback thread's incoming queue. Lock
// order: registry_mutex() (global) -> registry_mutex_ -> QsbrState::cb_mutex;
// gp_mutex_ -> registry_mutex_. The algorithm and the labels [G*] [C*] [M*]
// are in rcu/README.md.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/base/assert.hpp>
#include <quiesce/rcu/domain.hpp>
#include <quiesce/rcu/qsbr.hpp>
#include <quiesce/rcu/read_lock.hpp>

#include "mpsc_queue.hpp"
#include "seg_list.hpp"

namespace quiesce::rcu::detail {

using Clock = std::chrono::steady_clock;

/// A QSBR reader's shared state (QsbrReader holds the owner-only fast path).
struct QsbrState {
    /// 0 while offline, else the last target reported. Written by the owner
    /// ([Q2]), read by the driver ([G3]).
    std::atomic<std::uint64_t> ctr{0};
    /// Set by the driver when the current grace period counts this reader
    /// ([G2]); exactly one of the owner ([Q3]) and the driver clears it.
    std::atomic<bool> must_report{false};
    /// steady_clock nanoseconds at the last report; relaxed, for stall warnings.
    std::atomic<std::int64_t> last_qs_ns{0};
    int tid = 0;
    std::string name;

    SegList callbacks;            // owner only
    std::uint64_t requested = 0;  // owner only: newest cookie asked for
    // Owner only: call()s since the last process_callbacks(), when the 64th
    // of them came (coarse clock), and when to warn next about them.
    std::uint64_t calls_since_process = 0;
    std::int64_t unprocessed_since_ns = 0;
    std::int64_t unprocessed_warn_ns = 0;
    // callbacks.size() as last published to stats() (relaxed: a statistic),
    // and the owner's copy, so that an unchanged count costs no store.
    std::atomic<std::uint64_t> pending{0};
    std::uint64_t pending_published = 0;  // owner only

    std::mutex cb_mutex;                         // guards the three fields below
    bool cb_offline = false;                     // own callbacks go to the worker
    Head* barrier_head = nullptr;                // a barrier() waits for this
    std::atomic<bool> barrier_requested{false};  // = barrier_head != nullptr
};

/// A thread's registration as a preemptible reader (allocated by the thread).
struct PreemptibleRecord {
    PreemptibleReader* reader = nullptr;       // the thread-local one, or `owned`
    std::unique_ptr<PreemptibleReader> owned;  // for domains other than the default
    DomainImpl* domain = nullptr;              // null once the domain is gone; global mutex
    std::uint64_t domain_id = 0;
    int tid = 0;
};

/// The global mutex for preemptible registrations: a thread exiting and a
/// domain being destroyed both touch the same records.
std::mutex& registry_mutex();

/// Completion handshake of one barrier() call.
struct BarrierContext {
    std::atomic<std::int64_t> pending{1};
    std::atomic<std::uint32_t> done{0};
};
struct BarrierHead : Head {
    BarrierContext* context = nullptr;
};
void barrier_callback(Head* head) noexcept;

class DomainImpl {
public:
    DomainImpl(Domain& owner, DomainOptions options);
    ~DomainImpl();

    // --- grace periods (grace_period.cpp) ---
    GpCookie snapshot() const noexcept;
    bool poll(GpCookie cookie) const noexcept;
    void synchronize(bool expedited);
    void request_gp(std::uint64_t cookie);
    void qs_reported() noexcept;
    std::uint64_t completed_seq() const noexcept;

    // --- readers (qsbr.cpp, read_lock.cpp) ---
    void register_qsbr(QsbrState& state);
    void unregister_qsbr(QsbrState& state) noexcept;
    void add_preemptible(PreemptibleRecord& record);
    void remove_preemptible(PreemptibleRecord& record) noexcept;

    // --- callbacks (worker.cpp) ---
    void call_on_worker(Head* head, Callback fn) noexcept;
    void hand_off(SegList& list) noexcept;
    void barrier();
    void shutdown();

    // --- misc ---
    void check_not_forked() const;
    /// Aborts with a message when the calling thread may not wait for a grace
    /// period here (an online QSBR reader or inside a read section of it).
    void check_may_wait(const char* what) const;
    void warn_stall(Clock::duration age) noexcept;
    /// barrier() has waited `waited` for the QSBR readers still holding a
    /// barrier head: name them.
    void warn_barrier(Clock::duration waited) noexcept;

    Domain& owner_;
    DomainHot& hot_;
    const DomainOptions options_;
    const ReadMode mode_;
    const std::uint64_t id_;
    const std::uint64_t fork_generation_;

    // Grace-period sequence: 2n when n grace periods have completed, odd while
    // one runs. Written by the driver (start) and the completer ([C1]).
    std::atomic<std::uint64_t> gp_seq_{0};
    // Newest cookie asked for through request_gp(); RMW max, any thread.
    std::atomic<std::uint64_t> gp_requested_{0};
    // Readers yet to report in the running grace period, plus the driver's
    // bias while it arms them. [Q4] / [C1].
    std::atomic<std::int64_t> qs_pending_{0};
    // Bumped at each completion; driver waits here ([C2]).
    std::atomic<std::uint32_t> gp_done_futex_{0};
    std::atomic<std::uint32_t> gp_done_waiters_{0};
    std::mutex gp_mutex_;
    // Stall timing of the running grace period; driver only (under gp_mutex_).
    // Started lazily: a grace period that ends while spinning never reads the clock.
    bool gp_timed_ = false;
    Clock::time_point gp_started_;

    std::mutex registry_mutex_;
    std::vector<QsbrState*> qsbr_;                 // registry_mutex_
    std::vector<PreemptibleRecord*> preemptible_;  // registry_mutex_

    // The callback thread's incoming callbacks: pushed by any thread, popped
    // by the callback thread only.
    MpscQueue incoming_;
    // Set by the callback thread (under queue_mutex_) before it sleeps on
    // queue_cv_; producers that see it take queue_mutex_ and notify ([K1]).
    std::atomic<bool> worker_sleeping_{false};
    std::atomic<bool> worker_started_{false};  // release once worker_ is joinable
    std::mutex queue_mutex_;
    std::condition_variable queue_cv_;
    bool stopping_ = false;  // queue_mutex_
    /// barrier() calls under way: the worker then drives grace periods
    /// without the callback_batch wait.
    std::atomic<int> barrier_waiting_{0};
    std::thread worker_;  // queue_mutex_ (start)

    std::mutex barrier_mutex_;  // one barrier() at a time
    std::mutex stall_mutex_;
    StallHook stall_hook_;  // stall_mutex_

    // Statistics; relaxed: counters, not synchronisation.
    std::atomic<std::uint64_t> stat_gps_{0};
    std::atomic<std::uint64_t> stat_expedited_{0};
    std::atomic<std::uint64_t> stat_worker_invoked_{0};
    std::atomic<std::uint64_t> stat_stalls_{0};
    std::atomic<std::uint64_t> stat_callback_warnings_{0};
    // Grace-period latency (written by the driver under gp_mutex_).
    std::atomic<std::uint64_t> stat_gp_ns_total_{0};
    std::atomic<std::uint64_t> stat_gp_ns_max_{0};
    std::array<std::atomic<std::uint64_t>, DomainStats::kGraceBuckets> stat_gp_buckets_{};
    // Callbacks the callback thread holds (its last pass).
    std::atomic<std::uint64_t> stat_worker_pending_{0};

private:
    // grace_period.cpp
    void drive_until(std::uint64_t cookie, bool expedited);
    void record_gp_latency(std::uint64_t ns) noexcept;
    bool batch_hurry() noexcept;
    void drive_one(bool expedited);
    void wait_preemptible(bool expedited);
    void wait_for_phase(std::uint64_t phase, bool expedited);
    bool preemptible_idle(std::uint64_t phase);
    void start_qsbr_wait();
    void complete_gp() noexcept;
    void wait_complete(std::uint64_t end, bool expedited);
    void smp_mb_master() noexcept;
    // stall
    std::chrono::nanoseconds next_stall_ = std::chrono::nanoseconds::max();  // driver only
    void start_stall_clock() noexcept;
    std::chrono::nanoseconds stall_wait_budget() noexcept;
    void stall_check() noexcept;
    // worker.cpp
    void wake_worker() noexcept;
    void worker_main();
};

}  // namespace quiesce::rcu::detail
