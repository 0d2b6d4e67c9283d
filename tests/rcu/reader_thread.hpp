// A QSBR reader on its own thread, driven step by step by the test: each
// command runs on the reader's thread and is acknowledged before run()
// returns, so tests are hand-shakes, never sleeps.
#pragma once

#include <atomic>
#include <functional>
#include <thread>

#include <quiesce/rcu/qsbr.hpp>

#include "wait.hpp"

namespace quiesce::test {

class ReaderThread {
public:
    explicit ReaderThread(rcu::Domain& domain, const char* name = "reader") {
        thread_ = std::thread([this, &domain, name] {
            rcu::QsbrReader reader(domain, name);
            reader_ = &reader;
            ready_.store(true, std::memory_order_release);
            for (;;) {
                std::uint64_t want = requested_.load(std::memory_order_acquire);
                if (want == done_.load(std::memory_order_relaxed)) {
                    sched_yield();
                    continue;
                }
                if (!job_) break;
                job_(reader);
                done_.store(want, std::memory_order_release);
            }
            reader_ = nullptr;
        });
        (void)wait_until([this] { return ready_.load(std::memory_order_acquire); });
    }
    ~ReaderThread() {
        job_ = nullptr;
        requested_.fetch_add(1, std::memory_order_release);
        thread_.join();
    }

    /// Runs `job` on the reader thread and waits for it to finish.
    void run(std::function<void(rcu::QsbrReader&)> job) {
        job_ = std::move(job);
        std::uint64_t ticket = requested_.fetch_add(1, std::memory_order_release) + 1;
        (void)wait_until([&] { return done_.load(std::memory_order_acquire) == ticket; });
    }
    void report() {
        run([](rcu::QsbrReader& r) { r.quiescent_state(); });
    }
    void offline() {
        run([](rcu::QsbrReader& r) { r.offline(); });
    }
    void online() {
        run([](rcu::QsbrReader& r) { r.online(); });
    }

private:
    std::thread thread_;
    std::function<void(rcu::QsbrReader&)> job_;
    rcu::QsbrReader* reader_ = nullptr;
    std::atomic<bool> ready_{false};
    std::atomic<std::uint64_t> requested_{0};
    std::atomic<std::uint64_t> done_{0};
};

}  // namespace quiesce::test
