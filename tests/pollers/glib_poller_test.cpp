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
#include "gui_poller_cases.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::wait_until;

namespace {

std::uint64_t polls(const pollers::GlibPoller& glib) {
    return glib.stats().polls;
}

bool polled_again(pollers::GlibPoller& glib) {
    return test::back_at_wait(glib, polls);
}

}  // namespace

TEST_CASE("closures run on the GLib thread in the order each thread queued them",
          "[pollers][unit]") {
    pollers::GlibPoller glib;
    glib.start();
    test::check_closure_order(glib, [&] { return glib.on_glib_thread(); });
}
TEST_CASE("a fiber calls into the GLib thread and gets the value or the exception back",
          "[pollers][unit]") {
    pollers::GlibPoller glib;
    glib.start();
    test::check_fiber_calls(
        glib, [] { return 42; }, 42, [&] { return glib.on_glib_thread(); });
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
    test::check_stop(glib, polls);
}
TEST_CASE("the GLib thread is offline while it polls and online while it dispatches",
          "[pollers][unit]") {
    pollers::GlibPoller glib;
    test::check_reader_states(glib, polls);
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

TEST_CASE("a GLib poller stopped from its own thread starts again", "[pollers][unit]") {
    pollers::GlibPoller glib;
    test::check_restart_after_self_stop(glib);
}

TEST_CASE("a poll inside a dispatch (g_main_context_pending) is no quiescent state",
          "[pollers][unit]") {
    pollers::GlibPoller glib;
    test::check_nested_wait_holds_grace_period(
        glib, [&] { (void)g_main_context_pending(glib.context()); });
}

TEST_CASE("start() on a context another thread runs is refused at once", "[pollers][unit]") {
    GMainContext* context = g_main_context_new();
    std::atomic<bool> owned{false}, release{false};
    std::thread owner([&] {
        owned = g_main_context_acquire(context) != 0;
        while (!release.load()) std::this_thread::yield();
        g_main_context_release(context);
    });
    REQUIRE(wait_until([&] { return owned.load(); }));
    {
        pollers::GlibPoller glib({.context = context});
        CHECK_THROWS_AS(glib.start(), std::logic_error);
        CHECK_FALSE(glib.running());
        CHECK_FALSE(glib.invoke([] {}));
    }
    release = true;
    owner.join();
    g_main_context_unref(context);
}
