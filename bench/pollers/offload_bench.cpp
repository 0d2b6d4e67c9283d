// Offload round trips: fibers calling OffloadPool::call() on a no-op, against
// threads submitting to a mutex + condition-variable pool of the same size
// and waiting for the result on a std::future.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <quiesce/pollers/offload.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "pollers_bench.hpp"

namespace quiesce::bench {
namespace {

// The pool a user would write first: N workers, a deque of std::function
// under one mutex, a condition variable.
class Pool {
public:
    explicit Pool(unsigned threads) {
        for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
    }
    ~Pool() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& w : workers_) w.join();
    }
    void post(std::function<void()> task) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(task));
        }
        cv_.notify_one();
    }

private:
    void work() {
        std::unique_lock lock(mutex_);
        for (;;) {
            cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;
            auto task = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            task();
            lock.lock();
        }
    }
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    bool stop_ = false;
    std::vector<std::thread> workers_;
};

}  // namespace

double ours_offload_round_trips(unsigned threads, unsigned clients, std::chrono::milliseconds run) {
    sched::Scheduler scheduler({.threads = 0});
    pollers::OffloadPool pool({.threads = threads, .queue_capacity = 1024});
    pool.start();
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> trips{0};
    std::atomic<unsigned> done{0};
    const auto t0 = Clock::now();
    for (unsigned c = 0; c < clients; ++c) {
        scheduler.spawn([&] {
            std::uint64_t mine = 0;
            while (!stop.load(std::memory_order_relaxed)) mine += pool.call([] { return 1; });
            trips += mine;
            ++done;
        });
    }
    std::this_thread::sleep_for(run);
    stop = true;
    while (done.load() < clients) std::this_thread::yield();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    return static_cast<double>(trips.load()) / secs;
}

double cv_pool_round_trips(unsigned threads, unsigned clients, std::chrono::milliseconds run) {
    Pool pool(threads);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> trips{0};
    std::vector<std::thread> callers;
    const auto t0 = Clock::now();
    for (unsigned c = 0; c < clients; ++c) {
        callers.emplace_back([&] {
            std::uint64_t mine = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                std::promise<int> result;
                std::future<int> got = result.get_future();
                pool.post([&result] { result.set_value(1); });
                mine += static_cast<std::uint64_t>(got.get());
            }
            trips += mine;
        });
    }
    std::this_thread::sleep_for(run);
    stop = true;
    for (auto& c : callers) c.join();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    return static_cast<double>(trips.load()) / secs;
}

}  // namespace quiesce::bench
