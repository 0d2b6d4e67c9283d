// liburcu's membarrier flavour (urcu-memb), the anchor for preemptible readers.
#define _LGPL_SOURCE 1
#include <urcu/urcu-memb.h>

#include "read_bench.hpp"

namespace quiesce::bench {
namespace {

std::atomic<Node*> shared_node{nullptr};

struct UrcuMemb {
    static int register_reader() {
        urcu_memb_register_thread();
        return 0;
    }
    static void unregister_reader(int) { urcu_memb_unregister_thread(); }
    template <typename F>
    static void read(F&& body) {
        urcu_memb_read_lock();
        body();
        urcu_memb_read_unlock();
    }
    static void quiescent(int) {}
    static void synchronize() { urcu_memb_synchronize_rcu(); }
};

struct Counted {
    rcu_head head;
    std::atomic<std::size_t>* ran;
};

void count(rcu_head* head) {
    caa_container_of(head, Counted, head)->ran->fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

ReadResult urcu_memb_reads(std::chrono::milliseconds run) {
    return read_throughput<UrcuMemb>(shared_node, run, 1);
}
Latency urcu_memb_sync_latency(std::size_t samples) {
    return sync_latency<UrcuMemb>(shared_node, samples);
}

double urcu_memb_callbacks(std::size_t count_total) {
    std::vector<Counted> heads(count_total);
    std::atomic<std::size_t> ran{0};
    urcu_memb_register_thread();
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < count_total; ++i) {
        heads[i].ran = &ran;
        urcu_memb_call_rcu(&heads[i].head, &count);
    }
    urcu_memb_barrier();
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    urcu_memb_unregister_thread();
    return static_cast<double>(count_total) / secs;
}

}  // namespace quiesce::bench
