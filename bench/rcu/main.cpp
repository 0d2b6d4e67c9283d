// bench/rcu: quiesce's RCU against liburcu (urcu-qsbr, urcu-memb) and
// std::shared_mutex, all in one run. Prints ours, the anchor and the ratio
// (above 1: ours is better). Usage: rcu_bench [seconds-per-throughput-run]
#include <cstdio>
#include <cstdlib>

#include "../harness.hpp"
#include "flavours.hpp"

using namespace quiesce::bench;

int main(int argc, char** argv) {
    double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
    auto run = std::chrono::milliseconds(static_cast<long>(seconds * 1000));
    std::printf("quiesce rcu benchmark on %s\n", machine().c_str());
    std::printf("one reader thread + one updater thread; %.1f s per throughput run\n\n", seconds);

    std::printf("-- read-side throughput (reads/s per reader, updater replacing and synchronizing)\n");
    for (int qs : {1, 64}) {
        auto ours = ours_qsbr_reads(run, qs);
        auto theirs = urcu_qsbr_reads(run, qs);
        char name[64];
        std::snprintf(name, sizeof name, "QSBR reads, quiescent state every %d", qs);
        row(name, "M/s", ours.reads_per_sec / 1e6, "liburcu urcu-qsbr", theirs.reads_per_sec / 1e6, true);
    }
    auto ours_p = ours_preemptible_reads(run);
    auto memb = urcu_memb_reads(run);
    auto shm = shared_mutex_reads(run);
    row("preemptible reads (ReadLock)", "M/s", ours_p.reads_per_sec / 1e6, "liburcu urcu-memb",
        memb.reads_per_sec / 1e6, true);
    row("preemptible reads (ReadLock)", "M/s", ours_p.reads_per_sec / 1e6, "std::shared_mutex",
        shm.reads_per_sec / 1e6, true);

    std::printf("\n-- synchronize() latency with a reader running (us; ratio = anchor/ours)\n");
    const std::size_t samples = 4000;
    auto lq = ours_qsbr_sync_latency(samples);
    auto lu = urcu_qsbr_sync_latency(samples);
    row("synchronize, QSBR reader, median", "us", lq.median_us, "liburcu urcu-qsbr", lu.median_us, false);
    row("synchronize, QSBR reader, p99", "us", lq.p99_us, "liburcu urcu-qsbr", lu.p99_us, false);
    auto lp = ours_preemptible_sync_latency(samples);
    auto lm = urcu_memb_sync_latency(samples);
    row("synchronize, preemptible reader, median", "us", lp.median_us, "liburcu urcu-memb", lm.median_us, false);
    row("synchronize, preemptible reader, p99", "us", lp.p99_us, "liburcu urcu-memb", lm.p99_us, false);

    std::printf("\n-- callback throughput (queue N, wait until all ran; callbacks/s)\n");
    const std::size_t n = 2'000'000;
    row("call() on a loop (QSBR) thread", "M/s", ours_qsbr_callbacks(n) / 1e6,
        "urcu-qsbr call_rcu", urcu_qsbr_callbacks(n) / 1e6, true);
    row("call() on a plain thread", "M/s", ours_plain_callbacks(n) / 1e6, "urcu-memb call_rcu",
        urcu_memb_callbacks(n) / 1e6, true);
    return 0;
}
