// OffloadPool: calls run on pool threads and their results come back to the
// group (an event) or the fiber (a return value); exceptions travel with
// them; a full queue refuses stackless callers and makes fibers wait, losing
// nothing; stop() cancels what is queued and joins. (Catch2 assertions are
// not thread-safe: callbacks on loops record into atomics, checked here.)
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/pollers/offload.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "gate.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::wait_until;

TEST_CASE("a stackless submission runs off the loop and delivers on its group", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    pollers::OffloadPool pool({.threads = 2, .queue_capacity = 8});
    pool.start();
    sched::Group group = scheduler.make_group({.name = "asker"});
    std::atomic<int> delivered{0};
    std::atomic<bool> ran_on_loop{true}, delivered_on_group{false};
    REQUIRE(pool.try_submit(
        group,
        [&] {
            ran_on_loop = sched::Scheduler::current_loop() >= 0;
            return std::string("answer");
        },
        [&](pollers::Outcome<std::string> got) {
            delivered_on_group =
                sched::Group::current() == group && got.ok() && got.value() == "answer";
            delivered.fetch_add(1);
        }));
    REQUIRE(wait_until([&] { return delivered.load() == 1; }));
    CHECK_FALSE(ran_on_loop.load());
    CHECK(delivered_on_group.load());
    CHECK(pool.stats().completed == 1);
    pool.stop();
}

TEST_CASE("an exception thrown by the call comes back as the outcome's error", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    pollers::OffloadPool pool({.threads = 1});
    pool.start();
    sched::Group group = scheduler.make_group();
    std::atomic<bool> got_error{false};
    REQUIRE(pool.try_submit(
        group, []() -> int { throw std::runtime_error("resolver down"); },
        [&](pollers::Outcome<int> got) {
            try {
                (void)got.value();
            } catch (const std::runtime_error& error) {
                got_error = !got.ok() && std::string(error.what()) == "resolver down";
            }
        }));
    REQUIRE(wait_until([&] { return got_error.load(); }));
    CHECK_FALSE(group.closed());  // the group handled it: nothing escaped
}

TEST_CASE("a fiber calls through the pool in straight-line code", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    pollers::OffloadPool pool({.threads = 2});
    pool.start();
    std::atomic<int> sum{0};
    std::atomic<bool> caught{false}, done{false};
    scheduler.spawn([&] {
        for (int i = 1; i <= 10; ++i) sum += pool.call([i] { return i * i; });
        try {
            pool.call([] { throw std::logic_error("bad query"); });
        } catch (const std::logic_error& error) {
            caught = std::string(error.what()) == "bad query";
        }
        pool.call([] {});  // void
        done = true;
    });
    REQUIRE(wait_until([&] { return done.load(); }));
    CHECK(sum.load() == 385);
    CHECK(caught.load());
}

TEST_CASE("a full queue refuses stackless submissions and loses nothing", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    pollers::OffloadPool pool({.threads = 1, .queue_capacity = 2});
    pool.start();
    sched::Group group = scheduler.make_group();
    test::Gate gate;
    std::atomic<int> delivered{0};
    std::atomic<int> failed{0};
    auto done = [&](pollers::Outcome<void> got) {
        if (!got.ok()) failed.fetch_add(1);
        delivered.fetch_add(1);
    };
    REQUIRE(pool.try_submit(
        group, [&] { gate.block(); }, done));  // runs, blocks the thread
    REQUIRE(gate.wait_entered());
    CHECK(pool.try_submit(
        group, [] {}, done));  // queued 1
    CHECK(pool.try_submit(
        group, [] {}, done));  // queued 2
    CHECK_FALSE(pool.try_submit(
        group, [] {}, done));  // full: told
    CHECK(pool.stats().refused == 1);
    CHECK(pool.stats().queued == 2);
    gate.open();
    REQUIRE(wait_until([&] { return delivered.load() == 3; }));
    std::this_thread::sleep_for(20ms);  // nothing more arrives
    CHECK(delivered.load() == 3);
    CHECK(failed.load() == 0);
}

TEST_CASE("fibers wait their turn for a full queue, and every call completes", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    pollers::OffloadPool pool({.threads = 1, .queue_capacity = 1});
    pool.start();
    constexpr int kFibers = 40;
    std::atomic<int> completed{0};
    std::atomic<int> order_errors{0};
    for (int f = 0; f < kFibers; ++f) {
        scheduler.spawn([&, f] {
            for (int i = 0; i < 5; ++i) {
                int back = pool.call([f, i] {
                    std::this_thread::sleep_for(50us);
                    return f * 100 + i;
                });
                if (back != f * 100 + i) order_errors.fetch_add(1);
            }
            completed.fetch_add(1);
        });
    }
    REQUIRE(wait_until([&] { return completed.load() == kFibers; }, 60s));
    CHECK(order_errors.load() == 0);
    CHECK(pool.stats().completed == kFibers * 5);
    CHECK(pool.stats().waited > 0);
}

TEST_CASE("a fiber that saw its last answer before parking for it takes no other waiter's turn",
          "[pollers][unit]") {
    // The answer's wake-up stays as a permit, so the next park() of that
    // fiber returns at once: waiting for room must not queue it twice.
    sched::Scheduler scheduler({.threads = 2});
    pollers::OffloadPool pool({.threads = 1, .queue_capacity = 1, .spin = 0us});
    pool.start();
    sched::Group group = scheduler.make_group();
    test::Gate gate;
    REQUIRE(pool.try_submit(
        group, [&] { gate.block(); }, [](pollers::Outcome<void>) {}));
    REQUIRE(gate.wait_entered());
    REQUIRE(pool.try_submit(
        group, [] {}, [](pollers::Outcome<void>) {}));  // the queue is full
    std::atomic<int> answered{0};
    scheduler.spawn([&] {
        (void)sched::this_fiber::waker().wake();  // the permit
        if (pool.call([] { return 1; }) == 1) answered.fetch_add(1);
    });
    REQUIRE(wait_until([&] { return pool.stats().waited >= 1; }));
    scheduler.spawn([&] {
        if (pool.call([] { return 2; }) == 2) answered.fetch_add(1);
    });
    REQUIRE(wait_until([&] { return pool.stats().waited >= 2; }));
    gate.open();
    CHECK(wait_until([&] { return answered.load() == 2; }));
    CHECK(pool.stats().waited == 2);  // each fiber waited for room once
}

TEST_CASE("stop() cancels queued calls, joins, and fibers are told", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    auto pool = std::make_unique<pollers::OffloadPool>(
        pollers::OffloadOptions{.threads = 1, .queue_capacity = 4});
    pool->start();
    sched::Group group = scheduler.make_group();
    test::Gate gate;
    std::atomic<int> ok{0}, cancelled{0};
    auto done = [&](pollers::Outcome<void> got) {
        if (got.ok()) {
            ok.fetch_add(1);
            return;
        }
        try {
            got.value();
        } catch (const std::system_error& error) {
            if (error.code() == std::errc::operation_canceled) cancelled.fetch_add(1);
        }
    };
    REQUIRE(pool->try_submit(
        group, [&] { gate.block(); }, done));
    REQUIRE(gate.wait_entered());
    REQUIRE(pool->try_submit(
        group, [] {}, done));
    REQUIRE(pool->try_submit(
        group, [] {}, done));
    std::atomic<bool> fiber_told{false};
    scheduler.spawn([&] {
        try {
            pool->call([] {});
        } catch (const std::system_error& error) {
            fiber_told = error.code() == std::errc::operation_canceled;
        }
    });
    REQUIRE(wait_until([&] { return pool->stats().queued == 3; }));
    std::thread stopper([&] { pool->stop(); });
    std::this_thread::sleep_for(10ms);
    gate.open();  // the running call finishes; stop() then joins
    stopper.join();
    REQUIRE(wait_until([&] { return ok.load() + cancelled.load() == 3 && fiber_told.load(); }));
    CHECK(ok.load() == 1);
    CHECK(cancelled.load() == 2);
    CHECK_FALSE(pool->try_submit(
        group, [] {}, done));  // stopped
}

TEST_CASE("bad options are refused at construction", "[pollers][unit]") {
    CHECK_THROWS_AS(pollers::OffloadPool({.threads = 0}), std::invalid_argument);
    CHECK_THROWS_AS(pollers::OffloadPool({.queue_capacity = 0}), std::invalid_argument);
}
