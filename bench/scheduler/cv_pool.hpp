// The thread pool a user would write first, as an anchor: one worker thread,
// a std::deque of std::function under a std::mutex, and a condition variable
// the worker sleeps on while the deque is empty.
//
// Threading: post() from any thread (the worker included); the worker runs
// the tasks in FIFO order. The destructor lets the worker drain and joins it.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "sched_bench.hpp"

namespace quiesce::bench {

class CvPool {
public:
    explicit CvPool(int cpu)
        : worker_([this, cpu] {
              pin_this_thread(cpu);
              work();
          }) {}
    ~CvPool() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        ready_.notify_one();
        worker_.join();
    }
    CvPool(const CvPool&) = delete;
    CvPool& operator=(const CvPool&) = delete;

    void post(std::function<void()> task) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(task));
        }
        ready_.notify_one();
    }

private:
    void work() {
        std::unique_lock lock(mutex_);
        for (;;) {
            ready_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, and drained
            std::function<void()> task = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            task();
            lock.lock();
        }
    }

    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> queue_;  // mutex_
    bool stop_ = false;                        // mutex_
    std::thread worker_;                       // last: starts once the rest exists
};

}  // namespace quiesce::bench
