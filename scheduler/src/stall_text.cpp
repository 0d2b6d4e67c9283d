// The text the scheduler adds to an RCU stall warning about one of its loops:
// which group the loop runs, and whether it is a hog (it used the CPU), a
// blocking call (the thread sleeps in the kernel) or a starved thread (it is
// runnable, but the kernel or the host does not run it).
//
// Threading: called on the RCU driver thread (the domain's stall hook), under
// the registry mutex; it reads the loop's published CPU sample and the loop
// thread's CPU clock and state from outside.
#include <time.h>

#include <fstream>
#include <string>

#include <fmt/format.h>

#include "group_core.hpp"
#include "loop.hpp"
#include "scheduler_impl.hpp"
#include "timer_heap.hpp"

namespace quiesce::sched::detail {
namespace {

/// The CPU clock of thread `tid` (as glibc's pthread_getcpuclockid() builds
/// it), readable from any thread of the process.
clockid_t thread_cpu_clock(int tid) noexcept {
    return static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6u);
}

bool thread_cpu_ns(int tid, std::uint64_t& out) noexcept {
    timespec ts{};
    if (clock_gettime(thread_cpu_clock(tid), &ts) != 0) return false;
    out = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
          static_cast<std::uint64_t>(ts.tv_nsec);
    return true;
}

/// The scheduler state letter of thread `tid` (R running or runnable, S
/// sleeping, D in uninterruptible wait, ...), or '?'.
char thread_state(int tid) {
    std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return '?';
    const auto paren = line.rfind(')');  // the name may hold spaces and parentheses
    return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : '?';
}

std::string seconds(std::uint64_t ns) {
    return ns >= 1'000'000'000 ? fmt::format("{:.2f} s", static_cast<double>(ns) / 1e9)
                               : fmt::format("{} ms", ns / 1'000'000);
}

}  // namespace

std::string SchedulerImpl::describe_stall(const rcu::StallInfo& info) const {
    for (const auto& loop : loops_) {
        if (loop->tid() != info.tid) continue;
        // Under the registry mutex a group read from running() cannot be
        // destroyed: the loop clears it before dropping its reference, and the
        // destructor unlinks under this mutex.
        std::lock_guard lock(registry_->mutex);
        const std::string who =
            fmt::format("scheduler \"{}\" loop {}", options_.name, loop->index());
        GroupCore* group = loop->running();
        const std::string what = group != nullptr
                                     ? fmt::format("group \"{}\" (#{})", group->name, group->id)
                                     : std::string("no group (between groups: timers, callbacks)");
        const auto held =
            std::chrono::duration_cast<std::chrono::milliseconds>(info.since_quiescent);
        // CPU time the loop thread used since its last sample (taken when it
        // woke, and every 10 ms while it ran turns), against the wall time.
        const CpuSample sample = loop->cpu_sample();
        const std::int64_t wall = TimerHeap::now_ns() - sample.wall_ns;
        std::uint64_t cpu_now = 0;
        if (wall <= 0 || !thread_cpu_ns(info.tid, cpu_now) || cpu_now < sample.cpu_ns) {
            return fmt::format("{} is running {} for at least {} ms", who, what, held.count());
        }
        const std::uint64_t cpu = cpu_now - sample.cpu_ns;
        const auto window = static_cast<std::uint64_t>(wall);
        if (cpu * 2 >= window) {
            return fmt::format(
                "{} is running {} for at least {} ms: {} ran it for {} of CPU in the last {} (an "
                "event that neither returns nor yields; long work must poll need_resched())",
                who, what, held.count(), who.substr(who.rfind("loop ")), seconds(cpu),
                seconds(window));
        }
        const char state = thread_state(info.tid);
        if (state == 'S' || state == 'D') {
            return fmt::format(
                "{} is running {} for at least {} ms, but used {} of CPU in the last {}: the "
                "thread is blocked in the kernel (state {}); an event made a blocking call (use "
                "a poller, or a fiber and its waits)",
                who, what, held.count(), seconds(cpu), seconds(window), state);
        }
        return fmt::format(
            "{} is running {} for at least {} ms, but {} got {} of CPU in the last {}: the "
            "thread is not being scheduled (state {}: other threads or the host take its CPU)",
            who, what, held.count(), who.substr(who.rfind("loop ")), seconds(cpu), seconds(window),
            state);
    }
    return {};
}

}  // namespace quiesce::sched::detail
