// Round trips to a GLib thread and back: fibers on a loop calling
// GlibPoller::call() on a no-op (group -> GLib thread -> group), against
// std::threads calling g_main_context_invoke() on a context a GLib thread
// runs and waiting on a condition variable for the answer (what a GLib user
// writes without quiesce). Throughput and per-call latency; medians of
// alternating rounds.
//
//     build-bench/bench/glib_bench [SECONDS_PER_RUN=1] [ROUNDS=3]
#include <glib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include <quiesce/pollers/glib_poller.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "../harness.hpp"

namespace quiesce::bench {
namespace {

RoundTrips ours(unsigned clients, std::chrono::milliseconds run) {
    sched::Scheduler scheduler({.threads = 1});
    pollers::GlibPoller glib;
    glib.start();
    std::atomic<bool> stop{false};
    std::atomic<unsigned> done{0};
    std::mutex mutex;
    std::vector<double> samples;  // mutex
    std::uint64_t trips = 0;      // mutex
    const auto t0 = Clock::now();
    for (unsigned c = 0; c < clients; ++c) {
        scheduler.spawn([&] {
            std::vector<double> mine;
            mine.reserve(1 << 20);
            while (!stop.load(std::memory_order_relaxed)) {
                const auto start = Clock::now();
                (void)glib.call([] { return 1; });
                mine.push_back(
                    std::chrono::duration<double, std::micro>(Clock::now() - start).count());
            }
            std::lock_guard lock(mutex);
            trips += mine.size();
            samples.insert(samples.end(), mine.begin(), mine.end());
            ++done;
        });
    }
    std::this_thread::sleep_for(run);
    stop = true;
    while (done.load() != clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    std::lock_guard lock(mutex);
    return {static_cast<double>(trips) / seconds, summarize(samples)};
}

// The anchor: a GLib thread running a GMainLoop on its own context.
RoundTrips anchor(unsigned clients, std::chrono::milliseconds run) {
    GMainContext* context = g_main_context_new();
    GMainLoop* loop = g_main_loop_new(context, FALSE);
    std::thread gui([&] {
        g_main_context_push_thread_default(context);
        g_main_loop_run(loop);
        g_main_context_pop_thread_default(context);
    });
    while (!g_main_loop_is_running(loop)) std::this_thread::yield();
    struct Slot {
        std::mutex mutex;
        std::condition_variable cv;
        bool answered = false;
        int value = 0;
    };
    std::atomic<bool> stop{false};
    std::mutex mutex;
    std::vector<double> samples;  // mutex
    std::uint64_t trips = 0;      // mutex
    const auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (unsigned c = 0; c < clients; ++c) {
        threads.emplace_back([&] {
            std::vector<double> mine;
            mine.reserve(1 << 20);
            Slot slot;
            while (!stop.load(std::memory_order_relaxed)) {
                const auto start = Clock::now();
                slot.answered = false;
                g_main_context_invoke(
                    context,
                    [](gpointer data) -> gboolean {
                        auto* s = static_cast<Slot*>(data);
                        {
                            std::lock_guard lock(s->mutex);
                            s->value = 1;
                            s->answered = true;
                        }
                        s->cv.notify_one();
                        return G_SOURCE_REMOVE;
                    },
                    &slot);
                std::unique_lock lock(slot.mutex);
                slot.cv.wait(lock, [&] { return slot.answered; });
                lock.unlock();
                mine.push_back(
                    std::chrono::duration<double, std::micro>(Clock::now() - start).count());
            }
            std::lock_guard lock(mutex);
            trips += mine.size();
            samples.insert(samples.end(), mine.begin(), mine.end());
        });
    }
    std::this_thread::sleep_for(run);
    stop = true;
    for (auto& t : threads) t.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    g_main_loop_quit(loop);
    gui.join();
    g_main_loop_unref(loop);
    g_main_context_unref(context);
    std::lock_guard lock(mutex);
    return {static_cast<double>(trips) / seconds, summarize(samples)};
}

}  // namespace
}  // namespace quiesce::bench

int main(int argc, char** argv) {
    using namespace quiesce::bench;
    return round_trip_main(argc, argv, "glib_bench", "g_main_context_invoke", ours, anchor);
}
