// rcu::Ptr<T>: an RCU-protected pointer. Readers load() it inside a read
// section (a ReadLock, or between a QSBR reader's quiescent states);
// updaters publish a fully built object with store()/exchange() and retire the
// old one after a grace period.
//
//     rcu::Ptr<Table> table{new Table};
//     { rcu::ReadLock lock; lookup(*table.load(), key); }   // reader
//     Table* old = table.exchange(new Table(*table.load_owned(), edit));
//     domain.retire(old);                                   // updater
//
// PtrView<T> gives the same operations on a pointer slot that already exists
// (a field of a C struct, a slot in a table the program does not own):
//
//     struct c_server { struct config* config; };   // from a C header
//     rcu::PtrView<config> view(server->config);
//     { rcu::ReadLock lock; use(view.load()); }
//
// Threading: any thread. Updaters must serialise among themselves (a mutex)
// unless they use compare_exchange().
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>

namespace quiesce::rcu {

template <typename T>
class Ptr {
public:
    constexpr Ptr() noexcept = default;
    constexpr explicit Ptr(T* initial) noexcept : ptr_(initial) {}
    Ptr(const Ptr&) = delete;
    Ptr& operator=(const Ptr&) = delete;

    /// For readers, inside a read section. Memory ordering: acquire, pairs with
    /// the release of store()/exchange()/compare_exchange(): the object's
    /// contents as built before publication are visible. (Acquire rather than
    /// consume: compilers promote consume to acquire anyway, and on x86 and
    /// for data-dependent loads on arm64 it costs the same as a plain load.)
    [[nodiscard]] T* load() const noexcept { return ptr_.load(std::memory_order_acquire); }

    /// For updaters that serialise among themselves: the current value.
    /// Memory ordering: relaxed (the updater's own lock orders it).
    [[nodiscard]] T* load_owned() const noexcept { return ptr_.load(std::memory_order_relaxed); }

    /// Publishes `next`. Memory ordering: release, pairs with load().
    void store(T* next) noexcept { ptr_.store(next, std::memory_order_release); }

    /// Publishes `next` and returns the previous pointer, which readers may
    /// still see until a grace period has passed. Memory ordering: acq_rel
    /// (release pairs with load(); acquire with the previous publisher).
    [[nodiscard]] T* exchange(T* next) noexcept {
        return ptr_.exchange(next, std::memory_order_acq_rel);
    }

    /// Publishes `next` if the pointer is still `expected`; otherwise loads
    /// the current value into `expected`. Memory ordering: acq_rel on
    /// success (as exchange()), acquire on failure.
    [[nodiscard]] bool compare_exchange(T*& expected, T* next) noexcept {
        return ptr_.compare_exchange_strong(expected, next, std::memory_order_acq_rel,
                                            std::memory_order_acquire);
    }

private:
    std::atomic<T*> ptr_{nullptr};
};

/// Ptr's operations, with the same memory orders, on an existing `T*` slot
/// (std::atomic_ref). Every access to the slot while readers may see it must
/// go through a PtrView (or be an atomic of the same orders); plain stores
/// race. The slot must be naturally aligned (any declared pointer is).
/// A view is a reference: cheap to copy, valid while the slot lives.
template <typename T>
class PtrView {
public:
    explicit PtrView(T*& slot) noexcept : ref_(slot) {}

    /// As Ptr::load(): acquire.
    [[nodiscard]] T* load() const noexcept { return ref_.load(std::memory_order_acquire); }
    /// As Ptr::load_owned(): relaxed, for serialised updaters.
    [[nodiscard]] T* load_owned() const noexcept { return ref_.load(std::memory_order_relaxed); }
    /// As Ptr::store(): release.
    void store(T* next) const noexcept { ref_.store(next, std::memory_order_release); }
    /// As Ptr::exchange(): acq_rel.
    [[nodiscard]] T* exchange(T* next) const noexcept {
        return ref_.exchange(next, std::memory_order_acq_rel);
    }
    /// As Ptr::compare_exchange().
    [[nodiscard]] bool compare_exchange(T*& expected, T* next) const noexcept {
        return ref_.compare_exchange_strong(expected, next, std::memory_order_acq_rel,
                                            std::memory_order_acquire);
    }

private:
    static_assert(std::atomic_ref<T*>::is_always_lock_free, "a pointer slot must be lock-free");
    std::atomic_ref<T*> ref_;
};

}  // namespace quiesce::rcu
