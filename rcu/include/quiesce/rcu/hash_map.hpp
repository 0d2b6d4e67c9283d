// rcu::HashMap<K, V>: a concurrent hash map whose lookups take no lock and
// write nothing shared (RCU readers), for read-mostly data: sessions,
// routes, a directory of users, a cache index. Values are immutable once
// published: an update replaces the whole entry, and the old one is freed
// after a grace period, so a reader keeps a consistent value for its read
// section.
//
//     rcu::HashMap<std::string, User> users;
//     users.insert_or_assign("ada", User{...});              // any thread
//     { rcu::ReadLock lock;                                  // or a loop thread
//       if (const User* u = users.find(std::string_view("ada"))) greet(*u); }
//
// String keys hash with StringHash, which is transparent: find() and erase()
// take a std::string_view or a const char* without building a std::string.
// Updates lock one stripe (HashTable, hash_table.hpp) and grow or shrink the
// table online; every call runs inside a read section of the map's domain.
//
// Threading: any thread, inside a read section; the destructor with no
// reader or updater left.
#pragma once

#include <quiesce/base/config.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include <quiesce/rcu/domain.hpp>
#include <quiesce/rcu/hash_table.hpp>

namespace quiesce::rcu {

namespace detail {
/// std::hash, mixed: libstdc++ hashes integers to themselves, and buckets
/// and stripes use the low bits (aligned pointers, multiples of 64 would
/// share one bucket).
template <typename K>
struct MixedHash {
    std::uint64_t operator()(const K& key) const noexcept {
        std::uint64_t x = static_cast<std::uint64_t>(std::hash<K>{}(key));
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ull;
        return x ^ (x >> 33);
    }
};
template <typename K>
struct DefaultMapHash {
    using type = MixedHash<K>;
};
template <>
struct DefaultMapHash<std::string> {
    using type = StringHash;
};
}  // namespace detail

template <typename K, typename V, typename Hash = typename detail::DefaultMapHash<K>::type,
          typename Eq = std::equal_to<>>
class HashMap {
public:
    struct Entry : HashNode, Head {
        template <typename KK, typename... Args>
        Entry(KK&& k, Args&&... args)
            : key(std::forward<KK>(k)), value(std::forward<Args>(args)...) {}
        const K key;
        const V value;
    };

    explicit HashMap(HashTableOptions options = {}, Domain& domain = Domain::default_domain())
        : table_(options, domain) {}
    /// Frees every entry at once. Precondition: no reader or updater left.
    ~HashMap() {
        table_.for_each([](Entry& e) { delete &e; });
    }
    HashMap(const HashMap&) = delete;
    HashMap& operator=(const HashMap&) = delete;

    /// The value for `key`, valid until the read section ends; nullptr if absent.
    template <typename Q>
    [[nodiscard]] const V* find(const Q& key) const noexcept {
        const Entry* e = table_.find(key);
        return e != nullptr ? &e->value : nullptr;
    }
    template <typename Q>
    [[nodiscard]] bool contains(const Q& key) const noexcept {
        return table_.find(key) != nullptr;
    }

    /// Inserts unless the key is present; true if inserted.
    template <typename KK, typename... Args>
    bool insert(KK&& key, Args&&... args) {
        auto* e = new Entry(std::forward<KK>(key), std::forward<Args>(args)...);
        if (table_.insert(e) == nullptr) return true;
        delete e;  // never published
        return false;
    }
    /// Inserts or replaces; true if inserted, false if it replaced (the old
    /// entry is freed after a grace period).
    template <typename KK, typename... Args>
    bool insert_or_assign(KK&& key, Args&&... args) {
        auto* e = new Entry(std::forward<KK>(key), std::forward<Args>(args)...);
        Entry* old = table_.insert_or_replace(e);
        retire(old);
        return old == nullptr;
    }
    /// Replaces the value computed from the present one: `fn(const V* cur)`
    /// returns std::optional<V> (nullopt: leave as is; it runs under the
    /// stripe lock, possibly for a value another thread replaces next).
    /// Returns true if a value was stored.
    template <typename Q, typename Fn>
    bool update(const Q& key, Fn&& fn) {
        Entry* fresh = nullptr;
        Entry* old = table_.exchange(key, [&](Entry* cur) -> Entry* {
            auto next = fn(cur != nullptr ? &cur->value : nullptr);
            if (!next) return cur;
            fresh = new Entry(K(key), std::move(*next));
            return fresh;
        });
        retire(old);
        return fresh != nullptr;
    }
    /// Removes the key; true if it was present (freed after a grace period).
    template <typename Q>
    bool erase(const Q& key) {
        Entry* old = table_.erase(key);
        retire(old);
        return old != nullptr;
    }
    /// Removes every entry (each freed after a grace period).
    void clear() {
        table_.for_each([this](Entry& e) {
            if (table_.erase_node(&e)) retire(&e);
        });
    }

    /// Calls `fn(const K&, const V&)` for every entry; see HashTable::for_each
    /// for what a concurrent update does to the walk.
    template <typename Fn>
    void for_each(Fn&& fn) const {
        table_.for_each([&](const Entry& e) { fn(e.key, e.value); });
    }

    /// Calls `fn(const K&, const V&)` for the entries of up to `count`
    /// slices from `cursor`; false once the scan is over. Each entry present
    /// throughout the scan comes once, whatever resizes run: see
    /// HashTable::scan.
    template <typename Fn>
    bool scan(HashScanCursor& cursor, std::size_t count, Fn&& fn) const {
        return table_.scan(cursor, count, [&](const Entry& e) { fn(e.key, e.value); });
    }

    [[nodiscard]] std::size_t size() const noexcept { return table_.size(); }
    [[nodiscard]] bool empty() const noexcept { return table_.empty(); }
    [[nodiscard]] HashTableStats stats() const noexcept { return table_.stats(); }
    /// The intrusive table underneath (resize_step(), walk(), scan()).
    [[nodiscard]] auto& table() noexcept { return table_; }

private:
    struct KeyOf {
        const K& operator()(const Entry& e) const noexcept { return e.key; }
    };

    void retire(Entry* e) {
        if (e != nullptr)
            table_.domain().call(static_cast<Head*>(e),
                                 [](Head* h) noexcept { delete static_cast<Entry*>(h); });
    }

    HashTable<Entry, KeyOf, Hash, Eq> table_;
};

}  // namespace quiesce::rcu
