// Fairness: slices of CPU time, round-robin among ready groups, weights,
// latency of light groups next to a CPU hog, and moving groups between loops
// (work requesting, balancing, pinning).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <quiesce/scheduler/scheduler.hpp>

#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::wait_until;
using Clock = std::chrono::steady_clock;

namespace {

// An event that burns CPU until its slice is spent, then asks to continue.
sched::Status burn(std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_relaxed)) {
        if (sched::need_resched()) return sched::Status::kAgain;
    }
    return sched::Status::kDone;
}

}  // namespace

TEST_CASE("light groups keep running next to a CPU hog that honours need_resched()",
          "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1, .slice = 500us});
    std::atomic<bool> stop{false};
    sched::Group hog = scheduler.make_group({.name = "hog"});
    hog.post([&] { return burn(stop); });
    constexpr int kLight = 50;
    std::vector<sched::Group> light;
    for (int i = 0; i < kLight; ++i) light.push_back(scheduler.make_group());
    std::atomic<int> done{0};
    std::atomic<std::int64_t> worst_us{0};
    for (int round = 0; round < 20; ++round) {
        int target = done.load() + kLight;
        for (auto& group : light) {
            auto posted = Clock::now();
            group.post([&, posted] {
                auto waited =
                    std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - posted);
                std::int64_t seen = worst_us.load();
                while (waited.count() > seen &&
                       !worst_us.compare_exchange_weak(seen, waited.count())) {
                }
                done++;
            });
        }
        REQUIRE(wait_until([&] { return done.load() == target; }, 10s));
    }
    stop = true;
    REQUIRE(wait_until([&] { return hog.stats().events == 1; }));  // done with `stop`
    sched::GroupStats stats = hog.stats();
    WARN("worst light-group latency " << worst_us.load() << " us; hog preempted " << stats.preempted
                                      << " times, " << stats.cpu_ns / 1000 << " us CPU");
    // Generous: a light event waits for at most the hog's current slice plus
    // the other light events; 100 slices leaves room for a loaded CI machine.
    CHECK(worst_us.load() < 50'000);
    CHECK(stats.preempted >= 1);
    CHECK(stats.cpu_ns > 0);
}

TEST_CASE("a hog that ignores no slice still lets others run with slice 0 via kAgain only",
          "[scheduler][unit]") {
    // Slice 0: need_resched() never fires; max_events_per_turn bounds a turn.
    sched::Scheduler scheduler({.threads = 1, .slice = 0us, .max_events_per_turn = 16});
    sched::Group chatty = scheduler.make_group();
    std::atomic<bool> stop{false};
    std::atomic<std::int64_t> chatter{0};
    std::atomic<bool> halted{false};
    std::function<void()> again = [&] {
        chatter++;
        if (!stop.load()) {
            chatty.post(again);
        } else {
            halted = true;  // the last copy of `again` is done with it
        }
    };
    chatty.post(again);
    std::atomic<bool> ran{false};
    scheduler.make_group().post([&] { ran = true; });
    REQUIRE(wait_until([&] { return ran.load(); }, 10s));
    stop = true;
    REQUIRE(wait_until([&] { return halted.load(); }));
    CHECK(chatty.stats().preempted >= 1);
}

TEST_CASE("round-robin with weights: a weight-2 hog gets about twice the CPU of a weight-1 hog",
          "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1, .slice = 1ms});
    std::atomic<bool> stop{false};
    sched::Group one = scheduler.make_group({.name = "w1", .weight = 1});
    sched::Group two = scheduler.make_group({.name = "w2", .weight = 2});
    one.post([&] { return burn(stop); });
    two.post([&] { return burn(stop); });
    std::this_thread::sleep_for(400ms);
    stop = true;
    REQUIRE(wait_until([&] { return one.stats().events == 1 && two.stats().events == 1; }));
    double ratio =
        static_cast<double>(two.stats().cpu_ns) / static_cast<double>(one.stats().cpu_ns);
    WARN("CPU ratio weight 2 / weight 1: " << ratio);
    CHECK(ratio > 1.3);
    CHECK(ratio < 3.0);
}

TEST_CASE("an idle loop takes waiting groups from a busy one; pinned groups stay",
          "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 2, .slice = 500us});
    std::atomic<bool> stop{false};
    // Everything starts on loop 0: one pinned hog, then unpinned workers.
    sched::Group hog = scheduler.make_group({.name = "pinned hog", .loop = 0, .pinned = true});
    hog.post([&] { return burn(stop); });
    std::vector<sched::Group> workers;
    std::atomic<int> ran_on_1{0};
    std::atomic<int> done{0};
    for (int i = 0; i < 20; ++i) {
        workers.push_back(scheduler.make_group({.loop = 0}));
        workers.back().post([&] {
            if (sched::Scheduler::current_loop() == 1) ran_on_1++;
            auto until = Clock::now() + 2ms;  // enough work that sharing it pays
            while (Clock::now() < until) {
            }
            done++;
        });
    }
    REQUIRE(wait_until([&] { return done.load() == 20; }));
    stop = true;
    REQUIRE(wait_until([&] { return hog.stats().events == 1; }));
    CHECK(ran_on_1.load() > 0);
    CHECK(hog.stats().loop == 0);
    CHECK(hog.stats().migrations == 0);
    CHECK(scheduler.stats().loops[1].stolen > 0);
}
