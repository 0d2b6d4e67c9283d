// The checks the GLib and Qt pollers share, as templates over the poller
// (GlibPoller, QtPoller: invoke(), call(), stop(), running(), stats()):
// closure order, fiber calls, stop() running what it accepted, and the GUI
// thread offline while it waits and online while it runs a closure. Each
// test file calls them with its poller and what tells "back at its wait".
// (Catch2 assertions are not thread-safe: other threads record into atomics.)
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <quiesce/rcu/domain.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "gate.hpp"
#include "wait.hpp"

namespace quiesce::test {

/// Has the GUI thread run a closure and then come back to its wait (where
/// it reports a quiescent state and goes offline)? `waits(poller)` counts
/// those returns (GlibPollerStats::polls, QtPollerStats::waits).
template <typename Poller, typename Waits>
bool back_at_wait(Poller& poller, Waits waits) {
    auto at_dispatch = std::make_shared<std::atomic<std::uint64_t>>(~std::uint64_t{0});
    if (!poller.invoke([&poller, waits, at_dispatch] { *at_dispatch = waits(poller); })) {
        return false;
    }
    return wait_until([&] {
        const std::uint64_t seen = at_dispatch->load();
        return seen != ~std::uint64_t{0} && waits(poller) > seen;
    });
}

/// Two threads queue 2000 closures each: all run on the GUI thread
/// (`on_gui_thread()` there), each thread's in its order.
template <typename Poller, typename OnGuiThread>
void check_closure_order(Poller& poller, OnGuiThread on_gui_thread) {
    constexpr int kPerThread = 2000;
    std::vector<int> seen[2];  // GUI thread only, until `ran` says all are in
    std::atomic<int> ran{0}, off_thread{0}, refused{0};
    std::vector<std::thread> producers;
    for (int p = 0; p < 2; ++p) {
        producers.emplace_back([&, p] {
            for (int i = 0; i < kPerThread; ++i) {
                const bool queued = poller.invoke([&, p, i] {
                    if (!on_gui_thread()) off_thread.fetch_add(1);
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
    CHECK_FALSE(on_gui_thread());
    for (auto& order : seen) {
        REQUIRE(order.size() == kPerThread);
        bool in_order = true;
        for (int i = 0; i < kPerThread; ++i) in_order = in_order && order[i] == i;
        CHECK(in_order);
    }
    CHECK(poller.stats().invoked == 2 * kPerThread);
}

/// A fiber's call() returns `value()`'s result (`expected`), run on the GUI
/// thread, and rethrows an exception; once stopped, call() throws
/// operation_canceled.
template <typename Poller, typename Value, typename OnGuiThread>
void check_fiber_calls(Poller& poller, Value value, const decltype(value())& expected,
                       OnGuiThread on_gui_thread) {
    sched::Scheduler scheduler({.threads = 2});
    std::atomic<bool> right_value{false}, caught{false}, on_gui{false}, done{false};
    scheduler.spawn([&] {
        right_value = poller.call([&] {
            on_gui = on_gui_thread();
            return value();
        }) == expected;
        try {
            poller.call([]() -> int { throw std::runtime_error("no display"); });
        } catch (const std::runtime_error& error) {
            caught = std::string(error.what()) == "no display";
        }
        done = true;
    });
    REQUIRE(wait_until([&] { return done.load(); }));
    CHECK(right_value.load());
    CHECK(on_gui.load());
    CHECK(caught.load());
    poller.stop();
    std::atomic<bool> refused{false};
    scheduler.spawn([&] {
        try {
            poller.call([] { return 0; });
        } catch (const std::system_error& error) {
            refused = error.code() == std::errc::operation_canceled;
        }
    });
    CHECK(wait_until([&] { return refused.load(); }));
}

/// stop() while the GUI thread waits runs the 100 closures queued before
/// it and returns promptly; invoke() is refused after; start() again works.
template <typename Poller, typename Waits>
void check_stop(Poller& poller, Waits waits) {
    using namespace std::chrono_literals;
    poller.start();
    REQUIRE(back_at_wait(poller, waits));  // waiting now, with nothing to do
    std::atomic<int> ran{0};
    for (int i = 0; i < 100; ++i) REQUIRE(poller.invoke([&] { ran.fetch_add(1); }));
    const auto before = std::chrono::steady_clock::now();
    poller.stop();
    const auto took = std::chrono::steady_clock::now() - before;
    CHECK(ran.load() == 100);
    CHECK(took < 5s);  // a bound for a hang, not a speed check
    CHECK_FALSE(poller.running());
    CHECK_FALSE(poller.invoke([] {}));
    poller.start();  // and again
    REQUIRE(poller.invoke([&] { ran.fetch_add(1); }));
    REQUIRE(wait_until([&] { return ran.load() == 101; }));
}

/// A grace period does not wait for the GUI thread at its wait, and does
/// wait for a closure that runs (it may hold references).
template <typename Poller, typename Waits>
void check_reader_states(Poller& poller, Waits waits) {
    using namespace std::chrono_literals;
    rcu::Domain& domain = rcu::Domain::default_domain();
    poller.start();
    REQUIRE(back_at_wait(poller, waits));
    const rcu::GpCookie idle = domain.start_grace_period();
    CHECK(wait_until([&] { return domain.poll(idle); }));
    Gate gate;
    REQUIRE(poller.invoke([&] { gate.block(); }));
    REQUIRE(gate.wait_entered());
    const rcu::GpCookie busy = domain.start_grace_period();
    std::this_thread::sleep_for(50ms);  // a grace period has every chance to end wrongly
    CHECK_FALSE(domain.poll(busy));
    gate.open();
    CHECK(wait_until([&] { return domain.poll(busy); }));
}

/// A closure that stops the poller from its own thread; start() from
/// another thread afterwards starts it again.
template <typename Poller>
void check_restart_after_self_stop(Poller& poller) {
    poller.start();
    REQUIRE(poller.invoke([&] { poller.stop(); }));
    REQUIRE(wait_until([&] { return !poller.running(); }));
    poller.start();
    std::atomic<bool> ran{false};
    REQUIRE(poller.invoke([&] { ran = true; }));
    CHECK(wait_until([&] { return ran.load(); }));
}

/// While a closure runs `nested()` over and over (a poll or wait of the GUI
/// loop inside a dispatch), the thread reports no quiescent state: a grace
/// period started meanwhile ends only after the closure returns.
template <typename Poller, typename Nested>
void check_nested_wait_holds_grace_period(Poller& poller, Nested nested) {
    using namespace std::chrono_literals;
    rcu::Domain& domain = rcu::Domain::default_domain();
    poller.start();
    std::atomic<bool> entered{false}, open{false};
    REQUIRE(poller.invoke([&] {
        entered = true;
        while (!open.load()) nested();
    }));
    REQUIRE(wait_until([&] { return entered.load(); }));
    const rcu::GpCookie cookie = domain.start_grace_period();
    std::this_thread::sleep_for(50ms);  // many nested waits meanwhile
    CHECK_FALSE(domain.poll(cookie));
    open = true;
    CHECK(wait_until([&] { return domain.poll(cookie); }));
}

}  // namespace quiesce::test
