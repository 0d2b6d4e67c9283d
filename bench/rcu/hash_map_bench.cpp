// rcu::HashMap lookups against what a user would pick instead: a
// std::unordered_map behind a std::shared_mutex, and liburcu's lock-free
// hash table (cds_lfht, QSBR flavour), with 1 and 2 reader threads while an
// updater replaces values all the time.
//
//     hash_map_bench [SECONDS per run = 2] [KEYS = 100000]
//
// Readers look up random keys (all present) from one shared array of
// std::string keys; QSBR readers (ours and liburcu's) report a quiescent
// state every 64 lookups. The updater replaces random keys' values (a new
// node each time, the old one freed after a grace period; under the
// exclusive lock for the map). Ratios above 1: ours is faster.
#include <urcu/urcu-qsbr.h>

#include <urcu/rculfhash.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <quiesce/rcu/hash_map.hpp>
#include <quiesce/rcu/qsbr.hpp>

#include "../harness.hpp"

namespace {

using namespace quiesce;

std::vector<std::string> g_keys;

struct Run {
    double lookups_per_second = 0;  // over all readers
};

/// Runs `readers` reader threads calling `read(rng)` and one updater calling
/// `update(rng)`, for `seconds`; returns lookups/s over all readers.
template <typename Reader, typename Updater>
Run measure(int readers, double seconds, Reader read_thread, Updater update_thread) {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> total{0};
    std::vector<std::thread> threads;
    for (int r = 0; r < readers; ++r)
        threads.emplace_back([&, r] { total.fetch_add(read_thread(stop, 1000u + r)); });
    threads.emplace_back([&] { update_thread(stop); });
    const auto start = bench::Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop.store(true, std::memory_order_relaxed);  // relaxed: joins order the rest
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(bench::Clock::now() - start).count();
    return {static_cast<double>(total.load()) / elapsed};
}

// ---- ours ---------------------------------------------------------------------
Run run_ours(int readers, double seconds) {
    rcu::HashMap<std::string, std::uint64_t> map;
    {
        rcu::ReadLock lock;
        for (std::size_t i = 0; i < g_keys.size(); ++i) map.insert(g_keys[i], i);
    }
    auto read = [&](std::atomic<bool>& stop, unsigned seed) {
        rcu::QsbrReader reader(rcu::Domain::default_domain(), "bench");
        std::mt19937 rng(seed);
        std::uint64_t n = 0, sum = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 64; ++i) {
                const std::string& key = g_keys[rng() % g_keys.size()];
                if (const auto* v = map.find(std::string_view(key))) sum += *v;
            }
            n += 64;
            reader.quiescent_state();
            reader.process_callbacks(64);
        }
        reader.offline();
        if (sum == 42) std::puts("");
        return n;
    };
    auto update = [&](std::atomic<bool>& stop) {
        std::mt19937 rng(7);
        while (!stop.load(std::memory_order_relaxed)) {
            rcu::ReadLock lock;
            for (int i = 0; i < 16; ++i) map.insert_or_assign(g_keys[rng() % g_keys.size()], rng());
        }
    };
    Run run = measure(readers, seconds, read, update);
    rcu::Domain::default_domain().barrier();
    return run;
}

// ---- std::unordered_map + std::shared_mutex ---------------------------------------
Run run_shared_mutex(int readers, double seconds) {
    std::unordered_map<std::string, std::uint64_t> map;
    std::shared_mutex mutex;
    for (std::size_t i = 0; i < g_keys.size(); ++i) map.emplace(g_keys[i], i);
    auto read = [&](std::atomic<bool>& stop, unsigned seed) {
        std::mt19937 rng(seed);
        std::uint64_t n = 0, sum = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 64; ++i) {
                const std::string& key = g_keys[rng() % g_keys.size()];
                std::shared_lock lock(mutex);
                if (auto it = map.find(key); it != map.end()) sum += it->second;
            }
            n += 64;
        }
        if (sum == 42) std::puts("");
        return n;
    };
    auto update = [&](std::atomic<bool>& stop) {
        std::mt19937 rng(7);
        while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 16; ++i) {
                const std::string& key = g_keys[rng() % g_keys.size()];
                std::unique_lock lock(mutex);
                map[key] = rng();
            }
        }
    };
    return measure(readers, seconds, read, update);
}

// ---- liburcu cds_lfht (QSBR) -----------------------------------------------------
struct LfNode {
    cds_lfht_node node;
    rcu_head rcu;
    const std::string* key;
    std::uint64_t value;
};

int match(cds_lfht_node* node, const void* key) {
    return *caa_container_of(node, LfNode, node)->key == *static_cast<const std::string*>(key);
}

void free_node(rcu_head* head) {
    delete caa_container_of(head, LfNode, rcu);
}

Run run_lfht(int readers, double seconds) {
    urcu_qsbr_register_thread();
    cds_lfht* table = cds_lfht_new_flavor(1024, 1024, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                                          &urcu_qsbr_flavor, nullptr);
    const rcu::StringHash hash;
    for (const auto& key : g_keys) {
        auto* n = new LfNode{{}, {}, &key, 0};
        cds_lfht_node_init(&n->node);
        urcu_qsbr_read_lock();
        cds_lfht_add_replace(table, hash(key), match, &key, &n->node);
        urcu_qsbr_read_unlock();
    }
    urcu_qsbr_unregister_thread();
    auto read = [&](std::atomic<bool>& stop, unsigned seed) {
        urcu_qsbr_register_thread();
        std::mt19937 rng(seed);
        std::uint64_t n = 0, sum = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 64; ++i) {
                const std::string& key = g_keys[rng() % g_keys.size()];
                cds_lfht_iter iter;
                urcu_qsbr_read_lock();
                cds_lfht_lookup(table, hash(key), match, &key, &iter);
                if (cds_lfht_node* node = cds_lfht_iter_get_node(&iter))
                    sum += caa_container_of(node, LfNode, node)->value;
                urcu_qsbr_read_unlock();
            }
            n += 64;
            urcu_qsbr_quiescent_state();
        }
        urcu_qsbr_unregister_thread();
        if (sum == 42) std::puts("");
        return n;
    };
    auto update = [&](std::atomic<bool>& stop) {
        urcu_qsbr_register_thread();
        std::mt19937 rng(7);
        while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 16; ++i) {
                const std::string& key = g_keys[rng() % g_keys.size()];
                auto* n = new LfNode{{}, {}, &key, rng()};
                cds_lfht_node_init(&n->node);
                urcu_qsbr_read_lock();
                cds_lfht_node* old = cds_lfht_add_replace(table, hash(key), match, &key, &n->node);
                urcu_qsbr_read_unlock();
                if (old) urcu_qsbr_call_rcu(&caa_container_of(old, LfNode, node)->rcu, free_node);
            }
            urcu_qsbr_quiescent_state();
        }
        urcu_qsbr_unregister_thread();
    };
    Run run = measure(readers, seconds, read, update);
    urcu_qsbr_barrier();
    return run;
}

}  // namespace

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
    const long keys = argc > 2 ? std::atol(argv[2]) : 100'000;
    for (long i = 0; i < keys; ++i) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "user:%011ld", i);  // 16 bytes
        g_keys.emplace_back(buf);
    }
    std::printf("hash map lookups on %s\n", bench::machine().c_str());
    std::printf(
        "%ld keys of 16 bytes, %.1f s per run, one updater replacing values all the "
        "time; lookups/s over all readers; ratio above 1: ours is faster\n\n",
        keys, seconds);
    std::printf("%-8s %14s %16s %14s %10s %10s\n", "readers", "rcu::HashMap", "shared_mutex map",
                "cds_lfht", "vs mutex", "vs lfht");
    for (int readers : {1, 2}) {
        const Run ours = run_ours(readers, seconds);
        const Run mutex = run_shared_mutex(readers, seconds);
        const Run lfht = run_lfht(readers, seconds);
        std::printf("%-8d %14.3g %16.3g %14.3g %9.2fx %9.2fx\n", readers, ours.lookups_per_second,
                    mutex.lookups_per_second, lfht.lookups_per_second,
                    ours.lookups_per_second / mutex.lookups_per_second,
                    ours.lookups_per_second / lfht.lookups_per_second);
    }
    return 0;
}
