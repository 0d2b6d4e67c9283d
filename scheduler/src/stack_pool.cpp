// Fiber stacks and the process-wide table of their guard pages; see
// stack_pool.hpp.
//
// Threading: the pool's cache is guarded by StackPool::mutex_; the guard
// table's free list by table_mutex. The table's chunks are published with
// release/acquire ([SP1]/[SP3]) and never freed, so a signal handler may walk
// them at any moment; a record's guard range is published by [SP2]/[SP4].
#include "stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <new>
#include <system_error>

#include <quiesce/base/assert.hpp>

#if QUIESCE_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

namespace quiesce::sched::detail {

/// One entry of the guard-page table. Written under table_mutex by the thread
/// that maps or unmaps the stack; read lock-free by find_guard() (signal
/// handlers on any thread), hence atomics. Records are never freed.
struct GuardRecord {
    std::atomic<std::uintptr_t> guard_begin{0};  ///< 0 while the record is free
    std::atomic<std::uintptr_t> guard_end{0};
    std::atomic<std::size_t> stack_size{0};
    std::atomic<const char*> label{nullptr};
    GuardRecord* next_free = nullptr;  ///< guarded by table_mutex
};

namespace {

constexpr std::size_t kRecordsPerChunk = 256;

struct GuardChunk {
    std::array<GuardRecord, kRecordsPerChunk> records;
    GuardChunk* next = nullptr;  // set before the chunk is published, constant after
};

// Namespace-scope and constant-initialised, with trivial destructors: the
// table must work before main(), after exit() has run static destructors, and
// inside signal handlers. Chunks are deliberately immortal (reachable from
// table_head, so LeakSanitizer does not count them).
constinit std::mutex table_mutex;
constinit GuardRecord* table_free = nullptr;  // guarded by table_mutex
constinit std::atomic<GuardChunk*> table_head{nullptr};

GuardRecord* table_add(std::uintptr_t guard_begin, std::uintptr_t guard_end,
                       std::size_t stack_size) {
    GuardRecord* record = nullptr;
    {
        std::lock_guard lock(table_mutex);
        if (table_free == nullptr) {
            auto* chunk = new GuardChunk;  // may throw std::bad_alloc: nothing changed yet
            for (GuardRecord& r : chunk->records) {
                r.next_free = table_free;
                table_free = &r;
            }
            chunk->next = table_head.load(std::memory_order_relaxed);  // relaxed: under the mutex
            // [SP1] release, pairs with [SP3] in find_guard(): a walker that
            // sees this chunk sees its constructed records and `next`.
            table_head.store(chunk, std::memory_order_release);
        }
        record = table_free;
        table_free = record->next_free;
    }
    // relaxed: published by the release store of guard_begin below.
    record->guard_end.store(guard_end, std::memory_order_relaxed);
    record->stack_size.store(stack_size, std::memory_order_relaxed);
    record->label.store(nullptr, std::memory_order_relaxed);
    // [SP2] release, pairs with [SP4] in find_guard(): who sees the range also
    // sees its end and size.
    record->guard_begin.store(guard_begin, std::memory_order_release);
    return record;
}

void table_remove(GuardRecord* record) noexcept {
    // relaxed: a walker that still sees the old range reads a record that
    // stays allocated; it can only matter for a fault in a stack being
    // unmapped, which runs no fiber. Reuse is ordered by table_mutex.
    record->guard_begin.store(0, std::memory_order_relaxed);
    std::lock_guard lock(table_mutex);
    record->next_free = table_free;
    table_free = record;
}

std::size_t round_up(std::size_t n, std::size_t to) noexcept {
    return (n + to - 1) / to * to;
}

// A stack changes hands: forget what the previous fiber left in the shadow
// (frames that never returned stay poisoned) and let LSan scan it while a
// fiber owns it. Released stacks are not scanned: their stale contents would
// hide leaks.
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

}  // namespace

std::size_t StackPool::page_size() noexcept {
    static const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return page;
}

StackPool::StackPool(std::size_t stack_size, std::size_t max_cached)
    : stack_size_(round_up(stack_size == 0 ? 1 : stack_size, page_size())),
      max_cached_(max_cached) {
    cache_.reserve(max_cached_ < 1024 ? max_cached_ : 1024);
}

StackPool::~StackPool() {
    std::lock_guard lock(mutex_);
    QUIESCE_CHECK(in_use_ == 0, "StackPool destroyed while fibers still use its stacks");
    for (const FiberStack& stack : cache_) unmap_stack(stack);
    cache_.clear();
}

FiberStack StackPool::acquire() {
    FiberStack stack;
    {
        std::lock_guard lock(mutex_);
        if (!cache_.empty()) {
            stack = cache_.back();
            cache_.pop_back();
            ++in_use_;
        }
    }
    if (!stack) {
        stack = map_stack();  // throws: nothing counted yet
        std::lock_guard lock(mutex_);
        ++mapped_total_;
        ++in_use_;
    }
    begin_use(stack);
    return stack;
}

void StackPool::release(FiberStack stack) noexcept {
    QUIESCE_ASSERT(stack, "release() of an empty FiberStack");
    end_use(stack);
    set_label(stack, nullptr);
    {
        std::lock_guard lock(mutex_);
        QUIESCE_ASSERT(in_use_ > 0, "release() of a stack this pool did not hand out");
        --in_use_;
        if (cache_.size() < max_cached_) {
            try {
                cache_.push_back(stack);
                return;
            } catch (const std::bad_alloc&) {
                // Fall through: unmapping is always a correct answer.
            }
        }
    }
    unmap_stack(stack);
}

std::size_t StackPool::in_use() const noexcept {
    std::lock_guard lock(mutex_);
    return in_use_;
}

std::size_t StackPool::cached() const noexcept {
    std::lock_guard lock(mutex_);
    return cache_.size();
}

std::size_t StackPool::mapped_total() const noexcept {
    std::lock_guard lock(mutex_);
    return mapped_total_;
}

void StackPool::set_label(const FiberStack& stack, const char* label) noexcept {
    // relaxed: a single pointer; the reader (an overflow report) tolerates
    // either value, and the owner of the stack is the only writer.
    stack.record->label.store(label, std::memory_order_relaxed);
}

bool StackPool::find_guard(const void* addr, GuardHit& hit) noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(addr);
    // [SP3] acquire, pairs with [SP1] in table_add().
    for (GuardChunk* chunk = table_head.load(std::memory_order_acquire); chunk != nullptr;
         chunk = chunk->next) {
        for (const GuardRecord& record : chunk->records) {
            // [SP4] acquire, pairs with [SP2] in table_add().
            const std::uintptr_t begin = record.guard_begin.load(std::memory_order_acquire);
            if (begin == 0 || a < begin) continue;
            // relaxed: published by [SP2], read after [SP4].
            if (a >= record.guard_end.load(std::memory_order_relaxed)) continue;
            hit.stack_size = record.stack_size.load(std::memory_order_relaxed);
            hit.label = record.label.load(std::memory_order_relaxed);
            return true;
        }
    }
    return false;
}

FiberStack StackPool::map_stack() {
    const std::size_t page = page_size();
    const std::size_t total = stack_size_ + page;
    void* base = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) {
        throw std::system_error(errno, std::system_category(), "mmap of a fiber stack");
    }
    if (mprotect(base, page, PROT_NONE) != 0) {
        const int err = errno;
        munmap(base, total);
        throw std::system_error(err, std::system_category(), "mprotect of a fiber guard page");
    }
    const auto guard = reinterpret_cast<std::uintptr_t>(base);
    FiberStack stack{static_cast<char*>(base) + page, stack_size_, nullptr};
    try {
        stack.record = table_add(guard, guard + page, stack_size_);
    } catch (...) {
        munmap(base, total);
        throw;
    }
    return stack;
}

void StackPool::unmap_stack(FiberStack stack) noexcept {
    table_remove(stack.record);
    const std::size_t page = page_size();
#if QUIESCE_ASAN
    // The address range may next hold heap or a thread stack: leave no poison.
    ASAN_UNPOISON_MEMORY_REGION(stack.bottom, stack.size);
#endif
    const int rc = munmap(static_cast<char*>(stack.bottom) - page, stack.size + page);
    QUIESCE_CHECK(rc == 0, "munmap of a fiber stack failed");
}

}  // namespace quiesce::sched::detail
