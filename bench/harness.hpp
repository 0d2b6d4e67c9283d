// Small helpers shared by the benchmarks: the machine line, percentiles and a
// table that prints ours, the anchor and the ratio side by side.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace quiesce::bench {

using Clock = std::chrono::steady_clock;

inline std::string machine() {
    std::string cpu = "unknown CPU";
    std::ifstream info("/proc/cpuinfo");
    for (std::string line; std::getline(info, line);) {
        if (line.rfind("model name", 0) == 0) {
            cpu = line.substr(line.find(':') + 2);
            break;
        }
    }
    utsname u{};
    uname(&u);
    return cpu + ", " + std::to_string(std::thread::hardware_concurrency()) + " CPUs, Linux " +
           u.release;
}

/// Pins the calling thread to `cpu`. Throws std::system_error.
inline void pin_this_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); rc != 0) {
        throw std::system_error(rc, std::generic_category(), "pthread_setaffinity_np");
    }
}

/// The q-th quantile (0..1) of `samples` (sorted in place).
/// The middle value of `values` (the upper one of an even count): the
/// figure a benchmark reports over rounds.
inline double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

/// CPU time the calling thread has used, ns (CLOCK_THREAD_CPUTIME_ID).
inline std::uint64_t thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

inline double quantile(std::vector<double>& samples, double q) {
    if (samples.empty()) return 0;
    std::sort(samples.begin(), samples.end());
    auto index = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1));
    return samples[index];
}

/// A latency distribution in microseconds.
struct Latency {
    double p50_us = 0, p99_us = 0, max_us = 0;
    std::size_t samples = 0;
};

/// p50, p99 and max of `samples` (sorted in place).
inline Latency summarize(std::vector<double>& samples) {
    Latency out;
    out.samples = samples.size();
    out.p50_us = quantile(samples, 0.5);
    out.p99_us = quantile(samples, 0.99);
    out.max_us = samples.empty() ? 0 : samples.back();  // sorted by quantile()
    return out;
}

/// One comparison row. `higher_is_better` decides the ratio's direction so
/// that a ratio above 1 always means "ours is better".
inline void row(const char* metric, const char* unit, double ours, const char* anchor_name,
                double anchor, bool higher_is_better) {
    double ratio = higher_is_better ? ours / anchor : anchor / ours;
    std::printf("%-44s %14.3f %-6s %-22s %14.3f   ratio %6.2fx\n", metric, ours, unit, anchor_name,
                anchor, ratio);
    std::fflush(stdout);
}

/// A round-trip run: calls per second and their latency.
struct RoundTrips {
    double per_second = 0;
    Latency latency;
};

/// The main() of a round-trip benchmark (glib_bench, qt_bench): argv gives
/// seconds per run (1) and rounds (3); for 1 and 8 callers, runs
/// `ours(callers, run)` and `anchor(callers, run)` alternately and prints
/// the medians as rows against `anchor_name`.
template <typename Ours, typename Anchor>
int round_trip_main(int argc, char** argv, const char* title, const char* anchor_name, Ours ours,
                    Anchor anchor) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
    const int rounds = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
    const auto run = std::chrono::milliseconds(static_cast<long>(seconds * 1000));
    std::printf("# %s: %s; %.1f s per run, medians of %d alternating rounds\n", title,
                machine().c_str(), seconds, rounds);
    const auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    for (unsigned callers : {1U, 8U}) {
        std::vector<double> rate[2], p50[2], p99[2];
        for (int r = 0; r < rounds; ++r) {
            const RoundTrips got[2] = {ours(callers, run), anchor(callers, run)};
            for (int i = 0; i < 2; ++i) {
                rate[i].push_back(got[i].per_second);
                p50[i].push_back(got[i].latency.p50_us);
                p99[i].push_back(got[i].latency.p99_us);
            }
        }
        std::printf("## %u caller%s (fibers on 1 loop / std::threads)\n", callers,
                    callers == 1 ? "" : "s");
        row("round trips/s", "/s", median(rate[0]), anchor_name, median(rate[1]), true);
        row("round trip p50", "us", median(p50[0]), anchor_name, median(p50[1]), false);
        row("round trip p99", "us", median(p99[0]), anchor_name, median(p99[1]), false);
    }
    return 0;
}

}  // namespace quiesce::bench
