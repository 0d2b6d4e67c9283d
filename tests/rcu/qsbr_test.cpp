// The QSBR side of the grace-period state machine, driven step by step.
#include <catch2/catch.hpp>

#include <mutex>

#include <quiesce/rcu/qsbr.hpp>

#include "domain_impl.hpp"
#include "reader_thread.hpp"
#include "wait.hpp"

using namespace quiesce;
using quiesce::test::ReaderThread;
using quiesce::test::wait_until;

namespace {

// Starts a grace period and waits until its driver has armed every reader:
// it publishes the new target and arms under registry_mutex_, so once the
// target has changed, taking that mutex waits for the arming to finish.
rcu::GpCookie start_and_arm(rcu::Domain& domain) {
    std::uint64_t before = domain.hot().qs_gp.load();
    rcu::GpCookie cookie = domain.start_grace_period();
    REQUIRE(wait_until([&] { return domain.hot().qs_gp.load() != before; }));
    { std::lock_guard armed(domain.impl().registry_mutex_); }
    return cookie;
}

}  // namespace

TEST_CASE("a grace period waits for every online QSBR reader to report", "[rcu][unit]") {
    rcu::Domain domain({.name = "qsbr-wait"});
    rcu::QsbrReader self(domain, "self");
    ReaderThread other(domain, "other");

    rcu::GpCookie cookie = start_and_arm(domain);
    CHECK_FALSE(domain.poll(cookie));
    self.quiescent_state();
    CHECK_FALSE(domain.poll(cookie));  // `other` has not reported
    other.report();
    CHECK(wait_until([&] { return domain.poll(cookie); }));
}

TEST_CASE("the last reader to report completes the grace period", "[rcu][unit]") {
    rcu::Domain domain({.name = "qsbr-last"});
    ReaderThread other(domain, "other");
    rcu::QsbrReader self(domain, "self");
    rcu::GpCookie cookie = start_and_arm(domain);  // both of us are armed
    other.report();
    CHECK(domain.impl().qs_pending_.load() == 1);  // only we are left
    self.quiescent_state();                        // so this report itself ends the grace period
    CHECK(domain.poll(cookie));
}

TEST_CASE("offline readers do not hold up a grace period", "[rcu][unit]") {
    rcu::Domain domain({.name = "qsbr-offline"});
    rcu::QsbrReader self(domain, "self");
    ReaderThread sleeper(domain, "sleeper");
    sleeper.offline();

    rcu::GpCookie cookie = start_and_arm(domain);
    self.quiescent_state();
    CHECK(wait_until([&] { return domain.poll(cookie); }));
    sleeper.online();
}

TEST_CASE("going offline counts as a report", "[rcu][unit]") {
    rcu::Domain domain({.name = "qsbr-goes-offline"});
    rcu::QsbrReader self(domain, "self");
    ReaderThread other(domain, "other");
    rcu::GpCookie cookie = start_and_arm(domain);
    self.quiescent_state();
    CHECK_FALSE(domain.poll(cookie));
    other.offline();
    CHECK(wait_until([&] { return domain.poll(cookie); }));
}

TEST_CASE("a reader that comes online during a grace period is not waited for", "[rcu][unit]") {
    rcu::Domain domain({.name = "qsbr-late"});
    rcu::QsbrReader self(domain, "self");
    ReaderThread late(domain, "late");
    late.offline();
    rcu::GpCookie cookie = start_and_arm(domain);
    late.online();  // reads from now on see everything before the grace period
    self.quiescent_state();
    CHECK(wait_until([&] { return domain.poll(cookie); }));
}

TEST_CASE("a reader registered during a grace period is not waited for", "[rcu][unit]") {
    rcu::Domain domain({.name = "qsbr-register"});
    rcu::QsbrReader self(domain, "self");
    rcu::GpCookie cookie = start_and_arm(domain);
    ReaderThread newcomer(domain, "newcomer");
    self.quiescent_state();
    CHECK(wait_until([&] { return domain.poll(cookie); }));
}

TEST_CASE("quiescent_state with no grace period waiting changes nothing", "[rcu][unit]") {
    rcu::Domain domain({.name = "qsbr-idle"});
    rcu::QsbrReader self(domain, "self");
    std::uint64_t gps = domain.stats().grace_periods;
    for (int i = 0; i < 1000; ++i) self.quiescent_state();
    CHECK(domain.stats().grace_periods == gps);
    CHECK(domain.impl().gp_requested_.load() == 0);
}

TEST_CASE("synchronize on another thread waits for an online QSBR reader", "[rcu][unit]") {
    rcu::Domain domain({.name = "qsbr-sync"});
    ReaderThread reader(domain, "reader");
    std::atomic<bool> reported{false};
    std::atomic<bool> saw_report{false};
    std::atomic<bool> returned{false};
    std::thread updater([&] {
        domain.synchronize();
        saw_report.store(reported.load());
        returned.store(true);
    });
    REQUIRE(wait_until([&] { return domain.impl().qs_pending_.load() > 0; }));
    CHECK_FALSE(returned.load());
    reader.run([&](rcu::QsbrReader& r) {
        reported.store(true);
        r.quiescent_state();
    });
    updater.join();
    CHECK(saw_report.load());
}

TEST_CASE("an offline QSBR thread may call synchronize", "[rcu][unit]") {
    rcu::Domain domain({.name = "qsbr-offline-sync"});
    rcu::QsbrReader self(domain, "self");
    {
        rcu::OfflineScope off(self);
        domain.synchronize();
        domain.synchronize_expedited();
    }
    CHECK(domain.stats().grace_periods >= 2);
    CHECK(current_qsbr_reader(domain) == &self);
}
