// Stall warnings: a grace period held up past the timeout names the holdout
// and asks the stall hook about it; warnings back off.
#include <catch2/catch.hpp>

#include <mutex>
#include <vector>

#include <quiesce/rcu/rcu.hpp>

#include "reader_thread.hpp"
#include "wait.hpp"

using namespace quiesce;
using quiesce::test::ReaderThread;
using quiesce::test::wait_until;

TEST_CASE("a stalled grace period names the QSBR reader holding it up", "[rcu][unit]") {
    rcu::Domain domain({.name = "stall", .stall_timeout = std::chrono::milliseconds(30)});
    std::mutex mutex;
    std::vector<rcu::StallInfo> seen;
    domain.set_stall_hook([&](const rcu::StallInfo& info) {
        std::lock_guard lock(mutex);
        seen.push_back(info);
        return std::string("group 'hog' running");
    });
    ReaderThread hog(domain, "loop-7");
    rcu::GpCookie cookie = domain.start_grace_period();
    REQUIRE(wait_until([&] {
        std::lock_guard lock(mutex);
        return seen.size() >= 2;  // the first warning and a backed-off repeat
    }));
    {
        std::lock_guard lock(mutex);
        CHECK(seen[0].name == "loop-7");
        CHECK(seen[0].qsbr);
        CHECK(seen[0].tid > 0);
        CHECK(seen[0].since_quiescent >= std::chrono::milliseconds(30));
    }
    CHECK_FALSE(domain.poll(cookie));
    // Counted once logged, which is after the hook ran.
    CHECK(wait_until([&] { return domain.stats().stall_warnings >= 2; }));
    hog.report();
    CHECK(wait_until([&] { return domain.poll(cookie); }));
}

TEST_CASE("a stalled grace period names a preemptible reader", "[rcu][unit]") {
    rcu::Domain domain({.name = "stall-preempt", .stall_timeout = std::chrono::milliseconds(30)});
    std::atomic<bool> inside{false}, release{false};
    std::atomic<int> hook_calls{0};
    std::atomic<bool> qsbr_flag{true};
    domain.set_stall_hook([&](const rcu::StallInfo& info) {
        qsbr_flag.store(info.qsbr);
        hook_calls.fetch_add(1);
        return std::string();
    });
    std::thread reader([&] {
        rcu::ReadLock lock(domain);
        inside.store(true);
        (void)wait_until([&] { return release.load(); });
    });
    REQUIRE(wait_until([&] { return inside.load(); }));
    std::thread updater([&] { domain.synchronize(); });
    REQUIRE(wait_until([&] { return hook_calls.load() >= 1; }));
    CHECK_FALSE(qsbr_flag.load());
    release.store(true);
    updater.join();
    reader.join();
}
