// GlibPoller on a headless context: closures run on the GLib thread in the
// order they were queued; a fiber's call comes back with the value or the
// exception; GLib sources post to groups exactly once per event; stop() runs
// what was accepted and joins promptly while GLib blocks; the GLib thread is
// offline while it polls and online while it dispatches; run_here() makes
// the caller the GLib thread, also around a main loop that is not ours.
// (Catch2 assertions are not thread-safe: other threads record into atomics.)
#include <catch2/catch.hpp>

#include <glib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <quiesce/pollers/glib_poller.hpp>
#include <quiesce/rcu/domain.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "gate.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::wait_until;

namespace {

// Has the GLib thread run a closure and then come back to its poll function
// (where it goes offline and, with nothing to do, blocks).
bool polled_again(pollers::GlibPoller& glib) {
    auto at_dispatch = std::make_shared<std::atomic<std::uint64_t>>(~std::uint64_t{0});
    if (!glib.invoke([&glib, at_dispatch] { *at_dispatch = glib.stats().polls; })) return false;
    return wait_until([&] {
        const std::uint64_t seen = at_dispatch->load();
        return seen != ~std::uint64_t{0} && glib.stats().polls > seen;
    });
}

}  // namespace

TEST_CASE("closures run on the GLib thread in the order each thread queued them",
          "[pollers][unit]") {
    pollers::GlibPoller glib;
    glib.start();
    constexpr int kPerThread = 2000;
    std::vector<int> seen[2];  // GLib thread only, until `ran` says all are in
    std::atomic<int> ran{0}, off_thread{0}, refused{0};
    std::atomic<std::thread::id> glib_id{};
    std::vector<std::thread> producers;
    for (int p = 0; p < 2; ++p) {
        producers.emplace_back([&, p] {
            for (int i = 0; i < kPerThread; ++i) {
                const bool queued = glib.invoke([&, p, i] {
                    if (!glib.on_glib_thread()) off_thread.fetch_add(1);
                    glib_id.store(std::this_thread::get_id());
                    seen[p].push_back(i);
                    ran.fetch_add(1);  // seq_cst: publishes seen[] to the test thread
                });
                if (!queued) refused.fetch_add(1);
            }
        });
    }
    for (auto& t : producers) t.join();
    REQUIRE(refused.load() == 0);
    REQUIRE(wait_until([&] { return ran.load() == 2 * kPerThread; }));
    CHECK(off_thread.load() == 0);
    CHECK(glib_id.load() != std::this_thread::get_id());
    CHECK_FALSE(glib.on_glib_thread());
    for (auto& order : seen) {
        REQUIRE(order.size() == kPerThread);
        bool in_order = true;
        for (int i = 0; i < kPerThread; ++i) in_order = in_order && order[i] == i;
        CHECK(in_order);
    }
    CHECK(glib.stats().invoked == 2 * kPerThread);
}

TEST_CASE("a fiber calls into the GLib thread and gets the value or the exception back",
          "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    pollers::GlibPoller glib;
    glib.start();
    std::atomic<int> value{0};
    std::atomic<bool> caught{false}, on_glib{false}, done{false};
    scheduler.spawn([&] {
        value = glib.call([&] {
            on_glib = glib.on_glib_thread();
            return 42;
        });
        try {
            glib.call([]() -> int { throw std::runtime_error("no display"); });
        } catch (const std::runtime_error& error) {
            caught = std::string(error.what()) == "no display";
        }
        done = true;
    });
    REQUIRE(wait_until([&] { return done.load(); }));
    CHECK(value.load() == 42);
    CHECK(on_glib.load());
    CHECK(caught.load());
    glib.stop();
    std::atomic<bool> refused{false};
    scheduler.spawn([&] {
        try {
            glib.call([] { return 0; });
        } catch (const std::system_error& error) {
            refused = error.code() == std::errc::operation_canceled;
        }
    });
    CHECK(wait_until([&] { return refused.load(); }));
}

TEST_CASE("GLib sources post to groups, each event arriving once", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    pollers::GlibPoller glib;
    glib.start();
    sched::Group group = scheduler.make_group({.name = "from-glib"});
    constexpr int kEvents = 500;
    std::atomic<int> arrived{0}, wrong_group{0};
    struct Ticks {
        sched::Group group;
        std::atomic<int>* arrived;
        std::atomic<int>* wrong_group;
        int left;
    };
    auto* ticks = new Ticks{group, &arrived, &wrong_group, kEvents};
    // An idle source of the poller's context, as GLib code would add one.
    REQUIRE(glib.invoke([&glib, ticks] {
        GSource* source = g_idle_source_new();
        g_source_set_callback(
            source,
            [](gpointer data) -> gboolean {
                auto* t = static_cast<Ticks*>(data);
                const sched::Group target = t->group;
                (void)t->group.post([target, arrived = t->arrived, wrong = t->wrong_group] {
                    if (sched::Group::current() != target) wrong->fetch_add(1);
                    arrived->fetch_add(1);
                });
                return --t->left > 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
            },
            ticks, [](gpointer data) { delete static_cast<Ticks*>(data); });
        g_source_attach(source, glib.context());
        g_source_unref(source);
    }));
    REQUIRE(wait_until([&] { return arrived.load() == kEvents; }));
    REQUIRE(polled_again(glib));  // the source is gone: nothing more is posted
    CHECK(arrived.load() == kEvents);
    CHECK(wrong_group.load() == 0);
}

TEST_CASE("stop() runs every accepted closure and joins promptly while GLib blocks",
          "[pollers][unit]") {
    pollers::GlibPoller glib;
    glib.start();
    REQUIRE(polled_again(glib));  // blocked in poll now, with nothing to do
    std::atomic<int> ran{0};
    for (int i = 0; i < 100; ++i) REQUIRE(glib.invoke([&] { ran.fetch_add(1); }));
    const auto before = std::chrono::steady_clock::now();
    glib.stop();
    const auto took = std::chrono::steady_clock::now() - before;
    CHECK(ran.load() == 100);
    CHECK(took < 5s);  // a bound for a hang, not a speed check
    CHECK_FALSE(glib.running());
    CHECK_FALSE(glib.invoke([] {}));
    glib.start();  // and again
    REQUIRE(glib.invoke([&] { ran.fetch_add(1); }));
    REQUIRE(wait_until([&] { return ran.load() == 101; }));
}

TEST_CASE("the GLib thread is offline while it polls and online while it dispatches",
          "[pollers][unit]") {
    rcu::Domain& domain = rcu::Domain::default_domain();
    pollers::GlibPoller glib;
    glib.start();
    // Idle in poll: a grace period does not wait for it.
    REQUIRE(polled_again(glib));
    const rcu::GpCookie idle = domain.start_grace_period();
    CHECK(wait_until([&] { return domain.poll(idle); }));
    // In a dispatch (a closure that may hold references): it does.
    test::Gate gate;
    REQUIRE(glib.invoke([&] { gate.block(); }));
    REQUIRE(gate.wait_entered());
    const rcu::GpCookie busy = domain.start_grace_period();
    std::this_thread::sleep_for(50ms);  // a grace period has every chance to end wrongly
    CHECK_FALSE(domain.poll(busy));
    gate.open();
    CHECK(wait_until([&] { return domain.poll(busy); }));
}

TEST_CASE("run_here() makes the calling thread the GLib thread", "[pollers][unit]") {
    pollers::GlibPoller glib;
    std::atomic<std::thread::id> ran_on{};
    std::thread gui([&] { glib.run_here(); });
    REQUIRE(wait_until([&] { return glib.running(); }));
    REQUIRE(glib.invoke([&] { ran_on = std::this_thread::get_id(); }));
    REQUIRE(wait_until([&] { return ran_on.load() != std::thread::id(); }));
    CHECK(ran_on.load() == gui.get_id());
    CHECK_THROWS_AS(glib.start(), std::logic_error);
    glib.stop();
    gui.join();
    CHECK_FALSE(glib.running());
}

TEST_CASE("run_here() around a main loop that is not ours: stop() asks it to quit",
          "[pollers][unit]") {
    pollers::GlibPoller glib;
    GMainLoop* loop = g_main_loop_new(glib.context(), FALSE);
    std::atomic<int> result{-1};
    std::atomic<bool> invoked{false};
    std::thread gui([&] {
        result = glib.run_here(
            [&] {
                g_main_loop_run(loop);
                return 7;
            },
            [&] { g_main_loop_quit(loop); });
    });
    REQUIRE(wait_until([&] { return glib.running(); }));
    REQUIRE(glib.invoke([&] { invoked = true; }));
    REQUIRE(wait_until([&] { return invoked.load(); }));
    glib.stop();
    gui.join();
    CHECK(result.load() == 7);
    g_main_loop_unref(loop);
}

TEST_CASE("a loop thread cannot become the GLib thread", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    pollers::GlibPoller glib;
    std::atomic<bool> refused{false};
    scheduler.spawn([&] {
        try {
            glib.run_here();
        } catch (const std::logic_error&) {
            refused = true;
        }
    });
    CHECK(wait_until([&] { return refused.load(); }));
    CHECK_FALSE(glib.running());
}
