// bench/scheduler: quiesce's scheduler against what a user would pick
// instead, all in one run: event dispatch against libevent's event_active()
// and a mutex + condition-variable pool, cross-thread post latency against
// that pool, the fiber switch against a bare Boost.Context fiber,
// need_resched() against reading the thread CPU clock, and light groups'
// latency beside a CPU hog with and without slices. Each comparison
// alternates ours and the anchors for several rounds and prints the medians
// and their ratio (above 1: ours is better).
//
// Usage: sched_bench [seconds-per-run [rounds [sections]]]
//            sections: any of 12345 (default all); g runs only the
//            post(Event&)-to-64-groups shape, for profiling a group turn
//        sched_bench callgrind [calls]           (see resched.cpp)
//        sched_bench perfwake [seconds [rounds]]  (see perf_wake.cpp)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <quiesce/base/log.hpp>

#include "sched_bench.hpp"
#include "slice_clock.hpp"

using namespace quiesce::bench;
using namespace std::chrono_literals;

namespace {

int rounds = 3;
constexpr int kBatch = 64;

// Runs each function once per round, in turn, `rounds` times; the medians.
std::vector<double> alternate(const std::vector<std::function<double()>>& runs) {
    std::vector<std::vector<double>> results(runs.size());
    for (int r = 0; r < rounds; ++r) {
        for (std::size_t i = 0; i < runs.size(); ++i) results[i].push_back(runs[i]());
    }
    std::vector<double> medians;
    for (auto& result : results) medians.push_back(quantile(result, 0.5));
    return medians;
}

void dispatch(Seconds run) {
    std::printf(
        "-- 1. event dispatch on one thread (M events/s, counting only the trivial events; "
        "ratio = ours / anchor)\n"
        "   ours: a Scheduler with threads = 1 (pinned, slice 500 us, max 1024 events per "
        "turn);\n"
        "   libevent 2.1: event_base without locking, event_active() + "
        "event_base_loop(EVLOOP_NONBLOCK);\n"
        "   pool: one worker, std::deque<std::function<void()>> under std::mutex + "
        "std::condition_variable.\n"
        "   chain: each event posts the next (ours: group.post(lambda) from the event; "
        "libevent: the callback\n"
        "          event_active()s its own event, 1024 per loop pass; pool: the task posts the "
        "next task).\n"
        "   batch %d: a driver posts %d trivial events, then itself; ours posts from a loop "
        "event, either\n"
        "          lambdas or pre-created Events (post(Event&)) into its own group (one turn "
        "runs them),\n"
        "          or each Event to its own group (%d groups: one group turn per event); "
        "libevent activates\n"
        "          %d pre-created events, then runs one loop pass; pool: a task posts %d tasks, "
        "then itself.\n",
        kBatch, kBatch, kBatch, kBatch, kBatch);
    auto chain = alternate({[&] { return ours_chain(run); }, [&] { return libevent_chain(run); },
                            [&] { return pool_chain(run); }});
    row("chain, group.post(lambda)", "M/s", chain[0] / 1e6, "libevent event_active", chain[1] / 1e6,
        true);
    row("chain, group.post(lambda)", "M/s", chain[0] / 1e6, "mutex+cv pool", chain[2] / 1e6, true);
    auto batch = alternate({[&] { return ours_batch_events(run, kBatch); },
                            [&] { return ours_batch_lambdas(run, kBatch); },
                            [&] { return ours_events_to_groups(run, kBatch); },
                            [&] { return libevent_batch(run, kBatch); },
                            [&] { return pool_batch(run, kBatch); }});
    row("batch 64, post(Event&), one group [target]", "M/s", batch[0] / 1e6,
        "libevent event_active", batch[3] / 1e6, true);
    row("batch 64, group.post(lambda), one group", "M/s", batch[1] / 1e6, "libevent event_active",
        batch[3] / 1e6, true);
    row("batch 64, group.post(lambda), one group", "M/s", batch[1] / 1e6, "mutex+cv pool",
        batch[4] / 1e6, true);
    row("batch 64, post(Event&), 64 groups", "M/s", batch[2] / 1e6, "libevent event_active",
        batch[3] / 1e6, true);
    std::printf("   target: batch dispatch >= 1.50x libevent's event_active path\n\n");
}

void latency(Seconds run) {
    std::printf(
        "-- 2. cross-thread post-to-run latency (us; ratio = anchor / ours). A poster on the "
        "other CPU stamps\n"
        "   an event, posts it, waits until it ran, pauses and repeats. asleep: the loop (pool "
        "worker) sleeps\n"
        "   on its futex (condition variable) before each post; busy: a spinner that yields "
        "after every run\n"
        "   keeps it awake (ours: an event returning kAgain, one per group turn; pool: a task "
        "re-posting itself).\n");
    for (bool busy : {false, true}) {
        // Asleep, ours also runs with slice 0 (no perf event on the loop
        // thread), which shows what the tick source adds to a wake-up.
        std::vector<double> ours50, ours99, pool50, pool99, bare50, bare99;
        std::size_t samples = 0;
        for (int r = 0; r < rounds; ++r) {
            Latency ours = ours_post_latency(run, busy);
            Latency pool = pool_post_latency(run, busy);
            Latency bare = busy ? Latency{} : ours_post_latency(run, busy, false);
            ours50.push_back(ours.p50_us);
            ours99.push_back(ours.p99_us);
            pool50.push_back(pool.p50_us);
            pool99.push_back(pool.p99_us);
            bare50.push_back(bare.p50_us);
            bare99.push_back(bare.p99_us);
            samples += ours.samples + pool.samples + bare.samples;
        }
        const char* what = busy ? "loop busy" : "loop asleep";
        std::string p50 = std::string("post to run, ") + what + ", p50";
        std::string p99 = std::string("post to run, ") + what + ", p99";
        row(p50.c_str(), "us", quantile(ours50, .5), "mutex+cv pool", quantile(pool50, .5), false);
        row(p99.c_str(), "us", quantile(ours99, .5), "mutex+cv pool", quantile(pool99, .5), false);
        if (!busy) {
            row("post to run, asleep, slice 0 (no perf), p50", "us", quantile(bare50, .5),
                "mutex+cv pool", quantile(pool50, .5), false);
            row("post to run, asleep, slice 0 (no perf), p99", "us", quantile(bare99, .5),
                "mutex+cv pool", quantile(pool99, .5), false);
        }
        std::printf("   (%zu samples in all)\n", samples);
    }
    std::printf("\n");
}

void fibers(Seconds run) {
    std::printf(
        "-- 3. fiber switch, resume + suspend round trip (ns; ratio = anchor / ours); "
        "Boost.Context fcontext.\n"
        "   inline: the raw switch inlined into the benchmark loop; noinline: inside a "
        "non-inlined function\n"
        "   on both sides, as a scheduler calls it (FiberContext's resume() and suspend() are "
        "out of line).\n");
    auto ns = alternate({[&] { return fiber_context_round_trip(run); },
                         [&] { return boost_fiber_round_trip(run); },
                         [&] { return boost_fiber_noinline_round_trip(run); },
                         [&] { return fiber_yield_round_trip(run); }});
    row("FiberContext resume + suspend", "ns", ns[0], "boost fiber, inline", ns[1], false);
    row("FiberContext resume + suspend", "ns", ns[0], "boost fiber, noinline", ns[2], false);
    row("this_fiber::yield(), a whole group turn", "ns", ns[3], "boost fiber, noinline", ns[2],
        false);
    std::printf("\n");
}

void resched(Seconds run) {
    std::printf(
        "-- 4. need_resched() vs clock_gettime(CLOCK_THREAD_CPUTIME_ID), ns per call "
        "(ratio = anchor / ours),\n"
        "   in a group event on a loop thread, a compiler barrier between calls. Long slice: "
        "never expires\n"
        "   (fast path only); 500 us slices: the event returns kAgain when it fires, and the "
        "time of every\n"
        "   turn and what lies between is divided by the calls made.\n");
    auto ns = alternate(
        {[&] { return need_resched_ns(run); }, [&] { return need_resched_expiring_ns(run); },
         [&] { return thread_cputime_ns(run / 4); }, [&] { return empty_loop_ns(run / 4); },
         [&] { return monotonic_ns(run / 4); }});
    row("need_resched(), long slice", "ns", ns[0], "CLOCK_THREAD_CPUTIME_ID", ns[2], false);
    row("need_resched(), 500 us slices (amortized)", "ns", ns[1], "CLOCK_THREAD_CPUTIME_ID", ns[2],
        false);
    std::printf(
        "   the empty loop alone: %.3f ns per iteration; CLOCK_MONOTONIC (vDSO): %.1f ns per "
        "call\n"
        "   target: need_resched() <= 5 ns and <= 20 instructions\n"
        "   (instructions: run `sched_bench callgrind` under callgrind, see "
        "docs/BENCHMARKS.md)\n\n",
        ns[3], ns[4]);
}

void hog(Seconds run) {
    std::printf(
        "-- 5. light groups beside a CPU hog (us; ratio = anchor / ours). One loop; the hog "
        "burns CPU, checks\n"
        "   need_resched() every ~100 ns and returns kAgain when it fires or after %lld ms; "
        "%d light groups get\n"
        "   a tiny event each, posted by a thread on the other CPU, one every 200 us round "
        "robin. Anchor:\n"
        "   slice 0 (need_resched() never fires: what a user gets without slices).\n",
        static_cast<long long>(kHogMaxRun.count()), kLightGroups);
    std::vector<double> s50, s99, z50, z99, share_s, share_z, wall99, cpu50, cpu99, over;
    std::size_t samples = 0;
    for (int r = 0; r < rounds; ++r) {
        HogResult sliced = light_latency_with_hog(run * 2, 500us);
        HogResult none = light_latency_with_hog(run * 2, 0us);
        s50.push_back(sliced.light.p50_us);
        s99.push_back(sliced.light.p99_us);
        z50.push_back(none.light.p50_us);
        z99.push_back(none.light.p99_us);
        share_s.push_back(sliced.hog_cpu_share);
        share_z.push_back(none.hog_cpu_share);
        wall99.push_back(sliced.hog_turn_wall.p99_us);
        cpu50.push_back(sliced.hog_turn_cpu.p50_us);
        cpu99.push_back(sliced.hog_turn_cpu.p99_us);
        samples += sliced.light.samples + none.light.samples;
    }
    row("light group post to run, slice 500 us, p50", "us", quantile(s50, .5), "slice 0",
        quantile(z50, .5), false);
    row("light group post to run, slice 500 us, p99", "us", quantile(s99, .5), "slice 0",
        quantile(z99, .5), false);
    std::printf(
        "   hog's share of the loop's wall time: %.1f%% (slice 500 us), %.1f%% (slice 0); %zu "
        "samples in all\n"
        "   hog turns at slice 500 us: thread CPU time p50 %.0f us, p99 %.0f us; wall time p99 "
        "%.0f us\n"
        "   target: p99 <= 2 slices (1000 us) at 500 us\n\n",
        100 * quantile(share_s, .5), 100 * quantile(share_z, .5), samples, quantile(cpu50, .5),
        quantile(cpu99, .5), quantile(wall99, .5));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "callgrind") == 0) {
        return callgrind_main(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1'000'000);
    }
    if (argc > 1 && std::strcmp(argv[1], "perfwake") == 0) {
        return perf_wake_main(Seconds(argc > 2 ? std::atof(argv[2]) : 1.0),
                              argc > 3 ? std::atoi(argv[3]) : 3);
    }
    const double seconds = argc > 1 ? std::atof(argv[1]) : 0.5;
    if (argc > 2) rounds = std::atoi(argv[2]);
    const std::string sections = argc > 3 ? argv[3] : "12345";
    const Seconds run(seconds);
    // One line says which tick source the loops use; the per-scheduler info
    // lines that follow would only interleave with the table.
    std::string clock;
    {
        quiesce::sched::SliceClock probe(500us, sched::SliceMode::kAuto);
        clock = std::string(to_string(probe.mode()));
        if (probe.mode() == sched::SliceMode::kPerfEvent && !probe.ticks_in_kernel())
            clock += " (user time only)";
    }
    if (std::getenv("SPDLOG_LEVEL") == nullptr) quiesce::log::set_level("warn");
    std::printf("quiesce scheduler benchmark on %s\n", machine().c_str());
    std::printf(
        "%.2f s per run, medians of %d alternating rounds; the loop and every anchor's worker "
        "on CPU %d,\nposters on CPU %d; slice clock: %s; ratio above 1: ours is better\n\n",
        seconds, rounds, loop_cpu(), other_cpu(), clock.c_str());
    if (sections.find('1') != std::string::npos) dispatch(run);
    if (sections.find('2') != std::string::npos) latency(run);
    if (sections.find('3') != std::string::npos) fibers(run);
    if (sections.find('4') != std::string::npos) resched(run);
    if (sections.find('5') != std::string::npos) hog(run);
    if (sections.find('g') != std::string::npos) {
        // For profiling: only the shape that runs one group turn per event.
        std::printf("post(Event&) to 64 groups: %.3f M events/s\n",
                    ours_events_to_groups(run, kBatch) / 1e6);
    }
    return 0;
}
