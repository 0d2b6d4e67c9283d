// Helpers of the pollers benchmark: latency summaries and CPU pinning.
#include <pthread.h>
#include <sched.h>

#include <system_error>

#include "pollers_bench.hpp"

namespace quiesce::bench {

Latency summarize(std::vector<double>& samples_us) {
    Latency out;
    out.samples = samples_us.size();
    out.p50_us = quantile(samples_us, 0.5);
    out.p99_us = quantile(samples_us, 0.99);
    return out;
}

}  // namespace quiesce::bench
