// Stress tests of the scheduler: (1) many groups, many posting threads and
// forced migrations, checking that every event runs exactly once, in its
// producer's order, never beside another event of its group; (2) sleep/wake
// storms, where every post must wake its loop (a lost wake-up hangs a round
// and fails it); (3) fibers reading an RCU-published object between yields
// and sleeps while writers replace and retire it (a read of a freed object
// fails the check, and ASan reports it).
//
// Duration: QUIESCE_STRESS_SECONDS per test case (default 5).
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <quiesce/rcu/rcu.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "stress.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kProducers = 4;

struct GroupCheck {
    std::atomic<int> running{0};
    std::array<std::int64_t, kProducers> last{};  // only touched by the group's events
    std::atomic<std::int64_t> errors{0};
};

}  // namespace

TEST_CASE("events run exactly once, in order, never two of a group at once, across migrations",
          "[scheduler][stress]") {
    sched::SchedulerOptions options;
    options.threads = 4;  // more loops than CPUs: loops preempt each other, groups move
    options.pin_threads = false;
    options.balance_interval = 1ms;
    options.slice = 200us;
    constexpr int kGroups = 64;
    std::vector<std::unique_ptr<GroupCheck>> checks;  // outlives the scheduler
    sched::Scheduler scheduler(options);
    std::vector<sched::Group> groups;
    for (int i = 0; i < kGroups; ++i) {
        groups.push_back(scheduler.make_group({.loop = 0}));  // all start on loop 0
        checks.push_back(std::make_unique<GroupCheck>());
        for (auto& last : checks.back()->last) last = -1;
    }
    std::atomic<std::int64_t> ran{0};
    std::atomic<std::int64_t> posted{0};
    auto deadline = Clock::now() + quiesce::test::stress_duration();
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            std::mt19937 rng(static_cast<unsigned>(p) * 7919u);
            std::vector<std::int64_t> seq(kGroups, 0);
            while (Clock::now() < deadline) {
                for (int burst = 0; burst < 256; ++burst) {
                    int g = static_cast<int>(rng() % kGroups);
                    std::int64_t n = seq[static_cast<std::size_t>(g)]++;
                    bool heavy = rng() % 64 == 0;
                    GroupCheck* check = checks[static_cast<std::size_t>(g)].get();
                    groups[static_cast<std::size_t>(g)].post([check, p, n, heavy, &ran] {
                        if (check->running.fetch_add(1, std::memory_order_acquire) != 0)
                            check->errors++;
                        if (check->last[static_cast<std::size_t>(p)] != n - 1) check->errors++;
                        check->last[static_cast<std::size_t>(p)] = n;
                        if (heavy) {  // uneven load, so that balancing moves groups
                            auto until = Clock::now() + 50us;
                            while (Clock::now() < until) {
                            }
                        }
                        check->running.fetch_sub(1, std::memory_order_release);
                        ran.fetch_add(1, std::memory_order_release);  // publishes `check`
                    });
                    posted.fetch_add(1, std::memory_order_relaxed);
                }
                // Bound the backlog: posting outpaces running under sanitizers.
                while (posted.load() - ran.load() > 200'000 && Clock::now() < deadline) {
                    std::this_thread::yield();
                }
            }
        });
    }
    for (auto& producer : producers) producer.join();
    REQUIRE(quiesce::test::wait_until([&] { return ran.load() == posted.load(); }, 120s));
    std::int64_t errors = 0;
    std::uint64_t migrations = 0;
    for (int i = 0; i < kGroups; ++i) {
        errors += checks[static_cast<std::size_t>(i)]->errors.load();
        migrations += groups[static_cast<std::size_t>(i)].stats().migrations;
    }
    sched::SchedulerStats stats = scheduler.stats();
    std::uint64_t given = 0;
    for (const auto& loop : stats.loops) given += loop.given;
    WARN("events " << ran.load() << ", migrations " << migrations << ", handed over " << given);
    CHECK(errors == 0);
    CHECK(migrations > 0);
}

TEST_CASE("sleep/wake storms lose no wake-up", "[scheduler][stress]") {
    sched::Scheduler scheduler({.threads = 2});
    constexpr int kPingers = 3;
    std::atomic<std::int64_t> rounds{0};
    std::atomic<int> failures{0};
    auto deadline = Clock::now() + quiesce::test::stress_duration();
    std::vector<std::thread> pingers;
    for (int t = 0; t < kPingers; ++t) {
        pingers.emplace_back([&, t] {
            sched::Group group = scheduler.make_group({.loop = t});
            std::atomic<std::int64_t> seen{0};
            std::int64_t sent = 0;
            std::mt19937 rng(static_cast<unsigned>(t) + 1);
            while (Clock::now() < deadline) {
                ++sent;
                group.post([&seen] { seen.fetch_add(1, std::memory_order_release); });
                // A lost wake-up leaves the event unrun: the round fails.
                if (!quiesce::test::wait_until([&] { return seen.load() == sent; }, 10s)) {
                    failures++;
                    return;
                }
                if (rng() % 4 == 0)
                    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
                rounds.fetch_add(1, std::memory_order_relaxed);
            }
        });
    }
    for (auto& pinger : pingers) pinger.join();
    std::uint64_t wakeups = 0;
    for (const auto& loop : scheduler.stats().loops) wakeups += loop.wakeups;
    WARN("rounds " << rounds.load() << ", futex wake-ups " << wakeups);
    CHECK(failures.load() == 0);
    CHECK(wakeups > 0);
}

namespace {

constexpr std::uint64_t kAlive = 0xa11fe;
constexpr std::uint64_t kFreed = 0xdead;

struct Object : rcu::Head {
    std::atomic<std::uint64_t> magic{kAlive};
    std::uint64_t version = 0;
    ~Object() { magic.store(kFreed, std::memory_order_relaxed); }
};

}  // namespace

TEST_CASE("fibers yield and sleep between RCU reads while writers retire what they read",
          "[scheduler][stress]") {
    sched::Scheduler scheduler({.threads = 2, .slice = 300us});
    rcu::Domain& domain = rcu::Domain::default_domain();
    rcu::Ptr<Object> shared(new Object);
    std::atomic<bool> stop{false};
    std::atomic<std::int64_t> reads{0};
    std::atomic<std::int64_t> bad{0};
    std::atomic<std::uint64_t> seen_versions{0};
    std::atomic<int> finished{0};
    constexpr int kFibers = 200;
    for (int f = 0; f < kFibers; ++f) {
        scheduler.spawn([&, f] {
            int step = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                {
                    sched::ReadSection section;
                    const Object* object = shared.load();
                    if (object->magic.load(std::memory_order_relaxed) != kAlive) bad++;
                    seen_versions.fetch_add(object->version,
                                            std::memory_order_relaxed);  // a payload read
                }
                reads.fetch_add(1, std::memory_order_relaxed);
                switch (++step % 8) {
                    case 0:
                        sched::this_fiber::sleep_for(std::chrono::microseconds(f % 50));
                        break;
                    case 4:
                        sched::this_fiber::rcu_wait();
                        break;
                    default:
                        sched::this_fiber::yield();
                        break;
                }
            }
            finished++;
        });
    }
    // Writers: a plain thread (synchronize-free retire), and an event group
    // on the loops that retires with call() (loop-owned callbacks).
    std::atomic<std::uint64_t> version{1};
    std::thread writer([&] {
        while (!stop.load()) {
            auto* next = new Object;
            next->version = version.fetch_add(1);
            domain.retire(shared.exchange(next));
            std::this_thread::sleep_for(20us);
        }
    });
    sched::Group loop_writer = scheduler.make_group({.name = "loop writer"});
    std::function<void()> write_on_loop = [&] {
        if (stop.load()) return;
        auto* next = new Object;
        next->version = version.fetch_add(1);
        domain.retire(shared.exchange(next));
        loop_writer.after(50us, write_on_loop);
    };
    loop_writer.post(write_on_loop);
    std::this_thread::sleep_for(quiesce::test::stress_duration());
    stop = true;
    writer.join();
    REQUIRE(quiesce::test::wait_until([&] { return finished.load() == kFibers; }, 60s));
    scheduler.stop();
    delete shared.exchange(nullptr);
    WARN("fiber reads " << reads.load() << ", versions " << version.load());
    CHECK(bad.load() == 0);
    CHECK(reads.load() > kFibers);
}
