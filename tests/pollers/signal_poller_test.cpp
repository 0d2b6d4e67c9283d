// SignalPoller: signals reach the subscribed groups as events, coalesced;
// real-time signals count every instance; a storm neither crashes nor wedges
// anything; bad signal numbers are refused at the call site; a throwing
// handler ends only its group; stop joins promptly.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <quiesce/base/signals.hpp>
#include <quiesce/pollers/signal_poller.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using quiesce::test::wait_until;

TEST_CASE("a signal runs the subscribed handler on its group", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    pollers::SignalPoller signals;
    signals.start();
    sched::Group group = scheduler.make_group({.name = "on-usr1"});
    std::atomic<int> runs{0};
    std::atomic<bool> right{true};
    auto sub = signals.subscribe(SIGUSR1, group, [&](const pollers::SignalInfo& info) {
        if (info.signal != SIGUSR1 || info.sender_pid != getpid() || info.count < 1 ||
            !(sched::Group::current() == group)) {
            right = false;
        }
        runs.fetch_add(1);
    });
    for (int i = 1; i <= 5; ++i) {
        REQUIRE(kill(getpid(), SIGUSR1) == 0);
        REQUIRE(wait_until([&] { return runs.load() == i; }));
    }
    CHECK(right.load());
    CHECK(sub.cancel());
    CHECK_FALSE(sub.cancel());
    REQUIRE(kill(getpid(), SIGUSR1) == 0);
    REQUIRE(wait_until([&] { return signals.stats().received >= 6; }));
    std::this_thread::sleep_for(20ms);
    CHECK(runs.load() == 5);
}

TEST_CASE("every subscriber of a signal gets it; real-time signals count each instance",
          "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    pollers::SignalPoller signals;
    signals.start();
    std::atomic<int> a{0}, b{0};
    std::atomic<std::uint64_t> rt_count{0};
    auto sa = signals.subscribe(SIGUSR2, scheduler.make_group(),
                                [&](const pollers::SignalInfo&) { a.fetch_add(1); });
    auto sb = signals.subscribe(SIGUSR2, scheduler.make_group(),
                                [&](const pollers::SignalInfo&) { b.fetch_add(1); });
    auto rt = signals.subscribe(SIGRTMIN + 1, scheduler.make_group(),
                                [&](const pollers::SignalInfo& info) { rt_count += info.count; });
    REQUIRE(kill(getpid(), SIGUSR2) == 0);
    REQUIRE(wait_until([&] { return a.load() == 1 && b.load() == 1; }));
    for (int i = 0; i < 5; ++i) {
        sigval value{};
        value.sival_int = i;
        REQUIRE(sigqueue(getpid(), SIGRTMIN + 1, value) == 0);
    }
    REQUIRE(wait_until([&] { return rt_count.load() == 5; }));
}

TEST_CASE("a storm of signals coalesces and wedges nothing", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    pollers::SignalPoller signals;
    signals.start();
    sched::Group group = scheduler.make_group();
    std::atomic<std::uint64_t> counted{0};
    std::atomic<int> runs{0};
    auto sub = signals.subscribe(SIGUSR1, group, [&](const pollers::SignalInfo& info) {
        counted += info.count;
        runs.fetch_add(1);
    });
    constexpr int kSignals = 30'000;
    std::thread sender([] {
        base::SignalBlock block;  // the sender must not catch them itself
        for (int i = 0; i < kSignals; ++i) kill(getpid(), SIGUSR1);
    });
    sender.join();
    REQUIRE(wait_until([&] { return counted.load() == signals.stats().received; }));
    // Still alive and serving: one more arrives as one more run.
    const int before = runs.load();
    REQUIRE(kill(getpid(), SIGUSR1) == 0);
    REQUIRE(wait_until([&] { return runs.load() == before + 1; }));
    WARN(kSignals << " SIGUSR1 sent: " << signals.stats().received << " read, " << runs.load()
                  << " handler runs");
    CHECK(runs.load() <= static_cast<int>(signals.stats().received));
}

TEST_CASE("signals that cannot be events are refused with a reason", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    pollers::SignalPoller signals;
    signals.start();
    sched::Group group = scheduler.make_group();
    auto noop = [](const pollers::SignalInfo&) {};
    CHECK_THROWS_WITH(signals.subscribe(0, group, noop), Contains("not a signal number"));
    CHECK_THROWS_WITH(signals.subscribe(SIGRTMAX + 1, group, noop),
                      Contains("not a signal number"));
    CHECK_THROWS_WITH(signals.subscribe(SIGKILL, group, noop), Contains("cannot be caught"));
    CHECK_THROWS_WITH(signals.subscribe(SIGSEGV, group, noop), Contains("raised by faults"));
    CHECK_THROWS_WITH(signals.subscribe(SIGRTMAX - 3, group, noop), Contains("tick signal"));
    CHECK_THROWS_AS(signals.subscribe(SIGUSR1, sched::Group(), noop), std::invalid_argument);
    CHECK(signals.stats().subscriptions == 0);
}

TEST_CASE("a throwing signal handler ends its group only", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    pollers::SignalPoller signals;
    signals.start();
    sched::Group bad = scheduler.make_group({.name = "thrower"});
    sched::Group good = scheduler.make_group();
    std::atomic<int> good_runs{0};
    auto s1 = signals.subscribe(SIGUSR2, bad, [](const pollers::SignalInfo&) {
        throw std::runtime_error("handler failed");
    });
    auto s2 = signals.subscribe(SIGUSR2, good,
                                [&](const pollers::SignalInfo&) { good_runs.fetch_add(1); });
    REQUIRE(kill(getpid(), SIGUSR2) == 0);
    REQUIRE(wait_until([&] { return bad.closed() && good_runs.load() == 1; }));
    REQUIRE(kill(getpid(), SIGUSR2) == 0);
    REQUIRE(wait_until([&] { return good_runs.load() == 2; }));
    CHECK_FALSE(signals.failed());
}

TEST_CASE("stop() joins the blocked signal thread promptly", "[pollers][unit]") {
    pollers::SignalPoller signals;
    signals.start();
    std::this_thread::sleep_for(10ms);
    const auto before = std::chrono::steady_clock::now();
    signals.stop();
    CHECK(std::chrono::steady_clock::now() - before < 1s);
    signals.start();
    signals.stop();
}

TEST_CASE("ignore_sigpipe() turns a write to a closed pipe into EPIPE", "[pollers][unit]") {
    pollers::SignalPoller::ignore_sigpipe();
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    close(fds[0]);
    errno = 0;
    CHECK(write(fds[1], "x", 1) == -1);
    CHECK(errno == EPIPE);
    close(fds[1]);
}
