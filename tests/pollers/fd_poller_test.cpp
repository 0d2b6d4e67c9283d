// FdPoller: readiness reaches the right group, once per edge, coalesced while
// queued; cancel() from any thread, swept across a handler's start and end;
// 10,000 watched fds; a migrating group; bad input as errors at the call
// site; a closed group; stop while blocked.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "fd_support.hpp"
#include "group_flush.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::flush_group;
using quiesce::test::wait_until;

using quiesce::test::drain;
using quiesce::test::placement_under_test;
using quiesce::test::SocketPair;

TEST_CASE("readiness runs the handler on the watch's group, once per edge", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair;
    sched::Group group = scheduler.make_group({.name = "reader"});
    std::atomic<int> runs{0}, bytes{0};
    std::atomic<bool> wrong_group{false};
    pollers::FdWatch watch =
        poller.watch(pair.fd[0], group, pollers::kRead,
                     [&](pollers::Ready ready) {
                         if (!(sched::Group::current() == group) || (ready & pollers::kRead) == 0)
                             wrong_group = true;
                         bytes += drain(pair.fd[0]);
                         runs.fetch_add(1);
                     },
                     {.edge_triggered = true});
    for (int i = 1; i <= 20; ++i) {
        pair.send();
        REQUIRE(wait_until([&] { return bytes.load() == i; }));
    }
    std::this_thread::sleep_for(20ms);  // no extra runs without new data
    CHECK(runs.load() == 20);
    CHECK_FALSE(wrong_group.load());
    CHECK(watch.cancel() == pollers::CancelResult::kCancelled);
    CHECK(watch.cancel() == pollers::CancelResult::kAlreadyCancelled);
    pair.send();
    std::this_thread::sleep_for(20ms);
    CHECK(runs.load() == 20);
    CHECK(poller.stats().watches == 0);
}

TEST_CASE("readiness coalesces while the handler is queued", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair a, b;
    sched::Group group = scheduler.make_group();
    // Holds the group (not the loop: an in-loop poller must keep polling)
    // while readiness piles up: the event stays at the head of the group.
    std::atomic<bool> hold{true}, holding{false};
    group.post([&] {
        holding = true;
        return hold.load() ? sched::Status::kAgain : sched::Status::kDone;
    });
    REQUIRE(wait_until([&] { return holding.load(); }));
    std::atomic<int> runs{0};
    std::atomic<int> seen{0};
    pollers::FdWatch wa = poller.watch(a.fd[0], group, pollers::kRead,
                                       [&](pollers::Ready) {
                                           drain(a.fd[0]);
                                           runs.fetch_add(1);
                                       },
                                       {.edge_triggered = true});
    pollers::FdWatch wb = poller.watch(b.fd[0], group, pollers::kReadWrite,
                                       [&](pollers::Ready r) {
                                           seen.fetch_or(r);
                                           drain(b.fd[0]);
                                       },
                                       {.edge_triggered = true});
    for (int i = 0; i < 10; ++i) {
        a.send();
        std::this_thread::sleep_for(1ms);  // separate edges (some may merge)
    }
    b.send();
    // A sentinel on a free group, made ready last: epoll reports ready fds in
    // the order they became ready, and the poller hands them on in that
    // order, so once its handler has run every edge of a and b is in their
    // queued run.
    SocketPair c;
    std::atomic<bool> sentinel{false};
    sched::Group free_group = scheduler.make_group();
    pollers::FdWatch wc =
        poller.watch(c.fd[0], free_group, pollers::kRead, [&](pollers::Ready) { sentinel = true; },
                     {.edge_triggered = true});
    c.send();
    REQUIRE(wait_until([&] { return sentinel.load(); }));
    hold = false;
    REQUIRE(wait_until([&] { return runs.load() >= 1 && seen.load() != 0; }));
    std::this_thread::sleep_for(20ms);
    CHECK(runs.load() == 1);                    // ten edges, one run
    CHECK(seen.load() == pollers::kReadWrite);  // the union of what became ready
}

TEST_CASE("a level-triggered watch fires until the data is read; one-shot fires once",
          "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair;
    sched::Group group = scheduler.make_group();
    std::atomic<int> level_runs{0};
    {
        pollers::FdWatch watch =
            poller.watch(pair.fd[0], group, pollers::kRead, [&](pollers::Ready) {
                if (level_runs.fetch_add(1) == 5) drain(pair.fd[0]);
            });
        pair.send();
        REQUIRE(wait_until([&] { return level_runs.load() >= 6; }));
        std::this_thread::sleep_for(20ms);
        CHECK(level_runs.load() == 6);  // stops once drained
    }
    std::atomic<int> once_runs{0};
    pollers::FdWatch once =
        poller.watch(pair.fd[0], group, pollers::kRead,
                     [&](pollers::Ready) {
                         once_runs.fetch_add(1);  // does not read: level readiness stays
                     },
                     {.persistent = false});
    pair.send();
    REQUIRE(wait_until([&] { return once_runs.load() == 1; }));
    std::this_thread::sleep_for(20ms);
    CHECK(once_runs.load() == 1);
    CHECK_FALSE(once.rearm());
    REQUIRE(wait_until([&] { return once_runs.load() == 2; }));
    CHECK_FALSE(once.modify(pollers::kReadWrite));
    CHECK(once.modify(static_cast<pollers::Ready>(0)) == std::errc::invalid_argument);
    // modify() armed it again and the socket is still readable: that run
    // ends before `once_runs` goes.
    REQUIRE(wait_until([&] { return once_runs.load() >= 3; }));
}

TEST_CASE("after cancel() returns no handler starts, swept across a handler's run",
          "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    std::mt19937 rng(7);
    int saw_running = 0, saw_cancelled = 0;
    for (int round = 0; round < 200; ++round) {
        SocketPair pair;
        sched::Group group = scheduler.make_group();
        std::atomic<int> started{0};
        pollers::FdWatch watch =
            poller.watch(pair.fd[0], group, pollers::kRead, [&](pollers::Ready) {
                started.fetch_add(1);
                const auto until = std::chrono::steady_clock::now() + 50us;
                while (std::chrono::steady_clock::now() < until) {
                }
                drain(pair.fd[0]);
            });
        pair.send(2);
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 150));
        const pollers::CancelResult result = watch.cancel();
        const int at_return = started.load();
        (result == pollers::CancelResult::kRunning ? saw_running : saw_cancelled) += 1;
        pair.send();  // would start a handler if the watch were alive
        // The group must be idle before the locals go (and before counting).
        std::this_thread::sleep_for(200us);
        REQUIRE(flush_group(group));
        // kCancelled: nothing ran or starts; kRunning: the one handler that
        // was running may not have counted itself yet.
        CHECK(started.load() <= at_return + (result == pollers::CancelResult::kRunning ? 1 : 0));
    }
    INFO("cancel() saw a running handler " << saw_running << " times, none " << saw_cancelled);
    CHECK(saw_running + saw_cancelled == 200);
    CHECK(poller.stats().watches == 0);
}

TEST_CASE("cancel() from the watch's own group never reports kRunning", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair;
    sched::Group group = scheduler.make_group();
    pollers::FdWatch watch;
    // The handle reaches the handler through an atomic: the data that makes
    // the handler run travels through the kernel, which TSan does not see.
    std::atomic<pollers::FdWatch*> handle{nullptr};
    std::atomic<int> result{-1}, runs{0};
    watch = poller.watch(pair.fd[0], group, pollers::kRead, [&](pollers::Ready) {
        runs.fetch_add(1);
        pollers::FdWatch* self = handle.load(std::memory_order_acquire);
        if (self != nullptr) result = static_cast<int>(self->cancel());  // from its own handler
    });
    handle.store(&watch, std::memory_order_release);
    pair.send();
    REQUIRE(wait_until([&] { return result.load() >= 0; }));
    CHECK(result.load() == static_cast<int>(pollers::CancelResult::kCancelled));
    std::this_thread::sleep_for(20ms);  // level-triggered data is still there
    CHECK(runs.load() == 1);
}

TEST_CASE("ten thousand watched descriptors each reach their group", "[pollers][unit]") {
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    constexpr int kPairs = 5000;  // 10,000 watched descriptors
    if (limit.rlim_cur < 2 * kPairs + 200) {
        WARN("RLIMIT_NOFILE " << limit.rlim_cur << " is below 10,200: test skipped");
        return;
    }
    sched::Scheduler scheduler({.threads = 2});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 2, .placement = placement});
    poller.start();
    std::vector<std::unique_ptr<SocketPair>> pairs;
    std::vector<sched::Group> groups;
    std::vector<std::atomic<int>> hits(2 * kPairs);  // before the watches: outlives them
    std::vector<pollers::FdWatch> watches;
    for (int i = 0; i < kPairs; ++i) {
        pairs.push_back(std::make_unique<SocketPair>());
        for (int side = 0; side < 2; ++side) {
            const int index = 2 * i + side;
            const int fd = pairs.back()->fd[side];
            groups.push_back(scheduler.make_group());
            watches.push_back(poller.watch(fd, groups.back(), pollers::kRead,
                                           [&hits, index, fd](pollers::Ready) {
                                               drain(fd);
                                               hits[static_cast<std::size_t>(index)].fetch_add(1);
                                           },
                                           {.edge_triggered = true}));
        }
    }
    CHECK(poller.stats().watches == 2 * kPairs);
    for (int i = 0; i < kPairs; ++i) {
        REQUIRE(write(pairs[static_cast<std::size_t>(i)]->fd[0], "a", 1) == 1);  // wakes side 1
        REQUIRE(write(pairs[static_cast<std::size_t>(i)]->fd[1], "b", 1) == 1);  // wakes side 0
    }
    REQUIRE(wait_until(
        [&] {
            for (auto& h : hits) {
                if (h.load() == 0) return false;
            }
            return true;
        },
        60s));
    int extra = 0;
    for (auto& h : hits) extra += h.load() - 1;
    CHECK(extra == 0);
    watches.clear();
    CHECK(poller.stats().watches == 0);
}

TEST_CASE("a group that migrates keeps receiving its readiness", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair;
    sched::Group group = scheduler.make_group({.name = "wanderer", .loop = 0});
    std::atomic<int> bytes{0};
    std::atomic<int> loops_seen{0};
    pollers::FdWatch watch =
        poller.watch(pair.fd[0], group, pollers::kRead,
                     [&](pollers::Ready) {
                         bytes += drain(pair.fd[0]);
                         loops_seen.fetch_or(1 << sched::Scheduler::current_loop());
                     },
                     {.edge_triggered = true});
    // Hogs pinned to one loop at a time: the reader, queued behind them on
    // its home loop, is taken by the other, idle loop; then the hogs move.
    int sent = 0;
    // Stealing depends on timing: phases go on until the group's handler
    // has run on both loops (bounded).
    for (int phase = 0; phase < 60 && (phase < 6 || loops_seen.load() != 3); ++phase) {
        std::atomic<bool> hogs_on{true};
        std::atomic<int> hogs_done{0};
        std::vector<sched::Group> hogs;
        for (int h = 0; h < 4; ++h) {
            hogs.push_back(scheduler.make_group({.loop = phase % 2, .pinned = true}));
            hogs.back().post([&] {
                if (hogs_on.load()) return sched::Status::kAgain;
                hogs_done.fetch_add(1);
                return sched::Status::kDone;
            });
        }
        for (int i = 0; i < 20; ++i) {
            pair.send();
            ++sent;
            REQUIRE(wait_until([&] { return bytes.load() == sent; }));
        }
        hogs_on = false;
        REQUIRE(wait_until([&] { return hogs_done.load() == 4; }));
    }
    CHECK(bytes.load() == sent);
    // Stealing is timing-driven: in rare runs (seen under TSan, about one in
    // twenty) the group was never taken in 60 phases. Delivery is checked
    // above in every run; say when the move itself was not exercised.
    if (loops_seen.load() != 3) {
        WARN("the group never migrated in this run: only delivery was checked");
    } else {
        CHECK(group.stats().migrations >= 1);
    }
}

TEST_CASE("bad input is an error at the call site; the poller keeps running", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    sched::Group group = scheduler.make_group();
    auto noop = [](pollers::Ready) {};
    SocketPair pair;
    CHECK_THROWS_AS(poller.watch(pair.fd[0], group, pollers::kRead, noop), std::logic_error);
    poller.start();
    pollers::FdWatch out;
    CHECK(poller.try_watch(-1, group, pollers::kRead, noop, {}, out) ==
          std::errc::bad_file_descriptor);
    CHECK(poller.try_watch(987654, group, pollers::kRead, noop, {}, out) ==
          std::errc::bad_file_descriptor);
    CHECK_FALSE(out);
    pollers::FdWatch first = poller.watch(pair.fd[0], group, pollers::kRead, noop);
    try {
        (void)poller.watch(pair.fd[0], group, pollers::kWrite, noop);
        FAIL("a second watch of one fd was accepted");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::file_exists);
        CHECK_THAT(error.what(), Catch::Contains("already watched"));
    }
    std::FILE* file = std::tmpfile();
    REQUIRE(file != nullptr);
    try {
        (void)poller.watch(fileno(file), group, pollers::kRead, noop);
        FAIL("a regular file was accepted");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::operation_not_permitted);
        CHECK_THAT(error.what(), Catch::Contains("AIO poller"));
    }
    std::fclose(file);
    CHECK(poller.try_watch(pair.fd[1], group, static_cast<pollers::Ready>(0), noop, {}, out) ==
          std::errc::invalid_argument);
    CHECK(poller.try_watch(pair.fd[1], sched::Group(), pollers::kRead, noop, {}, out) ==
          std::errc::invalid_argument);
    // Still serving.
    std::atomic<int> runs{0};
    pollers::FdWatch good = poller.watch(pair.fd[1], group, pollers::kRead,
                                         [&](pollers::Ready) {
                                             drain(pair.fd[1]);
                                             runs.fetch_add(1);
                                         },
                                         {.edge_triggered = true});
    REQUIRE(write(pair.fd[0], "x", 1) == 1);
    REQUIRE(wait_until([&] { return runs.load() == 1; }));
    CHECK_FALSE(poller.failed());
}

TEST_CASE("a watch whose group closed stops quietly", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair;
    sched::Group group = scheduler.make_group();
    std::atomic<int> runs{0};
    pollers::FdWatch watch =
        poller.watch(pair.fd[0], group, pollers::kRead, [&](pollers::Ready) { runs.fetch_add(1); });
    group.close();
    REQUIRE(wait_until([&] { return group.closed(); }));
    pair.send();
    REQUIRE(wait_until([&] { return poller.stats().closed_groups >= 1; }));
    std::this_thread::sleep_for(20ms);
    CHECK(runs.load() == 0);
    CHECK(poller.stats().closed_groups == 1);  // polling stopped: no busy loop
}

TEST_CASE("stop() joins promptly while the poller threads block", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 3, .placement = placement});
    poller.start();
    std::this_thread::sleep_for(20ms);  // all blocked in epoll_wait
    const auto before = std::chrono::steady_clock::now();
    poller.stop();
    CHECK(std::chrono::steady_clock::now() - before < 1s);
    poller.start();  // and starts again
    SocketPair pair;
    sched::Group group = scheduler.make_group();
    std::atomic<int> runs{0};
    pollers::FdWatch watch = poller.watch(pair.fd[0], group, pollers::kRead,
                                          [&](pollers::Ready) {
                                              drain(pair.fd[0]);
                                              runs.fetch_add(1);
                                          },
                                          {.edge_triggered = true});
    pair.send();
    REQUIRE(wait_until([&] { return runs.load() == 1; }));
}

TEST_CASE("kHangup reports the peer's FIN, with the bytes before it, only when asked",
          "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair asked, plain;
    sched::Group group = scheduler.make_group({.name = "hangup"});
    std::atomic<int> asked_bits{0}, plain_bits{0};
    pollers::FdWatch with = poller.watch(
        asked.fd[0], group, static_cast<pollers::Ready>(pollers::kRead | pollers::kHangup),
        [&](pollers::Ready ready) { asked_bits.fetch_or(ready); }, {.edge_triggered = true});
    pollers::FdWatch without = poller.watch(
        plain.fd[0], group, pollers::kRead,
        [&](pollers::Ready ready) { plain_bits.fetch_or(ready); }, {.edge_triggered = true});
    // Bytes and FIN before the poller looks: one edge that carries both.
    asked.send(3);
    ::shutdown(asked.fd[1], SHUT_WR);
    plain.send(3);
    ::shutdown(plain.fd[1], SHUT_WR);
    REQUIRE(wait_until([&] { return (asked_bits.load() & pollers::kHangup) != 0; }));
    CHECK((asked_bits.load() & pollers::kRead) != 0);
    REQUIRE(wait_until([&] { return (plain_bits.load() & pollers::kRead) != 0; }));
    std::this_thread::sleep_for(20ms);
    CHECK((plain_bits.load() & pollers::kHangup) == 0);
}

TEST_CASE(
    "a loop sleeping in its reactor wakes for a timer to the microsecond, not the millisecond",
    "[pollers][unit]") {
    // The reactor times the sleep with its own timerfd; epoll_wait's own
    // timeout would round 300 µs up to a whole millisecond, every time.
    sched::Scheduler scheduler({.threads = 1});
    pollers::FdPoller poller(scheduler, {.placement = pollers::FdPlacement::kLoops});
    poller.start();
    sched::Group group = scheduler.make_group({.name = "timers"});
    constexpr int kTimers = 40;
    constexpr auto kDelay = 300us;
    std::atomic<int> fired{0};
    std::atomic<std::int64_t> shortest_us{INT64_MAX};  // from arming to running
    std::vector<sched::Timer> timers;
    // One timer after another, each armed from the previous one's run, so
    // the loop goes idle and sleeps before each.
    std::function<void()> arm_next = [&] {
        const auto t0 = std::chrono::steady_clock::now();
        timers.push_back(group.after(kDelay, [&, t0] {
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::steady_clock::now() - t0)
                                .count();
            // relaxed: only the group writes it; read after the release below.
            if (us < shortest_us.load(std::memory_order_relaxed))
                shortest_us.store(us, std::memory_order_relaxed);
            // release: pairs with the acquire load in the wait below, which
            // then sees every shortest_us store before it.
            if (fired.fetch_add(1, std::memory_order_release) + 1 < kTimers) arm_next();
        }));
    };
    group.post([&] { arm_next(); });
    REQUIRE(wait_until([&] { return fired.load(std::memory_order_acquire) == kTimers; }));
    CHECK(shortest_us.load(std::memory_order_relaxed) >= 300);  // never early
    CHECK(shortest_us.load(std::memory_order_relaxed) < 950);   // one of 40 under a millisecond
    for (auto& timer : timers) timer.cancel();
}
