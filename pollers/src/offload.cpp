// OffloadPool: the bounded queue, its threads, back-pressure and stop.
//
// Threading: OffloadQueue::mutex guards the queue, the fibers waiting for
// room and the running flag; workers run calls with no lock held and deliver
// their results themselves (a post to the group or a fiber wake-up).
#include <quiesce/pollers/offload.hpp>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <quiesce/base/signals.hpp>

#include "fiber_wait_queue.hpp"
#include "log.hpp"

namespace quiesce::pollers {
namespace detail {

class OffloadQueue {
public:
    explicit OffloadQueue(const OffloadOptions& options) : options_(options) {}

    void start() {
        std::lock_guard lock(mutex_);
        if (running_) return;
        running_ = true;
        stopping_ = false;
        stopping_hint_.store(false, std::memory_order_relaxed);  // relaxed: no worker runs yet
        // Workers take no async signal.
        base::SignalBlock block;
        try {
            for (unsigned i = 0; i < options_.threads; ++i) {
                workers_.emplace_back([this, i] { work(i); });
            }
        } catch (const std::system_error&) {
            stopping_ = true;
            stopping_hint_.store(true, std::memory_order_relaxed);  // relaxed: a hint
            cv_.notify_all();
            throw;  // stop() joins what started
        }
    }

    void stop() noexcept {
        {
            std::lock_guard lock(mutex_);
            if (!running_ && workers_.empty()) return;
            running_ = false;
            stopping_ = true;
            stopping_hint_.store(true, std::memory_order_relaxed);  // relaxed: a hint
        }
        cv_.notify_all();
        for (std::thread& worker : workers_) worker.join();
        workers_.clear();
        std::deque<std::unique_ptr<OffloadJob>> left;
        {
            std::lock_guard lock(mutex_);
            left.swap(jobs_);
            queued_.store(0, std::memory_order_relaxed);  // relaxed: a hint
            space_waiters_.notify_all();                  // they see running_ false and give up
        }
        for (auto& job : left) job.release()->deliver(/*cancelled=*/true);
    }

    bool enqueue(std::unique_ptr<OffloadJob>& job, bool wait) {
        std::unique_lock lock(mutex_);
        while (running_ && jobs_.size() >= options_.queue_capacity) {
            if (!wait) {
                refused_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
                return false;
            }
            waited_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
            space_waiters_.wait(lock);  // a worker wakes the first waiter per job taken
        }
        if (!running_) return false;
        jobs_.push_back(std::move(job));
        queued_.store(jobs_.size(), std::memory_order_relaxed);  // relaxed: a hint for spinners
        lock.unlock();
        cv_.notify_one();
        return true;
    }

    OffloadStats stats() const {
        OffloadStats out;
        out.completed = completed_.load(std::memory_order_relaxed);  // relaxed: counters
        out.refused = refused_.load(std::memory_order_relaxed);
        out.waited = waited_.load(std::memory_order_relaxed);
        std::lock_guard lock(mutex_);
        out.queued = jobs_.size();
        out.running = running_jobs_;
        return out;
    }

private:
    void work(unsigned index) noexcept {
        std::string name = options_.name.substr(0, 10) + "/" + std::to_string(index);
        pthread_setname_np(pthread_self(), name.c_str());
        for (;;) {
            std::unique_ptr<OffloadJob> job;
            spin_for_work();
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
                if (stopping_) return;  // queued jobs are cancelled by stop()
                job = std::move(jobs_.front());
                jobs_.pop_front();
                queued_.store(jobs_.size(), std::memory_order_relaxed);  // relaxed: a hint
                ++running_jobs_;
                // A slot is free: the first fiber waiting for one may queue.
                (void)space_waiters_.notify_one();
            }
            job->run();
            {
                std::lock_guard lock(mutex_);
                --running_jobs_;
            }
            completed_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
            job.release()->deliver(/*cancelled=*/false);
        }
    }

    // Before it sleeps, a worker looks for the next call for a while, giving
    // its CPU to any other runnable thread between looks: a caller that
    // submits again at once (a fiber whose previous call just came back)
    // then costs no futex wake-up on either side.
    void spin_for_work() const noexcept {
        if (options_.spin.count() <= 0) return;
        const auto until = std::chrono::steady_clock::now() + options_.spin;
        // relaxed: a hint; the mutex below decides
        while (queued_.load(std::memory_order_relaxed) == 0 &&
               !stopping_hint_.load(std::memory_order_relaxed)) {
            if (std::chrono::steady_clock::now() >= until) return;
            sched_yield();
        }
    }

    const OffloadOptions& options_;
    std::atomic<std::size_t> queued_{0};      // jobs_.size(), written under mutex_
    std::atomic<bool> stopping_hint_{false};  // stopping_, written under mutex_
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<OffloadJob>> jobs_;  // mutex_
    FiberWaitQueue space_waiters_;                  // mutex_
    std::size_t running_jobs_ = 0;                  // mutex_
    bool running_ = false;                          // mutex_
    bool stopping_ = false;                         // mutex_
    std::vector<std::thread> workers_;              // start()/stop() only
    std::atomic<std::uint64_t> completed_{0};
    std::atomic<std::uint64_t> refused_{0};
    std::atomic<std::uint64_t> waited_{0};
};

void wait_until_finished(const std::atomic<bool>& finished) noexcept {
    // [OF1] acquire, pairs with the release store in FiberJob::deliver().
    for (int spins = 0; !finished.load(std::memory_order_acquire); ++spins) {
        if (spins < 100) {
            std::this_thread::yield();
        } else {
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
    }
}

namespace {

OffloadOptions validated(OffloadOptions options) {
    if (options.threads == 0) throw std::invalid_argument("OffloadOptions::threads must be >= 1");
    if (options.queue_capacity == 0) {
        throw std::invalid_argument("OffloadOptions::queue_capacity must be >= 1");
    }
    if (options.name.empty()) options.name = "offload";
    return options;
}

}  // namespace
}  // namespace detail

OffloadPool::OffloadPool(OffloadOptions options)
    : Poller(options.name),
      options_(detail::validated(std::move(options))),
      queue_(std::make_unique<detail::OffloadQueue>(options_)) {}

OffloadPool::~OffloadPool() {
    stop();
}

void OffloadPool::start() {
    try {
        queue_->start();
    } catch (...) {
        queue_->stop();
        throw;
    }
    detail::logger().debug("offload pool '{}': {} threads, queue of {}", name(), options_.threads,
                           options_.queue_capacity);
}

void OffloadPool::stop() noexcept {
    queue_->stop();
}

bool OffloadPool::enqueue(std::unique_ptr<detail::OffloadJob>& job, bool wait) {
    return queue_->enqueue(job, wait);
}

OffloadStats OffloadPool::stats() const {
    return queue_->stats();
}

}  // namespace quiesce::pollers
