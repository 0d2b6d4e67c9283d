// WallTicker on the test thread: ticks arrive in wall time, idle() lets the
// timer stop and busy() restarts it.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "wait.hpp"
#include "wall_ticker.hpp"

using quiesce::sched::detail::WallTicker;
using quiesce::test::wait_until;
using namespace std::chrono_literals;

TEST_CASE("a wall ticker ticks while the thread sleeps or runs", "[scheduler][unit]") {
    WallTicker ticker(1'000'000);  // 1 ms
    const std::uint64_t before = ticker.ticks();
    // The signal interrupts the sleep; sleep_for resumes it (EINTR loop).
    // Expirations that come while the thread is off its CPU merge into one
    // signal: a vCPU stall may take most of a sleep, so up to ten sleeps.
    for (int i = 0; i < 10 && ticker.ticks() < before + 5; ++i) std::this_thread::sleep_for(20ms);
    CHECK(ticker.ticks() >= before + 5);
    const std::uint64_t mid = ticker.ticks();
    CHECK(wait_until([&] { return ticker.ticks() >= mid + 3; }));
}

TEST_CASE("idle() stops a wall ticker at its next tick and busy() restarts it",
          "[scheduler][unit]") {
    WallTicker ticker(1'000'000);
    ticker.idle();
    std::this_thread::sleep_for(10ms);  // the first tick stops the timer
    const std::uint64_t stopped = ticker.ticks();
    std::this_thread::sleep_for(20ms);
    CHECK(ticker.ticks() == stopped);
    ticker.busy();
    CHECK(ticker.restarts() == 1);
    CHECK(wait_until([&] { return ticker.ticks() >= stopped + 3; }));
    ticker.busy();  // already running: no system call
    CHECK(ticker.restarts() == 1);
}
