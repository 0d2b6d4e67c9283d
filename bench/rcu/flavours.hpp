// The RCU flavours the rcu benchmark compares. Each lives in its own
// translation unit so that its read-side fast path is inlined into its own
// loops, as it would be in a user's code.
#pragma once

#include <chrono>
#include <cstddef>

#include "../harness.hpp"

namespace quiesce::bench {

struct ReadResult {
    double reads_per_sec = 0;    ///< per reader thread
    double updates_per_sec = 0;  ///< the concurrent updater's replace+synchronize+free
};

// Read throughput, one reader thread and one updater thread, for `run`.
// QSBR flavours report a quiescent state every `qs_interval` reads.
ReadResult ours_qsbr_reads(std::chrono::milliseconds run, int qs_interval);
ReadResult ours_preemptible_reads(std::chrono::milliseconds run);
ReadResult ours_pair_reads(std::chrono::milliseconds run);  // read_lock()/read_unlock()
ReadResult urcu_qsbr_reads(std::chrono::milliseconds run, int qs_interval);
ReadResult urcu_memb_reads(std::chrono::milliseconds run);
ReadResult shared_mutex_reads(std::chrono::milliseconds run);

// synchronize() latency while one reader thread reads continuously.
Latency ours_qsbr_sync_latency(std::size_t samples);
Latency ours_preemptible_sync_latency(std::size_t samples);
Latency urcu_qsbr_sync_latency(std::size_t samples);
Latency urcu_memb_sync_latency(std::size_t samples);

// Callbacks per second: queue `count` callbacks and wait until all ran.
// From a QSBR (loop) thread, reporting every 64 calls:
double ours_qsbr_callbacks(std::size_t count);
double urcu_qsbr_callbacks(std::size_t count);
// From a plain thread:
double ours_plain_callbacks(std::size_t count);
double urcu_memb_callbacks(std::size_t count);

}  // namespace quiesce::bench
