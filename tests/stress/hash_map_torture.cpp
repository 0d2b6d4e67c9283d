// A torture test of rcu::HashTable in the style of rcu_torture: readers of
// both kinds (QSBR threads and ReadLock threads) look keys up while writers
// insert, erase and replace nodes and a resizer grows and shrinks the table.
//
// Keys come in three ranges:
//   - stable:  inserted before the readers start and never erased (writers
//              replace their nodes): every lookup must find them;
//   - absent:  never inserted: no lookup may find them;
//   - churn:   inserted and erased all the time: a lookup may find them or
//              not, but what it finds must be a live node with that key;
//   - fixed:   inserted before the readers start and never touched: every
//              scan() must visit each exactly once, whatever resizes run.
// A removed node is retired; its callback marks it dead and parks it in a
// bounded quarantine before freeing it, so a reader that reaches a node
// after its grace period sees the dead mark (and ASan sees any later use).
//
// Duration: QUIESCE_STRESS_SECONDS (default 5).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/rcu/hash_table.hpp>
#include <quiesce/rcu/rcu.hpp>

#include "stress.hpp"

using namespace quiesce;

namespace {

constexpr std::uint64_t kLive = 0x11fe'0000'0000'0001ull;
constexpr std::uint64_t kDead = 0xdead'dead'dead'deadull;
constexpr int kStable = 2000, kAbsent = 2000, kChurn = 4000, kFixed = 1000;

struct Torture;

struct Node : rcu::Head, rcu::HashNode {
    Node(std::string k, Torture* t) : key(std::move(k)), torture(t) {}
    std::atomic<std::uint64_t> magic{kLive};
    std::string key;
    Torture* torture;
};
struct KeyOf {
    std::string_view operator()(const Node& n) const noexcept { return n.key; }
};
using Table = rcu::HashTable<Node, KeyOf, rcu::StringHash>;

std::string key_name(int range, int i) {
    static const char* prefix[] = {"stable:", "absent:", "churn:", "fixed:"};
    return prefix[range] + std::to_string(i);
}

struct Torture {
    rcu::Domain domain{{.name = "map-torture"}};
    Table table{{.stripes = 16, .initial_buckets = 16, .resize_budget = 4}, domain};
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> lookups{0}, stable_missed{0}, absent_found{0}, bad_node{0},
        churn_found{0}, walks{0}, retired{0}, freed{0}, resizes_started{0}, scans{0},
        scan_errors{0};
    std::mutex quarantine_mutex;
    std::deque<Node*> quarantine;

    void retire(Node* n) {
        retired.fetch_add(1, std::memory_order_relaxed);
        domain.call(static_cast<rcu::Head*>(n), [](rcu::Head* h) noexcept {
            auto* node = static_cast<Node*>(h);
            node->magic.store(kDead, std::memory_order_relaxed);
            node->torture->park(node);
        });
    }
    void park(Node* n) noexcept {
        Node* victim = nullptr;
        {
            std::lock_guard lock(quarantine_mutex);
            quarantine.push_back(n);
            if (quarantine.size() > 50000) {
                victim = quarantine.front();
                quarantine.pop_front();
            }
        }
        if (victim != nullptr) {
            delete victim;
            freed.fetch_add(1, std::memory_order_relaxed);
        }
    }
    void check(const Node* n, std::string_view key) {
        if (n->magic.load(std::memory_order_relaxed) != kLive || n->key != key)
            bad_node.fetch_add(1, std::memory_order_relaxed);
    }
    // One lookup of each kind.
    void read_once(std::mt19937& rng) {
        std::uniform_int_distribution<int> pick(0, kChurn - 1);
        const std::string s = key_name(0, pick(rng) % kStable);
        const Node* n = table.find(std::string_view(s));
        if (n == nullptr)
            stable_missed.fetch_add(1, std::memory_order_relaxed);
        else
            check(n, s);
        const std::string a = key_name(1, pick(rng) % kAbsent);
        if (table.find(std::string_view(a)) != nullptr)
            absent_found.fetch_add(1, std::memory_order_relaxed);
        const std::string c = key_name(2, pick(rng));
        if (const Node* m = table.find(std::string_view(c))) {
            check(m, c);
            churn_found.fetch_add(1, std::memory_order_relaxed);
        }
        lookups.fetch_add(3, std::memory_order_relaxed);
    }
    void walk_once() {
        table.for_each([&](const Node& n) {
            if (n.magic.load(std::memory_order_relaxed) != kLive)
                bad_node.fetch_add(1, std::memory_order_relaxed);
        });
        walks.fetch_add(1, std::memory_order_relaxed);
    }
};

void writer_step(Torture& t, std::mt19937& rng) {
    std::uniform_int_distribution<int> pick(0, kChurn - 1);
    const int op = static_cast<int>(rng() % 8);
    if (op < 3) {
        auto* node = new Node(key_name(2, pick(rng)), &t);
        if (t.table.insert(node) != nullptr) delete node;  // never published
    } else if (op < 6) {
        if (Node* old = t.table.erase(std::string_view(key_name(2, pick(rng))))) t.retire(old);
    } else {
        // Replace a stable key's node: the key must stay found throughout.
        auto* node = new Node(key_name(0, pick(rng) % kStable), &t);
        if (Node* old = t.table.insert_or_replace(node)) t.retire(old);
    }
}

void run_writer(Torture& t, unsigned seed) {
    std::mt19937 rng(seed);
    while (!t.stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled
        rcu::ReadLock lock(t.domain);                  // updates run inside read sections
        for (int i = 0; i < 64; ++i) writer_step(t, rng);
    }
}

void run_resizer(Torture& t) {
    std::mt19937 rng(99);
    while (!t.stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled
        // Force sizes from far too small to far too large, moving a few
        // buckets at a time so readers meet both tables often.
        {
            rcu::ReadLock lock(t.domain);
            t.table.resize(std::size_t{16} << (rng() % 11));
        }
        t.resizes_started.fetch_add(1, std::memory_order_relaxed);
        bool more = true;
        while (more && !t.stop.load(std::memory_order_relaxed)) {
            rcu::ReadLock lock(t.domain);
            for (int i = 0; i < 16 && more; ++i) more = t.table.resize_step(3);
        }
        std::this_thread::yield();
    }
}

void run_qsbr_reader(Torture& t, unsigned seed) {
    rcu::QsbrReader reader(t.domain, "map-qsbr");
    std::mt19937 rng(seed);
    unsigned n = 0;
    while (!t.stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled
        t.read_once(rng);
        if (++n % 4096 == 0) t.walk_once();
        if (n % 8 == 0) reader.quiescent_state();
        if (n % 8192 == 0) reader.process_callbacks(1000);
    }
    reader.offline();
}

// Whole scans a few slices per read section, as a dump that a client reads
// piece by piece: each fixed key exactly once per scan, no absent key, no
// dead node, while the resizer grows and shrinks the table under it.
void run_scanner(Torture& t) {
    std::vector<int> fixed_seen(kFixed);
    while (!t.stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled
        std::fill(fixed_seen.begin(), fixed_seen.end(), 0);
        rcu::HashScanCursor cursor;
        bool more = true;
        while (more) {
            rcu::ReadLock lock(t.domain);
            more = t.table.scan(cursor, 3, [&](const Node& n) {
                if (n.magic.load(std::memory_order_relaxed) != kLive ||
                    n.key.starts_with("absent:"))
                    t.scan_errors.fetch_add(1, std::memory_order_relaxed);
                if (n.key.starts_with("fixed:")) ++fixed_seen[std::stoul(n.key.substr(6))];
            });
        }
        for (int count : fixed_seen)
            if (count != 1) t.scan_errors.fetch_add(1, std::memory_order_relaxed);
        t.scans.fetch_add(1, std::memory_order_relaxed);
    }
}

void run_lock_reader(Torture& t, unsigned seed) {
    std::mt19937 rng(seed);
    unsigned n = 0;
    while (!t.stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled
        rcu::ReadLock lock(t.domain);
        t.read_once(rng);
        if (++n % 4096 == 0) t.walk_once();
    }
}

}  // namespace

TEST_CASE("HashTable torture: lookups during inserts, erases, replaces and resizes",
          "[stress][rcu]") {
    Torture t;
    {
        rcu::ReadLock lock(t.domain);
        for (int i = 0; i < kStable; ++i)
            REQUIRE(t.table.insert(new Node(key_name(0, i), &t)) == nullptr);
        for (int i = 0; i < kFixed; ++i)
            REQUIRE(t.table.insert(new Node(key_name(3, i), &t)) == nullptr);
    }
    std::vector<std::thread> threads;
    threads.emplace_back(run_writer, std::ref(t), 1u);
    threads.emplace_back(run_writer, std::ref(t), 2u);
    threads.emplace_back(run_resizer, std::ref(t));
    threads.emplace_back(run_qsbr_reader, std::ref(t), 3u);
    threads.emplace_back(run_lock_reader, std::ref(t), 4u);
    threads.emplace_back(run_scanner, std::ref(t));
    std::this_thread::sleep_for(test::stress_duration());
    t.stop.store(true, std::memory_order_relaxed);  // relaxed: joins order the rest
    for (auto& th : threads) th.join();

    // Empty the table and free everything (no reader left).
    {
        rcu::ReadLock lock(t.domain);
        while (t.table.resize_step(0)) {
        }
        std::vector<Node*> left;
        t.table.for_each([&](Node& n) { left.push_back(&n); });
        for (Node* n : left)
            if (t.table.erase_node(n)) t.retire(n);
    }
    t.domain.barrier();
    for (Node* n : t.quarantine) delete n;

    INFO("lookups " << t.lookups.load() << ", churn hits " << t.churn_found.load() << ", walks "
                    << t.walks.load() << ", scans " << t.scans.load() << ", resizes started "
                    << t.resizes_started.load() << ", completed " << t.table.stats().resizes
                    << ", retired " << t.retired.load());
    CHECK(t.stable_missed.load() == 0);
    CHECK(t.absent_found.load() == 0);
    CHECK(t.bad_node.load() == 0);
    CHECK(t.scan_errors.load() == 0);
    CHECK(t.scans.load() > 0);
    CHECK(t.table.empty());
    CHECK(t.lookups.load() > 10000);
    CHECK(t.table.stats().resizes > 3);
    CHECK(t.churn_found.load() > 0);
}
