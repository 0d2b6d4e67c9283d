// The item store of kvcache: items in an rcu::HashTable, memory bounded by an
// item-byte limit with CLOCK eviction, expiry and flush_all as memcached has
// them.
//
// A get is a lookup and two loads: no lock, no reference count, no store
// (the CLOCK bit is set only when it is clear, once per sweep of the hand).
// Updates build a new item and swap it in under the key's stripe lock; the
// old one is freed after a grace period, so a reader keeps a whole item for
// its read section. The only in-place changes are an item's expiry time
// (touch, gat) and its flag bits, both atomics.
//
// Threading: every member may be called from any thread inside a read
// section of the store's domain (an online loop thread, or a ReadLock).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <quiesce/rcu/domain.hpp>
#include <quiesce/rcu/hash_table.hpp>

namespace kvcache {

/// memcached's relative time: seconds since the process started (minus 62,
/// as memcached counts, so that it is never 0). 0 in an expiry means never.
using RelTime = std::uint32_t;

/// One key and its value. Allocated with the key and value inline; never
/// changed once published except `exptime`, `time` and `bits`.
struct Item : quiesce::rcu::HashNode {
    enum Bits : std::uint8_t {
        kActive = 1,     ///< read since the CLOCK hand last passed
        kFetched = 2,    ///< read at least once
        kTokenSent = 4,  ///< a meta "win" token was handed out
        kStale = 8,      ///< invalidated by md/ms I: served as stale
    };
    std::uint64_t cas = 0;
    std::atomic<RelTime> exptime{0};  // relaxed: a value, no data hangs on it
    std::atomic<RelTime> time{0};     ///< last store, or access (bumped ≥ 60 s apart)
    std::uint32_t flags = 0;
    std::uint32_t nbytes = 0;  ///< value length (no "\r\n")
    std::uint8_t nkey = 0;
    std::atomic<std::uint8_t> bits{0};
    // The key, then the value, follow the header in the same allocation.

    [[nodiscard]] const char* data() const noexcept {
        return reinterpret_cast<const char*>(this + 1);
    }
    [[nodiscard]] char* data() noexcept { return reinterpret_cast<char*>(this + 1); }
    [[nodiscard]] std::string_view key() const noexcept { return {data(), nkey}; }
    [[nodiscard]] std::string_view value() const noexcept { return {data() + nkey, nbytes}; }
    [[nodiscard]] char* value_data() noexcept { return data() + nkey; }
    [[nodiscard]] std::size_t total() const noexcept { return sizeof(Item) + nkey + nbytes; }
    [[nodiscard]] bool has(Bits b) const noexcept {
        return (bits.load(std::memory_order_relaxed) & b) != 0;  // relaxed: a hint bit
    }
};

struct ItemKey {
    std::string_view operator()(const Item& item) const noexcept { return item.key(); }
};
using Table = quiesce::rcu::HashTable<Item, ItemKey, quiesce::rcu::StringHash>;

struct StoreOptions {
    std::size_t memory_limit = 64u << 20;  ///< -m, bytes of items
    std::size_t item_max = 1u << 20;       ///< -I
    bool cas = true;                       ///< -C turns CAS off
    std::size_t initial_buckets = 1024;
};

/// The storage modes of set/add/replace/append/prepend/cas (ms M flag).
enum class Mode { kSet, kAdd, kReplace, kAppend, kPrepend, kCas };
enum class StoreResult { kStored, kNotStored, kExists, kNotFound };
enum class DeltaResult { kOk, kNonNumeric, kNotFound, kCasMismatch, kNoMemory };

/// Counters one connection (or one thread) owns; summed by Store::totals().
/// The owner bumps with a load and a store (no RMW): nobody else writes.
struct Counters {
    std::atomic<std::uint64_t> get_cmds{0}, get_hits{0}, get_misses{0}, get_expired{0},
        get_flushed{0}, set_cmds{0}, touch_cmds{0}, touch_hits{0}, touch_misses{0}, delete_hits{0},
        delete_misses{0}, incr_hits{0}, incr_misses{0}, decr_hits{0}, decr_misses{0}, cas_hits{0},
        cas_misses{0}, cas_badval{0}, flush_cmds{0}, meta_cmds{0}, store_too_large{0},
        store_no_memory{0}, auth_cmds{0};
    static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
        c.store(c.load(std::memory_order_relaxed) + n,
                std::memory_order_relaxed);  // relaxed: one writer
    }
};

/// A plain copy of Counters plus the store's own.
struct Totals {
    std::uint64_t get_cmds = 0, get_hits = 0, get_misses = 0, get_expired = 0, get_flushed = 0,
                  set_cmds = 0, touch_cmds = 0, touch_hits = 0, touch_misses = 0, delete_hits = 0,
                  delete_misses = 0, incr_hits = 0, incr_misses = 0, decr_hits = 0, decr_misses = 0,
                  cas_hits = 0, cas_misses = 0, cas_badval = 0, flush_cmds = 0, meta_cmds = 0,
                  store_too_large = 0, store_no_memory = 0;
    std::uint64_t curr_items = 0, total_items = 0, bytes = 0, evictions = 0, evicted_unfetched = 0,
                  expired_unfetched = 0, reclaimed = 0, crawler_reclaimed = 0, hash_buckets = 0,
                  hash_resizes = 0, hash_resizing = 0;
};

class Store {
public:
    /// `now` returns Unix time in seconds (tests pass their own clock).
    explicit Store(StoreOptions options = {},
                   quiesce::rcu::Domain& domain = quiesce::rcu::Domain::default_domain(),
                   std::function<std::time_t()> now = nullptr);
    /// Frees every item. Precondition: no reader or updater left.
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // ---- time, as memcached keeps it -------------------------------------
    /// Seconds since start (memcached's current_time). Cost: a clock read.
    [[nodiscard]] RelTime current_time() const;
    /// A protocol expiry (relative seconds, Unix time above 30 days, 0 =
    /// never, negative = already expired) as a RelTime.
    [[nodiscard]] RelTime realtime(std::int64_t exptime) const;
    [[nodiscard]] std::time_t process_started() const noexcept { return process_started_; }

    // ---- reads ------------------------------------------------------------
    enum class Miss { kNone, kAbsent, kExpired, kFlushed };
    /// The live item with `key`, or nullptr (and why in `miss`). Marks it
    /// active and fetched (stores only when the bits are clear) unless
    /// `no_update`. Valid until the read section ends.
    const Item* get(std::string_view key, Miss* miss = nullptr, bool no_update = false);
    /// Sets an item's expiry in place (touch, gat, mg T).
    void set_exptime(const Item& item, RelTime exptime) noexcept;

    // ---- writes -----------------------------------------------------------
    /// The bytes an item would take, as memcached sizes it for -I.
    [[nodiscard]] static std::size_t memcached_size(std::size_t nkey, std::uint32_t flags,
                                                    std::size_t nbytes) noexcept;
    [[nodiscard]] bool too_large(std::size_t nkey, std::uint32_t flags,
                                 std::size_t nbytes) const noexcept;
    /// A new, unpublished item with room for `nbytes` of value (filled by
    /// the caller), after evicting what the limit needs; nullptr when the
    /// memory cannot be found (the caller answers "out of memory").
    Item* allocate(std::string_view key, std::uint32_t flags, RelTime exptime, std::size_t nbytes);
    /// Frees an item that was never published (and its bytes' count).
    void discard(Item* item) noexcept;
    /// Stores `item` (owned from here on) as `mode` says. `cas_in` is the
    /// compare value (0: none); `set_stale` is ms's I flag. On kStored the
    /// item (or, for append/prepend, the combined one) holds the new CAS in
    /// `*cas_out`.
    StoreResult store(Item* item, Mode mode, std::uint64_t cas_in, Counters& counters,
                      bool set_stale = false, std::uint64_t* cas_out = nullptr);
    /// Removes the key (if `cas_in` matches when non-zero). `stale`: md's I
    /// flag, marks it stale instead (new CAS, new TTL if `new_exptime`).
    enum class DeleteResult { kDeleted, kNotFound, kExists };
    DeleteResult remove(std::string_view key, std::uint64_t cas_in = 0, bool stale = false,
                        const RelTime* new_exptime = nullptr);
    /// Removes the key if present (a set that failed for size, as memcached).
    void unlink(std::string_view key);
    /// incr/decr. On kOk, `value_out` holds the new number (as memcached
    /// prints it) and `item_out` the new item (valid for the read section).
    DeltaResult delta(std::string_view key, bool incr, std::uint64_t by, std::uint64_t cas_in,
                      std::string& value_out, const Item** item_out = nullptr);
    /// Creates `key` with `value` only if absent (ma N, mg N); the new item, or
    /// nullptr if the key exists (or no memory).
    const Item* vivify(std::string_view key, std::string_view value, RelTime exptime);
    /// Marks an item whose win token was handed out (mg W).
    static void set_bits(const Item& item, std::uint8_t bits) noexcept;
    static void clear_bits(const Item& item, std::uint8_t bits) noexcept;

    /// flush_all [delay]: every item stored before now (or before `delay`
    /// seconds from now) is gone.
    void flush(std::int64_t delay);

    /// Reclaims expired and flushed items, a slice of the table at a time;
    /// call it every ~100 ms. Returns items reclaimed (0 while disabled).
    std::size_t crawl(std::size_t buckets = 4096);
    /// `lru_crawler enable|disable`: whether crawl() reclaims.
    void set_crawler_enabled(bool on) noexcept {
        crawler_enabled_.store(on, std::memory_order_relaxed);  // relaxed: a switch
    }
    [[nodiscard]] bool crawler_enabled() const noexcept {
        return crawler_enabled_.load(std::memory_order_relaxed);  // relaxed: a switch
    }
    /// Calls fn(const Item&) for the live items of up to `slices` slices of
    /// the table from `cursor` (a slice is about a bucket); false once the
    /// whole table was visited. Over the whole scan an item present
    /// throughout comes exactly once, while the table resizes too. Read
    /// section required (each call may be its own).
    template <typename Fn>
    bool scan_live(quiesce::rcu::HashScanCursor& cursor, std::size_t slices, Fn&& fn) const {
        const RelTime now = current_time();
        return table_.scan(cursor, slices, [&](const Item& item) {
            if (live(item, now)) fn(item);
        });
    }

    // ---- accounting -------------------------------------------------------
    void attach(Counters& counters);
    /// Folds `counters` into the totals of closed connections.
    void detach(Counters& counters);
    [[nodiscard]] Totals totals() const;
    void reset_totals();
    /// The options given; the memory limit may have changed since (below).
    [[nodiscard]] const StoreOptions& options() const noexcept { return options_; }
    /// Bytes of items allowed now: -m, or what cache_memlimit set last.
    [[nodiscard]] std::size_t memory_limit() const noexcept {
        return memory_limit_.load(std::memory_order_relaxed);  // relaxed: a setting
    }
    /// memcached's cache_memlimit: a lower limit is reached by evicting, a
    /// window of buckets per crawl() and whatever a store needs. Thread: any.
    void set_memory_limit(std::size_t bytes) noexcept {
        memory_limit_.store(bytes, std::memory_order_relaxed);  // relaxed: a setting
    }
    [[nodiscard]] std::size_t bytes() const noexcept {
        return bytes_.load(std::memory_order_relaxed);  // relaxed: a counter
    }
    [[nodiscard]] std::size_t size() const noexcept { return table_.size(); }
    [[nodiscard]] std::uint64_t next_cas() noexcept;
    /// The CAS value clients see: the item's, or 0 when CAS is off (-C).
    [[nodiscard]] std::uint64_t cas_of(const Item& item) const noexcept {
        return options_.cas ? item.cas : 0;
    }
    /// Calls fn(const Item&) for every live item (stats cachedump, tests).
    template <typename Fn>
    void for_each(Fn&& fn) const {
        table_.for_each([&](const Item& item) {
            if (live(item, current_time())) fn(item);
        });
    }

private:
    [[nodiscard]] bool live(const Item& item, RelTime now) const noexcept;
    [[nodiscard]] Miss why_dead(const Item& item, RelTime now) const noexcept;
    /// Evicts until `bytes` more fit under the limit, walking at most
    /// `max_buckets` buckets (else up to two sweeps of the table).
    bool reserve(std::size_t bytes, std::size_t max_buckets = SIZE_MAX);
    void retire(Item* item, bool evicted = false) noexcept;
    void linked(const Item& item) noexcept;
    Item* copy_with(const Item& base, std::string_view value);
    /// Unlinks `item` if it is still in the table: true if this call did.
    bool take_out(Item* item, bool evicted);
    static void free_item(Item* item) noexcept;

    const StoreOptions options_;
    std::atomic<std::size_t> memory_limit_;
    quiesce::rcu::Domain& domain_;
    std::function<std::time_t()> now_;
    std::time_t process_started_;
    Table table_;

    alignas(64) std::atomic<std::uint64_t> cas_{0};
    std::atomic<std::size_t> bytes_{0};
    std::atomic<std::uint64_t> total_items_{0}, evictions_{0}, evicted_unfetched_{0},
        expired_unfetched_{0}, reclaimed_{0}, crawler_reclaimed_{0};
    /// Items with a CAS below this were flushed (stored before [F1], loaded
    /// after [F2]; see flush()).
    alignas(64) std::atomic<std::uint64_t> flush_cas_{0};
    /// memcached's oldest_live: items stored (or accessed) at or before this
    /// RelTime are flushed once it has come. [F1] release / [F2] acquire.
    std::atomic<RelTime> flush_at_{0};

    std::mutex evict_mutex_;  // one CLOCK hand; guards hand_
    std::size_t hand_ = 0;
    std::atomic<bool> crawler_enabled_{true};
    std::mutex crawl_mutex_;  // guards crawl_cursor_
    std::size_t crawl_cursor_ = 0;

    mutable std::mutex counters_mutex_;  // guards live_counters_, closed_
    std::vector<Counters*> live_counters_;
    Totals closed_;
    Totals baseline_;  // what the counters held at the last stats reset
};

/// Sums a Counters into a Totals; takes the counter fields of `b` off `t`.
void add_counters(Totals& into, const Counters& from);
void subtract_counters(Totals& t, const Totals& b);

}  // namespace kvcache
