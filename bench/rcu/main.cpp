// bench/rcu: quiesce's RCU against liburcu (urcu-qsbr, urcu-memb) and
// std::shared_mutex, all in one run. Each comparison alternates ours and the
// anchor for several rounds and prints the medians and their ratio (above 1:
// ours is better). Usage: rcu_bench [seconds-per-throughput-run] [rounds] [sections]
// sections: any of r (read throughput), s (synchronize latency), c (callbacks);
// default all.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "../harness.hpp"
#include "flavours.hpp"

using namespace quiesce::bench;

namespace {

int rounds = 5;

// Runs ours and the anchor alternately `rounds` times; returns the medians.
std::pair<double, double> alternate(const std::function<double()>& ours,
                                    const std::function<double()>& anchor) {
    std::vector<double> a, b;
    for (int r = 0; r < rounds; ++r) {
        a.push_back(ours());
        b.push_back(anchor());
    }
    return {quantile(a, 0.5), quantile(b, 0.5)};
}

// Median and p99 latency rows: each round measures ours then the anchor; the
// rows print the medians over rounds of each round's median and p99.
void latency_rows(const char* what, Latency (*ours)(std::size_t), const char* anchor_name,
                  Latency (*anchor)(std::size_t), std::size_t samples) {
    std::vector<double> ours_median, ours_p99, anchor_median, anchor_p99;
    for (int r = 0; r < rounds; ++r) {
        Latency o = ours(samples);
        Latency a = anchor(samples);
        ours_median.push_back(o.p50_us);
        ours_p99.push_back(o.p99_us);
        anchor_median.push_back(a.p50_us);
        anchor_p99.push_back(a.p99_us);
    }
    std::string median = std::string(what) + ", median";
    std::string p99 = std::string(what) + ", p99";
    row(median.c_str(), "us", quantile(ours_median, .5), anchor_name, quantile(anchor_median, .5),
        false);
    row(p99.c_str(), "us", quantile(ours_p99, .5), anchor_name, quantile(anchor_p99, .5), false);
}

void reads(std::chrono::milliseconds run);
void sync_latency_rows();
void callbacks();

}  // namespace

int main(int argc, char** argv) {
    double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
    if (argc > 2) rounds = std::atoi(argv[2]);
    const std::string sections = argc > 3 ? argv[3] : "rsc";
    auto run = std::chrono::milliseconds(static_cast<long>(seconds * 1000));
    std::printf("quiesce rcu benchmark on %s\n", machine().c_str());
    std::printf(
        "one reader thread + one updater thread; %.1f s per run; medians of %d alternating "
        "rounds\n\n",
        seconds, rounds);

    if (sections.find('r') != std::string::npos) reads(run);
    if (sections.find('s') != std::string::npos) sync_latency_rows();
    if (sections.find('c') != std::string::npos) callbacks();
    return 0;
}

namespace {

void reads(std::chrono::milliseconds run) {
    std::printf(
        "-- read-side throughput per reader thread (updater: replace + synchronize + free, "
        "paced at 20k/s)\n");
    for (int qs : {1, 64}) {
        auto [ours, theirs] = alternate([&] { return ours_qsbr_reads(run, qs).reads_per_sec; },
                                        [&] { return urcu_qsbr_reads(run, qs).reads_per_sec; });
        char name[64];
        std::snprintf(name, sizeof name, "QSBR reads, quiescent state every %d", qs);
        row(name, "M/s", ours / 1e6, "liburcu urcu-qsbr", theirs / 1e6, true);
    }
    {
        auto [ours, memb] = alternate([&] { return ours_preemptible_reads(run).reads_per_sec; },
                                      [&] { return urcu_memb_reads(run).reads_per_sec; });
        row("preemptible reads (ReadLock)", "M/s", ours / 1e6, "liburcu urcu-memb", memb / 1e6,
            true);
        auto [pair, memb2] = alternate([&] { return ours_pair_reads(run).reads_per_sec; },
                                       [&] { return urcu_memb_reads(run).reads_per_sec; });
        row("preemptible reads (read_lock/read_unlock)", "M/s", pair / 1e6, "liburcu urcu-memb",
            memb2 / 1e6, true);
        double shm = shared_mutex_reads(run).reads_per_sec;
        row("preemptible reads (ReadLock)", "M/s", ours / 1e6, "std::shared_mutex", shm / 1e6,
            true);
    }
}

void sync_latency_rows() {
    std::printf(
        "\n-- synchronize() latency while a reader reads back to back (us; ratio = anchor/ours)\n");
    const std::size_t samples = 2000;
    latency_rows("synchronize, QSBR reader", ours_qsbr_sync_latency, "liburcu urcu-qsbr",
                 urcu_qsbr_sync_latency, samples);
    latency_rows("synchronize, preemptible reader", ours_preemptible_sync_latency,
                 "liburcu urcu-memb", urcu_memb_sync_latency, samples);
}

void callbacks() {
    std::printf("\n-- callback throughput (queue N, wait until all ran; callbacks/s)\n");
    const std::size_t n = 1'000'000;
    {
        auto [ours, theirs] = alternate([&] { return ours_qsbr_callbacks(n); },
                                        [&] { return urcu_qsbr_callbacks(n); });
        row("call() on a loop (QSBR) thread", "M/s", ours / 1e6, "urcu-qsbr call_rcu", theirs / 1e6,
            true);
    }
    {
        auto [ours, theirs] = alternate([&] { return ours_plain_callbacks(n); },
                                        [&] { return urcu_memb_callbacks(n); });
        row("call() on a plain thread", "M/s", ours / 1e6, "urcu-memb call_rcu", theirs / 1e6,
            true);
    }
}

}  // namespace
