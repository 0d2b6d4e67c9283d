// QtPoller on a headless QCoreApplication: closures run on the Qt thread in
// the order they were queued; a fiber's call comes back with the value or
// the exception; Qt timers post to groups exactly once per timeout; stop()
// runs what was accepted and joins promptly while Qt waits; the Qt thread
// is offline while it waits and online while it delivers; run_here() runs
// the application's loop on the thread that made it. (Catch2 assertions are
// not thread-safe: other threads record into atomics.)
#include <catch2/catch.hpp>

#include <QCoreApplication>
#include <QEventLoop>
#include <QTimer>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <quiesce/pollers/qt_poller.hpp>
#include <quiesce/rcu/domain.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "gate.hpp"
#include "gui_poller_cases.hpp"
#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::wait_until;

namespace {

std::uint64_t waits(const pollers::QtPoller& qt) {
    return qt.stats().waits;
}

}  // namespace

TEST_CASE("Qt: closures run on the Qt thread in the order each thread queued them",
          "[pollers][unit]") {
    pollers::QtPoller qt;
    qt.start();
    test::check_closure_order(qt, [&] { return qt.on_qt_thread(); });
}
TEST_CASE("Qt: a fiber calls into the Qt thread and gets the value or the exception back",
          "[pollers][unit]") {
    pollers::QtPoller qt;
    qt.start();
    // "qt": the name of the application start() made.
    test::check_fiber_calls(
        qt, [] { return QCoreApplication::applicationName().toStdString(); }, std::string("qt"),
        [&] { return qt.on_qt_thread(); });
}
TEST_CASE("Qt: a Qt timer posts to a group, each timeout arriving once", "[pollers][unit]") {
    sched::Scheduler scheduler({.threads = 2});
    pollers::QtPoller qt;
    qt.start();
    sched::Group group = scheduler.make_group({.name = "from-qt"});
    constexpr int kTicks = 50;
    std::atomic<int> arrived{0}, wrong_group{0};
    REQUIRE(qt.invoke([&] {
        auto* timer = new QTimer(QCoreApplication::instance());
        auto left = std::make_shared<int>(kTicks);
        QObject::connect(timer, &QTimer::timeout, timer, [&, timer, left, group] {
            (void)group.post([&, group] {
                if (sched::Group::current() != group) wrong_group.fetch_add(1);
                arrived.fetch_add(1);
            });
            if (--*left == 0) timer->deleteLater();
        });
        timer->start(1);
    }));
    REQUIRE(wait_until([&] { return arrived.load() == kTicks; }));
    REQUIRE(test::back_at_wait(qt, waits));  // the timer is gone: nothing more is posted
    CHECK(arrived.load() == kTicks);
    CHECK(wrong_group.load() == 0);
}

TEST_CASE("Qt: stop() runs every accepted closure and joins promptly while Qt waits",
          "[pollers][unit]") {
    pollers::QtPoller qt;
    test::check_stop(qt, waits);
}
TEST_CASE("Qt: the Qt thread is offline while it waits and online while it delivers",
          "[pollers][unit]") {
    pollers::QtPoller qt;
    test::check_reader_states(qt, waits);
}
TEST_CASE("Qt: run_here() runs the application's loop on the thread that made it",
          "[pollers][unit]") {
    pollers::QtPoller qt;
    std::atomic<std::thread::id> ran_on{};
    std::atomic<int> code{-1};
    std::atomic<bool> refused_start{false};
    std::thread gui([&] {
        int argc = 1;
        char name[] = "gui";
        char* argv[] = {name, nullptr};
        QCoreApplication app(argc, argv);
        code = qt.run_here();
    });
    REQUIRE(wait_until([&] { return qt.running(); }));
    REQUIRE(qt.invoke([&] { ran_on = std::this_thread::get_id(); }));
    REQUIRE(wait_until([&] { return ran_on.load() != std::thread::id(); }));
    CHECK(ran_on.load() == gui.get_id());
    try {
        qt.start();
    } catch (const std::logic_error&) {
        refused_start = true;
    }
    CHECK(refused_start.load());
    qt.stop();
    gui.join();
    CHECK(code.load() == 0);
    CHECK_FALSE(qt.running());
}

TEST_CASE("Qt: run_here() without an application object is refused", "[pollers][unit]") {
    pollers::QtPoller qt;
    CHECK_THROWS_AS(qt.run_here(), std::logic_error);
    CHECK_FALSE(qt.running());
}

TEST_CASE("Qt: a Qt poller stopped from its own thread starts again", "[pollers][unit]") {
    pollers::QtPoller qt;
    test::check_restart_after_self_stop(qt);
}

TEST_CASE("Qt: a nested event loop's wait is no quiescent state", "[pollers][unit]") {
    pollers::QtPoller qt;
    test::check_nested_wait_holds_grace_period(qt, [] {
        QEventLoop nested;
        QTimer::singleShot(2, &nested, &QEventLoop::quit);
        nested.exec();  // waits (aboutToBlock) inside the closure's dispatch
    });
}
