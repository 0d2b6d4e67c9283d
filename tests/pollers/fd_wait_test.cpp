// Fiber waits on descriptors: wait_readable()/wait_writable() with a one-shot
// watch per wait, FiberFd for straight-line loops, timeouts, cancellation from
// another thread, and a fiber whose group closes while it waits.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "fd_support.hpp"
#include "group_flush.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using pollers::WaitResult;
using quiesce::test::flush_group;
using quiesce::test::wait_until;

using quiesce::test::drain;
using quiesce::test::placement_under_test;
using quiesce::test::SocketPair;

TEST_CASE("a fiber waits for a descriptor with a timeout", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair;
    std::atomic<int> first{-1}, second{-1}, writable{-1};
    std::atomic<long> waited_ms{0};
    std::atomic<bool> waiting_second{false};
    scheduler.spawn([&] {
        const auto t0 = std::chrono::steady_clock::now();
        first = static_cast<int>(pollers::wait_readable(poller, pair.fd[0], 30ms));
        waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
        waiting_second = true;
        second = static_cast<int>(pollers::wait_readable(poller, pair.fd[0], 10s));
        writable = static_cast<int>(pollers::wait_writable(poller, pair.fd[0]));
    });
    REQUIRE(wait_until([&] { return waiting_second.load(); }));
    CHECK(first.load() == static_cast<int>(WaitResult::kTimedOut));
    CHECK(waited_ms.load() >= 30);  // never early
    std::this_thread::sleep_for(10ms);
    CHECK(second.load() == -1);  // still waiting
    REQUIRE(write(pair.fd[1], "x", 1) == 1);
    REQUIRE(wait_until([&] { return writable.load() >= 0; }));
    CHECK(second.load() == static_cast<int>(WaitResult::kReady));
    CHECK(writable.load() == static_cast<int>(WaitResult::kReady));
    CHECK(poller.stats().watches == 0);  // each wait unregistered itself
}

TEST_CASE("one-shot waits never end before their timeout", "[pollers][unit]") {
    // libevent times them on CLOCK_MONOTONIC_COARSE (a tick of a few ms):
    // when its base wakes for other descriptors meanwhile, as a server's
    // does all the time, a short timeout ends early more often than not.
    // wait_ready() waits on for what is left.
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair, noise;
    sched::Group other = scheduler.make_group({.name = "noise"});
    pollers::FdWatch noise_watch = poller.watch(noise.fd[0], other, pollers::kRead,
                                                [&](pollers::Ready) { drain(noise.fd[0]); },
                                                {.persistent = true, .edge_triggered = true});
    std::atomic<bool> stop{false};
    std::thread poker([&] {  // wakes the base every 100 µs
        // relaxed: a stop flag; join() orders the rest.
        while (!stop.load(std::memory_order_relaxed)) {
            (void)!write(noise.fd[1], "n", 1);
            std::this_thread::sleep_for(100us);
        }
    });
    constexpr int kWaits = 12;
    std::atomic<int> done{0}, timed_out{0};
    std::atomic<std::int64_t> earliest_us{INT64_MAX};  // end minus timeout
    scheduler.spawn([&] {
        for (int i = 0; i < kWaits; ++i) {
            const auto timeout = 3ms + i * 500us;
            const auto t0 = std::chrono::steady_clock::now();
            const WaitResult r = pollers::wait_readable(poller, pair.fd[0], timeout);
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::steady_clock::now() - t0 - timeout)
                                .count();
            // relaxed: only this fiber writes them; read after the release below.
            if (r == WaitResult::kTimedOut) timed_out.fetch_add(1, std::memory_order_relaxed);
            if (us < earliest_us.load(std::memory_order_relaxed))
                earliest_us.store(us, std::memory_order_relaxed);
            // release: pairs with the acquire load in the wait below.
            done.fetch_add(1, std::memory_order_release);
        }
    });
    const bool all_done =
        wait_until([&] { return done.load(std::memory_order_acquire) == kWaits; });
    stop.store(true, std::memory_order_relaxed);  // relaxed: see the poker
    poker.join();
    REQUIRE(all_done);
    CHECK(timed_out.load(std::memory_order_relaxed) == kWaits);
    CHECK(earliest_us.load(std::memory_order_relaxed) >= 0);  // none ended before its timeout
    // cancel() may find the noise handler running (kRunning): it finishes on
    // its own. An event posted to its group after cancel() runs after it, so
    // once that has run nothing reads `noise` any more and it may close.
    noise_watch.cancel();
    REQUIRE(flush_group(other));
}

TEST_CASE("a fiber reads a stream in straight-line code with FiberFd", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair;
    constexpr int kBytes = 100'000;
    std::atomic<int> got{0};
    std::atomic<int> timeouts{0};
    std::atomic<bool> finished{false};
    scheduler.spawn([&] {
        {
            pollers::FiberFd io(poller, pair.fd[0]);
            char buf[1024];
            while (got.load() < kBytes) {
                ssize_t n = read(pair.fd[0], buf, sizeof buf);
                if (n > 0) {
                    got += static_cast<int>(n);
                    continue;
                }
                // EAGAIN: drained; wait for the next edge.
                if (io.wait_readable(1s) == WaitResult::kTimedOut) timeouts.fetch_add(1);
            }
        }  // unwatched before the test may close the socket
        finished = true;
    });
    std::thread writer([&] {
        const char chunk[1000] = {};
        int sent = 0;
        while (sent < kBytes) {
            ssize_t n = write(pair.fd[1], chunk, sizeof chunk);
            if (n > 0) {
                sent += static_cast<int>(n);
            } else {
                std::this_thread::sleep_for(100us);  // the socket buffer is full
            }
        }
    });
    writer.join();
    REQUIRE(wait_until([&] { return finished.load(); }));
    CHECK(got.load() == kBytes);
    CHECK(timeouts.load() == 0);
}

TEST_CASE("FiberFd waits time out and are cancelled from another thread", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair;
    std::atomic<pollers::FiberFd*> shared{nullptr};
    std::atomic<int> timed{-1}, cancelled{-1}, writable{-1};
    scheduler.spawn([&] {
        pollers::FiberFd io(poller, pair.fd[0]);
        writable = static_cast<int>(io.wait_writable(1s));  // a fresh socket is writable
        timed = static_cast<int>(io.wait_readable(20ms));
        shared = &io;
        cancelled = static_cast<int>(io.wait_readable());  // no timeout
        shared = nullptr;
    });
    REQUIRE(wait_until([&] { return shared.load() != nullptr; }));
    std::this_thread::sleep_for(10ms);
    shared.load()->cancel();
    REQUIRE(wait_until([&] { return cancelled.load() >= 0; }));
    CHECK(writable.load() == static_cast<int>(WaitResult::kReady));
    CHECK(timed.load() == static_cast<int>(WaitResult::kTimedOut));
    CHECK(cancelled.load() == static_cast<int>(WaitResult::kCancelled));
    REQUIRE(wait_until([&] { return poller.stats().watches == 0; }));
}

TEST_CASE("FiberFd timeouts armed lazily still end each wait at its own deadline",
          "[pollers][unit]") {
    // One timer serves the waits one after another (FiberFd::State): a wait
    // must not end at an earlier wait's deadline, and a shorter timeout than
    // the armed one must still be kept.
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair;
    using Clock = std::chrono::steady_clock;
    std::atomic<pollers::FiberFd*> shared{nullptr};
    std::atomic<int> first{-1}, second{-1}, third{-1}, fourth{-1};
    std::atomic<std::int64_t> second_ms{-1}, fourth_ms{-1};
    auto run_waits = [&](int fd) {
        pollers::FiberFd io(poller, fd);
        shared = &io;
        first = static_cast<int>(io.wait_readable(500ms));  // interrupted after ~100 ms
        shared = nullptr;
        auto start = Clock::now();
        second = static_cast<int>(io.wait_readable(500ms));  // the timer is still for the first
        second_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
        io.interrupt();
        third = static_cast<int>(io.wait_readable(10s));  // arms for 10 s, returns at once
        start = Clock::now();
        fourth = static_cast<int>(io.wait_readable(50ms));  // must not wait for those 10 s
        fourth_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    };
    std::atomic<bool> finished{false};
    scheduler.spawn([&] {
        run_waits(pair.fd[0]);
        finished = true;  // the FiberFd is gone: its watch is off the descriptor
    });
    REQUIRE(wait_until([&] { return shared.load() != nullptr; }));
    std::this_thread::sleep_for(100ms);  // the interval between the two deadlines
    if (pollers::FiberFd* io = shared.load()) io->interrupt();
    REQUIRE(wait_until([&] { return finished.load(); }, 20s));  // before `pair` closes
    CHECK(first.load() == static_cast<int>(WaitResult::kInterrupted));
    CHECK(second.load() == static_cast<int>(WaitResult::kTimedOut));
    CHECK(second_ms.load() >= 500);
    CHECK(third.load() == static_cast<int>(WaitResult::kInterrupted));
    CHECK(fourth.load() == static_cast<int>(WaitResult::kTimedOut));
    CHECK(fourth_ms.load() >= 50);
    CHECK(fourth_ms.load() < 5000);
}

TEST_CASE("FiberFd::interrupt() ends one wait, before or during it; the watch stays",
          "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair;
    std::atomic<pollers::FiberFd*> shared{nullptr};
    std::atomic<int> during{-1}, before{-1}, after{-1};
    std::atomic<bool> go{false}, finished{false};
    scheduler.spawn([&] {
        {
            pollers::FiberFd io(poller, pair.fd[0]);
            shared = &io;
            during = static_cast<int>(io.wait_readable());  // interrupted while it waits
            while (!go.load()) sched::this_fiber::yield();
            before = static_cast<int>(io.wait_readable(1s));  // the interrupt came first
            after = static_cast<int>(io.wait_readable(5s));   // the watch still works
        }
        finished = true;
    });
    REQUIRE(wait_until([&] { return shared.load() != nullptr; }));
    std::this_thread::sleep_for(10ms);
    shared.load()->interrupt();
    REQUIRE(wait_until([&] { return during.load() >= 0; }));
    shared.load()->interrupt();
    go = true;
    REQUIRE(wait_until([&] { return before.load() >= 0; }));
    pair.send();
    REQUIRE(wait_until([&] { return after.load() >= 0; }));
    CHECK(during.load() == static_cast<int>(WaitResult::kInterrupted));
    CHECK(before.load() == static_cast<int>(WaitResult::kInterrupted));
    CHECK(after.load() == static_cast<int>(WaitResult::kReady));
    REQUIRE(wait_until([&] { return finished.load(); }));  // its watch is gone before the poller
}

TEST_CASE("a fiber whose group closes while it waits unwinds and unwatches", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    const pollers::FdPlacement placement = placement_under_test();
    pollers::FdPoller poller(scheduler, {.threads = 1, .placement = placement});
    poller.start();
    SocketPair pair;
    std::atomic<bool> waiting{false}, unwound{false};
    sched::Group group = scheduler.spawn([&] {
        struct Flag {
            std::atomic<bool>& flag;
            ~Flag() { flag = true; }
        } on_unwind{unwound};
        pollers::FiberFd io(poller, pair.fd[0]);
        waiting = true;
        (void)io.wait_readable();
    });
    REQUIRE(wait_until([&] { return waiting.load() && poller.stats().watches == 1; }));
    group.close();
    REQUIRE(wait_until([&] { return unwound.load(); }));
    REQUIRE(wait_until([&] { return poller.stats().watches == 0; }));
    REQUIRE(write(pair.fd[1], "x", 1) == 1);  // nothing left to fire
    std::this_thread::sleep_for(10ms);
}

TEST_CASE("fiber waits outside a fiber are refused", "[pollers][unit]") {
    pollers::FdPoller poller;
    poller.start();
    SocketPair pair;
    CHECK_THROWS_AS(pollers::wait_readable(poller, pair.fd[0], 1ms), std::logic_error);
    CHECK_THROWS_AS(pollers::FiberFd(poller, pair.fd[0]), std::logic_error);
}
