// StackPool: page-rounded stacks with a guard page below, reuse up to a
// limit, the guard-page table the overflow handler searches, thread safety.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <set>
#include <system_error>
#include <thread>
#include <vector>

#include "stack_pool.hpp"

using quiesce::sched::detail::FiberStack;
using quiesce::sched::detail::GuardHit;
using quiesce::sched::detail::StackPool;

namespace {

const char* byte_at(const void* p, std::ptrdiff_t offset) {
    return static_cast<const char*>(p) + offset;
}

}  // namespace

TEST_CASE("a pooled stack is page-rounded and writable end to end", "[scheduler][unit]") {
    const std::size_t page = StackPool::page_size();
    StackPool pool(3 * page + 1);
    CHECK(pool.stack_size() == 4 * page);
    FiberStack stack = pool.acquire();
    REQUIRE(stack);
    CHECK(stack.size == 4 * page);
    CHECK(reinterpret_cast<std::uintptr_t>(stack.bottom) % page == 0);
    std::memset(stack.bottom, 0xa5, stack.size);
    CHECK(*byte_at(stack.top(), -1) == static_cast<char>(0xa5));
    pool.release(stack);
}

TEST_CASE("the guard page below a stack is found, and names its owner", "[scheduler][unit]") {
    StackPool pool(64 * 1024);
    FiberStack stack = pool.acquire();
    StackPool::set_label(stack, "conn 7");
    GuardHit hit;
    REQUIRE(StackPool::find_guard(byte_at(stack.bottom, -1), hit));
    CHECK(hit.stack_size == 64 * 1024);
    CHECK(std::strcmp(hit.label, "conn 7") == 0);
    CHECK(StackPool::find_guard(
        byte_at(stack.bottom, -static_cast<std::ptrdiff_t>(StackPool::page_size())), hit));
    // The stack itself is not a guard page.
    CHECK_FALSE(StackPool::find_guard(stack.bottom, hit));
    CHECK_FALSE(StackPool::find_guard(byte_at(stack.bottom, 4096), hit));
    CHECK_FALSE(StackPool::find_guard(&hit, hit));
    pool.release(stack);
}

TEST_CASE("released stacks are reused up to the cache limit, the rest unmapped",
          "[scheduler][unit]") {
    StackPool pool(16 * 1024, 2);
    std::vector<FiberStack> stacks{pool.acquire(), pool.acquire(), pool.acquire()};
    CHECK(pool.in_use() == 3);
    CHECK(pool.mapped_total() == 3);
    std::set<void*> bottoms;
    for (FiberStack& s : stacks) bottoms.insert(s.bottom);
    const void* unmapped_guard = byte_at(stacks[2].bottom, -1);
    for (FiberStack& s : stacks) pool.release(s);
    CHECK(pool.in_use() == 0);
    CHECK(pool.cached() == 2);
    // The third release found the cache full: its guard page left the table.
    GuardHit hit;
    CHECK_FALSE(StackPool::find_guard(unmapped_guard, hit));

    FiberStack again = pool.acquire();
    CHECK(bottoms.count(again.bottom) == 1);
    CHECK(pool.mapped_total() == 3);
    CHECK(pool.cached() == 1);
    pool.release(again);
}

TEST_CASE("a pool with no cache unmaps every released stack", "[scheduler][unit]") {
    StackPool pool(16 * 1024, 0);
    FiberStack stack = pool.acquire();
    const void* guard = byte_at(stack.bottom, -1);
    GuardHit hit;
    CHECK(StackPool::find_guard(guard, hit));
    pool.release(stack);
    CHECK(pool.cached() == 0);
    CHECK_FALSE(StackPool::find_guard(guard, hit));
}

TEST_CASE("a failing mmap throws std::system_error", "[scheduler][unit]") {
    StackPool pool(std::size_t{1} << 47);  // the whole user address space
    CHECK_THROWS_AS(pool.acquire(), std::system_error);
    CHECK(pool.in_use() == 0);
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
                FiberStack a = pool.acquire();
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
    CHECK(pool.cached() <= 8);
    CHECK(pool.mapped_total() <= 8 + 2 * kThreads);
}
