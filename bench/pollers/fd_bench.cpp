// FD readiness to handler: quiesce (FdPoller thread -> group on a loop)
// against a plain libevent event_base on its own thread doing the same work.
//
// A driver thread (CPU 1) writes one byte into each of the active sockets,
// stamping the time, and waits until every handler has read its byte; the
// handler records how long after the write it started. The loop, and the
// libevent thread, run on CPU 0. `gap_us` > 0 pauses between rounds so that
// every round starts from an idle runtime (the idle-to-busy latency).
//
// Threading: the driver and the handlers share per-socket stamps (atomics).
#include <event2/event.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "pollers_bench.hpp"

namespace quiesce::bench {
namespace {

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

struct Sockets {
    std::vector<std::array<int, 2>> pairs;
    explicit Sockets(int count) : pairs(static_cast<std::size_t>(count)) {
        for (auto& pair : pairs) {
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair.data()) !=
                0)
                throw std::runtime_error("socketpair");
        }
    }
    ~Sockets() {
        for (auto& pair : pairs) {
            close(pair[0]);
            close(pair[1]);
        }
    }
};

// What every handler does: read the byte, record the latency, count.
struct Shared {
    explicit Shared(int n) : stamps(static_cast<std::size_t>(n)) {}
    std::vector<std::atomic<std::int64_t>> stamps;
    std::atomic<std::uint64_t> handled{0};
    std::vector<double> latencies;  // written by the handlers' single thread
    void handle(int index, int fd) {
        const std::int64_t start = now_ns();
        char buf[64];
        while (read(fd, buf, sizeof buf) > 0) {
        }
        latencies.push_back(
            static_cast<double>(
                start - stamps[static_cast<std::size_t>(index)].load(std::memory_order_acquire)) /
            1000.0);
        handled.fetch_add(1, std::memory_order_release);
    }
};

// The driver: rounds of one byte per socket until `run` is over, on a
// thread of its own pinned to CPU 1 (the caller stays unpinned: a scheduler
// made later by this thread takes its CPUs from the caller's mask).
FdResult drive(Sockets& sockets, Shared& shared, std::chrono::milliseconds run, int gap_us);

FdResult drive_on_cpu1(Sockets& sockets, Shared& shared, std::chrono::milliseconds run,
                       int gap_us) {
    FdResult out;
    std::thread driver([&] {
        pin_this_thread(1);
        out = drive(sockets, shared, run, gap_us);
    });
    driver.join();
    return out;
}

FdResult drive(Sockets& sockets, Shared& shared, std::chrono::milliseconds run, int gap_us) {
    const auto n = static_cast<std::uint64_t>(sockets.pairs.size());
    std::uint64_t expected = 0;
    const auto t0 = Clock::now();
    const auto end = t0 + run;
    std::uint64_t rounds = 0;
    Clock::duration paused{0};
    while (Clock::now() < end) {
        for (std::size_t i = 0; i < sockets.pairs.size(); ++i) {
            shared.stamps[i].store(now_ns(), std::memory_order_release);
            if (write(sockets.pairs[i][1], "x", 1) != 1) throw std::runtime_error("write");
        }
        expected += n;
        // Yielding, not spinning: a poller thread that lands on this CPU
        // must get it (the machine has two).
        while (shared.handled.load(std::memory_order_acquire) < expected) sched_yield();
        ++rounds;
        if (gap_us > 0) {
            const auto p0 = Clock::now();
            std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
            paused += Clock::now() - p0;
        }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0 - paused).count();
    FdResult out;
    out.events_per_sec = static_cast<double>(expected) / secs;
    out.latency = summarize(shared.latencies);
    return out;
}

}  // namespace

FdResult ours_fd(int sockets_count, std::chrono::milliseconds run, int gap_us, bool in_loops) {
    Sockets sockets(sockets_count);
    Shared shared(sockets_count);
    shared.latencies.reserve(4'000'000);
    // BENCH_SLICE_US=0: no perf tick source (the event makes waking a
    // sleeping loop slower).
    const auto slice = slice_from_env();
    // BENCH_SLICE_MODE=wall: the wall-clock tick source instead of perf.
    const char* mode_env = std::getenv("BENCH_SLICE_MODE");
    const auto mode = mode_env != nullptr && std::string(mode_env) == "wall"
                          ? sched::SliceMode::kWallConfirm
                          : sched::SliceMode::kAuto;
    // BENCH_IDLE_SPIN_US: SchedulerOptions::idle_spin.
    const char* spin_env = std::getenv("BENCH_IDLE_SPIN_US");
    const auto spin = std::chrono::microseconds(spin_env != nullptr ? std::atoi(spin_env) : 20);
    sched::Scheduler scheduler({.threads = 1,
                                .slice = slice,
                                .slice_mode = mode,
                                .name = "bench",
                                .idle_spin = spin});  // loop 0 on CPU 0
    pollers::FdPoller poller(scheduler, {.threads = 1,
                                         .placement = in_loops ? pollers::FdPlacement::kLoops
                                                               : pollers::FdPlacement::kThreads});
    poller.start();
    std::vector<sched::Group> groups;
    std::vector<pollers::FdWatch> watches;
    for (int i = 0; i < sockets_count; ++i) {
        groups.push_back(scheduler.make_group());
        const int fd = sockets.pairs[static_cast<std::size_t>(i)][0];
        watches.push_back(poller.watch(fd, groups.back(), pollers::kRead,
                                       [&shared, i, fd](pollers::Ready) { shared.handle(i, fd); },
                                       {.edge_triggered = true}));
    }
    FdResult out = drive_on_cpu1(sockets, shared, run, gap_us);
    watches.clear();
    poller.stop();
    return out;
}

FdResult libevent_fd(int sockets_count, std::chrono::milliseconds run, int gap_us) {
    Sockets sockets(sockets_count);
    Shared shared(sockets_count);
    shared.latencies.reserve(4'000'000);
    // A plain single-threaded base: no locks, even though FdPoller turned on
    // libevent's thread support for the bases it makes.
    event_config* config = event_config_new();
    event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK);
    event_base* base = event_base_new_with_config(config);
    event_config_free(config);
    struct Ctx {
        Shared* shared;
        int index;
        int fd;
    };
    std::vector<Ctx> ctxs;
    ctxs.reserve(static_cast<std::size_t>(sockets_count));
    std::vector<event*> events;
    for (int i = 0; i < sockets_count; ++i) {
        ctxs.push_back({&shared, i, sockets.pairs[static_cast<std::size_t>(i)][0]});
        event* ev = event_new(
            base, ctxs.back().fd, EV_READ | EV_PERSIST | EV_ET,
            [](evutil_socket_t, short, void* arg) {
                auto* c = static_cast<Ctx*>(arg);
                c->shared->handle(c->index, c->fd);
            },
            &ctxs.back());
        event_add(ev, nullptr);
        events.push_back(ev);
    }
    std::atomic<bool> stop{false};
    std::thread loop([&] {
        pin_this_thread(0);
        while (!stop.load(std::memory_order_relaxed)) event_base_loop(base, EVLOOP_ONCE);
    });
    FdResult out = drive_on_cpu1(sockets, shared, run, gap_us);
    stop = true;
    // A wake-up for the loop, which blocks in epoll_wait (no cross-thread
    // loopbreak without locks).
    if (write(sockets.pairs[0][1], "x", 1) != 1) throw std::runtime_error("write");
    loop.join();
    for (event* ev : events) event_free(ev);
    event_base_free(base);
    return out;
}

}  // namespace quiesce::bench
