// Preemptible readers: synchronize() waits for read sections that began
// before it, in both read modes (membarrier and fences).
#include <catch2/catch.hpp>

#include <chrono>
#include <optional>

#include <time.h>
#include <thread>

#include <quiesce/rcu/read_lock.hpp>

#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::wait_until;

namespace {

rcu::DomainOptions options_for(bool membarrier, const char* name) {
    rcu::DomainOptions options;
    options.name = name;
    options.use_membarrier = membarrier;
    return options;
}

// Runs synchronize() on a thread while a reader holds a section; checks that
// it returns only after the reader has ended it. `hold` runs inside the
// section, after the reader is known to be in it.
void check_waits_for_section(rcu::Domain& domain, bool nested) {
    std::atomic<bool> inside{false}, release{false}, ended{false};
    std::thread reader([&] {
        rcu::ReadLock outer(domain);
        {
            std::optional<rcu::ReadLock> inner;
            if (nested) inner.emplace(domain);
            inside.store(true);
            (void)wait_until([&] { return release.load(); });
        }  // inner ends: the outer section still holds the grace period
        if (nested) std::this_thread::sleep_for(20ms);  // give a wrong early exit a chance
        ended.store(true);
    });
    REQUIRE(wait_until([&] { return inside.load(); }));
    std::atomic<bool> saw_end{false};
    std::thread updater([&] {
        domain.synchronize();
        saw_end.store(ended.load());
    });
    std::this_thread::sleep_for(20ms);  // lets a broken synchronize() return early
    release.store(true);
    updater.join();
    reader.join();
    CHECK(saw_end.load());
}

}  // namespace

TEST_CASE("synchronize waits for a preemptible read section", "[rcu][unit]") {
    bool membarrier = GENERATE(true, false);
    CAPTURE(membarrier);
    rcu::Domain domain(options_for(membarrier, "preempt-wait"));
    if (!membarrier) CHECK(domain.read_mode() == rcu::ReadMode::kFences);
    check_waits_for_section(domain, false);
}

TEST_CASE("synchronize waits for the outermost of nested sections", "[rcu][unit]") {
    bool membarrier = GENERATE(true, false);
    CAPTURE(membarrier);
    rcu::Domain domain(options_for(membarrier, "preempt-nest"));
    check_waits_for_section(domain, true);
}

TEST_CASE("synchronize completes while new readers keep arriving", "[rcu][unit]") {
    bool membarrier = GENERATE(true, false);
    CAPTURE(membarrier);
    rcu::Domain domain(options_for(membarrier, "preempt-churn"));
    std::atomic<bool> stop{false};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t) {
        readers.emplace_back([&] {
            // Overlapping sections back to back: some reader is almost always
            // inside, in one phase or the other.
            while (!stop.load(std::memory_order_relaxed)) {
                rcu::ReadLock lock(domain);
                for (int spin = 0; spin < 200; ++spin) __builtin_ia32_pause();
            }
        });
    }
    for (int i = 0; i < 50; ++i) domain.synchronize();
    for (int i = 0; i < 50; ++i) domain.synchronize_expedited();
    stop.store(true);
    for (auto& t : readers) t.join();
    CHECK(domain.stats().grace_periods >= 100);
}

TEST_CASE("a thread registers on its first ReadLock and unregisters at exit", "[rcu][unit]") {
    rcu::Domain domain({.name = "preempt-reg"});
    CHECK(domain.stats().preemptible_readers == 0);
    std::atomic<bool> locked{false}, go{false};
    std::thread t([&] {
        {
            rcu::ReadLock lock(domain);
            CHECK(rcu::in_read_section(domain));
            locked.store(true);
            (void)wait_until([&] { return go.load(); });
        }
        CHECK_FALSE(rcu::in_read_section(domain));
    });
    REQUIRE(wait_until([&] { return locked.load(); }));
    CHECK(domain.stats().preemptible_readers == 1);
    go.store(true);
    t.join();
    CHECK(domain.stats().preemptible_readers == 0);
}

TEST_CASE("the default domain's ReadLock nests and reports its section", "[rcu][unit]") {
    auto& domain = rcu::Domain::default_domain();
    CHECK_FALSE(rcu::in_read_section(domain));
    {
        rcu::ReadLock a;
        rcu::ReadLock b;
        CHECK(rcu::in_read_section(domain));
    }
    CHECK_FALSE(rcu::in_read_section(domain));
    domain.synchronize();
}

TEST_CASE("a sleeping driver is woken by the reader's unlock", "[rcu][unit]") {
    // No stall timeout: the driver's futex wait has no time limit, so a
    // missing wake-up hangs the test (meson's timeout fails it).
    rcu::Domain domain({.name = "preempt-futex", .stall_timeout = std::chrono::milliseconds(0)});
    std::atomic<bool> inside{false}, release{false};
    std::thread reader([&] {
        rcu::ReadLock lock(domain);
        inside.store(true);
        // Hold the section until the driver has gone to sleep on the futex.
        (void)wait_until([&] { return release.load(); });
    });
    REQUIRE(wait_until([&] { return inside.load(); }));
    std::thread updater([&] { domain.synchronize(); });
    REQUIRE(wait_until([&] { return domain.hot().reader_futex.load() == -1; }));
    release.store(true);
    updater.join();  // hangs (test timeout) if the unlock did not wake the driver
    reader.join();
    CHECK(domain.hot().reader_futex.load() == 0);
}

namespace {

// A thread-local whose destructor reads under RCU, as a per-thread cache that
// flushes into a shared table at exit would.
struct FlushAtExit {
    rcu::Domain* other = nullptr;
    std::atomic<int>* flushed = nullptr;
    ~FlushAtExit() {
        if (flushed == nullptr) return;
        { rcu::ReadLock lock; }
        { rcu::ReadLock lock(*other); }
        flushed->fetch_add(1);
    }
};
thread_local FlushAtExit flush_at_exit;

std::chrono::nanoseconds thread_cpu_time() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace

TEST_CASE("a ReadLock in a thread-local destructor is registered and cleaned up", "[rcu][unit]") {
    rcu::Domain other({.name = "preempt-tls-exit"});
    std::atomic<int> flushed{0};
    std::thread t([&] {
        flush_at_exit.other = &other;      // constructed before the first ReadLock:
        flush_at_exit.flushed = &flushed;  // so destroyed after our own cleanup
        rcu::ReadLock lock(other);
    });
    t.join();
    CHECK(flushed.load() == 1);
    CHECK(other.stats().preemptible_readers == 0);  // no registration outlives the thread
    other.synchronize();  // and nothing stale is scanned (ASan: no use-after-free)
    rcu::Domain::default_domain().synchronize();
}

TEST_CASE("a driver waiting on a long reader sleeps while other readers come and go",
          "[rcu][unit]") {
    rcu::Domain domain({.name = "preempt-rearm", .stall_timeout = std::chrono::milliseconds(0)});
    std::atomic<bool> inside{false}, release{false}, stop{false};
    std::thread long_reader([&] {
        rcu::ReadLock lock(domain);
        inside.store(true);
        (void)wait_until([&] { return release.load(); });
    });
    REQUIRE(wait_until([&] { return inside.load(); }));
    std::chrono::nanoseconds driver_cpu{0};
    std::thread updater([&] {
        auto start = thread_cpu_time();
        domain.synchronize();
        driver_cpu = thread_cpu_time() - start;
    });
    REQUIRE(wait_until([&] { return domain.hot().reader_futex.load() == -1; }));
    // Short sections in the current phase: each outermost unlock resets the
    // futex word and wakes the driver, which must arm it again and sleep.
    std::thread churn([&] {
        while (!stop.load()) {
            { rcu::ReadLock lock(domain); }
            std::this_thread::sleep_for(5ms);
        }
    });
    std::this_thread::sleep_for(300ms);
    release.store(true);
    updater.join();
    stop.store(true);
    churn.join();
    long_reader.join();
    const double driver_ms = std::chrono::duration<double, std::milli>(driver_cpu).count();
    INFO("driver CPU time: " << driver_ms << " ms");
    CHECK(driver_cpu < 100ms);  // a driver that stopped sleeping burns ~300 ms here
}

TEST_CASE("read_lock()/read_unlock() is a read section like ReadLock", "[rcu][unit]") {
    bool default_domain = GENERATE(true, false);
    CAPTURE(default_domain);
    rcu::Domain own({.name = "pair"});
    rcu::Domain& domain = default_domain ? rcu::Domain::default_domain() : own;
    std::atomic<bool> inside{false}, release{false}, ended{false};
    std::thread reader([&] {
        if (default_domain) {
            rcu::read_lock();
            rcu::read_lock();  // nests
        } else {
            rcu::read_lock(domain);
            rcu::read_lock(domain);
        }
        CHECK(rcu::in_read_section(domain));
        CHECK(rcu::in_any_read_section());
        inside = true;
        (void)wait_until([&] { return release.load(); });
        if (default_domain) {
            rcu::read_unlock();
        } else {
            rcu::read_unlock(domain);
        }
        std::this_thread::sleep_for(20ms);  // the outer section still holds the grace period
        ended = true;
        if (default_domain) {
            rcu::read_unlock();
        } else {
            rcu::read_unlock(domain);
        }
        CHECK_FALSE(rcu::in_read_section(domain));
        CHECK_FALSE(rcu::in_any_read_section());
    });
    REQUIRE(wait_until([&] { return inside.load(); }));
    std::atomic<bool> saw_end{false};
    std::thread updater([&] {
        domain.synchronize();
        saw_end = ended.load();
    });
    std::this_thread::sleep_for(20ms);
    release = true;
    updater.join();
    reader.join();
    CHECK(saw_end.load());
}

TEST_CASE("threads register and unregister as readers explicitly", "[rcu][unit]") {
    rcu::Domain domain({.name = "explicit"});
    std::thread thread([&] {
        CHECK(domain.stats().preemptible_readers == 0);
        rcu::register_reader_thread(domain);
        CHECK(domain.stats().preemptible_readers == 1);
        rcu::register_reader_thread(domain);  // idempotent
        CHECK(domain.stats().preemptible_readers == 1);
        { rcu::ReadLock lock(domain); }
        rcu::unregister_reader_thread(domain);
        CHECK(domain.stats().preemptible_readers == 0);
        rcu::unregister_reader_thread(domain);  // no-op
        { rcu::ReadLock lock(domain); }         // registers again
        CHECK(domain.stats().preemptible_readers == 1);
        rcu::unregister_reader_thread(domain);
        domain.synchronize();  // nothing to wait for
    });
    thread.join();
    CHECK(domain.stats().preemptible_readers == 0);

    std::thread on_default([] {
        rcu::Domain& def = rcu::Domain::default_domain();
        const auto before = def.stats().preemptible_readers;
        rcu::register_reader_thread();
        CHECK(def.stats().preemptible_readers == before + 1);
        rcu::read_lock();
        rcu::read_unlock();
        rcu::unregister_reader_thread();
        CHECK(def.stats().preemptible_readers == before);
        rcu::read_lock();  // registers again
        CHECK(def.stats().preemptible_readers == before + 1);
        rcu::read_unlock();
    });
    on_default.join();
}
