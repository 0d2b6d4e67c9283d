// The process-wide table of fiber-stack slabs that the SIGSEGV handler
// searches (private): a fault address inside the guard region of a slot names
// the fiber that owns the slot.
//
//     SlabRecord* slab = guard_table_add(base, count, slot_size, guard_size, stack_size);
//     guard_table_set_label(slab, slot, "conn 42");    // the fiber's name
//     GuardHit hit;
//     if (guard_table_find(fault_address, hit)) report(hit.label);   // signal handler
//     guard_table_remove(slab);                         // before munmap
//
// A slab is `count` slots of `slot_size` bytes from `base`; slot i holds its
// guard region at [base + i * slot_size, + guard_size) and its stack above.
//
// Threading: add/remove/set_label from any thread (a mutex orders adds and
// removes); find takes no lock and is async-signal-safe. Records are never
// freed (a handler may be walking them): a removed one is reused by a later
// slab of no more slots. Labels [SP1]-[SP4], scheduler/README.md.
#pragma once

#include <cstddef>
#include <cstdint>

namespace quiesce::sched::detail {

struct SlabRecord;

/// What guard_table_find() reports about the slot whose guard was hit.
struct GuardHit {
    std::size_t stack_size = 0;   ///< usable bytes of that stack
    std::size_t guard_size = 0;   ///< bytes of its guard region
    const char* label = nullptr;  ///< the fiber's name, or null
};

/// Enters a slab. Throws std::bad_alloc (nothing entered then).
SlabRecord* guard_table_add(std::uintptr_t base, std::size_t count, std::size_t slot_size,
                            std::size_t guard_size, std::size_t stack_size);

/// Takes a slab out (before it is unmapped); the record is kept for reuse.
void guard_table_remove(SlabRecord* slab) noexcept;

/// Names the owner of slot `slot` (null: none). `label` must stay valid until
/// the next call for that slot. Readers see the old or the new pointer.
void guard_table_set_label(SlabRecord* slab, std::size_t slot, const char* label) noexcept;

/// Whether `addr` lies in the guard region of a slot of a live slab; if so
/// fills `hit`. Async-signal-safe, lock-free.
[[nodiscard]] bool guard_table_find(const void* addr, GuardHit& hit) noexcept;

}  // namespace quiesce::sched::detail
