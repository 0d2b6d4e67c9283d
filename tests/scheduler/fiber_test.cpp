// Fiber-backed groups: spawning, yield, sleep, park/wake, cancellation on
// close, exceptions, rcu_wait, and the debug checks at suspension points.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/base/assert.hpp>
#include <quiesce/rcu/read_lock.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "death.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::wait_until;

namespace {

struct Log {
    std::mutex mutex;
    std::vector<std::string> lines;
    void add(std::string line) {
        std::lock_guard lock(mutex);
        lines.push_back(std::move(line));
    }
    std::vector<std::string> get() {
        std::lock_guard lock(mutex);
        return lines;
    }
};

}  // namespace

TEST_CASE("a spawned fiber runs on a loop and its group closes when it returns",
          "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    std::atomic<bool> ran_on_fiber{false};
    std::atomic<bool> closed{false};
    sched::Group group = scheduler.spawn(
        [&] {
            ran_on_fiber = sched::this_fiber::active() && sched::Scheduler::current_loop() >= 0;
        },
        {.name = "short", .on_close = [&] { closed = true; }});
    REQUIRE(wait_until([&] { return closed.load(); }));
    CHECK(ran_on_fiber.load());
    CHECK(group.closed());
    CHECK_FALSE(sched::this_fiber::active());
}

TEST_CASE("yield() lets the other ready groups run first", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    Log log;
    std::atomic<bool> go{false};
    sched::Group other = scheduler.make_group({.name = "other"});
    std::atomic<bool> done{false};
    sched::Group fiber = scheduler.spawn([&] {
        while (!go.load()) sched::this_fiber::yield();
        for (int i = 0; i < 3; ++i) {
            log.add("fiber " + std::to_string(i));
            other.post([&log, i] { log.add("other " + std::to_string(i)); });
            sched::this_fiber::yield();
        }
        done = true;
    });
    go = true;
    REQUIRE(wait_until([&] { return done.load(); }));
    std::vector<std::string> expected{"fiber 0", "other 0", "fiber 1",
                                      "other 1", "fiber 2", "other 2"};
    CHECK(log.get() == expected);
    CHECK(fiber.stats().preempted >= 3);
}

TEST_CASE("sleep_for() suspends the fiber, not its loop", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    std::atomic<std::int64_t> slept_us{0};
    std::atomic<int> others{0};
    sched::Group fiber = scheduler.spawn([&] {
        auto start = std::chrono::steady_clock::now();
        sched::this_fiber::sleep_for(30ms);
        slept_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
    });
    sched::Group other = scheduler.make_group();
    for (int i = 0; i < 10; ++i) other.post([&] { others++; });
    REQUIRE(wait_until([&] { return slept_us.load() != 0; }));
    CHECK(slept_us.load() >= 30'000);
    CHECK(others.load() == 10);
}

TEST_CASE("park() waits for a wake from another thread; a wake before park is kept",
          "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    std::atomic<int> stage{0};
    sched::FiberWaker waker;
    std::mutex mutex;
    std::atomic<bool> have_waker{false};
    std::atomic<int> event_runs{0};
    int shared = 0;  // written by the waker thread before wake(), read after park()
    std::atomic<int> seen{-1};
    sched::Group group = scheduler.spawn([&] {
        {
            std::lock_guard lock(mutex);
            waker = sched::this_fiber::waker();
        }
        have_waker = true;
        stage = 1;
        sched::this_fiber::park();
        seen = shared;
        stage = 2;
        while (stage.load() != 3) sched::this_fiber::yield();
        sched::this_fiber::park();  // the wake came before: returns at once
        stage = 4;
    });
    REQUIRE(wait_until([&] { return stage.load() == 1; }));
    // The group's other events run while its fiber is parked.
    group.post([&] { event_runs++; });
    REQUIRE(wait_until([&] { return event_runs.load() == 1; }));
    CHECK(stage.load() == 1);
    std::thread([&] {
        shared = 42;
        std::lock_guard lock(mutex);
        CHECK(waker.wake());
    }).join();
    REQUIRE(wait_until([&] { return stage.load() == 2; }));
    CHECK(seen.load() == 42);
    {
        std::lock_guard lock(mutex);
        CHECK(waker.wake());
    }
    stage = 3;
    REQUIRE(wait_until([&] { return stage.load() == 4; }));
}

TEST_CASE("closing a fiber's group unwinds its stack, then runs the close handler",
          "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    Log log;
    std::atomic<bool> parked{false};
    struct Guard {
        Log& log;
        ~Guard() { log.add("unwound"); }
    };
    sched::Group group = scheduler.spawn(
        [&] {
            Guard guard{log};
            parked = true;
            sched::this_fiber::park();
            log.add("woke");  // never: nobody wakes it
        },
        {.on_close = [&] { log.add("closed"); }});
    REQUIRE(wait_until([&] { return parked.load(); }));
    // The fiber's resume event has returned: it is suspended in park().
    REQUIRE(wait_until([&] { return group.stats().events >= 1; }));
    group.close();
    REQUIRE(wait_until([&] { return log.get().size() == 2; }));
    CHECK(log.get() == std::vector<std::string>{"unwound", "closed"});
}

TEST_CASE("stop() unwinds sleeping and parked fibers", "[scheduler][unit]") {
    std::atomic<int> unwound{0};
    std::atomic<int> started{0};
    {
        sched::Scheduler scheduler({.threads = 2});
        struct Guard {
            std::atomic<int>& count;
            ~Guard() { count++; }
        };
        for (int i = 0; i < 20; ++i) {
            scheduler.spawn([&, i] {
                Guard guard{unwound};
                started++;
                if (i % 2 == 0) {
                    sched::this_fiber::sleep_for(1h);
                } else {
                    sched::this_fiber::park();
                }
            });
        }
        REQUIRE(wait_until([&] { return started.load() == 20; }));
    }
    CHECK(unwound.load() == 20);
}

TEST_CASE("an exception escaping a fiber closes its group", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    std::atomic<bool> closed{false};
    scheduler.spawn([] { throw std::runtime_error("fiber boom"); },
                    {.name = "thrower", .on_close = [&] { closed = true; }});
    REQUIRE(wait_until([&] { return closed.load(); }));
    std::atomic<bool> alive{false};
    scheduler.make_group().post([&] { alive = true; });
    REQUIRE(wait_until([&] { return alive.load(); }));
}

TEST_CASE("rcu_wait() returns after a full grace period and does not block the loop",
          "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    rcu::Domain& domain = rcu::Domain::default_domain();
    std::atomic<int> waits{0};
    std::atomic<bool> elapsed{true};
    scheduler.spawn([&] {
        for (int i = 0; i < 20; ++i) {
            rcu::GpCookie before = domain.snapshot();
            sched::this_fiber::rcu_wait();
            if (!domain.poll(before)) elapsed = false;
            waits++;
        }
    });
    std::atomic<int> others{0};
    sched::Group other = scheduler.make_group();
    for (int i = 0; i < 100; ++i) other.post([&] { others++; });
    REQUIRE(wait_until([&] { return waits.load() == 20; }));
    CHECK(elapsed.load());
    CHECK(others.load() == 100);
}

TEST_CASE("yield_if_needed() yields once the slice of CPU time is spent", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1, .slice = std::chrono::milliseconds(2)});
    std::atomic<bool> stop{false};
    std::atomic<int> yields{0};
    sched::Group hog = scheduler.spawn([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            if (sched::this_fiber::yield_if_needed()) yields++;
        }
    });
    // The hog never returns: each light event runs because it yielded (a
    // new group per event: a post to a group whose turn has not ended yet
    // would run in that turn). A light event that arrives while the light
    // phase after a yield still runs joins it, so there may be fewer yields
    // than light events; the hog alone yields once per slice.
    std::atomic<int> light{0};
    for (int i = 1; i <= 5; ++i) {
        scheduler.make_group().post([&] { light++; });
        REQUIRE(wait_until([&] { return light.load() == i; }));
    }
    // `yields` counts after the fiber resumes, so the yield that let the last
    // light event in may land in this count too.
    const int before = yields.load();
    REQUIRE(wait_until([&] { return yields.load() >= before + 5; }));
    stop = true;
    REQUIRE(wait_until([&] { return hog.closed(); }));
}

QUIESCE_DEATH_CASE(yield_in_read_lock) {
    sched::Scheduler scheduler({.threads = 1});
    scheduler.spawn([] {
        rcu::ReadLock lock;
        sched::this_fiber::yield();
    });
    std::this_thread::sleep_for(10s);
}

QUIESCE_DEATH_CASE(sleep_in_read_section) {
    sched::Scheduler scheduler({.threads = 1});
    scheduler.spawn([] {
        sched::ReadSection section;
        sched::this_fiber::sleep_for(1ms);
    });
    std::this_thread::sleep_for(10s);
}

QUIESCE_DEATH_CASE(fiber_stack_overflow) {
    sched::Scheduler scheduler({.threads = 1, .fiber_stack_size = 32 * 1024});
    scheduler.spawn(
        [] {
            struct Recurse {
                static int deep(int n) {
                    volatile char pad[1024];
                    pad[0] = static_cast<char>(n);
                    return n == 0 ? pad[0] : deep(n - 1) + pad[0];
                }
            };
            (void)Recurse::deep(1 << 20);
        },
        {.name = "deep diver"});
    std::this_thread::sleep_for(10s);
}

QUIESCE_DEATH_CASE(park_in_read_lock_pair) {
    sched::Scheduler scheduler({.threads = 1});
    scheduler.spawn(
        [] {
            rcu::read_lock();
            sched::this_fiber::park();
        },
        {.name = "parker"});
    std::this_thread::sleep_for(10s);
}

QUIESCE_DEATH_CASE(event_returns_in_read_section) {
    sched::Scheduler scheduler({.threads = 1});
    sched::Group group = scheduler.make_group({.name = "leaky"});
    group.post([] { rcu::read_lock(); });
    std::this_thread::sleep_for(10s);
}

TEST_CASE("a fiber suspending inside an rcu::ReadLock aborts, in every build",
          "[scheduler][unit]") {
    auto [name, fiber] = GENERATE(table<const char*, const char*>({
        {"yield_in_read_lock", "reached a suspension point"},
        {"park_in_read_lock_pair", "\"parker\" reached a suspension point"},
    }));
    CAPTURE(name);
    auto result = quiesce::test::run_death_case(name);
    CHECK(result.aborted);
    CHECK_THAT(result.output, Catch::Contains("quiesce: misuse: fiber"));
    CHECK_THAT(result.output, Catch::Contains(fiber));
    CHECK_THAT(result.output, Catch::Contains("End the section before suspending"));
}

TEST_CASE("an event that returns inside a read section aborts naming its group",
          "[scheduler][unit]") {
    auto result = quiesce::test::run_death_case("event_returns_in_read_section");
    CHECK(result.aborted);
    CHECK_THAT(result.output, Catch::Contains("an event of group \"leaky\""));
    CHECK_THAT(result.output, Catch::Contains("read_lock() without its read_unlock()"));
}

TEST_CASE("debug builds abort when a fiber suspends inside a ReadSection", "[scheduler][unit]") {
#if QUIESCE_DEBUG
    auto section = quiesce::test::run_death_case("sleep_in_read_section");
    CHECK(section.aborted);
    CHECK_THAT(section.output, Catch::Contains("ReadSection"));
#else
    WARN("release build: the ReadSection count is compiled out");
#endif
}

TEST_CASE("a fiber's stack overflow aborts with a message naming the fiber", "[scheduler][unit]") {
    auto result = quiesce::test::run_death_case("fiber_stack_overflow");
    CHECK(result.aborted);
    CHECK_THAT(result.output, Catch::Contains("deep diver"));
}
