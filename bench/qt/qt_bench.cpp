// Round trips to a Qt thread and back: fibers on a loop calling
// QtPoller::call() on a no-op (group -> Qt thread -> group), against
// std::threads making a queued QMetaObject::invokeMethod() call to an object
// of a Qt thread and waiting on a condition variable for the answer (what a
// Qt user writes without quiesce). Throughput and per-call latency; medians
// of alternating rounds.
//
//     build-bench/bench/qt_bench [SECONDS_PER_RUN=1] [ROUNDS=3]
#include <QCoreApplication>
#include <QMetaObject>
#include <QObject>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include <quiesce/pollers/qt_poller.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "../harness.hpp"

namespace quiesce::bench {
namespace {

struct Samples {
    std::mutex mutex;
    std::vector<double> all;  // mutex
    void add(const std::vector<double>& mine) {
        std::lock_guard lock(mutex);
        all.insert(all.end(), mine.begin(), mine.end());
    }
};

double micros_since(Clock::time_point start) {
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

RoundTrips ours(unsigned clients, std::chrono::milliseconds run) {
    sched::Scheduler scheduler({.threads = 1});
    pollers::QtPoller qt;
    qt.start();
    std::atomic<bool> stop{false};
    std::atomic<unsigned> done{0};
    Samples samples;
    const auto t0 = Clock::now();
    for (unsigned c = 0; c < clients; ++c) {
        scheduler.spawn([&] {
            std::vector<double> mine;
            mine.reserve(1 << 20);
            while (!stop.load(std::memory_order_relaxed)) {
                const auto start = Clock::now();
                (void)qt.call([] { return 1; });
                mine.push_back(micros_since(start));
            }
            samples.add(mine);
            ++done;
        });
    }
    std::this_thread::sleep_for(run);
    stop = true;
    while (done.load() != clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    qt.stop();
    return {static_cast<double>(samples.all.size()) / seconds, summarize(samples.all)};
}

// The anchor: a QCoreApplication on a thread of its own, an object there,
// queued calls to it from plain threads.
RoundTrips anchor(unsigned clients, std::chrono::milliseconds run) {
    std::mutex ready_mutex;
    std::condition_variable ready_cv;
    QObject* target = nullptr;  // ready_mutex
    std::thread gui([&] {
        int argc = 1;
        char name[] = "anchor";
        char* argv[] = {name, nullptr};
        QCoreApplication app(argc, argv);
        QObject object;
        {
            std::lock_guard lock(ready_mutex);
            target = &object;
        }
        ready_cv.notify_all();
        app.exec();
    });
    {
        std::unique_lock lock(ready_mutex);
        ready_cv.wait(lock, [&] { return target != nullptr; });
    }
    struct Slot {
        std::mutex mutex;
        std::condition_variable cv;
        bool answered = false;
    };
    std::atomic<bool> stop{false};
    Samples samples;
    const auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (unsigned c = 0; c < clients; ++c) {
        threads.emplace_back([&] {
            std::vector<double> mine;
            mine.reserve(1 << 20);
            Slot slot;
            while (!stop.load(std::memory_order_relaxed)) {
                const auto start = Clock::now();
                {
                    std::lock_guard lock(slot.mutex);
                    slot.answered = false;
                }
                QMetaObject::invokeMethod(
                    target,
                    [&slot] {
                        {
                            std::lock_guard lock(slot.mutex);
                            slot.answered = true;
                        }
                        slot.cv.notify_one();
                    },
                    Qt::QueuedConnection);
                std::unique_lock lock(slot.mutex);
                slot.cv.wait(lock, [&] { return slot.answered; });
                lock.unlock();
                mine.push_back(micros_since(start));
            }
            samples.add(mine);
        });
    }
    std::this_thread::sleep_for(run);
    stop = true;
    for (auto& t : threads) t.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    QMetaObject::invokeMethod(
        target, [] { QCoreApplication::quit(); }, Qt::QueuedConnection);
    gui.join();
    return {static_cast<double>(samples.all.size()) / seconds, summarize(samples.all)};
}

}  // namespace
}  // namespace quiesce::bench

int main(int argc, char** argv) {
    using namespace quiesce::bench;
    return round_trip_main(argc, argv, "qt_bench", "queued invokeMethod", ours, anchor);
}
