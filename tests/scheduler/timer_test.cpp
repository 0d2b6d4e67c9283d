// Per-loop timers: one-shot, periodic, cancel, waking a sleeping loop, closed
// groups.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include <quiesce/scheduler/scheduler.hpp>

#include "group_flush.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::flush_group;
using quiesce::test::wait_until;

TEST_CASE("after() runs once on its group, no earlier than asked", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    sched::Group group = scheduler.make_group({.name = "timed"});
    std::atomic<int> runs{0};
    std::atomic<bool> right_group{false};
    auto start = std::chrono::steady_clock::now();
    std::atomic<std::int64_t> elapsed_us{0};
    sched::Timer timer = group.after(20ms, [&] {
        elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count();
        right_group = sched::Group::current() == group;
        runs.fetch_add(1);
    });
    CHECK(timer.active());
    REQUIRE(wait_until([&] { return runs.load() == 1; }));
    CHECK(elapsed_us.load() >= 20'000);
    CHECK(right_group.load());
    std::this_thread::sleep_for(30ms);
    CHECK(runs.load() == 1);
    CHECK_FALSE(timer.active());
    CHECK_FALSE(timer.cancel());
}

TEST_CASE("every() repeats until cancelled; cancel() is final", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    sched::Group group = scheduler.make_group();
    std::atomic<int> runs{0};
    sched::Timer timer = group.every(2ms, [&] { runs.fetch_add(1); });
    REQUIRE(wait_until([&] { return runs.load() >= 5; }));
    CHECK(timer.cancel());
    CHECK_FALSE(timer.cancel());
    // A run already under way may still complete: a marker posted now runs
    // after it (the group's events run in order). A run that starts later
    // sees the cancel and does nothing.
    REQUIRE(flush_group(group));
    int after_cancel = runs.load();
    std::this_thread::sleep_for(30ms);
    CHECK(runs.load() == after_cancel);
}

TEST_CASE("a timer cancelled before it fires never runs", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    sched::Group group = scheduler.make_group();
    std::atomic<int> runs{0};
    std::vector<sched::Timer> timers;
    for (int i = 0; i < 100; ++i) timers.push_back(group.after(30ms + i * 100us, [&] { runs++; }));
    std::atomic<int> kept{0};
    sched::Timer keep = group.after(40ms, [&] { kept++; });
    for (auto& timer : timers) CHECK(timer.cancel());
    REQUIRE(wait_until([&] { return kept.load() == 1; }));
    CHECK(runs.load() == 0);
}

TEST_CASE("timers fire in deadline order, also when armed out of order", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    sched::Group group = scheduler.make_group();
    std::vector<int> order;
    std::atomic<int> runs{0};
    // 30 ms apart: a test thread descheduled between two arms (a stalled
    // vCPU) would have to lose 30 ms to swap two deadlines.
    for (int i : {5, 1, 4, 2, 3}) {
        group.after(i * 30ms, [&, i] {
            order.push_back(i);
            runs++;
        });
    }
    REQUIRE(wait_until([&] { return runs.load() == 5; }));
    CHECK(order == std::vector<int>{1, 2, 3, 4, 5});
}

TEST_CASE("a timer of a closed group does not run and stops being active", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    sched::Group group = scheduler.make_group();
    std::atomic<int> runs{0};
    sched::Timer periodic = group.every(1ms, [&] { runs++; });
    REQUIRE(wait_until([&] { return runs.load() >= 1; }));
    group.close();
    REQUIRE(wait_until([&] { return !periodic.active(); }));
    int seen = runs.load();
    std::this_thread::sleep_for(10ms);
    CHECK(runs.load() == seen);
    CHECK_FALSE(group.after(1ms, [] {}).active());
}

TEST_CASE("stop() drops pending timers and the groups they hold", "[scheduler][unit]") {
    std::atomic<int> runs{0};
    sched::Timer timer;
    {
        sched::Scheduler scheduler({.threads = 1});
        timer = scheduler.make_group().after(1h, [&] { runs++; });
        CHECK(timer.active());
    }
    CHECK_FALSE(timer.active());
    CHECK(runs.load() == 0);
}
