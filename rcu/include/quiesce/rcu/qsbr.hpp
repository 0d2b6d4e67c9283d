// QSBR readers: threads that run in short steps (event loops, pollers) and
// report a quiescent state between steps. Their reads need no lock at all;
// a grace period waits until each of them has reported once.
//
//     rcu::QsbrReader reader;              // this thread is now an online reader
//     for (;;) {
//         run_one_event();                 // may read RCU data freely
//         reader.quiescent_state();        // holds no RCU reference here
//         reader.process_callbacks(64);    // runs this thread's due callbacks
//         if (idle) {
//             rcu::OfflineScope off(reader);   // never hold up a grace period
//             wait_for_work();                  // may block
//         }
//     }
//
// Limits: between two quiescent states a QSBR thread may hold references;
// while offline it must hold none and must not read. An online QSBR reader
// must not call synchronize() or barrier(); it uses call()/retire(), or
// start_grace_period() with poll(). Breaking these rules aborts with a
// message naming the thread, in every build: synchronize()/barrier() on an
// online reader, quiescent_state() inside a ReadLock (checked at every call),
// offline()/online() twice, destruction on another thread. A reader
// that queues callbacks and never calls process_callbacks() gets a warning
// once its oldest unprocessed call is stall_timeout old (checked every 64
// calls), and a barrier() waiting for it says whom it waits for.
//
// Threading: a QsbrReader belongs to the thread that constructed it; every
// member must be called on that thread. See rcu/README.md, labels [Q1]-[Q4].
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <quiesce/rcu/domain.hpp>
#include <quiesce/rcu/read_lock.hpp>

namespace quiesce::rcu {

namespace detail {
struct QsbrState;
}

class QsbrReader {
public:
    /// Registers the calling thread as an online QSBR reader of `domain`.
    /// `name` appears in stall warnings. Thread: the reader thread.
    explicit QsbrReader(Domain& domain = Domain::default_domain(), std::string name = {});
    /// Goes offline and unregisters; callbacks still queued here are handed to
    /// the domain callback thread (none is lost).
    ~QsbrReader();
    QsbrReader(const QsbrReader&) = delete;
    QsbrReader& operator=(const QsbrReader&) = delete;

    /// Reports that this thread holds no RCU reference. Precondition: online,
    /// and not inside a read section (ReadLock, read_lock()) of this domain:
    /// either aborts with a message. Cost: two loads and compares when no
    /// grace period waits for this thread; otherwise a store, a fence and an
    /// RMW, once per grace period.
    /// Memory ordering: [Q1]-[Q4] in rcu/README.md.
    void quiescent_state() noexcept {
        // [Q1] acquire, pairs with [G1] in DomainImpl::start_qsbr_wait(): when
        // a new target is seen, the updates made before the grace period
        // began are visible to the reads that follow this report.
        std::uint64_t target = qs_gp_->load(std::memory_order_acquire);
        // The read-section check (one thread-local load) is on in every build:
        // report() aborts with a message if the thread is inside a ReadLock.
        if (__builtin_expect(target == seen_ && !detail::tls_default_reader.in_section(), 1))
            return;
        report(target);
    }

    /// Leaves the domain's view: grace periods stop waiting for this thread.
    /// Any own callbacks go to the domain callback thread. Precondition: online.
    void offline() noexcept;
    /// Rejoins; reads are allowed again once this returns. Precondition: offline.
    void online() noexcept;
    [[nodiscard]] bool is_online() const noexcept { return online_; }

    /// Queues `fn(head)` on this thread's own lists (no atomic RMW, no lock).
    /// Online: runs from process_callbacks() on this thread after a grace
    /// period. Offline: goes to the domain callback thread.
    void call(Head* head, Callback fn) noexcept;

    /// Starts grace periods for newly queued callbacks and invokes at most
    /// `budget` callbacks whose grace period has ended; returns how many ran.
    /// Also answers barrier() requests. Call it regularly while online.
    std::size_t process_callbacks(std::size_t budget) noexcept;

    /// Callbacks queued here and not yet invoked or handed off.
    [[nodiscard]] std::size_t pending_callbacks() const noexcept;

    [[nodiscard]] Domain& domain() const noexcept { return *domain_; }
    /// As given to the constructor, or "tid N".
    [[nodiscard]] const std::string& name() const noexcept;

private:
    [[gnu::cold]] void report(std::uint64_t target) noexcept;
    [[gnu::cold]] void check_unprocessed() noexcept;

    const std::atomic<std::uint64_t>* qs_gp_;  // &domain.hot().qs_gp: one hop on the fast path
    std::uint64_t seen_;  // last target reported; owner-only copy of state_->ctr
    bool online_ = true;
    Domain* domain_;
    std::unique_ptr<detail::QsbrState> state_;
};

/// Takes a QSBR reader offline for a scope (around anything that may block).
class [[nodiscard]] OfflineScope {
public:
    explicit OfflineScope(QsbrReader& reader) noexcept : reader_(reader) { reader_.offline(); }
    ~OfflineScope() { reader_.online(); }
    OfflineScope(const OfflineScope&) = delete;
    OfflineScope& operator=(const OfflineScope&) = delete;

private:
    QsbrReader& reader_;
};

/// The calling thread's QsbrReader of `domain`, or null. Thread: any.
[[nodiscard]] QsbrReader* current_qsbr_reader(Domain& domain) noexcept;

}  // namespace quiesce::rcu
