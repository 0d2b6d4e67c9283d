// The table of fiber-stack slabs for the overflow handler; see guard_table.hpp.
//
// Threading: table_mutex orders adds and removes (and record reuse); the list
// of records is published with release/acquire ([SP1]/[SP3]) and never
// shrinks, so a signal handler may walk it at any moment; a record's range is
// published by [SP2]/[SP4].
#include "guard_table.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <new>

namespace quiesce::sched::detail {

/// One slab. Written under table_mutex by the thread that maps or unmaps the
/// slab (labels: by the slot's owner); read lock-free by guard_table_find().
struct SlabRecord {
    std::atomic<std::uintptr_t> begin{0};  ///< 0 while the record is free
    std::atomic<std::uintptr_t> end{0};
    std::atomic<std::size_t> slot_size{1};
    std::atomic<std::size_t> guard_size{0};
    std::atomic<std::size_t> stack_size{0};
    std::size_t capacity = 0;                    ///< labels' length; constant
    std::atomic<const char*>* labels = nullptr;  ///< `capacity` entries; immortal
    SlabRecord* next = nullptr;                  ///< set before publication; constant
    bool in_use = false;                         ///< table_mutex
};

namespace {

// Constant-initialised with trivial destructors: the table works before
// main(), after static destructors ran, and in signal handlers. Records are
// deliberately immortal (reachable from table_head, so LeakSanitizer does not
// count them).
constinit std::mutex table_mutex;
constinit std::atomic<SlabRecord*> table_head{nullptr};

SlabRecord* take_record(std::size_t count) {
    for (SlabRecord* r = table_head.load(std::memory_order_relaxed); r != nullptr; r = r->next) {
        if (!r->in_use && r->capacity >= count) return r;  // relaxed: under table_mutex
    }
    auto labels = std::make_unique<std::atomic<const char*>[]>(count);
    auto* record = new SlabRecord;
    record->capacity = count;
    record->labels = labels.release();
    record->next = table_head.load(std::memory_order_relaxed);  // relaxed: under table_mutex
    // [SP1] release, pairs with [SP3] in guard_table_find(): a walker that
    // sees the record sees it constructed, with its labels and `next`.
    table_head.store(record, std::memory_order_release);
    return record;
}

}  // namespace

SlabRecord* guard_table_add(std::uintptr_t base, std::size_t count, std::size_t slot_size,
                            std::size_t guard_size, std::size_t stack_size) {
    std::lock_guard lock(table_mutex);
    SlabRecord* record = take_record(count);  // may throw: nothing changed yet
    record->in_use = true;
    for (std::size_t i = 0; i < record->capacity; ++i) {
        record->labels[i].store(nullptr, std::memory_order_relaxed);  // published by [SP2]
    }
    // relaxed: published by the release store of `begin` below.
    record->end.store(base + count * slot_size, std::memory_order_relaxed);
    record->slot_size.store(slot_size, std::memory_order_relaxed);
    record->guard_size.store(guard_size, std::memory_order_relaxed);
    record->stack_size.store(stack_size, std::memory_order_relaxed);
    // [SP2] release, pairs with [SP4] in guard_table_find(): who sees the
    // range also sees its geometry.
    record->begin.store(base, std::memory_order_release);
    return record;
}

void guard_table_remove(SlabRecord* slab) noexcept {
    std::lock_guard lock(table_mutex);
    // relaxed: a walker that still sees the old range reads a record that
    // stays allocated; it can only matter for a fault in a slab being
    // unmapped, which runs no fiber. Reuse is ordered by table_mutex.
    slab->begin.store(0, std::memory_order_relaxed);
    slab->in_use = false;
}

void guard_table_set_label(SlabRecord* slab, std::size_t slot, const char* label) noexcept {
    // relaxed: one pointer; an overflow report tolerates either value, and
    // the slot's owner is the only writer.
    slab->labels[slot].store(label, std::memory_order_relaxed);
}

bool guard_table_find(const void* addr, GuardHit& hit) noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(addr);
    // [SP3] acquire, pairs with [SP1] in take_record().
    for (SlabRecord* r = table_head.load(std::memory_order_acquire); r != nullptr; r = r->next) {
        // [SP4] acquire, pairs with [SP2] in guard_table_add().
        const std::uintptr_t begin = r->begin.load(std::memory_order_acquire);
        // relaxed: published by [SP2], read after [SP4].
        if (begin == 0 || a < begin || a >= r->end.load(std::memory_order_relaxed)) continue;
        const std::size_t slot_size = r->slot_size.load(std::memory_order_relaxed);
        const std::size_t guard = r->guard_size.load(std::memory_order_relaxed);
        const std::size_t slot = (a - begin) / slot_size;
        if ((a - begin) % slot_size >= guard) return false;  // inside a stack, not a guard
        hit.stack_size = r->stack_size.load(std::memory_order_relaxed);
        hit.guard_size = guard;
        hit.label = r->labels[slot].load(std::memory_order_relaxed);
        return true;
    }
    return false;
}

}  // namespace quiesce::sched::detail
