// rcu::HashMap and rcu::HashTable: single-threaded behaviour, resizes, the
// walk, and that removed entries are freed only after a grace period.
#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <quiesce/rcu/hash_map.hpp>
#include <quiesce/rcu/read_lock.hpp>

using namespace quiesce;

namespace {

struct Counted {
    static inline int live = 0;
    int v;
    explicit Counted(int x) : v(x) { ++live; }
    Counted(const Counted& o) : v(o.v) { ++live; }
    ~Counted() { --live; }
};

}  // namespace

TEST_CASE("HashMap inserts, finds, replaces and erases", "[rcu][unit]") {
    rcu::Domain domain({.name = "map"});
    rcu::HashMap<std::string, int> map({}, domain);
    rcu::ReadLock lock(domain);
    CHECK(map.insert(std::string("a"), 1));
    CHECK_FALSE(map.insert(std::string("a"), 2));  // present: unchanged
    REQUIRE(map.find(std::string_view("a")) != nullptr);
    CHECK(*map.find(std::string_view("a")) == 1);
    CHECK(*map.find("a") == 1);  // const char*, no std::string built
    CHECK(map.find(std::string_view("b")) == nullptr);
    CHECK_FALSE(map.insert_or_assign(std::string("a"), 3));  // replaced
    CHECK(*map.find("a") == 3);
    CHECK(map.insert_or_assign(std::string("b"), 4));  // inserted
    CHECK(map.size() == 2);
    CHECK(map.update(std::string_view("b"), [](const int* cur) -> std::optional<int> {
        return cur ? std::optional<int>(*cur + 10) : std::nullopt;
    }));
    CHECK(*map.find("b") == 14);
    CHECK_FALSE(map.update(std::string_view("zz"), [](const int* cur) -> std::optional<int> {
        return cur ? std::optional<int>(1) : std::nullopt;
    }));
    CHECK(map.erase(std::string_view("a")));
    CHECK_FALSE(map.erase(std::string_view("a")));
    CHECK(map.find("a") == nullptr);
    CHECK(map.size() == 1);
}

TEST_CASE("HashMap frees a replaced value only after a grace period", "[rcu][unit]") {
    rcu::Domain domain({.name = "map"});
    {
        rcu::HashMap<int, Counted> map({}, domain);
        const Counted* seen = nullptr;
        {
            rcu::ReadLock lock(domain);
            map.insert(1, 10);
            seen = map.find(1);
            map.insert_or_assign(1, 20);
            CHECK(Counted::live == 2);  // the old one is still readable here
            CHECK(seen->v == 10);
        }
        domain.barrier();
        CHECK(Counted::live == 1);
    }
    CHECK(Counted::live == 0);  // the destructor frees what is left
}

TEST_CASE("HashMap grows and shrinks while every key stays found", "[rcu][unit]") {
    rcu::Domain domain({.name = "map"});
    rcu::HashMap<std::string, int> map({.stripes = 8, .initial_buckets = 8, .resize_budget = 2},
                                       domain);
    rcu::ReadLock lock(domain);
    constexpr int kKeys = 5000;
    for (int i = 0; i < kKeys; ++i) {
        REQUIRE(map.insert(std::to_string(i), i));
        // Every key inserted so far is found at every step of the resizes.
        if (i % 97 == 0)
            for (int j = 0; j <= i; ++j) REQUIRE(map.find(std::to_string(j)) != nullptr);
    }
    while (map.table().resize_step(0)) {
    }
    CHECK(map.stats().buckets >= kKeys);
    CHECK(map.stats().resizes > 5);
    const auto grown = map.stats().buckets;
    for (int i = 0; i < kKeys - 10; ++i) REQUIRE(map.erase(std::to_string(i)));
    while (map.table().resize_step(0)) {
    }
    CHECK(map.stats().buckets < grown / 16);
    for (int i = kKeys - 10; i < kKeys; ++i) CHECK(*map.find(std::to_string(i)) == i);
    CHECK(map.size() == 10);
}

TEST_CASE("HashMap visits every entry once without a resize, at least once with one",
          "[rcu][unit]") {
    rcu::Domain domain({.name = "map"});
    rcu::HashMap<int, int> map({.stripes = 4, .initial_buckets = 4, .resize_budget = 0}, domain);
    rcu::ReadLock lock(domain);
    for (int i = 0; i < 100; ++i) map.insert(i, i);  // budget 0: no bucket moves yet
    CHECK(map.stats().resizing);
    std::multiset<int> seen;
    map.for_each([&](const int& k, const int&) { seen.insert(k); });
    CHECK(std::set<int>(seen.begin(), seen.end()).size() == 100);
    map.table().resize_step(3);  // half way
    seen.clear();
    map.for_each([&](const int& k, const int&) { seen.insert(k); });
    CHECK(std::set<int>(seen.begin(), seen.end()).size() == 100);
    while (map.table().resize_step(0)) {
    }
    seen.clear();
    map.for_each([&](const int& k, const int&) { seen.insert(k); });
    CHECK(seen.size() == 100);
    // An incremental walk of every bucket sees every entry.
    std::set<int> walked;
    auto& table = map.table();
    std::size_t cursor = 0;
    for (std::size_t i = 0; i < table.stats().buckets; i += 7)
        cursor = table.walk(cursor, 7, [&](auto& e) { walked.insert(e.key); });
    CHECK(walked.size() == 100);
}

TEST_CASE("an incremental walk over a shrink in progress sees every entry exactly once",
          "[rcu][unit]") {
    // A crawler's pace: one bucket moved (walk() helps the resize) and one
    // visited per call, over one pass. Each future bucket takes 16 old ones;
    // it is visited once, after the last of them, so nothing is seen twice
    // and nothing moved ahead of the cursor is missed.
    rcu::Domain domain({.name = "map"});
    // min_load so low that only the explicit resize() shrinks it.
    rcu::HashMap<int, int> map(
        {.stripes = 4, .initial_buckets = 4, .min_load = 0.001, .resize_budget = 0}, domain);
    rcu::ReadLock lock(domain);
    auto& table = map.table();
    for (int i = 0; i < 1000; ++i) {
        map.insert(i, i);
        while (table.resize_step(0)) {
        }
    }
    const std::size_t buckets = table.stats().buckets;
    REQUIRE(buckets >= 1024);
    for (int i = 0; i < 960; ++i) map.erase(i);
    REQUIRE_FALSE(table.stats().resizing);
    table.resize(buckets / 16);
    table.resize_step(10);  // the moves are ahead of the walk
    REQUIRE(table.stats().resizing);
    std::multiset<int> seen;
    std::size_t cursor = 0;
    for (std::size_t i = 0; i < buckets; ++i)
        cursor = table.walk(cursor, 1, [&](auto& e) { seen.insert(e.key); });
    INFO("buckets " << buckets << " -> " << table.stats().buckets);
    CHECK(table.stats().buckets * 16 == buckets);
    CHECK_FALSE(table.stats().resizing);
    CHECK(seen.size() == 40);
    CHECK(std::set<int>(seen.begin(), seen.end()).size() == 40);
}

TEST_CASE("a scan visits every entry exactly once while the table grows and shrinks under it",
          "[rcu][unit]") {
    // A dump read piece by piece: between its steps the table grows 4x and
    // shrinks 8x, each resize finishing a few buckets at a time, so steps
    // meet two arrays, arrays larger and smaller than the scan's slicing,
    // and resizes that end between two steps (where walk() repeats keys).
    rcu::Domain domain({.name = "map"});
    rcu::HashMap<int, int> map(
        {.stripes = 4, .initial_buckets = 4, .min_load = 0.0001, .resize_budget = 0}, domain);
    rcu::ReadLock lock(domain);
    auto& table = map.table();
    for (int i = 0; i < 3000; ++i) {
        map.insert(i, i);
        while (table.resize_step(0)) {
        }
    }
    const std::uint64_t resizes_before = table.stats().resizes;
    std::vector<int> seen(3000, 0);
    rcu::HashScanCursor cursor;
    bool grow = true;
    std::size_t smallest = table.stats().buckets, largest = smallest, calls = 0;
    while (map.scan(cursor, 5, [&](const int& k, const int& v) {
        CHECK(k == v);
        ++seen[static_cast<std::size_t>(k)];
    })) {
        ++calls;
        if (!table.stats().resizing) {
            const std::size_t now = table.stats().buckets;
            table.resize(grow ? now * 4 : std::max<std::size_t>(4, now / 8));
            grow = !grow;
        }
        table.resize_step(calls % 3 == 0 ? 97 : 13);
        smallest = std::min(smallest, table.stats().buckets);
        largest = std::max(largest, table.stats().buckets);
    }
    INFO("slices " << cursor.slices << ", buckets " << smallest << " to " << largest << ", resizes "
                   << table.stats().resizes - resizes_before);
    CHECK(smallest < cursor.slices);
    CHECK(largest > cursor.slices);
    CHECK(table.stats().resizes - resizes_before >= 4);
    CHECK(std::count(seen.begin(), seen.end(), 1) == 3000);
}

TEST_CASE("HashMap clear() empties it; entries freed after a grace period", "[rcu][unit]") {
    rcu::Domain domain({.name = "map"});
    rcu::HashMap<int, Counted> map({}, domain);
    {
        rcu::ReadLock lock(domain);
        for (int i = 0; i < 300; ++i) map.insert(i, i);
        map.clear();
        CHECK(map.empty());
        CHECK(map.find(5) == nullptr);
    }
    domain.barrier();
    CHECK(Counted::live == 0);
}
