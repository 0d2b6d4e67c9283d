// Domain: cookies and the polled API, a destroyed domain with readers and
// fork detection (as death cases in a child process). Misuse of the reader
// API is misuse_test.cpp.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <quiesce/rcu/rcu.hpp>

#include "death.hpp"
#include "domain_impl.hpp"
#include "wait.hpp"

using namespace quiesce;
using Catch::Matchers::Contains;
using quiesce::test::run_death_case;
using quiesce::test::wait_until;

TEST_CASE("a cookie taken while idle names the end of the next grace period", "[rcu][unit]") {
    rcu::Domain domain({.name = "cookie-idle"});
    rcu::GpCookie first = domain.snapshot();
    CHECK_FALSE(domain.poll(first));
    domain.synchronize();
    CHECK(domain.poll(first));
    rcu::GpCookie second = domain.snapshot();
    CHECK(second > first);
    CHECK_FALSE(domain.poll(second));
}

TEST_CASE("a cookie taken during a grace period needs the one after it", "[rcu][unit]") {
    rcu::Domain domain({.name = "cookie-running"});
    rcu::QsbrReader self(domain, "self");
    std::uint64_t before = domain.hot().qs_gp.load();
    rcu::GpCookie running = domain.start_grace_period();
    REQUIRE(wait_until([&] { return domain.hot().qs_gp.load() != before; }));
    rcu::GpCookie later = domain.snapshot();  // the running one may have scanned already
    CHECK(later.value() == running.value() + 2);
    self.quiescent_state();
    REQUIRE(wait_until([&] { return domain.poll(running); }));
    CHECK_FALSE(domain.poll(later));
    rcu::GpCookie asked = domain.start_grace_period();
    CHECK(asked == later);
    REQUIRE(wait_until([&] {
        self.quiescent_state();
        return domain.poll(later);
    }));
}

TEST_CASE("start_grace_period is driven by the domain without a waiting caller", "[rcu][unit]") {
    rcu::Domain domain({.name = "cookie-async"});
    rcu::GpCookie cookie = domain.start_grace_period();
    CHECK(wait_until([&] { return domain.poll(cookie); }));
    CHECK(domain.stats().grace_periods == 1);
}

TEST_CASE("grace-period latency is measured and bucketed", "[rcu][unit]") {
    rcu::Domain domain({.name = "gp-latency"});
    // A reader that holds a grace period up: it reports its quiescent state
    // 40 ms after the updater is about to start one, so that grace period
    // takes at least 40 ms less the moment it took to start (well under 20
    // ms, even under a sanitizer).
    std::atomic<bool> online{false};
    std::atomic<bool> syncing{false};
    std::thread late([&] {
        rcu::QsbrReader reader(domain);
        online.store(true);
        while (!syncing.load()) std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::milliseconds(40));
        reader.quiescent_state();
    });
    while (!online.load()) std::this_thread::yield();
    syncing.store(true);
    domain.synchronize();
    late.join();
    for (int i = 0; i < 5; ++i) domain.synchronize();  // no reader: quick ones
    rcu::DomainStats stats = domain.stats();
    std::uint64_t counted = 0;
    for (std::uint64_t n : stats.grace_period_buckets) counted += n;
    CHECK(counted == stats.grace_periods);
    CHECK(stats.grace_period_ns_max >= 20'000'000u);
    CHECK(stats.grace_period_ns_total >= stats.grace_period_ns_max);
    std::uint64_t slow = 0;
    for (std::size_t i = 0; i < rcu::DomainStats::kGraceBuckets; ++i)
        if ((rcu::DomainStats::kGraceBucketBoundNs << i) > 16'000'000u)
            slow += stats.grace_period_buckets[i];
    CHECK(slow >= 1);
}

TEST_CASE("concurrent synchronize callers share grace periods", "[rcu][unit]") {
    rcu::Domain domain({.name = "sync-batch"});
    std::vector<std::thread> callers;
    for (int t = 0; t < 8; ++t) {
        callers.emplace_back([&] {
            for (int i = 0; i < 20; ++i) domain.synchronize();
        });
    }
    for (auto& t : callers) t.join();
    // 160 calls; each needs at most two grace periods of its own, and sharing
    // makes it fewer. A wrong cookie (no grace period at all) would show as 0.
    CHECK(domain.stats().grace_periods >= 20);
    CHECK(domain.stats().grace_periods <= 320);
}

TEST_CASE("the default domain reports its read mode", "[rcu][unit]") {
    auto mode = rcu::Domain::default_domain().read_mode();
    CHECK((mode == rcu::ReadMode::kMembarrier || mode == rcu::ReadMode::kFences));
    rcu::Domain forced({.name = "forced", .use_membarrier = false});
    CHECK(forced.read_mode() == rcu::ReadMode::kFences);
}

QUIESCE_DEATH_CASE(destroy_with_registered_reader) {
    auto* domain = new rcu::Domain({.name = "death"});
    static rcu::QsbrReader* leaked = new rcu::QsbrReader(*domain);
    (void)leaked;
    delete domain;
}

QUIESCE_DEATH_CASE(domain_used_after_fork) {
    rcu::Domain domain({.name = "forked"});
    domain.synchronize();
    pid_t pid = fork();
    if (pid == 0) {
        domain.synchronize();  // the child: must refuse
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    // Re-raise the child's fate so the test sees it.
    if (WIFSIGNALED(status)) std::abort();
}

QUIESCE_DEATH_CASE(new_domain_after_fork_works) {
    pid_t pid = fork();
    if (pid == 0) {
        rcu::Domain fresh({.name = "child"});
        fresh.synchronize();
        _exit(7);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    std::exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

TEST_CASE("destroying a domain with a registered QSBR reader aborts", "[rcu][unit]") {
    auto result = run_death_case("destroy_with_registered_reader");
    CHECK(result.aborted);
    CHECK_THAT(result.output, Contains("destroyed while QSBR readers are registered"));
}

TEST_CASE("a domain from before fork() refuses use in the child; a new one works", "[rcu][unit]") {
    auto refused = run_death_case("domain_used_after_fork");
    CHECK(refused.aborted);
    CHECK_THAT(refused.output, Contains("create domains after fork()"));
    auto fresh = run_death_case("new_domain_after_fork_works");
    CHECK_FALSE(fresh.aborted);
    CHECK(WIFEXITED(fresh.status));
    CHECK(WEXITSTATUS(fresh.status) == 7);
}
