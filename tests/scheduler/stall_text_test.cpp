// The stall hook's words: a loop held by a group that burns CPU (a hog), by an
// event blocked in the kernel, and a loop the kernel does not run (a starved
// thread, here held off its CPU by a SCHED_FIFO spinner) are told apart.
#include <catch2/catch.hpp>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <quiesce/scheduler/scheduler.hpp>

#include "gate.hpp"
#include "loop.hpp"
#include "scheduler_impl.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

// The text a stall warning would carry for loop 0 after `hold` of the
// situation the posted event creates.
std::string stall_text_after(sched::Scheduler& scheduler, std::chrono::milliseconds hold) {
    std::this_thread::sleep_for(hold);
    rcu::StallInfo info;
    info.tid = scheduler.impl().loop(0).tid();
    info.qsbr = true;
    info.since_quiescent = hold;
    return scheduler.impl().describe_stall(info);
}

}  // namespace

TEST_CASE("a stall by a group that burns CPU is called a hog", "[scheduler][unit]") {
    // Before the scheduler: the event reads them until its loop is joined.
    std::atomic<bool> entered{false}, open{false};
    sched::Scheduler scheduler({.threads = 1, .name = "hogs"});
    sched::Group group = scheduler.make_group({.name = "burner"});
    // Spins without yielding: CPU-bound. The loop's CPU may be shared with
    // another test's pinned loop (meson runs two at once), which can leave
    // it under half of the window, "not being scheduled": up to three holds.
    // relaxed: flags; the text is all the test reads of the event.
    group.post([&] {
        entered.store(true, std::memory_order_relaxed);
        while (!open.load(std::memory_order_relaxed)) {
        }
    });
    REQUIRE(test::wait_until([&] { return entered.load(std::memory_order_relaxed); }));
    std::string text;
    for (int attempt = 0; attempt < 3; ++attempt) {
        text = stall_text_after(scheduler, 400ms);
        if (text.find("neither returns nor yields") != std::string::npos) break;
    }
    open.store(true, std::memory_order_relaxed);
    INFO(text);
    CHECK_THAT(text, Contains("scheduler \"hogs\" loop 0 is running group \"burner\""));
    CHECK_THAT(text, Contains("loop 0 ran it for"));
    CHECK_THAT(text, Contains("of CPU in the last"));
    CHECK_THAT(text, Contains("neither returns nor yields"));
}

TEST_CASE("a stall by an event blocked in the kernel says so", "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1, .name = "blocks"});
    sched::Group group = scheduler.make_group({.name = "sleeper"});
    std::mutex mutex;
    std::condition_variable cv;
    bool entered = false, release = false;
    group.post([&] {
        std::unique_lock lock(mutex);
        entered = true;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });  // what an event must not do
    });
    {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return entered; });
    }
    const std::string text = stall_text_after(scheduler, 300ms);
    {
        std::lock_guard lock(mutex);
        release = true;
    }
    cv.notify_all();
    INFO(text);
    CHECK_THAT(text, Contains("is running group \"sleeper\""));
    CHECK_THAT(text, Contains("the thread is blocked in the kernel (state S)"));
    CHECK_THAT(text, Contains("blocking call"));
}

TEST_CASE("a stall of a loop the kernel does not run says the thread is starved",
          "[scheduler][unit]") {
    sched::Scheduler scheduler({.threads = 1, .name = "starved"});
    const int cpu = scheduler.stats().loops.at(0).cpu;
    if (cpu < 0) {
        WARN("the loop is not pinned: no CPU to take from it");
        return;
    }
    sched::Group group = scheduler.make_group({.name = "victim"});
    test::Gate gate;
    group.post([&] { gate.block(); });
    REQUIRE(gate.wait_entered());
    // A real-time spinner on the loop's CPU: the loop thread stays runnable
    // but gets at most what RT throttling leaves (5% by default).
    std::atomic<bool> spinning{false}, stop{false};
    std::atomic<int> refused{0};
    std::thread spinner([&] {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_param param{};
        param.sched_priority = 1;
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0 ||
            pthread_setschedparam(pthread_self(), SCHED_FIFO, &param) != 0) {
            refused = 1;
            return;
        }
        spinning = true;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (!stop.load(std::memory_order_relaxed) &&
               std::chrono::steady_clock::now() < deadline) {
        }
    });
    REQUIRE(test::wait_until([&] { return spinning.load() || refused.load() != 0; }));
    if (refused.load() != 0) {
        spinner.join();
        gate.open();
        WARN(
            "SCHED_FIFO refused here (no CAP_SYS_NICE or no RT budget): the starved wording "
            "is not tested");
        return;
    }
    const std::string text = stall_text_after(scheduler, 600ms);
    stop = true;
    spinner.join();
    gate.open();
    INFO(text);
    CHECK_THAT(text, Contains("is running group \"victim\""));
    CHECK_THAT(text, Contains("but loop 0 got"));
    CHECK_THAT(text, Contains("the thread is not being scheduled (state R"));
}
