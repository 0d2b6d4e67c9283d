// Store: the items, their memory, expiry and eviction (store.hpp).
//
// Updates that derive a new item from the present one (append, incr, md I)
// build it outside the stripe lock and swap it in only if the present item
// is still the one they read (an optimistic retry): nothing allocates or
// evicts under a stripe lock, since eviction takes stripe locks itself.
#include "store.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

namespace kvcache {

namespace {

constexpr std::int64_t kRealtimeMaxDelta = 60 * 60 * 24 * 30;  // memcached's REALTIME_MAXDELTA
constexpr RelTime kUpdateInterval = 60;                        // memcached's ITEM_UPDATE_INTERVAL

// memcached's safe_strtoull on a value: digits after optional blanks, then
// a blank or the end; no sign; no overflow.
bool parse_u64(std::string_view text, std::uint64_t& out) {
    char buf[64];
    if (text.size() >= sizeof(buf)) return false;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    errno = 0;
    char* end = nullptr;
    unsigned long long v = std::strtoull(buf, &end, 10);
    if (errno == ERANGE || end == buf) return false;
    if (*end != '\0' && *end != ' ' && *end != '\t' && *end != '\r' && *end != '\n' &&
        *end != '\v' && *end != '\f')
        return false;
    if (static_cast<long long>(v) < 0 && std::strchr(buf, '-') != nullptr) return false;
    out = v;
    return true;
}

}  // namespace

Store::Store(StoreOptions options, quiesce::rcu::Domain& domain, std::function<std::time_t()> now)
    : options_(options),
      memory_limit_(options.memory_limit),
      domain_(domain),
      now_(now ? std::move(now) : [] { return std::time(nullptr); }),
      // As memcached: two seconds more than ITEM_UPDATE_INTERVAL before the
      // start, so that current_time is never 0 (0 means "never" in expiries).
      process_started_(now_() - kUpdateInterval - 2),
      table_({.stripes = 256, .initial_buckets = options.initial_buckets, .resize_budget = 16},
             domain) {}

Store::~Store() {
    table_.for_each([](Item& item) { free_item(&item); });
}

RelTime Store::current_time() const {
    return static_cast<RelTime>(now_() - process_started_);
}

RelTime Store::realtime(std::int64_t exptime) const {
    if (exptime == 0) return 0;
    // Negative: already expired (memcached's EXPTIME_TO_POSITIVE_TIME).
    if (exptime < 0) exptime = kRealtimeMaxDelta + 1;
    if (exptime > kRealtimeMaxDelta) {
        if (exptime <= process_started_) return 1;
        return static_cast<RelTime>(exptime - process_started_);
    }
    return static_cast<RelTime>(exptime + current_time());
}

Store::Miss Store::why_dead(const Item& item, RelTime now) const noexcept {
    // relaxed loads: values with nothing published behind them.
    const RelTime exptime = item.exptime.load(std::memory_order_relaxed);
    // memcached's item_is_flushed(): stored (or accessed) at or before the
    // flush time, once that time has come; or older than an immediate flush.
    // [F2] acquire, pairs with [F1] in flush(): a reader that sees the new
    // flush time sees the flush CAS stored before it.
    const RelTime flush_at = flush_at_.load(std::memory_order_acquire);
    if (flush_at != 0 && flush_at <= now) {
        const std::uint64_t flush_cas = flush_cas_.load(std::memory_order_relaxed);  // after [F2]
        if (item.time.load(std::memory_order_relaxed) <= flush_at ||
            (flush_cas != 0 && item.cas < flush_cas))
            return Miss::kFlushed;
    }
    if (exptime != 0 && exptime <= now) return Miss::kExpired;
    return Miss::kNone;
}

bool Store::live(const Item& item, RelTime now) const noexcept {
    return why_dead(item, now) == Miss::kNone;
}

const Item* Store::get(std::string_view key, Miss* miss, bool no_update) {
    Item* item = table_.find(key);
    if (item == nullptr) {
        if (miss) *miss = Miss::kAbsent;
        return nullptr;
    }
    const RelTime now = current_time();
    const Miss dead = why_dead(*item, now);
    if (dead != Miss::kNone) {
        // As memcached, a dead item found by a read is unlinked there.
        const bool unfetched = dead == Miss::kExpired && !item->has(Item::kFetched);
        if (take_out(item, false) && unfetched)
            expired_unfetched_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
        if (miss) *miss = dead;
        return nullptr;
    }
    if (!no_update) {
        // A store only when a bit is clear: once per CLOCK sweep at most.
        constexpr std::uint8_t kRead = Item::kActive | Item::kFetched;
        if ((item->bits.load(std::memory_order_relaxed) & kRead) != kRead)  // relaxed: hint bits
            item->bits.fetch_or(kRead, std::memory_order_relaxed);
        if (item->time.load(std::memory_order_relaxed) + kUpdateInterval < now)
            item->time.store(now, std::memory_order_relaxed);  // relaxed: a value
    }
    if (miss) *miss = Miss::kNone;
    return item;
}

void Store::set_exptime(const Item& item, RelTime exptime) noexcept {
    const_cast<Item&>(item).exptime.store(exptime, std::memory_order_relaxed);  // relaxed: a value
}

void Store::set_bits(const Item& item, std::uint8_t bits) noexcept {
    const_cast<Item&>(item).bits.fetch_or(bits, std::memory_order_relaxed);  // relaxed: hint bits
}

void Store::clear_bits(const Item& item, std::uint8_t bits) noexcept {
    const_cast<Item&>(item).bits.fetch_and(static_cast<std::uint8_t>(~bits),
                                           std::memory_order_relaxed);  // relaxed: hint bits
}

std::size_t Store::memcached_size(std::size_t nkey, std::uint32_t flags,
                                  std::size_t nbytes) noexcept {
    // memcached's item_make_header() + CAS: a 48-byte header, the key and
    // its NUL, 4 bytes of client flags when non-zero, the value and its
    // "\r\n", 8 bytes of CAS.
    return 48 + nkey + 1 + (flags != 0 ? 4 : 0) + nbytes + 2 + 8;
}

bool Store::too_large(std::size_t nkey, std::uint32_t flags, std::size_t nbytes) const noexcept {
    return memcached_size(nkey, flags, nbytes) > options_.item_max;
}

std::uint64_t Store::next_cas() noexcept {
    // Always counted, also with -C (then clients are told 0): the numbers
    // order stores, which flush_all relies on.
    return cas_.fetch_add(1, std::memory_order_relaxed) + 1;  // relaxed: unique numbers only
}

Item* Store::allocate(std::string_view key, std::uint32_t flags, RelTime exptime,
                      std::size_t nbytes) {
    const std::size_t total = sizeof(Item) + key.size() + nbytes;
    if (!reserve(total)) return nullptr;
    void* memory = std::malloc(total);
    if (memory == nullptr) return nullptr;
    auto* item = new (memory) Item;
    // Counted from here, not from when it is linked: items waiting for their
    // data count against the limit too, and a remover (which subtracts under
    // the stripe) can never run before the add.
    bytes_.fetch_add(total, std::memory_order_relaxed);  // relaxed: a counter
    item->flags = flags;
    item->nbytes = static_cast<std::uint32_t>(nbytes);
    item->nkey = static_cast<std::uint8_t>(key.size());
    item->exptime.store(exptime, std::memory_order_relaxed);  // relaxed: not published yet
    item->time.store(current_time(), std::memory_order_relaxed);
    if (!key.empty()) std::memcpy(item->data(), key.data(), key.size());
    return item;
}

void Store::free_item(Item* item) noexcept {
    item->~Item();
    std::free(item);
}

void Store::discard(Item* item) noexcept {
    if (item == nullptr) return;
    bytes_.fetch_sub(item->total(), std::memory_order_relaxed);  // relaxed: a counter
    free_item(item);
}

void Store::retire(Item* item, bool) noexcept {
    domain_.retire(item, [](Item* dead) noexcept { free_item(dead); });
}

void Store::linked(const Item&) noexcept {
    total_items_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
}

bool Store::take_out(Item* item, bool evicted) {
    if (!table_.erase_node(item)) return false;                  // someone else took it first
    bytes_.fetch_sub(item->total(), std::memory_order_relaxed);  // relaxed: a counter
    if (evicted) {
        evictions_.fetch_add(1, std::memory_order_relaxed);
        if (!item->has(Item::kFetched)) evicted_unfetched_.fetch_add(1, std::memory_order_relaxed);
    }
    retire(item);
    return true;
}

bool Store::reserve(std::size_t need, std::size_t max_buckets) {
    const std::size_t limit_bytes = memory_limit();
    auto fits = [&] {
        return bytes_.load(std::memory_order_relaxed) + need <= limit_bytes;  // relaxed: a counter
    };
    if (fits()) return true;
    if (need > limit_bytes) return false;
    std::lock_guard lock(evict_mutex_);
    const RelTime now = current_time();
    // The CLOCK hand walks a window of buckets: dead items go, an active
    // item loses its bit (it survives this pass), and of the inactive ones
    // the older half goes, oldest first. CAS numbers order stores, so this
    // keeps what was written last even under a stream of writes with no
    // reads (the hand walks in hash order, not in time order). Two sweeps
    // of the table at most.
    constexpr std::size_t kWindow = 64;
    const std::size_t limit = std::min(max_buckets, 2 * table_.stats().buckets + kWindow);
    std::vector<Item*> candidates;
    for (std::size_t visited = 0; !fits() && visited < limit; visited += kWindow) {
        candidates.clear();
        hand_ = table_.walk(hand_, kWindow, [&](Item& item) {
            const Miss dead = why_dead(item, now);
            if (dead != Miss::kNone) {
                const bool unfetched = dead == Miss::kExpired && !item.has(Item::kFetched);
                if (take_out(&item, false)) {
                    reclaimed_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
                    if (unfetched) expired_unfetched_.fetch_add(1, std::memory_order_relaxed);
                }
            } else if (item.has(Item::kActive)) {
                clear_bits(item, Item::kActive);
            } else {
                candidates.push_back(&item);
            }
        });
        // A walk during a resize may meet a node twice: once each.
        std::sort(candidates.begin(), candidates.end());
        candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
        std::sort(candidates.begin(), candidates.end(),
                  [](const Item* a, const Item* b) { return a->cas < b->cas; });
        const std::size_t evict = std::max<std::size_t>(1, candidates.size() / 2);
        for (std::size_t i = 0; i < candidates.size() && i < evict && !fits(); ++i)
            take_out(candidates[i], true);
    }
    return fits();
}

Item* Store::copy_with(const Item& base, std::string_view value) {
    Item* item = allocate(base.key(), base.flags, base.exptime.load(std::memory_order_relaxed),
                          value.size());
    if (item == nullptr) return nullptr;
    if (!value.empty()) std::memcpy(item->value_data(), value.data(), value.size());
    item->bits.store(base.bits.load(std::memory_order_relaxed) & (Item::kActive | Item::kFetched),
                     std::memory_order_relaxed);  // relaxed: not published yet
    return item;
}

StoreResult Store::store(Item* item, Mode mode, std::uint64_t cas_in, Counters& counters,
                         bool set_stale, std::uint64_t* cas_out) {
    const std::string_view key = item->key();
    for (;;) {
        const RelTime now = current_time();
        // Stamped at link time, as memcached's do_item_link(): data that
        // took long to arrive must not look older than a flush in between.
        item->time.store(now, std::memory_order_relaxed);  // relaxed: not published yet
        // Append and prepend build the combined item before the lock.
        Item* base = nullptr;
        Item* combined = nullptr;
        if (mode == Mode::kAppend || mode == Mode::kPrepend) {
            base = table_.find(key);
            // Active: the eviction copy_with() may run must not pick it.
            if (base != nullptr) set_bits(*base, Item::kActive);
            if (base != nullptr && live(*base, now) && (cas_in == 0 || cas_in == cas_of(*base))) {
                std::string joined;
                joined.reserve(base->nbytes + item->nbytes);
                if (mode == Mode::kAppend)
                    joined.append(base->value()).append(item->value());
                else
                    joined.append(item->value()).append(base->value());
                combined = copy_with(*base, joined);
                if (combined == nullptr) {
                    discard(item);
                    return StoreResult::kNotStored;  // memcached: NOT_STORED on OOM here
                }
            }
        }
        StoreResult result = StoreResult::kNotStored;
        Item* linked_item = nullptr;
        bool retry = false;
        Item* removed = table_.exchange(key, [&](Item* cur) -> Item* {
            const bool present = cur != nullptr && live(*cur, now);
            if (!present) {
                switch (mode) {
                    case Mode::kSet:
                    case Mode::kAdd:
                        break;
                    case Mode::kCas:
                        result = StoreResult::kNotFound;
                        Counters::bump(counters.cas_misses);
                        return cur;
                    default:
                        return cur;  // replace, append, prepend need an item
                }
                item->cas = next_cas();
                linked_item = item;
                result = StoreResult::kStored;
                return item;  // replaces a dead item, if any
            }
            enum { kNone, kMatch, kStale, kBad } cas_res = kNone;
            if (cas_in == 0)
                cas_res = kNone;
            else if (cas_in == cas_of(*cur))
                cas_res = kMatch;
            else if (set_stale && cas_in < cas_of(*cur))
                cas_res = kStale;
            else
                cas_res = kBad;
            switch (mode) {
                case Mode::kAdd:
                    // memcached bumps the present item in the LRU.
                    cur->bits.fetch_or(Item::kActive, std::memory_order_relaxed);  // relaxed: hint
                    return cur;
                case Mode::kCas:
                    if (cas_res == kMatch) {
                        Counters::bump(counters.cas_hits);
                    } else if (cas_res == kStale) {
                        item->exptime.store(cur->exptime.load(std::memory_order_relaxed),
                                            std::memory_order_relaxed);
                        item->bits.fetch_or(
                            Item::kStale |
                                (cur->bits.load(std::memory_order_relaxed) & Item::kTokenSent),
                            std::memory_order_relaxed);
                        Counters::bump(counters.cas_hits);
                    } else {
                        Counters::bump(counters.cas_badval);
                        result = StoreResult::kExists;
                        return cur;
                    }
                    break;
                case Mode::kAppend:
                case Mode::kPrepend:
                    if (cas_res != kNone && cas_res != kMatch) {
                        result = StoreResult::kExists;
                        return cur;
                    }
                    if (cur != base || combined == nullptr) {
                        retry = true;  // changed since we built the combined item
                        return cur;
                    }
                    combined->cas = next_cas();
                    linked_item = combined;
                    result = StoreResult::kStored;
                    return combined;
                case Mode::kSet:
                case Mode::kReplace:
                    break;
            }
            item->cas = next_cas();
            linked_item = item;
            result = StoreResult::kStored;
            return item;
        });
        if (retry) {
            discard(combined);
            continue;
        }
        if (removed != nullptr) {
            bytes_.fetch_sub(removed->total(), std::memory_order_relaxed);  // relaxed: a counter
            retire(removed);
        }
        if (linked_item != nullptr) {
            linked(*linked_item);
            if (cas_out) *cas_out = cas_of(*linked_item);
        }
        if (linked_item != item) discard(item);
        if (linked_item != combined) discard(combined);
        return result;
    }
}

Store::DeleteResult Store::remove(std::string_view key, std::uint64_t cas_in, bool stale,
                                  const RelTime* new_exptime) {
    for (;;) {
        const RelTime now = current_time();
        Item* seen = table_.find(key);
        if (seen == nullptr || !live(*seen, now)) return DeleteResult::kNotFound;
        if (cas_in != 0 && cas_of(*seen) != cas_in) return DeleteResult::kExists;
        Item* fresh = nullptr;
        if (stale) {
            set_bits(*seen, Item::kActive);  // not what copy_with()'s eviction picks
            // A stale copy: new CAS, the win token free again, maybe a new TTL.
            fresh = copy_with(*seen, seen->value());
            if (fresh == nullptr) return DeleteResult::kNotFound;
            fresh->bits.store(
                (seen->bits.load(std::memory_order_relaxed) | Item::kStale) & ~Item::kTokenSent,
                std::memory_order_relaxed);
            if (new_exptime) fresh->exptime.store(*new_exptime, std::memory_order_relaxed);
        }
        Item* removed = table_.exchange(key, [&](Item* cur) -> Item* {
            if (cur != seen) return cur;
            if (fresh) fresh->cas = next_cas();
            return fresh;
        });
        if (removed != seen) {
            discard(fresh);
            continue;  // changed under us: look again
        }
        bytes_.fetch_sub(seen->total(), std::memory_order_relaxed);  // relaxed: a counter
        retire(seen);
        if (fresh) linked(*fresh);
        return DeleteResult::kDeleted;
    }
}

void Store::unlink(std::string_view key) {
    if (Item* removed = table_.erase(key)) {
        bytes_.fetch_sub(removed->total(), std::memory_order_relaxed);  // relaxed: a counter
        retire(removed);
    }
}

DeltaResult Store::delta(std::string_view key, bool incr, std::uint64_t by, std::uint64_t cas_in,
                         std::string& value_out, const Item** item_out) {
    for (;;) {
        const RelTime now = current_time();
        Item* seen = table_.find(key);
        if (seen == nullptr || !live(*seen, now)) return DeltaResult::kNotFound;
        if (seen->nbytes == 0) return DeltaResult::kNonNumeric;
        if (cas_in != 0 && cas_of(*seen) != cas_in) return DeltaResult::kCasMismatch;
        std::uint64_t value = 0;
        if (!parse_u64(seen->value(), value)) return DeltaResult::kNonNumeric;
        if (incr)
            value += by;
        else
            value = by > value ? 0 : value - by;
        value_out = std::to_string(value);
        // As memcached: a shorter number keeps the item's length, padded
        // with spaces ("10" decremented is "9 ").
        std::string stored = value_out;
        if (stored.size() < seen->nbytes) stored.append(seen->nbytes - stored.size(), ' ');
        set_bits(*seen, Item::kActive);  // not what copy_with()'s eviction picks
        Item* fresh = copy_with(*seen, stored);
        if (fresh == nullptr) return DeltaResult::kNoMemory;
        Item* removed = table_.exchange(key, [&](Item* cur) -> Item* {
            if (cur != seen) return cur;
            fresh->cas = next_cas();
            return fresh;
        });
        if (removed != seen) {
            discard(fresh);
            continue;
        }
        bytes_.fetch_sub(seen->total(), std::memory_order_relaxed);  // relaxed: a counter
        retire(seen);
        linked(*fresh);
        if (item_out) *item_out = fresh;
        return DeltaResult::kOk;
    }
}

const Item* Store::vivify(std::string_view key, std::string_view value, RelTime exptime) {
    Item* item = allocate(key, 0, exptime, value.size());
    if (item == nullptr) return nullptr;
    if (!value.empty()) std::memcpy(item->value_data(), value.data(), value.size());
    const RelTime now = current_time();
    bool inserted = false;
    Item* removed = table_.exchange(key, [&](Item* cur) -> Item* {
        if (cur != nullptr && live(*cur, now)) return cur;
        item->cas = next_cas();
        inserted = true;
        return item;
    });
    if (!inserted) {
        discard(item);
        return nullptr;
    }
    if (removed) {
        bytes_.fetch_sub(removed->total(), std::memory_order_relaxed);  // relaxed: a counter
        retire(removed);
    }
    linked(*item);
    return item;
}

void Store::flush(std::int64_t delay) {
    const RelTime now = current_time();
    const RelTime when = delay > 0 ? realtime(delay) : now;
    // memcached's settings.oldest_live = new_oldest - 1, and for a flush
    // that is due already, oldest_cas: items older than this CAS are gone
    // even if stored within this second.
    // The CAS first (relaxed), then the time with [F1] release, pairs with
    // [F2] in why_dead(): a reader that sees the new time sees the CAS too.
    // A reader that sees neither serves the item as before the flush, which
    // a read racing the flush may do anyway.
    if (when - 1 <= now) flush_cas_.store(next_cas(), std::memory_order_relaxed);
    flush_at_.store(when - 1 == 0 ? 1 : when - 1, std::memory_order_release);  // [F1]
}

std::size_t Store::crawl(std::size_t buckets) {
    // Over the limit (cache_memlimit lowered it): evict a window's worth.
    if (bytes() > memory_limit()) (void)reserve(0, buckets);
    if (!crawler_enabled()) return 0;
    std::unique_lock lock(crawl_mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return 0;
    const RelTime now = current_time();
    std::size_t reclaimed = 0;
    crawl_cursor_ = table_.walk(crawl_cursor_, buckets, [&](Item& item) {
        const Miss dead = why_dead(item, now);
        if (dead == Miss::kNone) return;
        const bool unfetched = dead == Miss::kExpired && !item.has(Item::kFetched);
        if (!take_out(&item, false)) return;
        if (unfetched) expired_unfetched_.fetch_add(1, std::memory_order_relaxed);  // relaxed
        ++reclaimed;
    });
    crawler_reclaimed_.fetch_add(reclaimed, std::memory_order_relaxed);  // relaxed: a counter
    return reclaimed;
}

void Store::attach(Counters& counters) {
    std::lock_guard lock(counters_mutex_);
    live_counters_.push_back(&counters);
}

void Store::detach(Counters& counters) {
    std::lock_guard lock(counters_mutex_);
    add_counters(closed_, counters);
    std::erase(live_counters_, &counters);
}

void add_counters(Totals& t, const Counters& c) {
    auto v = [](const std::atomic<std::uint64_t>& a) {
        return a.load(std::memory_order_relaxed);  // relaxed: a snapshot
    };
    t.get_cmds += v(c.get_cmds);
    t.get_hits += v(c.get_hits);
    t.get_misses += v(c.get_misses);
    t.get_expired += v(c.get_expired);
    t.get_flushed += v(c.get_flushed);
    t.set_cmds += v(c.set_cmds);
    t.touch_cmds += v(c.touch_cmds);
    t.touch_hits += v(c.touch_hits);
    t.touch_misses += v(c.touch_misses);
    t.delete_hits += v(c.delete_hits);
    t.delete_misses += v(c.delete_misses);
    t.incr_hits += v(c.incr_hits);
    t.incr_misses += v(c.incr_misses);
    t.decr_hits += v(c.decr_hits);
    t.decr_misses += v(c.decr_misses);
    t.cas_hits += v(c.cas_hits);
    t.cas_misses += v(c.cas_misses);
    t.cas_badval += v(c.cas_badval);
    t.flush_cmds += v(c.flush_cmds);
    t.meta_cmds += v(c.meta_cmds);
    t.store_too_large += v(c.store_too_large);
    t.store_no_memory += v(c.store_no_memory);
}

void subtract_counters(Totals& t, const Totals& b) {
    t.get_cmds -= b.get_cmds;
    t.get_hits -= b.get_hits;
    t.get_misses -= b.get_misses;
    t.get_expired -= b.get_expired;
    t.get_flushed -= b.get_flushed;
    t.set_cmds -= b.set_cmds;
    t.touch_cmds -= b.touch_cmds;
    t.touch_hits -= b.touch_hits;
    t.touch_misses -= b.touch_misses;
    t.delete_hits -= b.delete_hits;
    t.delete_misses -= b.delete_misses;
    t.incr_hits -= b.incr_hits;
    t.incr_misses -= b.incr_misses;
    t.decr_hits -= b.decr_hits;
    t.decr_misses -= b.decr_misses;
    t.cas_hits -= b.cas_hits;
    t.cas_misses -= b.cas_misses;
    t.cas_badval -= b.cas_badval;
    t.flush_cmds -= b.flush_cmds;
    t.meta_cmds -= b.meta_cmds;
    t.store_too_large -= b.store_too_large;
    t.store_no_memory -= b.store_no_memory;
}

Totals Store::totals() const {
    Totals t;
    {
        std::lock_guard lock(counters_mutex_);
        t = closed_;
        for (const Counters* c : live_counters_) add_counters(t, *c);
        subtract_counters(t, baseline_);
    }
    auto v = [](const auto& a) { return a.load(std::memory_order_relaxed); };  // relaxed: snapshot
    t.curr_items = table_.size();
    t.total_items = v(total_items_);
    t.bytes = v(bytes_);
    t.evictions = v(evictions_);
    t.evicted_unfetched = v(evicted_unfetched_);
    t.expired_unfetched = v(expired_unfetched_);
    t.reclaimed = v(reclaimed_);
    t.crawler_reclaimed = v(crawler_reclaimed_);
    const auto table = table_.stats();
    t.hash_buckets = table.buckets;
    t.hash_resizes = table.resizes;
    t.hash_resizing = table.resizing ? 1 : 0;
    return t;
}

void Store::reset_totals() {
    // Connections own their counters (one writer each, no RMW), so a reset
    // cannot zero them: it records what they hold now, and totals()
    // subtracts it.
    Totals now;
    {
        std::lock_guard lock(counters_mutex_);
        now = closed_;
        for (const Counters* c : live_counters_) add_counters(now, *c);
        baseline_ = now;
    }
    total_items_.store(0, std::memory_order_relaxed);  // relaxed: counters
    evictions_.store(0, std::memory_order_relaxed);
    evicted_unfetched_.store(0, std::memory_order_relaxed);
    expired_unfetched_.store(0, std::memory_order_relaxed);
    reclaimed_.store(0, std::memory_order_relaxed);
    crawler_reclaimed_.store(0, std::memory_order_relaxed);
}

}  // namespace kvcache
