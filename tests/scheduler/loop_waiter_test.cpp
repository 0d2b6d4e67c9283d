// LoopWaiter: a loop given a waiter sleeps in it instead of on its futex, is
// woken through it, polls it while busy, still fires its timers, and runs
// what the waiter delivers from inside wait().
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include <quiesce/scheduler/loop_waiter.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::wait_until;

namespace {

// Sleeps in poll(2) on an eventfd; counts what the loop asks of it.
class EventfdWaiter final : public sched::LoopWaiter {
public:
    EventfdWaiter() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) { REQUIRE(fd_ >= 0); }
    ~EventfdWaiter() override { close(fd_); }

    void wait(std::chrono::nanoseconds timeout) noexcept override {
        waits.fetch_add(1);
        pollfd p{fd_, POLLIN, 0};
        const int ms =
            timeout.count() < 0 ? -1 : static_cast<int>((timeout.count() + 999'999) / 1'000'000);
        (void)::poll(&p, 1, ms);
        std::uint64_t drained = 0;
        (void)!read(fd_, &drained, sizeof drained);
        if (deliver) deliver();
    }
    void wake() noexcept override {
        wakes.fetch_add(1);
        const std::uint64_t one = 1;
        (void)!write(fd_, &one, sizeof one);
    }
    void poll() noexcept override { polls.fetch_add(1); }

    std::atomic<int> waits{0}, wakes{0}, polls{0};
    std::function<void()> deliver;  // set before the waiter is handed over

private:
    int fd_;
};

}  // namespace

TEST_CASE("a loop with a waiter sleeps in it and is woken through it", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    auto waiter = std::make_shared<EventfdWaiter>();
    scheduler.set_loop_waiter(0, waiter);
    REQUIRE(wait_until([&] { return waiter->waits.load() >= 1; }));  // idle: sleeping in it
    sched::Group group = scheduler.make_group();
    std::atomic<int> ran{0};
    for (int i = 1; i <= 20; ++i) {
        const int wakes_before = waiter->wakes.load();
        group.post([&] { ran.fetch_add(1); });
        REQUIRE(wait_until([&] { return ran.load() == i; }));
        CHECK(waiter->wakes.load() >= wakes_before);
        std::this_thread::sleep_for(1ms);  // asleep again
    }
    CHECK(waiter->wakes.load() >= 10);
    CHECK_THROWS_AS(scheduler.set_loop_waiter(0, std::make_shared<EventfdWaiter>()),
                    std::logic_error);
    CHECK_THROWS_AS(scheduler.set_loop_waiter(5, std::make_shared<EventfdWaiter>()),
                    std::logic_error);
}

TEST_CASE("a busy loop polls its waiter; timers fire while it sleeps in it", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1, .poll_interval = 100us});
    auto waiter = std::make_shared<EventfdWaiter>();
    scheduler.set_loop_waiter(0, waiter);
    sched::Group group = scheduler.make_group();
    std::atomic<bool> done{false};
    const auto start = std::chrono::steady_clock::now();
    group.post([&] {
        // Busy for 20 ms, and on while it has not been polled 20 times (a
        // loop that shares its CPU may get less than 2 ms of it in 20 ms),
        // up to 5 s.
        const auto now = std::chrono::steady_clock::now();
        // relaxed: polls is a count the loop bumps on this same thread.
        if (now < start + 5s &&
            (now < start + 20ms || waiter->polls.load(std::memory_order_relaxed) < 20))
            return sched::Status::kAgain;  // busy
        done = true;
        return sched::Status::kDone;
    });
    REQUIRE(wait_until([&] { return done.load(); }));
    CHECK(waiter->polls.load() >= 20);  // ~20 ms of turns, a poll per 100 us of them
    std::atomic<bool> fired{false};
    const auto t0 = std::chrono::steady_clock::now();
    sched::Timer timer = group.after(15ms, [&] { fired = true; });
    REQUIRE(wait_until([&] { return fired.load(); }));
    CHECK(std::chrono::steady_clock::now() - t0 >= 15ms);
}

TEST_CASE("what a waiter delivers inside wait() runs on the loop", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1});
    sched::Group group = scheduler.make_group();
    auto waiter = std::make_shared<EventfdWaiter>();
    std::atomic<int> delivered{0}, ran{0};
    std::atomic<bool> on_loop{true};
    waiter->deliver = [&] {
        // As an in-loop source would: post from the loop thread itself.
        if (delivered.fetch_add(1) < 3) {
            group.post([&] {
                if (sched::Scheduler::current_loop() != 0) on_loop = false;
                ran.fetch_add(1);
            });
        }
    };
    scheduler.set_loop_waiter(0, waiter);
    for (int i = 0; i < 3; ++i) {
        waiter->wake();  // "readiness"
        REQUIRE(wait_until([&] { return ran.load() == i + 1; }));
    }
    CHECK(on_loop.load());
}
