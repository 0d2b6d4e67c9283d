// The kvcache store under concurrent sessions: writers set, append, incr and
// delete the same keys while readers verify every value they read is whole,
// with a memory limit small enough that eviction runs all the time and
// expiries short enough that the crawler reclaims. Runs under TSan and ASan.
//
// Duration: QUIESCE_STRESS_SECONDS (default 5), capped at 3 s here.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "stress.hpp"

using namespace kvcache;

namespace {

// A value that names its key and checks itself: "KEY|SEQ|" then filler
// made of SEQ's last digit, so a torn or mixed value is caught.
std::string make_value(const std::string& key, unsigned seq, std::size_t filler) {
    std::string v = key + "|" + std::to_string(seq) + "|";
    v.append(filler, static_cast<char>('0' + seq % 10));
    return v;
}

bool well_formed(std::string_view key, std::string_view value) {
    if (!value.starts_with(key) || value.size() <= key.size() || value[key.size()] != '|')
        return false;
    const auto bar = value.find('|', key.size() + 1);
    if (bar == std::string_view::npos) return false;
    const std::string_view seq = value.substr(key.size() + 1, bar - key.size() - 1);
    if (seq.empty()) return false;
    const char digit = seq.back();
    // Appends add "+" runs; everything else after the header is the digit.
    for (char c : value.substr(bar + 1))
        if (c != digit && c != '+') return false;
    return true;
}

}  // namespace

TEST_CASE("store: concurrent updates, reads, eviction and expiry", "[kvcache][stress]") {
    const auto duration = std::min<std::chrono::milliseconds>(quiesce::test::stress_duration(),
                                                              std::chrono::seconds(3));
    Store store({.memory_limit = 512 * 1024, .item_max = 64 * 1024});
    constexpr int kKeys = 200;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> bad{0}, reads{0}, hits{0}, writes{0};

    auto writer = [&](unsigned seed) {
        Counters counters;
        store.attach(counters);
        std::mt19937 rng(seed);
        unsigned seq = seed * 1'000'000;
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled
            quiesce::rcu::ReadLock lock;
            for (int i = 0; i < 32; ++i) {
                const std::string key = "k" + std::to_string(rng() % kKeys);
                const int op = static_cast<int>(rng() % 10);
                if (op < 6) {
                    const std::string v = make_value(key, ++seq, rng() % 8000);
                    // Some items expire at once or soon, for the crawler.
                    const RelTime exp = rng() % 8 == 0 ? store.realtime(-1) : 0;
                    Item* item = store.allocate(key, seq, exp, v.size());
                    if (item == nullptr) continue;
                    std::memcpy(item->value_data(), v.data(), v.size());
                    store.store(item, rng() % 2 ? Mode::kSet : Mode::kReplace, 0, counters);
                } else if (op < 8) {
                    Item* item = store.allocate(key, 0, 0, 3);
                    if (item == nullptr) continue;
                    std::memcpy(item->value_data(), "+++", 3);
                    store.store(item, Mode::kAppend, 0, counters);
                } else if (op < 9) {
                    store.remove(key);
                } else {
                    std::string out;
                    store.delta("n" + key, true, 1, 0, out);  // never numeric-broken
                }
                writes.fetch_add(1, std::memory_order_relaxed);
            }
        }
        store.detach(counters);
    };
    auto reader = [&](unsigned seed) {
        std::mt19937 rng(seed);
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled
            quiesce::rcu::ReadLock lock;
            for (int i = 0; i < 64; ++i) {
                const std::string key = "k" + std::to_string(rng() % kKeys);
                if (const Item* item = store.get(key)) {
                    if (item->key() != key || !well_formed(key, item->value()))
                        bad.fetch_add(1, std::memory_order_relaxed);
                    hits.fetch_add(1, std::memory_order_relaxed);
                }
                reads.fetch_add(1, std::memory_order_relaxed);
            }
        }
    };
    auto crawler = [&] {
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled
            {
                quiesce::rcu::ReadLock lock;
                store.crawl(64);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    };
    {
        quiesce::rcu::ReadLock lock;
        for (int i = 0; i < kKeys; ++i) {
            const std::string key = "nk" + std::to_string(i);
            store.vivify(key, "0", 0);
        }
    }
    std::vector<std::thread> threads;
    threads.emplace_back(writer, 1u);
    threads.emplace_back(writer, 2u);
    threads.emplace_back(reader, 3u);
    threads.emplace_back(reader, 4u);
    threads.emplace_back(crawler);
    std::this_thread::sleep_for(duration);
    stop.store(true, std::memory_order_relaxed);  // relaxed: joins order the rest
    for (auto& t : threads) t.join();

    // Quiet now: the byte count is the sum of the items in the table.
    std::size_t sum = 0, count = 0;
    {
        quiesce::rcu::ReadLock lock;
        store.for_each([&](const Item& item) {
            sum += item.total();
            ++count;
        });
        // for_each skips dead items; count them all through the totals.
    }
    const Totals totals = store.totals();
    INFO("reads " << reads.load() << " hits " << hits.load() << " writes " << writes.load()
                  << " evictions " << totals.evictions << " reclaimed "
                  << totals.crawler_reclaimed + totals.reclaimed);
    CHECK(bad.load() == 0);
    CHECK(hits.load() > 0);
    CHECK(totals.evictions > 0);
    CHECK(totals.crawler_reclaimed + totals.reclaimed + totals.expired_unfetched > 0);
    CHECK(store.bytes() <= 512 * 1024 + 64 * 1024);
    CHECK(sum <= store.bytes());
    CHECK(count <= totals.curr_items);
}

TEST_CASE("store: bytes and items are counted exactly in one thread", "[kvcache][unit]") {
    Store store({.memory_limit = 1 << 20});
    Counters counters;
    store.attach(counters);
    quiesce::rcu::ReadLock lock;
    auto put = [&](std::string_view key, std::string_view value, Mode mode) {
        Item* item = store.allocate(key, 0, 0, value.size());
        std::memcpy(item->value_data(), value.data(), value.size());
        return store.store(item, mode, 0, counters);
    };
    CHECK(put("a", "12345", Mode::kSet) == StoreResult::kStored);
    CHECK(store.bytes() == sizeof(Item) + 1 + 5);
    CHECK(put("a", "xy", Mode::kAppend) == StoreResult::kStored);
    CHECK(store.bytes() == sizeof(Item) + 1 + 7);
    CHECK(put("b", "1", Mode::kAdd) == StoreResult::kStored);
    CHECK(put("b", "2", Mode::kAdd) == StoreResult::kNotStored);
    CHECK(store.size() == 2);
    CHECK(store.remove("a") == Store::DeleteResult::kDeleted);
    CHECK(store.bytes() == sizeof(Item) + 1 + 1);
    std::string out;
    CHECK(store.delta("b", true, 99, 0, out) == DeltaResult::kOk);
    CHECK(out == "100");
    CHECK(store.bytes() == sizeof(Item) + 1 + 3);
    store.detach(counters);
}
