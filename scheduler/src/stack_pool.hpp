// Fiber stacks (private). Stacks are slots of large mappings (slabs); below
// each stack lies a guard region (64 KiB by default) that no fiber may touch:
//
//     slab:  [guard | stack][guard | stack][guard | stack] ...   (stacks grow down)
//
// Why 64 KiB and not one page: code built without -fstack-clash-protection
// (g++'s default on Debian) moves the stack pointer by a whole frame before
// touching it, so a frame of 7-16 KiB jumps a 4 KiB guard page and lands in
// the neighbouring stack. A guard region larger than any frame a user is
// likely to write catches the first access of such a frame. It costs address
// space (128 KiB of the 128 TiB user space per fiber), not memory.
//
// How a guard region is made, in order of preference (GuardMode::kAuto):
// - kMadvise: madvise(MADV_GUARD_INSTALL), Linux 6.13+. Guard regions cost no
//   mapping of their own: a whole slab is one mapping, so vm.max_map_count
//   (65,530 by default) does not limit the number of fibers.
// - kMprotect: mprotect(PROT_NONE) per slot, which splits the mapping: two
//   mappings per stack, so only (vm.max_map_count - reserve) / 2 of them
//   (about 24,000 by default) fit in a process. Past that budget:
// - kCanary: the guard region stays mapped but unused, and a 64-byte canary
//   at its top is checked at every switch away from the fiber (one load and
//   compare). An overflow of up to the guard size writes only into the unused
//   region and is reported, by the fiber's name, when the fiber next
//   suspends or ends; only a deeper one can reach the neighbour.
//
//     StackPool pool(64 * 1024);
//     pool.reserve();                          // may map a slab; throws std::system_error
//     FiberStack stack = pool.acquire(true);   // a reserved slot: never throws
//     ... run a fiber on [stack.bottom, stack.top()) ...
//     pool.release(stack);                     // kept warm, or its pages dropped
//
// Under AddressSanitizer every handed-out stack is registered with LSan as a
// root region (a suspended fiber may hold the only pointer to a block) and its
// shadow is cleared (a previous fiber may have left poisoned frames on it).
//
// Threading: every member may be called from any thread; a mutex guards the
// free lists (taken once per fiber creation, not per switch). The overflow
// handler reads guard_table.hpp's table, lock-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace quiesce::sched::detail {

struct SlabRecord;

enum class GuardMode : std::uint8_t {
    kAuto,      ///< kMadvise where the kernel has it, else kMprotect within budget, else kCanary
    kMadvise,   ///< MADV_GUARD_INSTALL (fails where the kernel lacks it)
    kMprotect,  ///< a PROT_NONE region per stack, within the mapping budget, then kCanary
    kCanary,    ///< no protection: a canary checked at every switch
};

[[nodiscard]] const char* to_string(GuardMode mode) noexcept;

/// One stack: [bottom, top()) is usable, the guard region lies just below.
struct FiberStack {
    void* bottom = nullptr;              ///< lowest usable address
    std::size_t size = 0;                ///< usable bytes (a multiple of the page size)
    SlabRecord* slab = nullptr;          ///< its slab's entry in the guard table
    std::size_t slot = 0;                ///< its index in the slab
    GuardMode guard = GuardMode::kAuto;  ///< kMadvise, kMprotect or kCanary once handed out

    [[nodiscard]] void* top() const noexcept { return static_cast<char*>(bottom) + size; }
    [[nodiscard]] explicit operator bool() const noexcept { return bottom != nullptr; }
};

/// Counts for statistics and tests (a snapshot under the pool's mutex).
struct StackPoolStats {
    std::size_t in_use = 0;             ///< stacks handed out
    std::size_t warm = 0;               ///< free stacks that keep their pages
    std::size_t free = 0;               ///< free slots in all (warm, dropped, never used)
    std::size_t reserved = 0;           ///< reserve() calls not yet consumed
    std::size_t slots = 0;              ///< slots mapped over the pool's lifetime
    std::size_t slabs = 0;              ///< mappings made
    std::size_t guarded = 0;            ///< slots with a guard region the hardware enforces
    std::size_t canary = 0;             ///< slots handed out with a canary only
    GuardMode mode = GuardMode::kAuto;  ///< what kAuto resolved to
};

class StackPool {
public:
    static constexpr std::size_t kDefaultStackSize = 64 * 1024;
    static constexpr std::size_t kDefaultGuardSize = 64 * 1024;
    static constexpr std::size_t kDefaultMaxWarm = 256;
    static constexpr std::size_t kCanaryBytes = 64;

    /// Stacks of `stack_size` usable bytes and guard regions of `guard_size`
    /// bytes, each rounded up to whole pages (at least one); at most
    /// `max_warm` free stacks keep their pages (the rest are given back with
    /// MADV_DONTNEED). `mode` kAuto is what a scheduler uses; the others are
    /// for tests (kMadvise throws std::system_error on first use where the
    /// kernel lacks it). `mprotect_budget` caps the kMprotect stacks of this
    /// pool (default: what vm.max_map_count allows the process).
    explicit StackPool(std::size_t stack_size = kDefaultStackSize,
                       std::size_t max_warm = kDefaultMaxWarm,
                       std::size_t guard_size = kDefaultGuardSize,
                       GuardMode mode = GuardMode::kAuto, std::size_t mprotect_budget = SIZE_MAX);
    /// Unmaps the slabs. Precondition: every acquired stack has been
    /// released (checked: a fiber outliving its pool would run on freed memory).
    ~StackPool();
    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;

    /// Makes sure a later acquire(true) finds a slot, mapping a slab if
    /// needed. Throws std::system_error with a message that says what failed
    /// and how many stacks the pool has. Thread: any.
    void reserve();
    /// Gives back a reservation that will not be used.
    void unreserve() noexcept;

    /// A stack of stack_size() usable bytes. `reserved`: consumes a reserve()
    /// and never throws; otherwise may map a slab (throws std::system_error).
    [[nodiscard]] FiberStack acquire(bool reserved = false);

    /// Gives `stack` back (it must come from this pool and run no fiber any
    /// more). Thread: any.
    void release(FiberStack stack) noexcept;

    [[nodiscard]] std::size_t stack_size() const noexcept { return stack_size_; }
    [[nodiscard]] std::size_t guard_size() const noexcept { return guard_size_; }
    [[nodiscard]] StackPoolStats stats() const;
    /// Shorthands of stats().
    [[nodiscard]] std::size_t in_use() const { return stats().in_use; }
    [[nodiscard]] std::size_t warm() const { return stats().warm; }

    /// Names the owner of `stack` for overflow reports. `label` must stay
    /// valid until the next set_label() or the stack's release.
    static void set_label(const FiberStack& stack, const char* label) noexcept;

    /// True while the canary below a kCanary stack is intact (always true for
    /// guarded stacks). Cost: a branch, and for kCanary stacks 8 loads.
    [[nodiscard]] static bool canary_intact(const FiberStack& stack) noexcept;

    /// The system page size.
    [[nodiscard]] static std::size_t page_size() noexcept;

    /// From now on kAuto pools behave as on a kernel without
    /// MADV_GUARD_INSTALL (mprotect within budget, then canaries). Tests.
    static void refuse_madvise_guards_for_tests() noexcept;

private:
    struct Slab {
        char* base;
        std::size_t count;
        SlabRecord* record;
    };

    void map_slab_locked();  // mutex_ held (stack_slab.cpp)
    [[nodiscard]] FiberStack take_locked();
    void protect(FiberStack& stack) noexcept;
    static void forget_mprotected(std::size_t count) noexcept;
    [[nodiscard]] std::string describe_failure(int err, const char* what) const;

    const std::size_t stack_size_;
    const std::size_t guard_size_;
    const std::size_t slot_size_;
    const std::size_t max_warm_;
    const std::size_t mprotect_budget_;
    GuardMode mode_;  // mutex_ (kAuto resolves at the first slab)

    mutable std::mutex mutex_;
    std::vector<Slab> slabs_;       // mutex_
    std::vector<FiberStack> warm_;  // mutex_: free, pages kept (LIFO)
    std::vector<FiberStack> cold_;  // mutex_: free, no pages (dropped or never used)
    std::size_t in_use_ = 0;        // mutex_
    std::size_t reserved_ = 0;      // mutex_
    std::size_t slots_ = 0;         // mutex_
    std::size_t mprotected_ = 0;    // mutex_: kMprotect stacks made (never undone)
    std::size_t canaries_ = 0;      // mutex_: kCanary stacks made
};

}  // namespace quiesce::sched::detail
