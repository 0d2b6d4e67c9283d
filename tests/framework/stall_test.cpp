// The loop stall detector names the group that hogs its loop, while it
// runs; a group that keeps a loop busy in short events is not a stall; the
// live dump says what runs.
#include <catch2/catch.hpp>

#include <time.h>

#include <atomic>
#include <memory>
#include <string>

#include <quiesce/framework/runtime.hpp>
#include <quiesce/scheduler/need_resched.hpp>

#include "net.hpp"
#include "wait.hpp"

using quiesce::test::Client;
using quiesce::test::RunningRuntime;
using quiesce::test::wait_until;

namespace {

std::uint64_t thread_cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

/// Burns `ms` of CPU in one event, never giving way (the bug the detector
/// is for).
struct Hog : quiesce::tcp::Handler {
    void on_data(quiesce::tcp::Connection& conn, quiesce::Buffer& in) override {
        in.clear();
        const std::uint64_t until = thread_cpu_ms() + 300;
        volatile std::uint64_t sink = 0;
        while (thread_cpu_ms() < until) sink = sink + 1;
        conn.write("done\n");
    }
};

}  // namespace

TEST_CASE("a hogging event is reported while it runs, naming its group", "[framework][stall]") {
    RunningRuntime server({.stall = std::chrono::milliseconds(40)});
    quiesce::tcp::Listener& listener = server.runtime.listen(
        "127.0.0.1:0", [] { return std::make_unique<Hog>(); }, {.name = "hogger"});
    server.start();
    Client client(listener.address());
    client.send("go");
    std::string dump;
    // While it burns, the report comes (before the reply does).
    REQUIRE(wait_until([&] {
        if (dump.find("running group \"hogger conn") == std::string::npos)
            dump = server.runtime.dump();
        return server.runtime.stats().stall_reports >= 1;
    }));
    CHECK(client.receive(5) == "done\n");
    quiesce::RuntimeStats stats = server.runtime.stats();
    CHECK_THAT(stats.last_stall, Catch::Contains("group \"hogger conn"));
    CHECK_THAT(stats.last_stall, Catch::Contains("without giving way"));
    CHECK_THAT(dump, Catch::Contains("running group \"hogger conn"));
    // 300 ms against 40: reports at 40, 80, 160 ms of CPU (and not one per look).
    CHECK(stats.stall_reports >= 2);
    CHECK(stats.stall_reports <= 4);
}

TEST_CASE("a group busy in short events is not a stall", "[framework][stall]") {
    // 60 ms: far above an event's 1 ms, so a stalled vCPU (charged as the
    // thread's CPU time) does not make one look long; the chain's 200 ms of
    // CPU would still trip a detector that added up events.
    RunningRuntime server({.stall = std::chrono::milliseconds(60)});
    server.start();
    quiesce::sched::Group busy = server.runtime.scheduler().make_group({.name = "polite"});
    std::atomic<bool> done{false};
    struct Chain {
        quiesce::sched::Group group;
        std::uint64_t until;
        std::atomic<bool>* done;
        void step() {
            // ~50 us per event, then a new event: every turn ends in time.
            const std::uint64_t stop = thread_cpu_ms() + 1;
            volatile int sink = 0;
            while (thread_cpu_ms() < stop && !quiesce::sched::need_resched()) sink = sink + 1;
            if (thread_cpu_ms() >= until) {
                *done = true;
                return;
            }
            group.post([this] { step(); });
        }
    };
    auto chain = std::make_shared<Chain>(Chain{busy, 0, &done});
    busy.post([chain] {
        chain->until = thread_cpu_ms() + 200;
        chain->step();
    });
    REQUIRE(wait_until([&] { return done.load(); }));
    CHECK(server.runtime.stats().stall_reports == 0);
}
