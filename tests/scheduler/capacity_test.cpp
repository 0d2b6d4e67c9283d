// A hundred thousand parked fibers on two loops, under the default
// vm.max_map_count (65,530): each keeps a guarded stack (MADV_GUARD_INSTALL),
// or, on kernels without it, a guard region while the mapping budget lasts
// and a canary after. Built only without sanitizers (a TSan fiber costs
// ~0.28 ms to make and ASan's shadow of 100,000 stacks several GiB).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "stack_pool.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::wait_until;

namespace {

constexpr int kFibers = 100'000;

std::size_t count_maps() {
    std::ifstream in("/proc/self/maps");
    std::size_t lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    return lines;
}

long read_long(const char* path) {
    std::ifstream in(path);
    long value = 0;
    in >> value;
    return value;
}

long rss_kib() {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0;
}

// Spawns kFibers fibers that park, checks that all of them are parked, then
// wakes them all and waits until every one has ended.
sched::SchedulerStats park_and_wake(sched::Scheduler& scheduler) {
    std::vector<sched::FiberWaker> wakers(kFibers);
    std::atomic<int> parked{0}, ended{0};
    const long rss_before = rss_kib();
    for (int i = 0; i < kFibers; ++i) {
        scheduler.spawn(
            [&, i] {
                wakers[static_cast<std::size_t>(i)] = sched::this_fiber::waker();
                parked.fetch_add(1, std::memory_order_release);
                sched::this_fiber::park();
                ended.fetch_add(1, std::memory_order_relaxed);
            },
            {.name = "idle " + std::to_string(i)});
    }
    REQUIRE(wait_until([&] { return parked.load(std::memory_order_acquire) == kFibers; }, 120s));
    const sched::SchedulerStats stats = scheduler.stats();
    const long rss = rss_kib() - rss_before;
    WARN(kFibers << " parked fibers: " << count_maps() << " mappings (vm.max_map_count "
                 << read_long("/proc/sys/vm/max_map_count") << "), stacks "
                 << stats.fiber_stacks.guard_mode << ": " << stats.fiber_stacks.guarded
                 << " guarded, " << stats.fiber_stacks.canary << " canary; RSS +" << rss / 1024
                 << " MiB (" << rss * 1024 / kFibers << " bytes per fiber)");
    CHECK(stats.fiber_stacks.in_use == static_cast<std::uint64_t>(kFibers));
    CHECK(count_maps() < static_cast<std::size_t>(read_long("/proc/sys/vm/max_map_count")));
    for (const sched::FiberWaker& waker : wakers) CHECK(waker.wake());
    REQUIRE(wait_until([&] { return ended.load() == kFibers; }, 120s));
    return stats;
}

}  // namespace

TEST_CASE("a hundred thousand parked fibers, every stack guarded", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    const sched::SchedulerStats stats = park_and_wake(scheduler);
    if (std::string(stats.fiber_stacks.guard_mode) == "MADV_GUARD_INSTALL") {
        CHECK(stats.fiber_stacks.guarded >= static_cast<std::uint64_t>(kFibers));
        CHECK(stats.fiber_stacks.canary == 0);
    } else {
        WARN("this kernel lacks MADV_GUARD_INSTALL: guard regions by mprotect, then canaries");
        CHECK(stats.fiber_stacks.guarded + stats.fiber_stacks.canary >=
              static_cast<std::uint64_t>(kFibers));
    }
}

TEST_CASE("a hundred thousand parked fibers where guard regions cost mappings",
          "[scheduler][unit]") {
    // As on a kernel before 6.13: mprotect guards within the vm.max_map_count
    // budget, canaries past it; nothing fails for want of mappings.
    sched::detail::StackPool::refuse_madvise_guards_for_tests();
    sched::Scheduler scheduler({.threads = 2});
    const sched::SchedulerStats stats = park_and_wake(scheduler);
    CHECK(std::string(stats.fiber_stacks.guard_mode) == "mprotect");
    CHECK(stats.fiber_stacks.guarded > 10'000);
    CHECK(stats.fiber_stacks.canary > 0);
    CHECK(stats.fiber_stacks.guarded + stats.fiber_stacks.canary >=
          static_cast<std::uint64_t>(kFibers));
}
