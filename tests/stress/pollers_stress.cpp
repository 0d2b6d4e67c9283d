// Pollers under load, bounded by QUIESCE_STRESS_SECONDS (half to each case):
// - descriptors: writer threads stream bytes into 64 socket pairs whose
//   reading ends are watched (edge-triggered) by groups on two loops, while a
//   third thread cancels and re-creates watches at random and a poller with
//   two threads delivers; every byte must be read exactly once;
// - fibers through the offload pool and the AIO poller (both backends), with
//   queues small enough that they wait for room all the time; every call must
//   come back with the right answer.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/pollers/aio_poller.hpp>
#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/pollers/offload.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "group_flush.hpp"
#include "stress.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::flush_group;
using quiesce::test::wait_until;

namespace {

struct Pipe {
    int fd[2] = {-1, -1};
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> received{0};
    std::mutex watch_mutex;
    pollers::FdWatch watch;  // watch_mutex
    sched::Group group;
};

std::uint64_t drain(int fd) {
    char buf[4096];
    std::uint64_t total = 0;
    for (;;) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return total;
        total += static_cast<std::uint64_t>(n);
    }
}

void watch(pollers::FdPoller& poller, Pipe& pipe) {
    Pipe* p = &pipe;
    pipe.watch = poller.watch(pipe.fd[0], pipe.group, pollers::kRead,
                              [p](pollers::Ready) { p->received += drain(p->fd[0]); },
                              {.edge_triggered = true});
}

}  // namespace

TEST_CASE("bytes streamed through watched sockets arrive exactly once under churn",
          "[pollers][stress]") {
    const auto duration = test::stress_duration() / 2;
    sched::Scheduler scheduler({.threads = 2, .balance_interval = 1ms});
    pollers::FdPoller poller({.threads = 2});
    poller.start();
    constexpr int kPipes = 64;
    std::array<Pipe, kPipes> pipes;
    for (Pipe& pipe : pipes) {
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pipe.fd) == 0);
        pipe.group = scheduler.make_group();
        std::lock_guard lock(pipe.watch_mutex);
        watch(poller, pipe);
    }
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> rewatches{0}, running_cancels{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < 2; ++w) {
        writers.emplace_back([&, w] {
            std::mt19937 rng(static_cast<unsigned>(w));
            char chunk[64] = {};
            while (!stop.load(std::memory_order_relaxed)) {
                Pipe& pipe = pipes[rng() % kPipes];
                const ssize_t n = write(pipe.fd[1], chunk, 1 + rng() % sizeof chunk);
                if (n > 0) pipe.sent += static_cast<std::uint64_t>(n);
            }
        });
    }
    std::thread churn([&] {
        std::mt19937 rng(99);
        while (!stop.load(std::memory_order_relaxed)) {
            Pipe& pipe = pipes[rng() % kPipes];
            std::lock_guard lock(pipe.watch_mutex);
            if (pipe.watch.cancel() == pollers::CancelResult::kRunning) ++running_cancels;
            pipe.watch = pollers::FdWatch();
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
            watch(poller, pipe);  // edge-triggered: reports what arrived meanwhile
            ++rewatches;
        }
    });
    std::this_thread::sleep_for(duration);
    stop = true;
    for (auto& writer : writers) writer.join();
    churn.join();
    std::uint64_t sent = 0;
    for (Pipe& pipe : pipes) sent += pipe.sent.load();
    const bool all = wait_until(
        [&] {
            for (Pipe& pipe : pipes) {
                if (pipe.received.load() != pipe.sent.load()) return false;
            }
            return true;
        },
        60s);
    int mismatched = 0;
    for (Pipe& pipe : pipes) mismatched += pipe.received.load() != pipe.sent.load();
    WARN("bytes " << sent << ", re-watches " << rewatches.load() << " (" << running_cancels.load()
                  << " while a handler ran), readiness " << poller.stats().readiness
                  << ", handler runs " << poller.stats().posts);
    CHECK(all);
    CHECK(mismatched == 0);
    // A handler run queued behind the one that drained the last bytes may
    // still be running after cancel() (kRunning). An event posted to each
    // group afterwards runs after it: once all have run, nothing reads the
    // sockets and they may close.
    for (Pipe& pipe : pipes) {
        std::lock_guard lock(pipe.watch_mutex);
        pipe.watch = pollers::FdWatch();
    }
    for (Pipe& pipe : pipes) REQUIRE(flush_group(pipe.group));
    for (Pipe& pipe : pipes) {
        close(pipe.fd[0]);
        close(pipe.fd[1]);
    }
    CHECK(poller.stats().watches == 0);
}

TEST_CASE("fibers through a small offload pool and the AIO poller all get their answers",
          "[pollers][stress]") {
    const auto duration = test::stress_duration() / 2;
    char name[] = "/tmp/quiesce-stress-XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    unlink(name);
    std::vector<unsigned char> data(1 << 18);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 13);
    REQUIRE(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));

    // The pollers outlive the scheduler: if a check below fails, the fibers
    // still calling them unwind (and wait for their calls) before they go.
    pollers::OffloadPool pool({.threads = 2, .queue_capacity = 2});
    pool.start();
    pollers::AioPoller uring({.queue_depth = 4});
    pollers::AioPoller threads({.queue_depth = 4, .use_io_uring = false, .fallback_threads = 2});
    uring.start();
    threads.start();
    sched::Scheduler scheduler({.threads = 2});
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> calls{0}, reads{0}, wrong{0};
    std::atomic<int> finished{0};
    constexpr int kFibers = 24;
    for (int f = 0; f < kFibers; ++f) {
        scheduler.spawn([&, f] {
            std::mt19937 rng(static_cast<unsigned>(f));
            pollers::AioPoller& aio = f % 2 == 0 ? uring : threads;
            unsigned char buf[1024];
            while (!stop.load(std::memory_order_relaxed)) {
                const int x = static_cast<int>(rng() % 1000);
                if (pool.call([x] { return x * 3; }) != x * 3) ++wrong;
                ++calls;
                const std::size_t offset = rng() % (data.size() - sizeof buf);
                pollers::AioResult r = aio.read_at(fd, buf, sizeof buf, static_cast<off_t>(offset));
                bool ok = !r.error && r.bytes == sizeof buf;
                for (std::size_t i = 0; ok && i < sizeof buf; ++i) ok = buf[i] == data[offset + i];
                if (!ok) ++wrong;
                ++reads;
            }
            ++finished;
        });
    }
    std::this_thread::sleep_for(duration);
    stop = true;
    const bool all = wait_until([&] { return finished.load() == kFibers; }, 60s);
    if (!all) {
        const auto offload = pool.stats();
        WARN("stuck: " << kFibers - finished.load() << " fibers; offload queued " << offload.queued
                       << ", running " << offload.running << "; AIO in flight "
                       << uring.stats().in_flight << " + " << threads.stats().in_flight);
    }
    REQUIRE(all);
    WARN("offload calls " << calls.load() << " (waited for room " << pool.stats().waited
                          << "), AIO reads " << reads.load()
                          << " (io_uring backend: " << pollers::to_string(uring.backend()) << ")");
    CHECK(wrong.load() == 0);
    CHECK(calls.load() > 0);
    close(fd);
}
