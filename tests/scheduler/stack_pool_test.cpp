// StackPool: page-rounded stacks in slabs, a guard region below each (by
// MADV_GUARD_INSTALL, by mprotect within a mapping budget, or a canary past
// it), reuse with warm and dropped stacks, reservations, the guard table the
// overflow handler searches, thread safety.
#include <catch2/catch.hpp>

#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "guard_table.hpp"
#include "stack_pool.hpp"

using Catch::Matchers::Contains;
using quiesce::sched::detail::FiberStack;
using quiesce::sched::detail::guard_table_find;
using quiesce::sched::detail::GuardHit;
using quiesce::sched::detail::GuardMode;
using quiesce::sched::detail::StackPool;

namespace {

const char* byte_at(const void* p, std::ptrdiff_t offset) {
    return static_cast<const char*>(p) + offset;
}

// Reads one byte through the kernel: false where a read would fault (a guard
// region), without faulting.
bool readable(const void* address) {
    char byte = 0;
    iovec local{&byte, 1};
    iovec remote{const_cast<void*>(address), 1};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 1;
}

std::size_t count_maps() {
    std::ifstream in("/proc/self/maps");
    std::size_t lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    return lines;
}

bool madvise_guards_available() {
    static const bool available = [] {
        try {
            StackPool probe(16 * 1024, 0, 4096, GuardMode::kMadvise);
            probe.release(probe.acquire());
            return true;
        } catch (const std::system_error&) {
            return false;
        }
    }();
    return available;
}

// The hardware-enforced modes this kernel has.
std::vector<GuardMode> guarded_modes() {
    std::vector<GuardMode> modes{GuardMode::kMprotect};
    if (madvise_guards_available()) {
        modes.push_back(GuardMode::kMadvise);
    } else {
        WARN("this kernel lacks MADV_GUARD_INSTALL (Linux 6.13+): kMadvise not tested");
    }
    return modes;
}

}  // namespace

TEST_CASE("a pooled stack is page-rounded and writable end to end", "[scheduler][unit]") {
    const std::size_t page = StackPool::page_size();
    for (GuardMode mode : {GuardMode::kAuto, GuardMode::kMprotect, GuardMode::kCanary}) {
        StackPool pool(3 * page + 1, 4, 64 * 1024, mode);
        CHECK(pool.stack_size() == 4 * page);
        CHECK(pool.guard_size() == 64 * 1024);
        FiberStack stack = pool.acquire();
        REQUIRE(stack);
        CHECK(stack.size == 4 * page);
        CHECK(reinterpret_cast<std::uintptr_t>(stack.bottom) % page == 0);
        std::memset(stack.bottom, 0xa5, stack.size);
        CHECK(*byte_at(stack.top(), -1) == static_cast<char>(0xa5));
        CHECK(StackPool::canary_intact(stack));
        pool.release(stack);
    }
}

TEST_CASE("the whole guard region below a stack faults and names its owner", "[scheduler][unit]") {
    for (GuardMode mode : guarded_modes()) {
        CAPTURE(to_string(mode));
        StackPool pool(64 * 1024, 4, 64 * 1024, mode);
        FiberStack stack = pool.acquire();
        CHECK(stack.guard == mode);
        StackPool::set_label(stack, "conn 7");
        const auto guard = static_cast<std::ptrdiff_t>(pool.guard_size());
        for (std::ptrdiff_t offset : {std::ptrdiff_t{-1}, -guard / 2, -guard}) {
            CAPTURE(offset);
            CHECK_FALSE(readable(byte_at(stack.bottom, offset)));
            GuardHit hit;
            REQUIRE(guard_table_find(byte_at(stack.bottom, offset), hit));
            CHECK(hit.stack_size == 64 * 1024);
            CHECK(hit.guard_size == 64 * 1024);
            CHECK(std::strcmp(hit.label, "conn 7") == 0);
        }
        // The stack itself is usable and is no guard.
        GuardHit hit;
        CHECK(readable(stack.bottom));
        CHECK_FALSE(guard_table_find(stack.bottom, hit));
        CHECK_FALSE(guard_table_find(byte_at(stack.top(), -1), hit));
        CHECK_FALSE(guard_table_find(&hit, hit));
        pool.release(stack);
    }
}

TEST_CASE("with MADV_GUARD_INSTALL a thousand guarded stacks add a few mappings",
          "[scheduler][unit]") {
    if (!madvise_guards_available()) {
        WARN("this kernel lacks MADV_GUARD_INSTALL (Linux 6.13+): skipped");
        return;
    }
    StackPool pool(64 * 1024, 0, 64 * 1024, GuardMode::kMadvise);
    const std::size_t maps_before = count_maps();
    std::vector<FiberStack> stacks;
    for (int i = 0; i < 1000; ++i) stacks.push_back(pool.acquire());
    const auto stats = pool.stats();
    CHECK(stats.guarded >= 1000);
    CHECK(stats.canary == 0);
    CHECK(stats.slabs <= 8);
    // Not 2 per stack (2,000); the slack is for the sanitizers' own mappings.
    CHECK(count_maps() < maps_before + stats.slabs + 100);
    for (const FiberStack& s : stacks) CHECK_FALSE(readable(byte_at(s.bottom, -1)));
    for (const FiberStack& s : stacks) pool.release(s);
}

TEST_CASE("mprotect guards stop at their budget; later stacks carry a canary",
          "[scheduler][unit]") {
    StackPool pool(16 * 1024, 8, 16 * 1024, GuardMode::kMprotect, /*mprotect_budget=*/3);
    std::vector<FiberStack> stacks;
    for (int i = 0; i < 5; ++i) stacks.push_back(pool.acquire());
    CHECK(pool.stats().guarded == 3);
    CHECK(pool.stats().canary == 2);
    for (int i = 0; i < 3; ++i) {
        CHECK(stacks[i].guard == GuardMode::kMprotect);
        CHECK_FALSE(readable(byte_at(stacks[i].bottom, -1)));
    }
    for (int i = 3; i < 5; ++i) {
        CHECK(stacks[i].guard == GuardMode::kCanary);
        CHECK(StackPool::canary_intact(stacks[i]));
    }
    // An overflow that reaches below the stack spoils the canary.
    const_cast<char*>(byte_at(stacks[4].bottom, -20))[0] ^= 1;
    CHECK_FALSE(StackPool::canary_intact(stacks[4]));
    const_cast<char*>(byte_at(stacks[4].bottom, -20))[0] ^= 1;
    CHECK(StackPool::canary_intact(stacks[4]));
    // A slot keeps its kind when it is reused.
    pool.release(stacks[0]);
    FiberStack again = pool.acquire();
    CHECK(again.bottom == stacks[0].bottom);
    CHECK(again.guard == GuardMode::kMprotect);
    stacks[0] = again;
    for (const FiberStack& s : stacks) pool.release(s);
}

TEST_CASE("released stacks stay warm up to the limit; the rest drop their pages",
          "[scheduler][unit]") {
    StackPool pool(16 * 1024, 2);
    std::vector<FiberStack> stacks{pool.acquire(), pool.acquire(), pool.acquire()};
    CHECK(pool.in_use() == 3);
    std::set<void*> bottoms;
    for (FiberStack& s : stacks) {
        std::memset(s.bottom, 0x5a, s.size);
        bottoms.insert(s.bottom);
    }
    for (FiberStack& s : stacks) pool.release(s);
    CHECK(pool.in_use() == 0);
    CHECK(pool.warm() == 2);
    // The third release found the warm list full: its pages read as zero now,
    // and its guard region is still there.
    CHECK(*byte_at(stacks[2].bottom, 100) == 0);
    GuardHit hit;
    CHECK(guard_table_find(byte_at(stacks[2].bottom, -1), hit));
    // Reuse prefers warm stacks.
    FiberStack again = pool.acquire();
    CHECK(bottoms.count(again.bottom) == 1);
    CHECK(*byte_at(again.bottom, 100) == 0x5a);
    CHECK(pool.warm() == 1);
    pool.release(again);
}

TEST_CASE("a reserved stack is always there; a slab that cannot be mapped says why",
          "[scheduler][unit]") {
    StackPool pool(16 * 1024, 0);
    pool.reserve();
    pool.reserve();
    CHECK(pool.stats().reserved == 2);
    FiberStack a = pool.acquire(/*reserved=*/true);
    CHECK(pool.stats().reserved == 1);
    pool.unreserve();
    CHECK(pool.stats().reserved == 0);
    pool.release(a);

    StackPool huge(std::size_t{1} << 46);  // 16 slots of it exceed the address space
    try {
        huge.reserve();
        FAIL("reserve() of an impossible stack did not throw");
    } catch (const std::system_error& error) {
        CHECK_THAT(error.what(), Contains("cannot map fiber stacks"));
        CHECK_THAT(error.what(), Contains("vm.max_map_count"));
    }
    CHECK_THROWS_AS(huge.acquire(), std::system_error);
    CHECK(huge.in_use() == 0);
    CHECK(huge.stats().reserved == 0);
}

TEST_CASE("threads acquire and release stacks concurrently", "[scheduler][unit]") {
    StackPool pool(16 * 1024, 8);
    constexpr int kThreads = 4;
    constexpr int kRounds = 300;
    std::atomic<int> bad{0};  // Catch2 assertions are not thread-safe: count here
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&pool, &bad, t] {
            for (int i = 0; i < kRounds; ++i) {
                pool.reserve();
                FiberStack a = pool.acquire(true);
                FiberStack b = pool.acquire();
                // Each thread writes its own stacks: a stack handed out twice
                // at once would show up as a data race (TSan) or a bad value.
                static_cast<int*>(a.bottom)[0] = t;
                static_cast<int*>(b.bottom)[0] = t;
                if (static_cast<int*>(a.bottom)[0] != t) bad.fetch_add(1);
                pool.release(a);
                if (static_cast<int*>(b.bottom)[0] != t) bad.fetch_add(1);
                pool.release(b);
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(bad.load() == 0);
    CHECK(pool.in_use() == 0);
    CHECK(pool.warm() <= 8);
    CHECK(pool.stats().slots <= 16 + 16);
}
