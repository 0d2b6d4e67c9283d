// Small helpers shared by the benchmarks: the machine line, percentiles and a
// table that prints ours, the anchor and the ratio side by side.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
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

}  // namespace quiesce::bench
