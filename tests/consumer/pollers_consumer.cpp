// A program written against the installed quiesce-pollers only, built out of
// tree with `pkg-config --cflags --libs quiesce-pollers`
// (tests/consumer/run.sh): a watched socket and an offloaded call.
#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/pollers/offload.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

using namespace quiesce;

int main() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) return 1;
    std::atomic<int> bytes{0}, offloaded{0};
    {
        sched::Scheduler scheduler({.threads = 2});
        pollers::FdPoller fdp(scheduler, {.placement = pollers::FdPlacement::kLoops});
        fdp.start();
        pollers::OffloadPool pool({.threads = 2});
        pool.start();
        sched::Group group = scheduler.make_group({.name = "reader"});
        pollers::FdWatch watch = fdp.watch(
            fds[0], group, pollers::kRead,
            [&](pollers::Ready) {
                char buf[64];
                for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) bytes += static_cast<int>(n);
            },
            {.edge_triggered = true});
        scheduler.spawn([&] { offloaded = pool.call([] { return 42; }); });
        for (int i = 0; i < 10; ++i) {
            if (write(fds[1], "abc", 3) != 3) return 1;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while ((bytes.load() < 30 || offloaded.load() != 42) &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        watch.cancel();
        pool.stop();
        scheduler.stop();
    }
    close(fds[0]);
    close(fds[1]);
    if (bytes.load() != 30 || offloaded.load() != 42) {
        std::printf("pollers consumer failed: %d bytes, offload %d\n", bytes.load(), offloaded.load());
        return 1;
    }
    std::printf("pollers ok (%d bytes read in the loops, offload returned %d)\n", bytes.load(),
                offloaded.load());
    return 0;
}
