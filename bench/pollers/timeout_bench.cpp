// What a connection's timeout costs per wait, with many connections' timers
// armed: a fiber's FiberFd::wait_readable(timeout) (the timer armed lazily,
// what fiber-backed connections use) against arming a timer per wait and
// cancelling it after, and against libevent re-arming an event's timeout
// (event_add() with a timeval: its min-heap).
//
//     timeout_bench [TIMERS = 100000] [WAITS = 1000000] [ROUNDS = 3]
//
// TIMERS timers of an hour are armed on the loop first (the other
// connections' timeouts). A fiber then waits WAITS times on a FiberFd (an
// eventfd that never becomes readable); each wait is ended by
// FiberFd::interrupt() from a stackless group the fiber posted to just
// before, so a wait costs a post, a park and a wake-up. Three shapes, in
// turn, medians over ROUNDS:
//   none:  wait_readable() with no timeout;
//   lazy:  wait_readable(30 s), as quiesce does it;
//   timer: Group::after(30 s) before each wait_readable() and cancel() after
//          it (what FiberFd did before: a heap insert and a removal per wait).
// The cost per wait of a timeout is lazy - none (timer - none). libevent:
// TIMERS events with an hour's timeout in one event_base, then event_add()
// with 30 s on each in turn, WAITS times (a sift in its heap each).
// Target (issue 16): <= 100 ns per re-arm at 100,000 connections.
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <event2/event.h>

#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "../harness.hpp"

namespace {

using namespace quiesce;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

enum class Shape { kNone, kLazy, kTimer };

/// ns per wait of `waits` waits in `shape`, with `timers` other timers armed.
double fiber_waits(Shape shape, long timers, long waits) {
    sched::Scheduler scheduler({.threads = 1});
    pollers::FdPoller poller(scheduler, {.placement = pollers::FdPlacement::kLoops});
    poller.start();
    sched::Group filler = scheduler.make_group({.name = "filler"});
    std::vector<sched::Timer> armed;
    armed.reserve(static_cast<std::size_t>(timers));
    for (long i = 0; i < timers; ++i) armed.push_back(filler.after(1h, [] {}));
    const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    sched::Group helper = scheduler.make_group({.name = "helper"});
    std::atomic<double> result{0};
    std::atomic<bool> done{false};
    sched::Group waiter = scheduler.spawn([&] {
        // `done` is set after `io` is gone: ~FiberFd unwatches `fd`, which
        // the main thread closes once it sees `done`.
        {
            pollers::FiberFd io(poller, fd);
            long interrupted = 0;
            const auto start = Clock::now();
            for (long i = 0; i < waits; ++i) {
                helper.post([&io] { io.interrupt(); });
                pollers::WaitResult got{};
                switch (shape) {
                    case Shape::kNone:
                        got = io.wait_readable();
                        break;
                    case Shape::kLazy:
                        got = io.wait_readable(30s);
                        break;
                    case Shape::kTimer: {
                        sched::Timer timer = sched::Group::current().after(30s, [] {});
                        got = io.wait_readable();
                        timer.cancel();
                        break;
                    }
                }
                interrupted += got == pollers::WaitResult::kInterrupted ? 1 : 0;
            }
            const double ns =
                static_cast<double>(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start)
                        .count()) /
                static_cast<double>(waits);
            if (interrupted != waits) std::fprintf(stderr, "a wait ended otherwise\n");
            result = ns;
        }
        done = true;
    });
    while (!done.load()) std::this_thread::sleep_for(1ms);
    for (auto& timer : armed) timer.cancel();
    close(fd);
    return result.load();
}

void nothing(evutil_socket_t, short, void*) {}

/// ns per event_add() re-arming one of `timers` events' timeouts.
double libevent_rearms(long timers, long waits) {
    event_base* base = event_base_new();
    std::vector<event*> events;
    events.reserve(static_cast<std::size_t>(timers));
    const timeval hour{3600, 0};
    for (long i = 0; i < timers; ++i) {
        events.push_back(evtimer_new(base, &nothing, nullptr));
        evtimer_add(events.back(), &hour);
    }
    const timeval thirty{30, 0};
    const auto start = Clock::now();
    for (long i = 0; i < waits; ++i) {
        evtimer_add(events[static_cast<std::size_t>(i % timers)], &thirty);
    }
    const double ns =
        static_cast<double>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count()) /
        static_cast<double>(waits);
    for (event* ev : events) event_free(ev);
    event_base_free(base);
    return ns;
}

}  // namespace

int main(int argc, char** argv) {
    const long timers = argc > 1 ? std::atol(argv[1]) : 100'000;
    const long waits = argc > 2 ? std::atol(argv[2]) : 1'000'000;
    const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
    std::printf("quiesce timeout benchmark on %s\n", bench::machine().c_str());
    std::printf("%ld other timers armed, %ld waits per run, medians of %d rounds\n\n", timers,
                waits, rounds);
    using bench::median;
    std::vector<double> none, lazy, timer, libevent;
    for (int round = 0; round < rounds; ++round) {
        none.push_back(fiber_waits(Shape::kNone, timers, waits));
        lazy.push_back(fiber_waits(Shape::kLazy, timers, waits));
        timer.push_back(fiber_waits(Shape::kTimer, timers, waits));
        libevent.push_back(libevent_rearms(timers, waits));
    }
    const double base = median(none);
    const double ours = median(lazy) - base;
    const double per_wait_timer = median(timer) - base;
    const double anchor = median(libevent);
    std::printf("a fiber's wait, no timeout:            %7.1f ns\n", base);
    std::printf("  with a timeout (lazy, quiesce):      %7.1f ns (+%.1f ns per wait)\n",
                median(lazy), ours);
    std::printf("  with a timer armed and cancelled:    %7.1f ns (+%.1f ns per wait)\n",
                median(timer), per_wait_timer);
    std::printf("libevent event_add() re-arming a timeout: %.1f ns\n", anchor);
    std::printf("ratio (re-arm cost, libevent / ours): %.1fx; timer per wait / ours: %.1fx\n",
                anchor / std::max(ours, 1.0), per_wait_timer / std::max(ours, 1.0));
    std::printf("   target (issue 16): <= 100 ns per re-arm at 100,000 connections\n");
    return 0;
}
