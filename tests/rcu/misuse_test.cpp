// Breaking a usage rule aborts with a message that names the thread and says
// what to do instead, in every build type (these tests run in the release-
// like and the debug builds alike); rules that cannot abort cheaply warn.
#include <catch2/catch.hpp>

#include <pthread.h>

#include <thread>

#include <quiesce/rcu/rcu.hpp>

#include "death.hpp"
#include "reader_thread.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using quiesce::test::run_death_case;
using quiesce::test::wait_until;

namespace {

void name_this_thread() {
    pthread_setname_np(pthread_self(), "misuser");
}

}  // namespace

QUIESCE_DEATH_CASE(synchronize_inside_read_lock) {
    name_this_thread();
    rcu::Domain domain({.name = "death"});
    rcu::ReadLock lock(domain);
    domain.synchronize();
}
QUIESCE_DEATH_CASE(synchronize_inside_read_lock_pair) {
    name_this_thread();
    rcu::read_lock();
    rcu::Domain::default_domain().synchronize();
}
QUIESCE_DEATH_CASE(synchronize_on_online_qsbr) {
    name_this_thread();
    rcu::Domain domain({.name = "death"});
    rcu::QsbrReader reader(domain, "my-loop");
    domain.synchronize();
}
QUIESCE_DEATH_CASE(expedited_on_online_qsbr) {
    name_this_thread();
    rcu::Domain domain({.name = "death"});
    rcu::QsbrReader reader(domain, "my-loop");
    domain.synchronize_expedited();
}
QUIESCE_DEATH_CASE(barrier_on_online_qsbr) {
    name_this_thread();
    rcu::Domain domain({.name = "death"});
    rcu::QsbrReader reader(domain, "my-loop");
    domain.barrier();
}
QUIESCE_DEATH_CASE(offline_twice) {
    name_this_thread();
    rcu::Domain domain({.name = "death"});
    rcu::QsbrReader reader(domain, "my-loop");
    reader.offline();
    reader.offline();
}
QUIESCE_DEATH_CASE(online_twice) {
    name_this_thread();
    rcu::Domain domain({.name = "death"});
    rcu::QsbrReader reader(domain, "my-loop");
    reader.online();
}
QUIESCE_DEATH_CASE(quiescent_state_inside_read_lock) {
    name_this_thread();
    rcu::QsbrReader reader(rcu::Domain::default_domain(), "my-loop");
    rcu::ReadLock lock;
    reader.quiescent_state();
}
QUIESCE_DEATH_CASE(unmatched_read_unlock) {
    name_this_thread();
    rcu::read_lock();
    rcu::read_unlock();
    rcu::read_unlock();
}
QUIESCE_DEATH_CASE(unmatched_read_unlock_other_domain) {
    name_this_thread();
    rcu::Domain domain({.name = "death"});
    rcu::read_unlock(domain);
}
QUIESCE_DEATH_CASE(qsbr_reader_destroyed_elsewhere) {
    auto* reader = new rcu::QsbrReader(rcu::Domain::default_domain(), "my-loop");
    std::thread other([reader] {
        name_this_thread();
        delete reader;
    });
    other.join();
}
QUIESCE_DEATH_CASE(unregister_inside_section) {
    name_this_thread();
    rcu::read_lock();
    rcu::unregister_reader_thread();
}
QUIESCE_DEATH_CASE(thread_exits_inside_section) {
    std::thread other([] {
        name_this_thread();
        rcu::read_lock();
    });
    other.join();
}

TEST_CASE("misuse aborts with a message naming the thread and the way out", "[rcu][unit]") {
    auto [name, message, advice] = GENERATE(table<const char*, const char*, const char*>({
        {"synchronize_inside_read_lock", "synchronize() called inside a read section",
         "End the section first"},
        {"synchronize_inside_read_lock_pair", "synchronize() called inside a read section",
         "call()/retire()"},
        {"synchronize_on_online_qsbr", "an online QSBR reader ('my-loop')", "rcu::OfflineScope"},
        {"expedited_on_online_qsbr", "synchronize_expedited() called on", "rcu::OfflineScope"},
        {"barrier_on_online_qsbr", "barrier() called on", "wait for its own quiescent state"},
        {"offline_twice", "offline() on the offline QSBR reader 'my-loop'", "misuser"},
        {"online_twice", "online() on the online QSBR reader 'my-loop'", "misuser"},
        {"quiescent_state_inside_read_lock", "quiescent_state() inside an rcu::ReadLock",
         "End the read section first"},
        {"unmatched_read_unlock", "unmatched rcu::read_unlock()", "misuser"},
        {"unmatched_read_unlock_other_domain", "unmatched rcu::read_unlock()", "misuser"},
        {"qsbr_reader_destroyed_elsewhere", "destroyed on thread 'misuser'", "must end there"},
        {"unregister_inside_section", "unregister_reader_thread() inside a read section",
         "misuser"},
        {"thread_exits_inside_section", "thread exited inside an rcu read section", "misuser"},
    }));
    CAPTURE(name);
    auto result = run_death_case(name);
    CHECK(result.aborted);
    CHECK_THAT(result.output, Contains("quiesce: misuse:"));
    CHECK_THAT(result.output, Contains(message));
    CHECK_THAT(result.output, Contains(advice));
    if (std::string(name) != "qsbr_reader_destroyed_elsewhere") {
        CHECK_THAT(result.output, Contains("thread 'misuser' (tid "));
    }
}

TEST_CASE("a QSBR reader that never processes its callbacks is warned about", "[rcu][unit]") {
    std::vector<rcu::Head> heads(64 * 40);  // outlives the domain, which runs what is left
    rcu::Domain domain({.name = "unprocessed", .stall_timeout = 50ms});
    test::ReaderThread reader(domain, "forgetful");
    static std::atomic<int> ran{0};
    ran = 0;
    std::size_t next = 0;
    // Batches of 64 calls, spread over more than the stall timeout, with no
    // process_callbacks() in between.
    const auto started = std::chrono::steady_clock::now();
    while (domain.stats().callback_warnings == 0 && next + 64 <= heads.size()) {
        reader.run([&](rcu::QsbrReader& r) {
            for (int i = 0; i < 64; ++i)
                r.call(&heads[next++], [](rcu::Head*) noexcept { ran.fetch_add(1); });
        });
        std::this_thread::sleep_for(5ms);
    }
    CHECK(domain.stats().callback_warnings >= 1);
    CHECK(std::chrono::steady_clock::now() - started >= 50ms);
    CHECK(ran.load() == 0);
    // Once it processes them, they run.
    REQUIRE(wait_until([&] {
        reader.run([](rcu::QsbrReader& r) {
            r.quiescent_state();
            r.process_callbacks(1000);
        });
        return ran.load() == static_cast<int>(next);
    }));
}

TEST_CASE("a reader that processes its callbacks regularly is not warned about", "[rcu][unit]") {
    std::vector<rcu::Head> heads(64 * 20);
    rcu::Domain domain({.name = "processed", .stall_timeout = 20ms});
    test::ReaderThread reader(domain, "diligent");
    std::size_t next = 0;
    while (next + 64 <= heads.size()) {
        reader.run([&](rcu::QsbrReader& r) {
            for (int i = 0; i < 64; ++i) {
                r.call(&heads[next++], [](rcu::Head*) noexcept {});
                r.quiescent_state();
                r.process_callbacks(64);
            }
        });
        std::this_thread::sleep_for(2ms);
    }
    CHECK(domain.stats().callback_warnings == 0);
}

TEST_CASE("barrier() names the QSBR reader it waits for", "[rcu][unit]") {
    rcu::Domain domain({.name = "barrier-wait", .stall_timeout = 30ms});
    test::ReaderThread reader(domain, "sleepy");
    std::atomic<bool> returned{false};
    std::thread waiter([&] {
        domain.barrier();
        returned = true;
    });
    REQUIRE(wait_until([&] { return domain.stats().callback_warnings >= 1; }));
    CHECK_FALSE(returned.load());
    // It answers once it processes its callbacks (and reports, so that the
    // grace period its barrier head waits for can end).
    REQUIRE(wait_until([&] {
        reader.run([](rcu::QsbrReader& r) {
            r.quiescent_state();
            r.process_callbacks(16);
        });
        return returned.load();
    }));
    waiter.join();
    CHECK(returned.load());
}
