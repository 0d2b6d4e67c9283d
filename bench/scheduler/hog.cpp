// Light groups beside a CPU hog on one loop. The hog's event burns CPU in
// ~100 ns steps, checks need_resched() after each step and gives the loop
// back (Status::kAgain) when it says so, or after kHogMaxRun of wall time,
// for ever until the run ends. A ticker thread on other_cpu() posts a tiny
// stamped event to one of kLightGroups light groups every 200 µs, round
// robin; each event records its posting-to-run latency.
//
// With a 500 µs slice the hog yields every slice; with slice 0 need_resched()
// never fires and only the 20 ms bound ends its event: what a user gets
// without slices.
//
// Threading: the samples are appended by light events on the loop thread and
// read after Scheduler::stop() has joined it.
#include <time.h>

#include <cstdint>
#include <vector>

#include <quiesce/scheduler/scheduler.hpp>

#include "sched_bench.hpp"

namespace quiesce::bench {
namespace {

using namespace std::chrono_literals;

constexpr auto kTick = 200us;

struct Hog {
    std::atomic<bool> stop{false};
    // Loop thread only (read after Scheduler::stop()):
    std::uint64_t state = 0x9e3779b97f4a7c15;
    std::vector<double> turn_wall_us, turn_cpu_us;
};

std::int64_t thread_cpu_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// About 100 ns of dependent multiply-adds (a linear congruential generator).
void burn(std::uint64_t& x) noexcept {
    for (int i = 0; i < 32; ++i) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        asm volatile("" : "+r"(x));
    }
}

// Burns until need_resched(), the 20 ms bound or the stop request.
sched::Status hog_burn(Hog* hog, Clock::time_point started) {
    for (std::uint64_t step = 1;; ++step) {
        burn(hog->state);
        if (sched::need_resched()) return sched::Status::kAgain;
        if (step % 64 == 0) {
            // relaxed: a stop request; Scheduler::stop() orders the rest
            if (hog->stop.load(std::memory_order_relaxed)) return sched::Status::kDone;
            if (Clock::now() - started >= kHogMaxRun) return sched::Status::kAgain;
        }
    }
}

// One hog turn, timed in wall and thread CPU time (two system calls per turn:
// ~1 µs in a turn of ~500 µs).
sched::Status hog_event(Hog* hog) {
    const std::int64_t cpu = thread_cpu_ns();
    const auto started = Clock::now();
    const sched::Status status = hog_burn(hog, started);
    hog->turn_wall_us.push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - started).count());
    hog->turn_cpu_us.push_back(static_cast<double>(thread_cpu_ns() - cpu) / 1e3);
    return status;
}

struct Light {
    std::vector<double> samples;  // loop thread only
};

}  // namespace

HogResult light_latency_with_hog(Seconds run, std::chrono::microseconds slice) {
    sched::SchedulerOptions options;
    options.threads = 1;
    options.slice = slice;
    options.name = "bench";
    sched::Scheduler scheduler(options);
    Hog hog;
    sched::Group hog_group = scheduler.make_group({.name = "hog"});
    std::vector<sched::Group> lights;
    for (int i = 0; i < kLightGroups; ++i) lights.push_back(scheduler.make_group({}));
    Light light;
    light.samples.reserve(static_cast<std::size_t>(run / kTick) + 1024);
    hog.turn_wall_us.reserve(static_cast<std::size_t>(run / 100us) + 1024);
    hog.turn_cpu_us.reserve(hog.turn_wall_us.capacity());

    hog_group.post([h = &hog] { return hog_event(h); });
    const auto started = Clock::now();
    run_pinned(other_cpu(), [&] {
        const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(run);
        auto next = Clock::now();
        for (std::size_t k = 0; next < deadline; k = (k + 1) % lights.size()) {
            std::this_thread::sleep_until(next);
            const auto posted = Clock::now();
            lights[k].post([l = &light, posted] {
                l->samples.push_back(
                    std::chrono::duration<double, std::micro>(Clock::now() - posted).count());
            });
            next += kTick;
            if (next < posted) next = posted + kTick;  // late: skip, do not burst
        }
        return 0;
    });
    const auto wall = Clock::now() - started;
    hog.stop.store(true, std::memory_order_relaxed);  // relaxed: see hog_event()
    const sched::GroupStats hog_stats = hog_group.stats();
    scheduler.stop();

    HogResult out;
    out.light = summarize(light.samples);
    out.hog_turn_wall = summarize(hog.turn_wall_us);
    out.hog_turn_cpu = summarize(hog.turn_cpu_us);
    out.hog_cpu_share = static_cast<double>(hog_stats.cpu_ns) /
                        static_cast<double>(std::chrono::nanoseconds(wall).count());
    return out;
}

}  // namespace quiesce::bench
