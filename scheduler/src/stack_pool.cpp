// Fiber stacks in guarded slabs; see stack_pool.hpp.
//
// Threading: a pool's free lists and counters are guarded by its mutex_; the
// process-wide mapping budget for kMprotect guards is an atomic counter; the
// overflow handler's view is guard_table.cpp's.
#include "stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <new>

#include <quiesce/base/assert.hpp>

#include "guard_table.hpp"

#if QUIESCE_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

namespace quiesce::sched::detail {
namespace {

constexpr std::uint64_t kCanaryWord = 0x5155494553434521;  // "QUIESCE!"

std::size_t round_up(std::size_t n, std::size_t to) noexcept {
    return (n + to - 1) / to * to;
}

// A stack changes hands: forget what the previous fiber left in the shadow
// (frames that never returned stay poisoned) and let LSan scan it while a
// fiber owns it. Free stacks are not scanned: stale contents would hide leaks.
void begin_use(const FiberStack& stack) noexcept {
#if QUIESCE_ASAN
    ASAN_UNPOISON_MEMORY_REGION(stack.bottom, stack.size);
    __lsan_register_root_region(stack.bottom, stack.size);
#else
    (void)stack;
#endif
}

void end_use(const FiberStack& stack) noexcept {
#if QUIESCE_ASAN
    __lsan_unregister_root_region(stack.bottom, stack.size);
#else
    (void)stack;
#endif
}

std::uint64_t* canary_of(const FiberStack& stack) noexcept {
    return reinterpret_cast<std::uint64_t*>(static_cast<char*>(stack.bottom) -
                                            StackPool::kCanaryBytes);
}

}  // namespace

const char* to_string(GuardMode mode) noexcept {
    switch (mode) {
        case GuardMode::kAuto:
            return "auto";
        case GuardMode::kMadvise:
            return "MADV_GUARD_INSTALL";
        case GuardMode::kMprotect:
            return "mprotect";
        case GuardMode::kCanary:
            return "canary";
    }
    return "?";
}

std::size_t StackPool::page_size() noexcept {
    static const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return page;
}

StackPool::StackPool(std::size_t stack_size, std::size_t max_warm, std::size_t guard_size,
                     GuardMode mode, std::size_t mprotect_budget)
    : stack_size_(round_up(stack_size == 0 ? 1 : stack_size, page_size())),
      guard_size_(round_up(std::max(guard_size, kCanaryBytes), page_size())),
      slot_size_(stack_size_ + guard_size_),
      max_warm_(max_warm),
      mprotect_budget_(mprotect_budget),
      mode_(mode) {}

StackPool::~StackPool() {
    std::lock_guard lock(mutex_);
    QUIESCE_CHECK(in_use_ == 0, "StackPool destroyed while fibers still use its stacks");
    for (const Slab& slab : slabs_) {
        guard_table_remove(slab.record);
#if QUIESCE_ASAN
        // The range may next hold heap or a thread stack: leave no poison.
        ASAN_UNPOISON_MEMORY_REGION(slab.base, slab.count * slot_size_);
#endif
        QUIESCE_CHECK(munmap(slab.base, slab.count * slot_size_) == 0,
                      "munmap of a fiber stack slab failed");
    }
    forget_mprotected(mprotected_);
}

void StackPool::reserve() {
    std::lock_guard lock(mutex_);
    if (warm_.size() + cold_.size() <= reserved_) map_slab_locked();  // throws
    ++reserved_;
}

void StackPool::unreserve() noexcept {
    std::lock_guard lock(mutex_);
    QUIESCE_ASSERT(reserved_ > 0, "unreserve() without reserve()");
    --reserved_;
}

FiberStack StackPool::acquire(bool reserved) {
    FiberStack stack;
    {
        std::lock_guard lock(mutex_);
        if (reserved) {
            QUIESCE_CHECK(reserved_ > 0, "StackPool::acquire(true) without a reservation");
            --reserved_;
        } else if (warm_.size() + cold_.size() <= reserved_) {
            map_slab_locked();  // throws: nothing taken yet
        }
        stack = take_locked();
        if (stack.guard == GuardMode::kAuto) protect(stack);
        ++in_use_;
    }
    if (stack.guard == GuardMode::kCanary)
        std::fill_n(canary_of(stack), kCanaryBytes / 8, kCanaryWord);
    begin_use(stack);
    return stack;
}

FiberStack StackPool::take_locked() {
    std::vector<FiberStack>& from = warm_.empty() ? cold_ : warm_;
    FiberStack stack = from.back();
    from.pop_back();
    return stack;
}

void StackPool::release(FiberStack stack) noexcept {
    QUIESCE_ASSERT(stack, "release() of an empty FiberStack");
    end_use(stack);
    set_label(stack, nullptr);
    std::lock_guard lock(mutex_);
    QUIESCE_ASSERT(in_use_ > 0, "release() of a stack this pool did not hand out");
    --in_use_;
    try {
        if (warm_.size() < max_warm_) {
            warm_.push_back(stack);
            return;
        }
        // Give the pages back; the guard region (madvise or mprotect) stays.
        (void)madvise(stack.bottom, stack.size, MADV_DONTNEED);
        cold_.push_back(stack);
    } catch (const std::bad_alloc&) {
        // Capacity for every slot was reserved when its slab was mapped.
        QUIESCE_CHECK(false, "a fiber stack free list could not grow");
    }
}

StackPoolStats StackPool::stats() const {
    std::lock_guard lock(mutex_);
    StackPoolStats out;
    out.in_use = in_use_;
    out.warm = warm_.size();
    out.free = warm_.size() + cold_.size();
    out.reserved = reserved_;
    out.slots = slots_;
    out.slabs = slabs_.size();
    out.guarded = mode_ == GuardMode::kMadvise ? slots_ : mprotected_;
    out.canary = canaries_;
    out.mode = mode_;
    return out;
}

void StackPool::set_label(const FiberStack& stack, const char* label) noexcept {
    guard_table_set_label(stack.slab, stack.slot, label);
}

bool StackPool::canary_intact(const FiberStack& stack) noexcept {
    if (__builtin_expect(stack.guard != GuardMode::kCanary, 1)) return true;
    const std::uint64_t* words = canary_of(stack);
    std::uint64_t bad = 0;
    for (std::size_t i = 0; i < kCanaryBytes / 8; ++i) bad |= words[i] ^ kCanaryWord;
    return bad == 0;
}

}  // namespace quiesce::sched::detail
