// The loop stall detector (private): one thread for the whole runtime that
// watches what every loop runs (Scheduler::activity()) and reports an event
// that has run longer than the threshold of the loop thread's CPU time
// without giving way, while it still runs: the loop, the group, how long,
// and a backtrace of the loop thread taken then (the backtrace signal,
// base::backtrace_signal(), sent to that thread alone). Later reports of the
// same stall come at 2x, 4x, ... the threshold; at most kReportsPerMinute
// reports a minute in all.
//
// The loops do almost nothing for it (a relaxed store of a sequence number
// per event): an unchanged (group, event number) pair between two looks
// means the same event still runs, and the loop thread's CPU clock (readable
// from any thread) says how long it has used the CPU since. A group that
// keeps its loop busy with many short events is not a stall.
//
// Threading: the detector's own thread; reports(), last() and dump() from any
// thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/framework/runtime.hpp>
#include <quiesce/scheduler/scheduler.hpp>

namespace quiesce::detail {

class StallDetector {
public:
    static constexpr int kReportsPerMinute = 5;
    static constexpr std::size_t kRecentReports = 16;

    StallDetector(sched::Scheduler& scheduler, std::chrono::milliseconds threshold);
    ~StallDetector();
    StallDetector(const StallDetector&) = delete;
    StallDetector& operator=(const StallDetector&) = delete;

    [[nodiscard]] std::uint64_t reports() const noexcept {
        return reports_.load(std::memory_order_relaxed);  // relaxed: a statistic
    }
    [[nodiscard]] std::string last() const;
    /// The last kRecentReports reports (their first line), oldest first.
    [[nodiscard]] std::vector<StallRecord> recent() const;
    /// What every loop runs now and for how long it has been seen running.
    [[nodiscard]] std::vector<LoopNow> now() const;
    /// One line per loop: what it runs and for how long (the live dump).
    [[nodiscard]] std::string dump() const;

private:
    struct Watch {
        std::uint64_t group_id = 0;
        std::uint64_t event_seq = 0;
        std::uint64_t cpu_at_start = 0;  // the loop thread's CPU clock when first seen
        std::chrono::steady_clock::time_point seen{};
        std::uint64_t next_report_ns = 0;
        bool active = false;
    };

    void run();
    void look();
    void report(const sched::LoopActivity& loop, std::uint64_t cpu_ns);

    sched::Scheduler& scheduler_;
    const std::chrono::milliseconds threshold_;
    std::vector<Watch> watches_;  // mutex_
    mutable std::mutex mutex_;
    std::condition_variable stop_cv_;
    bool stopping_ = false;                                      // mutex_
    std::string last_;                                           // mutex_
    std::deque<StallRecord> recent_reports_;                     // mutex_
    std::vector<std::chrono::steady_clock::time_point> recent_;  // detector thread: report times
    std::uint64_t suppressed_ = 0;                               // detector thread
    std::atomic<std::uint64_t> reports_{0};
    std::thread thread_;
};

}  // namespace quiesce::detail
