// A program written against the installed quiesce-scheduler only, built out
// of tree with `pkg-config --cflags --libs quiesce-scheduler`
// (tests/consumer/run.sh): loops, groups, fibers and need_resched().
#include <quiesce/rcu/rcu.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

using namespace quiesce;
using namespace std::chrono_literals;

namespace {

struct Table : rcu::Head {
    explicit Table(int v) : version(v) {}
    int version;
};
rcu::Ptr<Table> table{new Table(1)};

}  // namespace

int main() {
    std::atomic<int> events{0}, fibers_done{0}, resched_seen{0};
    {
        sched::Scheduler scheduler({.threads = 2, .slice = 1ms});
        sched::Group group = scheduler.make_group({.name = "consumer"});
        for (int i = 0; i < 1000; ++i) {
            group.post([&] {
                if (table.load()->version < 1) std::abort();  // a loop reads with no lock
                events.fetch_add(1);
            });
        }
        for (int f = 0; f < 8; ++f) {
            scheduler.spawn(
                [&] {
                    for (int i = 0; i < 3; ++i) {
                        sched::this_fiber::sleep_for(1ms);
                        sched::this_fiber::yield();
                    }
                    // Burn a little more than a slice, giving way when asked.
                    auto until = std::chrono::steady_clock::now() + 3ms;
                    while (std::chrono::steady_clock::now() < until) {
                        if (sched::this_fiber::yield_if_needed()) resched_seen.fetch_add(1);
                    }
                    sched::this_fiber::rcu_wait();
                    fibers_done.fetch_add(1);
                },
                {.name = "fiber"});
        }
        for (int v = 2; v < 50; ++v) {
            rcu::Domain::default_domain().retire(table.exchange(new Table(v)));
        }
        auto deadline = std::chrono::steady_clock::now() + 20s;
        while ((events.load() < 1000 || fibers_done.load() < 8) &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(1ms);
        }
        scheduler.stop();
    }
    delete table.exchange(nullptr);
    const bool off_loop = !sched::need_resched();  // false off a loop, documented
    if (events.load() != 1000 || fibers_done.load() != 8 || !off_loop) {
        std::printf("scheduler consumer failed: events %d fibers %d\n", events.load(),
                    fibers_done.load());
        return 1;
    }
    std::printf("scheduler ok (%d events, %d fibers, %d slices given way)\n", events.load(),
                fibers_done.load(), resched_seen.load());
    return 0;
}
