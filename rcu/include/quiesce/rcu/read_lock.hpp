// Preemptible read-side critical sections: ReadLock, for any thread that is
// not a QSBR reader (or for code that does not know what thread it runs on).
//
//     {
//         rcu::ReadLock lock;              // default domain; nests freely
//         const Config* c = config.load(); // valid until the lock ends
//         use(c->port);
//     }
//
// The thread registers itself with the domain on its first ReadLock and
// unregisters when it exits. The fast path is a thread-local nesting counter
// with the domain's phase bit and a compiler barrier: no atomic
// read-modify-write, no fence (ReadMode::kMembarrier). Where membarrier() is
// unavailable the domain falls back to a full fence on lock and unlock.
//
// Limits: a read section must not block for long (it holds up every grace
// period), must not call synchronize() or barrier(), and must end on the
// thread that began it.
//
// Threading: a PreemptibleReader is written only by its thread (ctr) and read
// by the grace-period driver; see rcu/README.md, labels [R1]-[R3].
#pragma once

#include <atomic>
#include <cstdint>

#include <quiesce/base/assert.hpp>
#include <quiesce/rcu/domain.hpp>

namespace quiesce::rcu {
namespace detail {

/// One thread's registration as a preemptible reader of one domain.
struct alignas(base::kNoFalseSharing) PreemptibleReader {
    /// Nesting count (low 32 bits) | phase at the outermost lock. Written only
    /// by the owner thread; read by the driver in wait_for_readers().
    std::atomic<std::uint64_t> ctr{0};
    DomainHot* hot = nullptr;
    bool fences = false;  // ReadMode::kFences: copied at registration

    void lock() noexcept {
        // relaxed: only this thread writes ctr.
        std::uint64_t v = ctr.load(std::memory_order_relaxed);
        if ((v & kNestMask) == 0) {
            // relaxed: the phase we copy is ordered by [M1] (the driver's
            // membarrier after each flip), not by this load.
            ctr.store(hot->phase.load(std::memory_order_relaxed) | 1, std::memory_order_relaxed);
            // [R1] pairs with [M1] in DomainImpl::wait_for_readers(): the ctr
            // store is visible before the section's loads, or the driver's
            // membarrier makes it so before the driver scans.
            if (fences)
                std::atomic_thread_fence(std::memory_order_seq_cst);
            else
                std::atomic_signal_fence(std::memory_order_seq_cst);
        } else {
            QUIESCE_ASSERT((v & kNestMask) < kNestMask, "ReadLock nesting overflow");
            ctr.store(v + 1, std::memory_order_relaxed);  // relaxed: owner-only, nested
        }
    }

    void unlock() noexcept {
        std::uint64_t v = ctr.load(std::memory_order_relaxed);  // relaxed: owner-only
        QUIESCE_ASSERT((v & kNestMask) != 0, "ReadLock unlocked more often than locked");
        if ((v & kNestMask) == 1) {
            // [R2] release, pairs with [G4] (the driver's acquire load of ctr):
            // the section's loads happen-before the driver sees it ended.
            ctr.store(v - 1, std::memory_order_release);
            // [R3] pairs with [M2]: the ctr store above is ordered before the
            // reader_futex load below (membarrier on the driver side, or a
            // fence here), so a sleeping driver is never missed.
            if (fences)
                std::atomic_thread_fence(std::memory_order_seq_cst);
            else
                std::atomic_signal_fence(std::memory_order_seq_cst);
            // relaxed: ordered by [R3].
            if (hot->reader_futex.load(std::memory_order_relaxed) == -1) wake_driver(hot);
        } else {
            ctr.store(v - 1, std::memory_order_relaxed);  // relaxed: owner-only, nested
        }
    }

    [[nodiscard]] bool in_section() const noexcept {
        return (ctr.load(std::memory_order_relaxed) & kNestMask) != 0;  // relaxed: owner-only
    }

    [[gnu::cold]] static void wake_driver(DomainHot* hot) noexcept;
};

/// The calling thread's reader for the default domain; null until its first
/// ReadLock. Constant-initialised, initial-exec: one %fs-relative load.
[[gnu::tls_model("initial-exec")]] inline constinit thread_local PreemptibleReader*
    tls_default_reader = nullptr;

/// Slow paths: register the calling thread (once per thread and domain).
[[gnu::cold]] PreemptibleReader* register_default_reader();
PreemptibleReader* reader_for(Domain& domain);

inline PreemptibleReader* default_reader() {
    PreemptibleReader* reader = tls_default_reader;
    if (__builtin_expect(reader != nullptr, 1)) return reader;
    return register_default_reader();
}

}  // namespace detail

/// RAII preemptible read-side critical section. Nestable. Not movable: it
/// must end on the thread and in the scope that began it.
/// Thread: any (registers the thread on first use; may allocate then).
/// Cost: a few instructions, no RMW, no fence (ReadMode::kMembarrier).
class [[nodiscard]] ReadLock {
public:
    ReadLock() : reader_(detail::default_reader()) { reader_->lock(); }
    explicit ReadLock(Domain& domain) : reader_(detail::reader_for(domain)) { reader_->lock(); }
    ~ReadLock() { reader_->unlock(); }
    ReadLock(const ReadLock&) = delete;
    ReadLock& operator=(const ReadLock&) = delete;

private:
    detail::PreemptibleReader* reader_;
};

/// True while the calling thread is inside a ReadLock of `domain`.
/// For assertions; does not register the thread.
[[nodiscard]] bool in_read_section(Domain& domain) noexcept;

}  // namespace quiesce::rcu
