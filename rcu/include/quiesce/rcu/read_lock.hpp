// Preemptible read-side critical sections, for any thread that is not a QSBR
// reader (or for code that does not know what thread it runs on).
//
//     {
//         rcu::ReadLock lock;              // default domain; nests freely
//         const Config* c = config.load(); // valid until the lock ends
//         use(c->port);
//     }
//
// C-style and interop code that cannot use a scope has the same thing as a
// pair of calls, at the same cost:
//
//     rcu::read_lock();  ...  rcu::read_unlock();       // default domain
//
// The thread registers itself with the domain on its first read section (or
// explicitly, with register_reader_thread()) and unregisters when it exits (or
// with unregister_reader_thread()). The fast path is a thread-local nesting
// counter with the domain's phase bit and a compiler barrier: no atomic
// read-modify-write, no fence (ReadMode::kMembarrier). Where membarrier() is
// unavailable the domain falls back to a full fence on lock and unlock.
//
// Limits: a read section must not block for long (it holds up every grace
// period), must not call synchronize() or barrier() (aborts with a message),
// must end on the thread that began it (so never across a fiber's suspension
// point: the scheduler aborts there), and unlocks must match locks (an
// unmatched read_unlock() aborts). These checks are on in every build and
// independent of the caller's NDEBUG.
//
// Threading: a PreemptibleReader is written only by its thread (ctr) and read
// by the grace-period driver; see rcu/README.md, labels [R1]-[R3].
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>
#include <cstdint>

#include <quiesce/rcu/domain.hpp>

namespace quiesce::rcu {
namespace detail {

/// One thread's registration as a preemptible reader of one domain.
struct alignas(base::kNoFalseSharing) PreemptibleReader {
    /// Nesting count (low 32 bits) | phase at the outermost lock. Written only
    /// by the owner thread; read by the driver in wait_for_readers().
    std::atomic<std::uint64_t> ctr{0};
    /// The domain's hot fields once registered; null before.
    DomainHot* hot = nullptr;

    void lock(DomainHot& domain) noexcept {
        // relaxed: only this thread writes ctr.
        std::uint64_t v = ctr.load(std::memory_order_relaxed);
        if (__builtin_expect((v & kNestMask) == 0, 1)) {  // outermost: the common case
            // relaxed: the phase we copy is ordered by [M1] (the driver's
            // membarrier after each flip), not by this load.
            ctr.store(domain.phase.load(std::memory_order_relaxed) | 1, std::memory_order_relaxed);
            // [R1] pairs with [M1] in DomainImpl::wait_preemptible(): the ctr
            // store is visible before the section's loads, or the driver's
            // membarrier makes it so before the driver scans.
            if (__builtin_expect(domain.fences, 0))
                std::atomic_thread_fence(std::memory_order_seq_cst);
            else
                std::atomic_signal_fence(std::memory_order_seq_cst);
        } else {
            if (__builtin_expect((v & kNestMask) == kNestMask, 0)) nesting_overflow();
            ctr.store(v + 1, std::memory_order_relaxed);  // relaxed: owner-only, nested
        }
    }

    void unlock(DomainHot& domain) noexcept {
        std::uint64_t v = ctr.load(std::memory_order_relaxed);  // relaxed: owner-only
        if (__builtin_expect((v & kNestMask) == 1, 1)) {
            // [R2] release, pairs with [G4] (the driver's acquire load of ctr):
            // the section's loads happen-before the driver sees it ended.
            ctr.store(v - 1, std::memory_order_release);
            // [R3] pairs with [M2]: the ctr store above is ordered before the
            // reader_futex load below (membarrier on the driver side, or a
            // fence here), so a sleeping driver is never missed.
            if (__builtin_expect(domain.fences, 0))
                std::atomic_thread_fence(std::memory_order_seq_cst);
            else
                std::atomic_signal_fence(std::memory_order_seq_cst);
            // relaxed: ordered by [R3].
            if (__builtin_expect(domain.reader_futex.load(std::memory_order_relaxed) == -1, 0))
                wake_driver(domain);
        } else {
            // The unmatched-unlock check costs nothing on the outermost path.
            if (__builtin_expect((v & kNestMask) == 0, 0)) unmatched_unlock();
            ctr.store(v - 1, std::memory_order_relaxed);  // relaxed: owner-only, nested
        }
    }

    [[nodiscard]] bool in_section() const noexcept {
        return (ctr.load(std::memory_order_relaxed) & kNestMask) != 0;  // relaxed: owner-only
    }

    [[gnu::cold]] static void wake_driver(DomainHot& domain) noexcept;
    /// Misuse reports; they abort with a message naming the thread.
    [[noreturn, gnu::cold]] static void nesting_overflow() noexcept;
    [[noreturn, gnu::cold]] static void unmatched_unlock() noexcept;
};

/// The calling thread's reader of the default domain, as a thread-local
/// object (like liburcu's): constant-initialised and initial-exec, so it is
/// reached %fs-relative with no pointer to follow and no TLS wrapper call.
/// Defined once, in the library (one copy also when linked as a .so).
[[gnu::tls_model(
    "initial-exec")]] extern constinit thread_local PreemptibleReader tls_default_reader;

/// Slow paths: register the calling thread (once per thread and domain).
[[gnu::cold]] void register_default_reader();
PreemptibleReader* reader_for(Domain& domain);

}  // namespace detail

/// RAII preemptible read-side critical section. Nestable. Not movable: it
/// must end on the thread and in the scope that began it.
/// Thread: any (registers the thread on first use; may allocate then).
/// Cost: a few instructions, no RMW, no fence (ReadMode::kMembarrier); the
/// default domain's is the cheapest (fixed addresses only).
class [[nodiscard]] ReadLock {
public:
    ReadLock() : reader_(&detail::tls_default_reader), hot_(&detail::default_hot) {
        if (__builtin_expect(reader_->hot == nullptr, 0)) detail::register_default_reader();
        reader_->lock(*hot_);
    }
    explicit ReadLock(Domain& domain) : reader_(detail::reader_for(domain)), hot_(&domain.hot()) {
        reader_->lock(*hot_);
    }
    ~ReadLock() { reader_->unlock(*hot_); }
    ReadLock(const ReadLock&) = delete;
    ReadLock& operator=(const ReadLock&) = delete;

private:
    detail::PreemptibleReader* reader_;
    detail::DomainHot* hot_;
};

/// Begins a read section of the default domain on the calling thread, like
/// constructing a ReadLock; nests. Thread: any (registers it on first use).
/// Cost: as ReadLock.
inline void read_lock() {
    detail::PreemptibleReader& reader = detail::tls_default_reader;
    if (__builtin_expect(reader.hot == nullptr, 0)) detail::register_default_reader();
    reader.lock(detail::default_hot);
}

/// Ends the innermost read section read_lock() began on this thread. An
/// unlock without a matching lock aborts ("unmatched rcu::read_unlock()").
/// Cost: as ~ReadLock.
inline void read_unlock() noexcept {
    detail::tls_default_reader.unlock(detail::default_hot);
}

/// The same pair for another domain (a lookup of the thread's registration:
/// a thread-local cache hit when the thread keeps using one such domain).
void read_lock(Domain& domain);
void read_unlock(Domain& domain) noexcept;

/// Registers the calling thread as a preemptible reader of `domain` now (as
/// liburcu's rcu_register_thread()), so that its first read section does not
/// allocate or take a lock. Idempotent. Thread: any. Throws std::bad_alloc.
void register_reader_thread(Domain& domain = Domain::default_domain());

/// Unregisters the calling thread from `domain` before the thread ends (it
/// happens at thread exit anyway). A later read section registers it again.
/// Precondition: not inside a read section of `domain` (aborts otherwise).
/// No-op if not registered. Thread: the thread itself.
void unregister_reader_thread(Domain& domain = Domain::default_domain());

/// True while the calling thread is inside a read section of `domain`.
/// Does not register the thread.
[[nodiscard]] bool in_read_section(Domain& domain) noexcept;

/// True while the calling thread is inside a read section of any domain (the
/// scheduler checks this at every fiber suspension point).
/// Cost: a thread-local load, plus a walk of the thread's other registrations
/// if it has any.
[[nodiscard]] bool in_any_read_section() noexcept;

}  // namespace quiesce::rcu
