// liburcu's QSBR flavour (urcu-qsbr), the anchor for QSBR readers.
#define _LGPL_SOURCE 1
#include <urcu/urcu-qsbr.h>

#include "read_bench.hpp"

namespace quiesce::bench {
namespace {

std::atomic<Node*> shared_node{nullptr};

struct UrcuQsbr {
    static int register_reader() {
        urcu_qsbr_register_thread();
        return 0;
    }
    static void unregister_reader(int) { urcu_qsbr_unregister_thread(); }
    template <typename F>
    static void read(F&& body) {
        urcu_qsbr_read_lock();  // empty in QSBR, as in ours
        body();
        urcu_qsbr_read_unlock();
    }
    static void quiescent(int) { urcu_qsbr_quiescent_state(); }
    static void synchronize() { urcu_qsbr_synchronize_rcu(); }
};

struct Counted {
    rcu_head head;
    std::atomic<std::size_t>* ran;
};

void count(rcu_head* head) {
    caa_container_of(head, Counted, head)->ran->fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

ReadResult urcu_qsbr_reads(std::chrono::milliseconds run, int qs_interval) {
    return read_throughput<UrcuQsbr>(shared_node, run, qs_interval);
}
Latency urcu_qsbr_sync_latency(std::size_t samples) {
    return sync_latency<UrcuQsbr>(shared_node, samples);
}

double urcu_qsbr_callbacks(std::size_t count_total) {
    std::vector<Counted> heads(count_total);
    std::atomic<std::size_t> ran{0};
    double secs = 0;
    std::thread loop([&] {
        urcu_qsbr_register_thread();
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < count_total; ++i) {
            heads[i].ran = &ran;
            urcu_qsbr_call_rcu(&heads[i].head, &count);
            if (i % 64 == 63) urcu_qsbr_quiescent_state();
        }
        while (ran.load(std::memory_order_relaxed) < count_total) urcu_qsbr_quiescent_state();
        secs = std::chrono::duration<double>(Clock::now() - t0).count();
        urcu_qsbr_unregister_thread();
    });
    loop.join();
    return static_cast<double>(count_total) / secs;
}

}  // namespace quiesce::bench
