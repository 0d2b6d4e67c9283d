// See stall_detector.hpp.
#include "stall_detector.hpp"

#include <execinfo.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include <quiesce/base/signals.hpp>

#include "log.hpp"

namespace quiesce::detail {
namespace {

constexpr int kMaxFrames = 48;

// The backtrace handler's mailbox: one request at a time (the detector's
// thread sends them one by one and waits).
std::atomic<int> g_target_tid{0};
void* g_frames[kMaxFrames];
std::atomic<int> g_depth{-1};

void on_backtrace_signal(int) {
    const int saved = errno;
    // [SD1] acquire, pairs with the release store in take_backtrace(): the
    // detector's reads of the previous frames happen before these writes.
    if (static_cast<int>(::syscall(SYS_gettid)) == g_target_tid.load(std::memory_order_acquire)) {
        int depth = ::backtrace(g_frames, kMaxFrames);
        g_depth.store(
            depth, std::memory_order_release);  // [SD2] pairs with the acquire in take_backtrace()
    }
    errno = saved;
}

void install_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        void* prime[2];
        ::backtrace(prime, 2);  // loads the unwinder now, not inside the handler
        struct sigaction action {};
        action.sa_handler = on_backtrace_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_RESTART;
        ::sigaction(base::backtrace_signal(), &action, nullptr);
    });
}

/// The loop thread's backtrace, symbolised, or why there is none.
std::string take_backtrace(int tid) {
    static std::mutex one_at_a_time;
    std::lock_guard lock(one_at_a_time);
    g_depth.store(-1, std::memory_order_relaxed);
    g_target_tid.store(tid, std::memory_order_release);  // [SD1]
    if (::syscall(SYS_tgkill, ::getpid(), tid, base::backtrace_signal()) != 0)
        return "  (no backtrace: tgkill failed)\n";
    int depth = -1;
    for (int i = 0; i < 200 && depth < 0; ++i) {
        depth = g_depth.load(std::memory_order_acquire);  // [SD2]
        if (depth < 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    g_target_tid.store(0, std::memory_order_relaxed);
    if (depth <= 0) return "  (no backtrace: the loop thread did not answer within 100 ms)\n";
    std::string out;
    char** names = ::backtrace_symbols(g_frames, depth);
    // Frame 0-1 are the handler and the signal trampoline.
    for (int i = 2; i < depth; ++i)
        out += fmt::format("  #{} {}\n", i - 2, names != nullptr ? names[i] : "?");
    std::free(names);
    return out;
}

bool thread_cpu_ns(int tid, std::uint64_t& out) noexcept {
    // The CPU clock of thread `tid`, as glibc's pthread_getcpuclockid() builds it.
    const auto clock = static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6u);
    timespec ts{};
    if (clock_gettime(clock, &ts) != 0) return false;
    out = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
          static_cast<std::uint64_t>(ts.tv_nsec);
    return true;
}

}  // namespace

StallDetector::StallDetector(sched::Scheduler& scheduler, std::chrono::milliseconds threshold)
    : scheduler_(scheduler), threshold_(threshold), watches_(scheduler.loop_count()) {
    install_handler();
    base::SignalBlock block;  // the thread starts with async signals blocked
    thread_ = std::thread([this] { run(); });
}

StallDetector::~StallDetector() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    stop_cv_.notify_all();
    thread_.join();
}

std::string StallDetector::last() const {
    std::lock_guard lock(mutex_);
    return last_;
}

void StallDetector::run() {
    // Threshold 0: no reports, but the dump still says how long events run.
    const auto interval = threshold_.count() == 0
                              ? std::chrono::milliseconds(25)
                              : std::clamp(threshold_ / 4, std::chrono::milliseconds(1),
                                           std::chrono::milliseconds(25));
    std::unique_lock lock(mutex_);
    while (!stop_cv_.wait_for(lock, interval, [this] { return stopping_; })) {
        lock.unlock();
        look();
        lock.lock();
    }
}

void StallDetector::look() {
    const std::vector<sched::LoopActivity> loops = scheduler_.activity();
    const auto now = std::chrono::steady_clock::now();
    const auto threshold_ns =
        static_cast<std::uint64_t>(std::chrono::nanoseconds(threshold_).count());
    for (const sched::LoopActivity& loop : loops) {
        std::uint64_t cpu = 0;
        const bool have_cpu = loop.tid != 0 && thread_cpu_ns(loop.tid, cpu);
        bool due = false;
        std::uint64_t used = 0;
        {
            std::lock_guard lock(mutex_);
            if (loop.loop >= watches_.size()) continue;
            Watch& watch = watches_[loop.loop];
            if (!loop.running || !have_cpu) {
                watch.active = false;
                continue;
            }
            if (!watch.active || watch.group_id != loop.group_id ||
                watch.event_seq != loop.event_seq) {
                watch = {loop.group_id, loop.event_seq, cpu, now, threshold_ns, true};
                continue;
            }
            used = cpu - watch.cpu_at_start;
            if (threshold_ns != 0 && used >= watch.next_report_ns) {
                due = true;
                watch.next_report_ns *= 2;  // the same stall again at 2x, 4x, ...
            }
        }
        if (due) report(loop, used);
    }
}

void StallDetector::report(const sched::LoopActivity& loop, std::uint64_t cpu_ns) {
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(recent_, [&](auto t) { return now - t > std::chrono::minutes(1); });
    if (static_cast<int>(recent_.size()) >= kReportsPerMinute) {
        ++suppressed_;
        return;
    }
    recent_.push_back(now);
    std::string text = fmt::format(
        "loop {} stalled: group \"{}\" (#{}) has run for {} ms of CPU without giving way (stall "
        "threshold {} ms; long work must poll need_resched()); {} groups wait for this loop{}",
        loop.loop, loop.group_name, loop.group_id, cpu_ns / 1'000'000, threshold_.count(),
        loop.queued,
        suppressed_ > 0 ? fmt::format("; {} reports suppressed in the last minute", suppressed_)
                        : std::string());
    suppressed_ = 0;
    std::string trace = take_backtrace(loop.tid);
    logger().warn("{}; backtrace of the loop thread:\n{}", text, trace);
    reports_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    std::lock_guard lock(mutex_);
    last_ = text;
    recent_reports_.push_back(
        {std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(),
         text});
    if (recent_reports_.size() > kRecentReports) recent_reports_.pop_front();
}

std::vector<StallRecord> StallDetector::recent() const {
    std::lock_guard lock(mutex_);
    return {recent_reports_.begin(), recent_reports_.end()};
}

std::vector<LoopNow> StallDetector::now() const {
    const std::vector<sched::LoopActivity> loops = scheduler_.activity();
    const auto now = std::chrono::steady_clock::now();
    std::vector<LoopNow> out;
    out.reserve(loops.size());
    std::lock_guard lock(mutex_);
    for (const sched::LoopActivity& loop : loops) {
        LoopNow entry;
        entry.loop = loop.loop;
        entry.queued = loop.queued;
        entry.running = loop.running;
        if (loop.running) {
            entry.group = loop.group_name;
            entry.group_id = loop.group_id;
            if (loop.loop < watches_.size()) {
                const Watch& watch = watches_[loop.loop];
                if (watch.active && watch.group_id == loop.group_id &&
                    watch.event_seq == loop.event_seq)
                    entry.running_ms =
                        std::chrono::duration<double, std::milli>(now - watch.seen).count();
            }
        }
        out.push_back(std::move(entry));
    }
    return out;
}

std::string StallDetector::dump() const {
    const std::vector<sched::LoopActivity> loops = scheduler_.activity();
    const auto now = std::chrono::steady_clock::now();
    std::string out;
    std::lock_guard lock(mutex_);
    for (const sched::LoopActivity& loop : loops) {
        if (!loop.running) {
            out += fmt::format("loop {}: between groups or idle, {} groups waiting\n", loop.loop,
                               loop.queued);
            continue;
        }
        std::string since;
        if (loop.loop < watches_.size()) {
            const Watch& watch = watches_[loop.loop];
            if (watch.active && watch.group_id == loop.group_id &&
                watch.event_seq == loop.event_seq)
                since = fmt::format(
                    " for at least {} ms",
                    std::chrono::duration_cast<std::chrono::milliseconds>(now - watch.seen)
                        .count());
        }
        out += fmt::format("loop {}: running group \"{}\" (#{}){}, {} groups waiting\n", loop.loop,
                           loop.group_name, loop.group_id, since, loop.queued);
    }
    return out;
}

}  // namespace quiesce::detail
