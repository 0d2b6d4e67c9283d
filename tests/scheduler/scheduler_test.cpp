// Loops: one per allowed CPU, pinned; sleeping and waking; stop(); RCU
// integration (quiescent states, loop-owned callbacks); the stall hook text.
#include <catch2/catch.hpp>

#include <sched.h>

#include <atomic>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <spdlog/sinks/ostream_sink.h>

#include <quiesce/base/log.hpp>
#include <quiesce/rcu/qsbr.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "gate.hpp"
#include "loop.hpp"
#include "scheduler_impl.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::wait_until;

namespace {

std::ostringstream& captured_log() {
    static std::ostringstream stream;
    return stream;
}

int allowed_cpu_count() {
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(sched_getaffinity(0, sizeof(set), &set) == 0);
    return CPU_COUNT(&set);
}

}  // namespace

TEST_CASE("one loop per CPU of the affinity mask, each pinned to its CPU", "[scheduler][unit]") {
    sched::Scheduler scheduler;
    REQUIRE(static_cast<int>(scheduler.loop_count()) == allowed_cpu_count());
    std::set<int> cpus;
    for (unsigned i = 0; i < scheduler.loop_count(); ++i) {
        sched::Group group = scheduler.make_group({.loop = static_cast<int>(i), .pinned = true});
        std::atomic<int> seen{-2};
        std::atomic<int> loop{-2};
        group.post([&] {
            loop = sched::Scheduler::current_loop();
            seen = sched_getcpu();  // last: the test waits for it
        });
        REQUIRE(wait_until([&] { return seen.load() != -2; }));
        CHECK(loop.load() == static_cast<int>(i));
        CHECK(seen.load() == scheduler.stats().loops[i].cpu);
        cpus.insert(seen.load());
    }
    CHECK(static_cast<int>(cpus.size()) == allowed_cpu_count());
}

TEST_CASE("threads asks for a number of loops", "[scheduler][unit]") {
    sched::SchedulerOptions options;
    options.threads = 3;
    options.pin_threads = false;
    sched::Scheduler scheduler(options);
    CHECK(scheduler.loop_count() == 3);
    CHECK(scheduler.stats().loops[2].cpu == -1);
}

TEST_CASE("bad options are rejected", "[scheduler][unit]") {
    sched::SchedulerOptions options;
    options.max_events_per_turn = 0;
    CHECK_THROWS_AS(sched::Scheduler(options), std::invalid_argument);
    sched::Scheduler scheduler({.threads = 1});
    CHECK_THROWS_AS(scheduler.make_group({.weight = 0}), std::invalid_argument);
    CHECK_THROWS_AS(scheduler.make_group({.weight = 65}), std::invalid_argument);
}

TEST_CASE("a sleeping loop wakes for every post, and an awake one gets no wake-up call",
          "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    sched::Group group = scheduler.make_group();
    std::atomic<int> ran{0};
    for (int i = 1; i <= 300; ++i) {
        group.post([&] { ran.fetch_add(1); });
        REQUIRE(wait_until([&] { return ran.load() == i; }));
        // Let the loop go back to sleep before the next post.
        REQUIRE(wait_until(
            [&] { return scheduler.stats().loops[0].sleeps >= static_cast<std::uint64_t>(i); }));
    }
    sched::LoopStats slept = scheduler.stats().loops[0];
    CHECK(slept.wakeups >= 250);  // most posts found it asleep

    // A burst posted while the loop is busy costs no wake-up per post.
    quiesce::test::Gate gate;
    group.post([&] { gate.block(); });
    REQUIRE(gate.wait_entered());
    std::uint64_t before = scheduler.stats().loops[0].wakeups;
    for (int i = 0; i < 1000; ++i) group.post([&] { ran.fetch_add(1); });
    CHECK(scheduler.stats().loops[0].wakeups == before);
    gate.open();
    REQUIRE(wait_until([&] { return ran.load() == 1300; }));
}

TEST_CASE("stop() closes every group, runs close handlers, and rejects new work",
          "[scheduler][unit]") {
    auto scheduler = std::make_unique<sched::Scheduler>(sched::SchedulerOptions{.threads = 2});
    std::atomic<int> closes{0};
    std::vector<sched::Group> groups;
    // The busy group alone on loop 0; a loop finishes its running event before
    // it serves its queue, so the other closes all run on loop 1 meanwhile.
    for (int i = 0; i < 50; ++i) {
        groups.push_back(scheduler->make_group(
            {.loop = i == 0 ? 0 : 1, .pinned = true, .on_close = [&] { closes.fetch_add(1); }}));
    }
    quiesce::test::Gate gate;
    std::atomic<int> dropped_ran{0};
    groups[0].post([&] { gate.block(); });
    REQUIRE(gate.wait_entered());
    groups[0].post([&] { dropped_ran.fetch_add(1); });
    std::thread stopper([&] { scheduler->stop(); });
    REQUIRE(wait_until([&] { return closes.load() == 49; }));  // all but the busy one
    CHECK(groups[0].post([] {}) == false);
    gate.open();
    stopper.join();
    CHECK(closes.load() == 50);
    CHECK(dropped_ran.load() == 0);
    CHECK_THROWS_AS(scheduler->make_group(), std::logic_error);
    for (auto& group : groups) CHECK_FALSE(group.post([] {}));
    scheduler.reset();  // groups outlive their scheduler
    CHECK_FALSE(groups[1].post([] {}));
    CHECK_FALSE(groups[1].close());
}

TEST_CASE("stop() waits for the RCU callbacks that loops queued", "[scheduler][unit]") {
    struct Node : rcu::Head {
        std::atomic<int>* counter;
    };
    std::atomic<int> freed{0};
    {
        sched::Scheduler scheduler({.threads = 2});
        std::atomic<int> queued{0};
        for (int i = 0; i < 200; ++i) {
            scheduler.make_group().post([&] {
                auto* node = new Node;
                node->counter = &freed;
                rcu::Domain::default_domain().call(node, [](rcu::Head* head) noexcept {
                    auto* self = static_cast<Node*>(head);
                    self->counter->fetch_add(1);
                    delete self;
                });
                queued.fetch_add(1);
            });
        }
        REQUIRE(wait_until([&] { return queued.load() == 200; }));
        scheduler.stop();
        CHECK(freed.load() == 200);
    }
}

TEST_CASE("loops are QSBR readers: a grace period completes while they run and while they sleep",
          "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    rcu::Domain& domain = rcu::Domain::default_domain();
    bool online = false;
    std::atomic<bool> checked{false};
    scheduler.make_group().post([&] {
        rcu::QsbrReader* reader = rcu::current_qsbr_reader(domain);
        online = reader != nullptr && reader->is_online();
        checked = true;
    });
    REQUIRE(wait_until([&] { return checked.load(); }));
    CHECK(online);
    domain.synchronize();  // loops asleep (offline)
    std::atomic<bool> stop{false};
    sched::Group busy = scheduler.make_group();
    std::atomic<bool> halted{false};
    std::function<void()> spin = [&] {
        if (!stop.load()) {
            busy.post(spin);  // keeps a loop busy, event after event
        } else {
            halted = true;
        }
    };
    busy.post(spin);
    for (int i = 0; i < 20; ++i) domain.synchronize();
    stop = true;
    REQUIRE(wait_until([&] { return halted.load(); }));
}

TEST_CASE("the stall hook names the group a stalled loop runs", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1, .name = "stalltest"});
    sched::Group group = scheduler.make_group({.name = "hog"});
    quiesce::test::Gate gate;
    group.post([&] { gate.block(); });
    REQUIRE(gate.wait_entered());
    auto& impl = scheduler.impl();
    rcu::StallInfo info;
    info.tid = impl.loop(0).tid();
    info.qsbr = true;
    info.since_quiescent = std::chrono::milliseconds(2500);
    std::string text = impl.describe_stall(info);
    CHECK_THAT(text, Catch::Contains("stalltest") && Catch::Contains("\"hog\"") &&
                         Catch::Contains("2500 ms"));
    gate.open();
    info.tid = 1;  // not a loop
    CHECK(impl.describe_stall(info).empty());
}

TEST_CASE("a real stall of the default domain is reported with the group the loop runs",
          "[scheduler][unit]") {
    // The default domain warns after 2 s: this test takes that long.
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured_log());
    auto rcu_logger = quiesce::log::get(quiesce::log::kRcu);
    rcu_logger->sinks().push_back(sink);
    {
        sched::Scheduler scheduler({.threads = 1, .name = "stalling"});
        sched::Group group = scheduler.make_group({.name = "spinner"});
        quiesce::test::Gate gate;
        group.post([&] { gate.block(); });  // never returns to the loop
        REQUIRE(gate.wait_entered());
        std::uint64_t before = rcu::Domain::default_domain().stats().stall_warnings;
        std::thread waiter([] { rcu::Domain::default_domain().synchronize(); });
        bool warned = wait_until(
            [&] { return rcu::Domain::default_domain().stats().stall_warnings > before; }, 20s);
        gate.open();
        waiter.join();
        CHECK(warned);
    }
    rcu_logger->sinks().pop_back();
    std::string text = captured_log().str();
    CHECK_THAT(text, Catch::Contains("scheduler \"stalling\" loop 0 is running group \"spinner\""));
}

TEST_CASE("stats say which slice clock each loop uses", "[scheduler][unit]") {
    {
        sched::Scheduler scheduler({.threads = 2, .slice_mode = sched::SliceMode::kWallConfirm});
        for (const auto& loop : scheduler.stats().loops) {
            CHECK(loop.slice_mode == sched::SliceMode::kWallConfirm);
            CHECK_FALSE(loop.slice_ticks_in_kernel);
        }
    }
    sched::Scheduler scheduler({.threads = 1});
    const sched::LoopStats loop = scheduler.stats().loops.at(0);
    CHECK(loop.slice_mode != sched::SliceMode::kAuto);  // resolved
    // kAuto takes the perf event only when it counts kernel time.
    if (loop.slice_mode == sched::SliceMode::kPerfEvent) CHECK(loop.slice_ticks_in_kernel);
}
