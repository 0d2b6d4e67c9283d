// Mapping fiber-stack slabs and giving their slots guard regions; see
// stack_pool.hpp for the three kinds of guard and why.
//
// Threading: every function here runs with the pool's mutex_ held.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "guard_table.hpp"
#include "log.hpp"
#include "stack_pool.hpp"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13; Debian 12's headers predate it
#endif

namespace quiesce::sched::detail {
namespace {

constexpr std::size_t kFirstSlabSlots = 16;
constexpr std::size_t kMaxSlabSlots = 1024;

// kMprotect stacks of the whole process: each costs two mappings of the
// vm.max_map_count budget. relaxed: a budget counter; it orders nothing.
std::atomic<std::size_t> process_mprotected{0};
// Set once the kernel refused MADV_GUARD_INSTALL (EINVAL: before 6.13).
// relaxed: a hint; a pool that misses it learns the same from the kernel.
std::atomic<bool> madvise_refused{false};
// One line per process each: relaxed, they only pick a log level.
std::atomic<bool> mode_logged{false};
std::atomic<bool> budget_warned{false};

long read_long(const char* path, long fallback) {
    std::ifstream in(path);
    long value = 0;
    return (in >> value) ? value : fallback;
}

std::size_t count_maps() {
    std::ifstream in("/proc/self/maps");
    std::size_t lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    return lines;
}

long max_map_count() {
    return read_long("/proc/sys/vm/max_map_count", 65530);
}

/// kMprotect stacks the process may make: two mappings each, leaving a
/// quarter of the limit, and what is mapped when first asked, to the rest.
std::size_t process_mprotect_budget() {
    static const std::size_t budget = [] {
        const long limit = max_map_count();
        const long left = limit - limit / 4 - static_cast<long>(count_maps());
        return left > 0 ? static_cast<std::size_t>(left / 2) : std::size_t{0};
    }();
    return budget;
}

void log_mode_once(GuardMode mode, std::size_t guard_size) {
    if (mode_logged.exchange(true, std::memory_order_relaxed)) return;
    if (mode == GuardMode::kMadvise) {
        logger().debug(
            "fiber stacks: {} KiB guard regions by MADV_GUARD_INSTALL (no mapping "
            "per stack: vm.max_map_count does not limit fibers)",
            guard_size / 1024);
    } else if (mode == GuardMode::kMprotect) {
        logger().warn(
            "fiber stacks: this kernel lacks MADV_GUARD_INSTALL (Linux 6.13+), so each {} KiB "
            "guard region costs two mappings: {} guarded fibers fit under vm.max_map_count = {}; "
            "further fibers get a canary checked at every switch. Raise the limit with "
            "`sysctl -w vm.max_map_count=262144`",
            guard_size / 1024, process_mprotect_budget(), max_map_count());
    }
}

}  // namespace

void StackPool::refuse_madvise_guards_for_tests() noexcept {
    madvise_refused.store(true, std::memory_order_relaxed);
}

void StackPool::forget_mprotected(std::size_t count) noexcept {
    process_mprotected.fetch_sub(count, std::memory_order_relaxed);  // relaxed: a budget
}

std::string StackPool::describe_failure(int err, const char* what) const {
    return fmt::format(
               "{} ({} KiB stack + {} KiB guard per fiber; this pool has {} stacks in use, {} "
               "reserved; vm.max_map_count = {}, {} mappings now)",
               what, stack_size_ / 1024, guard_size_ / 1024, in_use_, reserved_, max_map_count(),
               count_maps()) +
           (err == ENOMEM ? ": out of address space or mappings" : "");
}

void StackPool::map_slab_locked() {
    const std::size_t count = std::clamp(slots_, kFirstSlabSlots, kMaxSlabSlots);
    const std::size_t bytes = count * slot_size_;
    void* mapped = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (mapped == MAP_FAILED) {
        const int err = errno;
        throw std::system_error(err, std::system_category(),
                                describe_failure(err, "cannot map fiber stacks"));
    }
    char* base = static_cast<char*>(mapped);
    SlabRecord* record = nullptr;
    try {
        // Room for every slot now, so that release() never allocates.
        cold_.reserve(slots_ + count);
        warm_.reserve(std::min(max_warm_, slots_ + count));
        slabs_.reserve(slabs_.size() + 1);
        record = guard_table_add(reinterpret_cast<std::uintptr_t>(base), count, slot_size_,
                                 guard_size_, stack_size_);
    } catch (...) {
        munmap(base, bytes);
        throw;
    }
    GuardMode slot_mode = GuardMode::kAuto;  // decided per slot at its first hand-out
    const bool automatic = mode_ == GuardMode::kAuto;
    if (mode_ == GuardMode::kMadvise ||
        (mode_ == GuardMode::kAuto && !madvise_refused.load(std::memory_order_relaxed))) {
        int err = 0;
        for (std::size_t i = 0; i < count && err == 0; ++i) {
            if (madvise(base + i * slot_size_, guard_size_, MADV_GUARD_INSTALL) != 0) err = errno;
        }
        if (err == 0) {
            mode_ = slot_mode = GuardMode::kMadvise;
        } else if (err == EINVAL && mode_ == GuardMode::kAuto) {
            madvise_refused.store(true, std::memory_order_relaxed);
        } else {
            guard_table_remove(record);
            munmap(base, bytes);
            throw std::system_error(err, std::system_category(),
                                    describe_failure(err, "madvise(MADV_GUARD_INSTALL)"));
        }
    }
    if (mode_ == GuardMode::kAuto) mode_ = GuardMode::kMprotect;
    if (automatic) log_mode_once(mode_, guard_size_);
    // Lowest address last, so it is handed out first.
    for (std::size_t i = count; i-- > 0;) {
        cold_.push_back(
            FiberStack{base + i * slot_size_ + guard_size_, stack_size_, record, i, slot_mode});
    }
    slabs_.push_back(Slab{base, count, record});
    slots_ += count;
}

void StackPool::protect(FiberStack& stack) noexcept {
    if (mode_ == GuardMode::kMprotect && mprotected_ < mprotect_budget_) {
        const std::size_t made = process_mprotected.fetch_add(1, std::memory_order_relaxed);
        if (made < process_mprotect_budget() &&
            mprotect(static_cast<char*>(stack.bottom) - guard_size_, guard_size_, PROT_NONE) == 0) {
            stack.guard = GuardMode::kMprotect;
            ++mprotected_;
            return;
        }
        // Over budget, or the mapping limit came early (ENOMEM).
        process_mprotected.fetch_sub(1, std::memory_order_relaxed);
    }
    if (mode_ == GuardMode::kMprotect && !budget_warned.exchange(true, std::memory_order_relaxed)) {
        logger().warn(
            "fiber stacks: the guard-region budget is used up ({} guarded stacks in this pool, "
            "{} in the process, vm.max_map_count = {}); new fiber stacks get a canary checked "
            "at every switch instead. Raise the limit with `sysctl -w vm.max_map_count=262144`",
            mprotected_, process_mprotected.load(std::memory_order_relaxed), max_map_count());
    }
    stack.guard = GuardMode::kCanary;
    ++canaries_;
}

}  // namespace quiesce::sched::detail
