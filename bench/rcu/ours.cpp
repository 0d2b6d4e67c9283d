// quiesce's two reader kinds in the rcu benchmark.
#include <memory>

#include <quiesce/rcu/rcu.hpp>

#include "read_bench.hpp"

namespace quiesce::bench {
namespace {

std::atomic<Node*> shared_node{nullptr};
struct OursQsbr {
    // A loop keeps its QsbrReader at hand (a member); so does the bench.
    static std::unique_ptr<rcu::QsbrReader> register_reader() {
        return std::make_unique<rcu::QsbrReader>();
    }
    static void unregister_reader(std::unique_ptr<rcu::QsbrReader>& reader) { reader.reset(); }
    template <typename F>
    static void read(F&& body) {
        body();
    }
    static void quiescent(std::unique_ptr<rcu::QsbrReader>& reader) { reader->quiescent_state(); }
    static void synchronize() { rcu::Domain::default_domain().synchronize(); }
};

struct OursPreemptible {
    static int register_reader() {
        rcu::ReadLock warm;  // registers the thread
        return 0;
    }
    static void unregister_reader(int) {}
    template <typename F>
    static void read(F&& body) {
        rcu::ReadLock lock;
        body();
    }
    static void quiescent(int) {}
    static void synchronize() { rcu::Domain::default_domain().synchronize(); }
};

// The non-scoped pair C-style code uses (liburcu's rcu_read_lock() shape),
// with explicit registration.
struct OursPair {
    static int register_reader() {
        rcu::register_reader_thread();
        return 0;
    }
    static void unregister_reader(int) { rcu::unregister_reader_thread(); }
    template <typename F>
    static void read(F&& body) {
        rcu::read_lock();
        body();
        rcu::read_unlock();
    }
    static void quiescent(int) {}
    static void synchronize() { rcu::Domain::default_domain().synchronize(); }
};

struct Counted : rcu::Head {
    std::atomic<std::size_t>* ran;
};

void count(rcu::Head* head) noexcept {
    static_cast<Counted*>(head)->ran->fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

ReadResult ours_qsbr_reads(std::chrono::milliseconds run, int qs_interval) {
    return read_throughput<OursQsbr>(shared_node, run, qs_interval);
}
ReadResult ours_preemptible_reads(std::chrono::milliseconds run) {
    return read_throughput<OursPreemptible>(shared_node, run, 1);
}
ReadResult ours_pair_reads(std::chrono::milliseconds run) {
    return read_throughput<OursPair>(shared_node, run, 1);
}
Latency ours_qsbr_sync_latency(std::size_t samples) {
    return sync_latency<OursQsbr>(shared_node, samples);
}
Latency ours_preemptible_sync_latency(std::size_t samples) {
    return sync_latency<OursPreemptible>(shared_node, samples);
}

double ours_qsbr_callbacks(std::size_t count_total) {
    std::vector<Counted> heads(count_total);
    std::atomic<std::size_t> ran{0};
    double secs = 0;
    std::thread loop([&] {
        rcu::QsbrReader reader;
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < count_total; ++i) {
            heads[i].ran = &ran;
            reader.call(&heads[i], &count);
            if (i % 64 == 63) {
                reader.quiescent_state();
                reader.process_callbacks(1024);
            }
        }
        while (ran.load(std::memory_order_relaxed) < count_total) {
            reader.quiescent_state();
            reader.process_callbacks(1024);
        }
        secs = std::chrono::duration<double>(Clock::now() - t0).count();
    });
    loop.join();
    return static_cast<double>(count_total) / secs;
}

double ours_plain_callbacks(std::size_t count_total) {
    std::vector<Counted> heads(count_total);
    std::atomic<std::size_t> ran{0};
    auto& domain = rcu::Domain::default_domain();
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < count_total; ++i) {
        heads[i].ran = &ran;
        domain.call(&heads[i], &count);
    }
    domain.barrier();
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    return static_cast<double>(count_total) / secs;
}

}  // namespace quiesce::bench
