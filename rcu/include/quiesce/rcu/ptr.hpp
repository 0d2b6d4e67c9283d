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
// Threading: any thread. Updaters must serialise among themselves (a mutex)
// unless they use compare_exchange().
#pragma once

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

}  // namespace quiesce::rcu
