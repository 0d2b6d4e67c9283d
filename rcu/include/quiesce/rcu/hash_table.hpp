// rcu::HashTable: an intrusive hash table whose lookups are RCU readers (no
// lock, no atomic read-modify-write, no store), and whose updates take one
// stripe lock out of many. It grows and shrinks online, a few buckets per
// update, while readers keep reading. rcu::HashMap (hash_map.hpp) is the
// owning map built on it; use this one to embed the link in your own nodes
// (a cache item with its key and value inline).
//
//     struct Item : rcu::HashNode, rcu::Head { std::string key; int value; };
//     struct ItemKey { std::string_view operator()(const Item& i) const { return i.key; } };
//     rcu::HashTable<Item, ItemKey, rcu::StringHash> table;
//
//     { rcu::ReadLock lock; if (Item* i = table.find("k")) use(i->value); }   // reader
//
//     rcu::ReadLock lock;                              // updates read too
//     Item* old = table.exchange("k", [&](Item* cur) { return make_item(cur); });
//     if (old) domain.retire(old);                     // the table never frees nodes
//
// Every call runs inside a read section of the table's domain (a ReadLock,
// or an online QSBR reader between quiescent states): find() returns a node
// that stays valid until the section ends, and updates walk tables that a
// concurrent resize may retire.
//
// Algorithm, invariants and orderings: rcu/README.md, "HashTable". In short:
// a chain per bucket; updates of one key lock the stripe `hash % stripes`,
// which covers that key's bucket in every table of at least `stripes`
// buckets; a resize links a new table behind the current one (`future`) and
// moves buckets one at a time, tail node first; lookups that miss in a table
// go on to its future one, so a key is never missed during the move.
//
// Limits: node addresses are stable; a node is in at most one table. Resizes
// happen inside updates (`resize_budget` buckets moved per update) or by
// resize_step(); a table left with no updates mid-resize answers lookups
// from two tables until something finishes it.
//
// Threading: every member may be called from any thread (inside a read
// section), except the constructor and destructor.
#pragma once

#include <quiesce/base/config.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <quiesce/base/cacheline.hpp>
#include <quiesce/rcu/domain.hpp>

namespace quiesce::rcu {

/// The link a node of a HashTable embeds (derive from it).
struct HashNode {
    /// [H1] release stores (insert, unlink, move) / [H2] acquire loads (find).
    std::atomic<HashNode*> chain{nullptr};
    /// The key's hash, set by the table before the node is published.
    std::uint64_t hash = 0;
};

/// A transparent hash of string-like keys: look up with a std::string_view
/// (or a const char*) in a table keyed by std::string, without building one.
struct StringHash {
    using is_transparent = void;
    std::uint64_t operator()(std::string_view s) const noexcept {
        // FNV-1a is weak on short keys with a common prefix; this is
        // wyhash-style mixing of 8-byte words, enough for bucket selection.
        std::uint64_t h = 0x9e3779b97f4a7c15ull ^ s.size();
        std::size_t i = 0;
        for (; i + 8 <= s.size(); i += 8) {
            std::uint64_t w;
            __builtin_memcpy(&w, s.data() + i, 8);
            h = mix(h ^ w);
        }
        std::uint64_t tail = 0;
        if (i < s.size()) __builtin_memcpy(&tail, s.data() + i, s.size() - i);
        return mix(h ^ tail ^ (std::uint64_t{0xa5} << 56));
    }

private:
    static std::uint64_t mix(std::uint64_t x) noexcept {
        __uint128_t m = static_cast<__uint128_t>(x) * 0xe7037ed1a0b428dbull;
        return static_cast<std::uint64_t>(m) ^ static_cast<std::uint64_t>(m >> 64);
    }
};

struct HashTableOptions {
    /// Stripe locks for updates (a power of two). Also the smallest table.
    std::size_t stripes = 64;
    /// Buckets to start with (rounded up to a power of two, at least stripes).
    std::size_t initial_buckets = 64;
    /// Grow (×2) when nodes exceed buckets × max_load.
    double max_load = 1.0;
    /// Shrink (÷2) when nodes fall below buckets × min_load.
    double min_load = 0.125;
    /// Buckets a resize moves per update (0: only resize_step() moves them).
    std::size_t resize_budget = 8;
};

/// Where a HashTable::scan() stands. Start with a default-constructed one.
struct HashScanCursor {
    /// The next slice to visit.
    std::size_t next = 0;
    /// Slices of the key space (the bucket count when the scan began; 0
    /// before its first call). Slice p is the keys with hash % slices == p.
    std::size_t slices = 0;
};

struct HashTableStats {
    std::size_t size = 0;
    std::size_t buckets = 0;    ///< of the current table
    std::uint64_t resizes = 0;  ///< completed
    bool resizing = false;
};

namespace detail {

/// One bucket array. `future` is set once, when a resize to a new array
/// begins; the buckets here are then emptied into it.
struct HashBuckets : Head {
    explicit HashBuckets(std::size_t n) : mask(n - 1), slots(new std::atomic<HashNode*>[n]) {
        for (std::size_t i = 0; i < n; ++i) slots[i].store(nullptr, std::memory_order_relaxed);
    }
    [[nodiscard]] std::size_t size() const noexcept { return mask + 1; }
    [[nodiscard]] std::atomic<HashNode*>& slot(std::uint64_t hash) noexcept {
        return slots[hash & mask];
    }
    const std::size_t mask;
    /// [H3] release in start_resize() / [H4] acquire in find() and updates.
    std::atomic<HashBuckets*> future{nullptr};
    std::unique_ptr<std::atomic<HashNode*>[]> slots;
};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// A stripe lock: held for a few loads and stores, so it spins (yielding
/// after a while) rather than sleeping in the kernel, which a loop thread
/// must not do while online.
struct alignas(base::kNoFalseSharing) StripeLock {
    std::atomic<bool> held{false};
    void lock() noexcept {
        for (unsigned spins = 0;; ++spins) {
            // [S1] acquire, pairs with [S2]: the previous holder's updates
            // of the stripe's chains are visible.
            if (!held.exchange(true, std::memory_order_acquire)) return;
            while (held.load(std::memory_order_relaxed)) {  // relaxed: a hint, [S1] decides
                if (spins++ > 128)
                    std::this_thread::yield();
                else
                    cpu_relax();
            }
        }
    }
    // [S2] release, pairs with [S1].
    void unlock() noexcept { held.store(false, std::memory_order_release); }
};

}  // namespace detail

/// Node: derives from HashNode. KeyOf: `key_view(const Node&)`, a callable
/// returning what Hash and Eq take. Hash and Eq are transparent if lookups
/// use other key types.
template <typename Node, typename KeyOf, typename Hash = StringHash, typename Eq = std::equal_to<>>
class HashTable {
    static_assert(std::is_base_of_v<HashNode, Node>, "a node derives from rcu::HashNode");

public:
    explicit HashTable(HashTableOptions options = {}, Domain& domain = Domain::default_domain())
        : options_(normalised(options)),
          domain_(domain),
          stripes_(new detail::StripeLock[options_.stripes]) {
        current_.store(new detail::HashBuckets(options_.initial_buckets),
                       std::memory_order_relaxed);  // relaxed: not shared yet
    }
    /// Frees the bucket arrays, not the nodes (clear() first, or take them
    /// with for_each()). Precondition: no reader or updater left.
    ~HashTable() {
        detail::HashBuckets* t = current_.load(std::memory_order_relaxed);
        while (t != nullptr) {
            detail::HashBuckets* next = t->future.load(std::memory_order_relaxed);
            delete t;
            t = next;
        }
    }
    HashTable(const HashTable&) = delete;
    HashTable& operator=(const HashTable&) = delete;

    /// The node with this key, or nullptr. Read section required; the node
    /// stays valid until it ends. Cost: a hash, the chain's loads; no store.
    template <typename K>
    [[nodiscard]] Node* find(const K& key) const noexcept {
        const std::uint64_t h = hash_(key);
        // [H4] acquire, pairs with [H5] (swap) and [H3] (future link).
        for (detail::HashBuckets* t = current_.load(std::memory_order_acquire); t != nullptr;
             t = t->future.load(std::memory_order_acquire)) {
            // [H2] acquire, pairs with [H1]: a published node is fully built.
            for (HashNode* n = t->slot(h).load(std::memory_order_acquire); n != nullptr;
                 n = n->chain.load(std::memory_order_acquire)) {
                if (n->hash == h && eq_(key_of_(*static_cast<Node*>(n)), key))
                    return static_cast<Node*>(n);
            }
        }
        return nullptr;
    }

    /// Changes the key's entry under its stripe lock: `decide(current)`
    /// (current is nullptr when absent) returns the node that should hold
    /// the key from now on: `current` to change nothing, nullptr to erase,
    /// another node (with the same key) to insert or replace. Returns the
    /// node taken out (to retire after a grace period, or reuse if never
    /// published), or nullptr. `decide` runs under the lock: keep it short,
    /// it must not take another stripe (no update of this table inside).
    /// Read section required. Cost: the lock, the chain, a few stores.
    template <typename K, typename Decide>
    Node* exchange(const K& key, Decide&& decide) {
        const std::uint64_t h = hash_(key);
        Node* removed = nullptr;
        int delta = 0;
        {
            std::lock_guard guard(stripe(h));
            Found found = locate(h, key);
            Node* current = found.node;
            Node* next = decide(current);
            if (next != current) {
                if (next != nullptr) next->hash = h;
                if (current == nullptr) {
                    link_head(*found.newest, next);
                    delta = 1;
                } else if (next == nullptr) {
                    unlink(*found.slot, current);
                    delta = -1;
                } else {
                    // [H1] release: readers see the old node or the whole new one.
                    HashNode* link = next;  // Node may also derive from Head (its own `next`)
                    link->chain.store(
                        current->chain.load(std::memory_order_relaxed),
                        std::memory_order_relaxed);  // relaxed: published by the store below
                    found.slot->store(next, std::memory_order_release);
                }
                if (current != nullptr) removed = current;
            }
        }
        if (delta != 0) after_count_change(delta);
        return removed;
    }

    /// Inserts `node` unless its key is present. Returns nullptr when
    /// inserted, else the present node (and `node` stays the caller's).
    Node* insert(Node* node) {
        Node* present = nullptr;
        exchange(key_of_(*node), [&](Node* cur) {
            present = cur;
            return cur != nullptr ? cur : node;
        });
        return present;
    }
    /// Inserts `node`, replacing the node with its key; returns the replaced
    /// node (to retire) or nullptr.
    Node* insert_or_replace(Node* node) {
        return exchange(key_of_(*node), [&](Node*) { return node; });
    }
    /// Removes the key's node and returns it (to retire), or nullptr.
    template <typename K>
    Node* erase(const K& key) {
        return exchange(key, [](Node*) -> Node* { return nullptr; });
    }
    /// Removes exactly `node` if it is still in the table (another update
    /// may have replaced or erased it): true if this call removed it.
    bool erase_node(Node* node) {
        return exchange(key_of_(*node), [&](Node* cur) { return cur == node ? nullptr : cur; }) ==
               node;
    }

    /// Calls `fn(Node&)` for every node. Tolerates concurrent updates: a
    /// node present throughout is visited at least once (more often if
    /// resizes moved it meanwhile); nodes inserted or erased during the walk
    /// may or may not be. Read section required; a long walk delays grace periods.
    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (detail::HashBuckets* t = current_.load(std::memory_order_acquire); t != nullptr;
             t = t->future.load(std::memory_order_acquire))  // [H4]
            for (std::size_t b = 0; b < t->size(); ++b) visit_chain(t->slots[b], fn);
    }

    /// Visits up to `count` buckets of the current table from `cursor`
    /// (wrapping), calling `fn(Node&)` for each node in them; returns the
    /// cursor to pass next time. For incremental walks (a CLOCK hand, an
    /// expiry crawler) that spread the work over many turns. During a resize
    /// the future table's buckets for the same keys are visited too, each
    /// once per pass over the current table (a node moved between the two
    /// while the walk runs may then be seen twice; none present throughout
    /// is missed); the resize is helped along first.
    template <typename Fn>
    std::size_t walk(std::size_t cursor, std::size_t count, Fn&& fn) {
        if (resizing()) resize_step(count);
        detail::HashBuckets* t = current_.load(std::memory_order_acquire);   // [H4]
        detail::HashBuckets* f = t->future.load(std::memory_order_acquire);  // [H4]
        for (std::size_t i = 0; i < count; ++i, ++cursor) {
            const std::size_t b = cursor & t->mask;
            visit_chain(t->slots[b], fn);
            if (f == nullptr) continue;
            // The buckets of the future table that bucket b's keys go to.
            if (f->size() > t->size()) {
                for (std::size_t k = b; k < f->size(); k += t->size()) visit_chain(f->slots[k], fn);
            } else if (b >= t->size() - f->size()) {
                // Shrinking: a future bucket takes several old ones. Visit
                // it once, with the last of them: a node moved there from
                // any of them before the walk passed that one is seen then.
                visit_chain(f->slots[b & f->mask], fn);
            }
        }
        return cursor & t->mask;
    }

    /// Visits the nodes of up to `count` slices of the key space from
    /// `cursor` (slice p: the keys with hash % cursor.slices == p, fixed when
    /// the scan began, so a slice is about a bucket). Over a whole scan, a
    /// node present from its first call to its last is visited exactly once,
    /// whatever resizes run between or during the calls (Redis's SCAN
    /// promises only at least once); nodes
    /// inserted or erased meanwhile may or may not be, and a key replaced
    /// meanwhile may be visited as its old node and its new one. Returns
    /// false once the scan is over. For dumps a client reads piece by piece;
    /// walk() is the cheaper one for a crawler that may see a node twice.
    /// Read section required (each call may be its own). Cost: the slice's
    /// buckets in every array, a sort of the slice's nodes.
    template <typename Fn>
    bool scan(HashScanCursor& cursor, std::size_t count, Fn&& fn) const {
        if (cursor.slices == 0)
            cursor.slices = current_.load(std::memory_order_acquire)->size();  // [H4]
        const std::size_t slices = cursor.slices;
        std::vector<Node*> met;
        for (; count > 0 && cursor.next < slices; --count, ++cursor.next) {
            const std::size_t slice = cursor.next;
            met.clear();
            auto collect = [&](const std::atomic<HashNode*>& head) {
                // A chain may run on into a newer array's chain through a
                // moved tail: other slices' nodes are skipped here, this
                // slice's are met again there (duplicates go below).
                for (HashNode* n = head.load(std::memory_order_acquire); n != nullptr;
                     n = n->chain.load(std::memory_order_acquire))  // [H2]
                    if ((n->hash & (slices - 1)) == slice) met.push_back(static_cast<Node*>(n));
            };
            // Oldest array first: a node only moves into a newer array, and
            // is published there before it leaves ([H1]), so one missed here
            // because it moved is met in the next array, whose link is
            // loaded after this array was read.
            for (const detail::HashBuckets* a = current_.load(std::memory_order_acquire);
                 a != nullptr; a = a->future.load(std::memory_order_acquire)) {  // [H4]
                if (a->size() >= slices) {
                    for (std::size_t b = slice; b < a->size(); b += slices) collect(a->slots[b]);
                } else {
                    collect(a->slots[slice & a->mask]);  // shrunk below the slicing
                }
            }
            // A node met in an old array and again after it moved: once.
            std::sort(met.begin(), met.end());
            met.erase(std::unique(met.begin(), met.end()), met.end());
            for (Node* n : met) fn(*n);
        }
        return cursor.next < slices;
    }

    /// Moves up to `buckets` buckets of a resize in progress (0: all of it).
    /// Returns true while a resize remains. Read section required. Thread:
    /// any; concurrent calls share the work (one moves, the others return).
    bool resize_step(std::size_t buckets = 0) {
        std::unique_lock lock(resize_mutex_, std::try_to_lock);
        if (!lock.owns_lock()) return resizing();
        return move_buckets(buckets == 0 ? SIZE_MAX : buckets);
    }

    /// Starts a resize to `buckets` (a power of two ≥ stripes) unless one
    /// runs. Moves happen in later updates or resize_step().
    void resize(std::size_t buckets) {
        std::lock_guard lock(resize_mutex_);
        start_resize(round_buckets(buckets));
    }

    [[nodiscard]] std::size_t size() const noexcept {
        return static_cast<std::size_t>(std::max<std::ptrdiff_t>(
            0, count_.load(std::memory_order_relaxed)));  // relaxed: a snapshot
    }
    [[nodiscard]] bool empty() const noexcept { return size() == 0; }
    [[nodiscard]] bool resizing() const noexcept {
        return current_.load(std::memory_order_acquire)->future.load(std::memory_order_acquire) !=
               nullptr;  // [H4]
    }
    [[nodiscard]] HashTableStats stats() const noexcept {
        HashTableStats s;
        s.size = size();
        s.buckets = current_.load(std::memory_order_acquire)->size();  // [H4]
        s.resizes = resizes_.load(std::memory_order_relaxed);          // relaxed: a counter
        s.resizing = resizing();
        return s;
    }
    [[nodiscard]] Domain& domain() const noexcept { return domain_; }

private:
    struct Found {
        Node* node = nullptr;
        std::atomic<HashNode*>* slot = nullptr;    // where node is linked from
        std::atomic<HashNode*>* newest = nullptr;  // the key's bucket in the newest table
    };

    static HashTableOptions normalised(HashTableOptions o) {
        o.stripes = std::bit_ceil(std::max<std::size_t>(o.stripes, 1));
        o.initial_buckets = std::bit_ceil(std::max(o.initial_buckets, o.stripes));
        if (!(o.max_load > 0)) o.max_load = 1.0;
        if (!(o.min_load >= 0) || o.min_load >= o.max_load / 2) o.min_load = o.max_load / 8;
        return o;
    }
    [[nodiscard]] std::size_t round_buckets(std::size_t n) const {
        return std::bit_ceil(std::max(n, options_.stripes));
    }
    detail::StripeLock& stripe(std::uint64_t h) const noexcept {
        return stripes_[h & (options_.stripes - 1)];
    }

    // Under the key's stripe: the stripe covers the key's bucket in every
    // table (each has at least `stripes` buckets), so no chain walked here
    // changes under us; loads are relaxed for that reason, except the
    // future links, which a resize sets without our stripe.
    template <typename K>
    Found locate(std::uint64_t h, const K& key) const {
        Found found;
        for (detail::HashBuckets* t = current_.load(std::memory_order_acquire); t != nullptr;
             t = t->future.load(std::memory_order_acquire)) {  // [H4]
            std::atomic<HashNode*>* slot = &t->slot(h);
            found.newest = slot;
            if (found.node != nullptr) continue;
            for (HashNode* n = slot->load(std::memory_order_relaxed); n != nullptr;
                 slot = &n->chain, n = n->chain.load(std::memory_order_relaxed)) {
                if (n->hash == h && eq_(key_of_(*static_cast<Node*>(n)), key)) {
                    found.node = static_cast<Node*>(n);
                    found.slot = slot;
                    break;
                }
            }
        }
        return found;
    }

    static void link_head(std::atomic<HashNode*>& bucket, HashNode* node) noexcept {
        // [H1] release even here: a node being moved is already visible, and
        // a reader on it that loads this next must see the node it names
        // fully built (that node's publication happened-before our stripe).
        node->chain.store(bucket.load(std::memory_order_relaxed), std::memory_order_release);
        bucket.store(node, std::memory_order_release);  // [H1]
    }
    static void unlink(std::atomic<HashNode*>& slot, HashNode* node) noexcept {
        // [H1] release: readers past `slot` skip the node; readers on it keep
        // its next, which is left as it was (they finish the chain).
        slot.store(node->chain.load(std::memory_order_relaxed), std::memory_order_release);
    }

    template <typename Fn>
    static void visit_chain(const std::atomic<HashNode*>& head, Fn& fn) {
        // The next link is read before fn runs: fn may unlink the node, or
        // (with no reader left, in a destructor) free it.
        for (HashNode* n = head.load(std::memory_order_acquire); n != nullptr;) {  // [H2]
            HashNode* next = n->chain.load(std::memory_order_acquire);             // [H2]
            fn(*static_cast<Node*>(n));
            n = next;
        }
    }

    void after_count_change(int delta) {
        // relaxed: a size estimate that only triggers resizes.
        std::ptrdiff_t n = count_.fetch_add(delta, std::memory_order_relaxed) + delta;
        detail::HashBuckets* t = current_.load(std::memory_order_acquire);  // [H4]
        if (t->future.load(std::memory_order_acquire) != nullptr) {         // [H4]
            if (options_.resize_budget > 0) resize_step(options_.resize_budget);
            return;
        }
        if (wanted_buckets(n, t->size()) == t->size()) return;
        std::unique_lock lock(resize_mutex_, std::try_to_lock);
        if (!lock.owns_lock()) return;
        // Decided again under the mutex: a resize may have ended meanwhile.
        t = current_.load(std::memory_order_relaxed);  // relaxed: resize_mutex_
        const std::size_t target =
            wanted_buckets(count_.load(std::memory_order_relaxed), t->size());  // relaxed: estimate
        if (target == t->size()) return;
        start_resize(target);
        if (options_.resize_budget > 0) move_buckets(options_.resize_budget);
    }

    // The table size the policy wants for `n` nodes: doubled (or halved)
    // until the load is within [min_load, max_load].
    [[nodiscard]] std::size_t wanted_buckets(std::ptrdiff_t n, std::size_t size) const noexcept {
        const double nodes = static_cast<double>(n);
        while (nodes > static_cast<double>(size) * options_.max_load) size *= 2;
        while (size > options_.stripes && nodes < static_cast<double>(size) * options_.min_load)
            size /= 2;
        return size;
    }

    // Under resize_mutex_.
    void start_resize(std::size_t buckets) {
        detail::HashBuckets* t =
            current_.load(std::memory_order_relaxed);  // relaxed: resize_mutex_
        if (t->future.load(std::memory_order_relaxed) != nullptr || buckets == t->size()) return;
        auto* next = new detail::HashBuckets(buckets);
        // [H3] release, pairs with [H4]: the empty buckets are visible to
        // whoever follows the link.
        t->future.store(next, std::memory_order_release);
        move_cursor_ = 0;
    }

    // Under resize_mutex_. Moves buckets of the current table into its
    // future one; at the end makes the future current and retires the old.
    bool move_buckets(std::size_t budget) {
        detail::HashBuckets* t =
            current_.load(std::memory_order_relaxed);  // relaxed: resize_mutex_
        detail::HashBuckets* f = t->future.load(std::memory_order_acquire);  // [H4]
        if (f == nullptr) return false;
        for (; move_cursor_ < t->size() && budget > 0; ++move_cursor_, --budget) {
            std::lock_guard guard(stripes_[move_cursor_ & (options_.stripes - 1)]);
            move_bucket(t->slots[move_cursor_], *f);
        }
        if (move_cursor_ < t->size()) return true;
        // [H5] release, pairs with [H4]: readers that load the new table see
        // every node moved into it. Readers still in the old one find its
        // buckets empty and follow `future`.
        current_.store(f, std::memory_order_release);
        resizes_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
        // The old array is freed after a grace period: readers may still be
        // in it. Any reader that can reach `f` through it began before this
        // retire, so `f` (retired, if ever, by a later resize) outlives it.
        domain_.retire(t);  // through its Head: allocates nothing
        // Nodes came and went during the move: the new size may already be
        // off the mark (a resize_step(0) loop then ends at the right size).
        const std::size_t target = wanted_buckets(count_.load(std::memory_order_relaxed),
                                                  f->size());  // relaxed: an estimate
        if (target == f->size()) return false;
        start_resize(target);
        return true;
    }

    // Under the bucket's stripe. Moves the tail node first: a reader on it
    // follows its new link into the future table's chain (extra nodes, then
    // the chain's end, then the future table proper), and no node is ever
    // cut off from a reader walking the old chain.
    static void move_bucket(std::atomic<HashNode*>& bucket, detail::HashBuckets& f) {
        for (;;) {
            std::atomic<HashNode*>* slot = &bucket;
            HashNode* tail = slot->load(std::memory_order_relaxed);  // relaxed: the stripe
            if (tail == nullptr) return;
            while (HashNode* n = tail->chain.load(std::memory_order_relaxed)) {
                slot = &tail->chain;
                tail = n;
            }
            // Published in the future table first ([H1]), then cut from the
            // old chain ([H1]): a reader that sees it gone from the old
            // chain (acquire of `slot`) then finds it in the future one.
            link_head(f.slot(tail->hash), tail);
            slot->store(nullptr, std::memory_order_release);  // [H1]
        }
    }

    const HashTableOptions options_;
    Domain& domain_;
    std::unique_ptr<detail::StripeLock[]> stripes_;
    [[no_unique_address]] KeyOf key_of_{};
    [[no_unique_address]] Hash hash_{};
    [[no_unique_address]] Eq eq_{};
    /// [H5] release when a resize ends / [H4] acquire everywhere.
    std::atomic<detail::HashBuckets*> current_{nullptr};
    alignas(base::kNoFalseSharing) std::atomic<std::ptrdiff_t> count_{0};
    std::atomic<std::uint64_t> resizes_{0};
    std::mutex resize_mutex_;  // one resize at a time; guards move_cursor_
    std::size_t move_cursor_ = 0;
};

}  // namespace quiesce::rcu
