// Fiber stacks (private): each is an mmap of the usable size plus one
// PROT_NONE guard page below it (stacks grow down). Released stacks are kept
// for reuse up to a limit; the rest are unmapped. Every guard page is also
// entered in a process-wide table that a SIGSEGV handler may search
// (find_guard), so a fault in one can be reported as a fiber stack overflow.
//
//     StackPool pool(64 * 1024);
//     FiberStack stack = pool.acquire();     // may mmap; throws std::system_error
//     ... run a fiber on [stack.bottom, stack.top()) ...
//     pool.release(stack);                   // cached, or unmapped
//
// Under AddressSanitizer every handed-out stack is registered with LSan as a
// root region (a suspended fiber may hold the only pointer to a block) and its
// shadow is cleared (a previous fiber may have left poisoned frames on it).
//
// Threading: acquire()/release() may be called from any thread; a mutex
// guards the cache (allocation happens once per fiber creation, not per
// switch). find_guard() takes no lock and is async-signal-safe.
// Cost: acquire() from the cache is a mutex and a shadow clear under ASan;
// otherwise mmap + mprotect (two syscalls, ~3 µs here).
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

namespace quiesce::sched::detail {

struct GuardRecord;

/// One stack: [bottom, top()) is usable, the guard page lies just below bottom.
struct FiberStack {
    void* bottom = nullptr;         ///< lowest usable address
    std::size_t size = 0;           ///< usable bytes (a multiple of the page size)
    GuardRecord* record = nullptr;  ///< its entry in the guard-page table

    [[nodiscard]] void* top() const noexcept { return static_cast<char*>(bottom) + size; }
    [[nodiscard]] explicit operator bool() const noexcept { return bottom != nullptr; }
};

/// What find_guard() reports about the stack whose guard page was hit.
struct GuardHit {
    std::size_t stack_size = 0;   ///< usable bytes of that stack
    const char* label = nullptr;  ///< set_label()'s string (the fiber's name), or null
};

class StackPool {
public:
    static constexpr std::size_t kDefaultStackSize = 64 * 1024;
    static constexpr std::size_t kDefaultMaxCached = 256;

    /// `stack_size` usable bytes per stack, rounded up to whole pages (at
    /// least one); at most `max_cached` released stacks are kept mapped.
    explicit StackPool(std::size_t stack_size = kDefaultStackSize,
                       std::size_t max_cached = kDefaultMaxCached);
    /// Unmaps the cached stacks. Precondition: every acquired stack has been
    /// released (checked: a fiber outliving its pool would run on freed memory).
    ~StackPool();
    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;

    /// A stack of stack_size() usable bytes, from the cache or freshly mapped.
    /// Thread: any. Throws std::system_error if mmap or mprotect fails.
    [[nodiscard]] FiberStack acquire();

    /// Gives `stack` back (it must come from this pool and run no fiber any
    /// more). Thread: any.
    void release(FiberStack stack) noexcept;

    /// Usable bytes per stack, after rounding.
    [[nodiscard]] std::size_t stack_size() const noexcept { return stack_size_; }
    /// Stacks currently handed out.
    [[nodiscard]] std::size_t in_use() const noexcept;
    /// Released stacks kept mapped for reuse.
    [[nodiscard]] std::size_t cached() const noexcept;
    /// Stacks mapped over the pool's lifetime (a reuse does not count).
    [[nodiscard]] std::size_t mapped_total() const noexcept;

    /// Names the owner of `stack` for overflow reports. `label` must stay
    /// valid until the next set_label() or the stack's release. Thread: the
    /// stack's owner. Async-signal-safe readers see the old or the new label.
    static void set_label(const FiberStack& stack, const char* label) noexcept;

    /// Whether `addr` lies in the guard page of a stack that some StackPool
    /// has handed out or cached; if so fills `hit`. Async-signal-safe, no
    /// lock: for the SIGSEGV handler. Thread: any.
    [[nodiscard]] static bool find_guard(const void* addr, GuardHit& hit) noexcept;

    /// The system page size (the guard page's size).
    [[nodiscard]] static std::size_t page_size() noexcept;

private:
    [[nodiscard]] FiberStack map_stack();
    void unmap_stack(FiberStack stack) noexcept;

    const std::size_t stack_size_;
    const std::size_t max_cached_;
    mutable std::mutex mutex_;
    std::vector<FiberStack> cache_;  // guarded by mutex_
    std::size_t in_use_ = 0;         // guarded by mutex_
    std::size_t mapped_total_ = 0;   // guarded by mutex_
};

}  // namespace quiesce::sched::detail
