// FiberWaitQueue (the waiters of AIO admission and of the offload queue):
// each notification wakes one waiter, in order; a fiber whose park() returns
// for an unrelated wake-up stays queued once and takes no one's turn; a
// notified fiber whose group closes before it runs hands the turn on.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>

#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "fiber_wait_queue.hpp"
#include "gate.hpp"
#include "wait.hpp"

using namespace quiesce;
using quiesce::test::wait_until;

namespace {

// A count of free slots, as AIO admission keeps one.
struct Slots {
    std::mutex mutex;
    pollers::detail::FiberWaitQueue waiters;  // mutex
    int free = 0;                             // mutex
    int waiting = 0;                          // mutex: fibers that called take()

    void take() {
        std::unique_lock lock(mutex);
        ++waiting;
        while (free == 0) waiters.wait(lock);
        --waiting;
        --free;
    }
    void give() {
        std::lock_guard lock(mutex);
        ++free;
        (void)waiters.notify_one();
    }
    int now_waiting() {
        std::lock_guard lock(mutex);
        return waiting;
    }
};

}  // namespace

TEST_CASE("a waiter with a stale permit stays queued once and takes no other waiter's turn",
          "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    Slots slots;
    std::atomic<int> first{0}, second{0};
    scheduler.spawn([&] {
        // A permit left over, as from an answer seen before parking for it.
        (void)sched::this_fiber::waker().wake();
        slots.take();
        first.fetch_add(1);
    });
    REQUIRE(wait_until([&] { return slots.now_waiting() == 1; }));
    scheduler.spawn([&] {
        slots.take();
        second.fetch_add(1);
    });
    REQUIRE(wait_until([&] { return slots.now_waiting() == 2; }));
    slots.give();  // the first in line
    REQUIRE(wait_until([&] { return first.load() == 1; }));
    slots.give();  // had the first queued twice, this turn went to its stale entry
    CHECK(wait_until([&] { return second.load() == 1; }));
    CHECK(slots.now_waiting() == 0);
}

TEST_CASE("a notified waiter whose group closes before it runs hands its turn to the next",
          "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    Slots slots;
    std::atomic<bool> unwound{false};
    std::atomic<int> second{0};
    sched::Group doomed = scheduler.spawn([&] {
        struct Mark {
            std::atomic<bool>& flag;
            ~Mark() { flag = true; }
        } mark{unwound};
        slots.take();
    });
    REQUIRE(wait_until([&] { return slots.now_waiting() == 1; }));
    scheduler.spawn([&] {
        slots.take();
        second.fetch_add(1);
    });
    REQUIRE(wait_until([&] { return slots.now_waiting() == 2; }));
    // Hold the only loop, notify the first waiter, then close its group
    // before it can run: it resumes only to unwind.
    test::Gate gate;
    sched::Group holder = scheduler.make_group();
    REQUIRE(holder.post([&] { gate.block(); }));
    REQUIRE(gate.wait_entered());
    slots.give();
    REQUIRE(doomed.close());
    gate.open();
    REQUIRE(wait_until([&] { return unwound.load(); }));
    CHECK(wait_until([&] { return second.load() == 1; }));
}

TEST_CASE("notify_all wakes every waiter once", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    Slots slots;
    constexpr int kFibers = 8;
    std::atomic<int> done{0};
    for (int i = 0; i < kFibers; ++i) {
        scheduler.spawn([&] {
            slots.take();
            done.fetch_add(1);
        });
    }
    REQUIRE(wait_until([&] { return slots.now_waiting() == kFibers; }));
    {
        std::lock_guard lock(slots.mutex);
        slots.free = kFibers;
        slots.waiters.notify_all();
        CHECK(slots.waiters.empty());
    }
    REQUIRE(wait_until([&] { return done.load() == kFibers; }));
    std::lock_guard lock(slots.mutex);
    CHECK(slots.free == 0);
}
