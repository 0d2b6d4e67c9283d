// Helpers every measurement shares: where its threads run (the loop and every
// anchor's worker on the first CPU of the affinity mask, cross-thread posters
// on the second), and latency summaries.
#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <system_error>

#include "sched_bench.hpp"

namespace quiesce::bench {
namespace {

int nth_allowed_cpu(int n) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        throw std::system_error(errno, std::generic_category(), "sched_getaffinity");
    }
    int first = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (!CPU_ISSET(cpu, &set)) continue;
        if (first < 0) first = cpu;
        if (n-- == 0) return cpu;
    }
    return first;
}

}  // namespace

int loop_cpu() {
    static const int cpu = nth_allowed_cpu(0);
    return cpu;
}

int other_cpu() {
    static const int cpu = nth_allowed_cpu(1);
    return cpu;
}

}  // namespace quiesce::bench
