// The stats command: the names and order memcached 1.6 uses for what kvcache
// has (general, settings, items, slabs), and the runtime's own figures after
// memcached's (prefixed "quiesce_").
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "protocol.hpp"

namespace kvcache {

void StatWriter::add(std::string_view name, std::string_view value) {
    out_.append("STAT ").append(name).append(" ").append(value).append("\r\n");
}
void StatWriter::add(std::string_view name, std::uint64_t value) {
    add(name, std::string_view(std::to_string(value)));
}
void StatWriter::add(std::string_view name, std::int64_t value) {
    add(name, std::string_view(std::to_string(value)));
}
void StatWriter::add(std::string_view name, double value) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.6f", value);
    add(name, std::string_view(buf));
}

void Session::general_stats(StatWriter& w) {
    const Totals t = store_.totals();
    const RelTime now = store_.current_time();
    w.add("pid", static_cast<std::int64_t>(::getpid()));
    w.add("uptime", static_cast<std::uint64_t>(now));
    w.add("time", static_cast<std::int64_t>(now + store_.process_started()));
    w.add("version", std::string_view(server_.version));
    w.add("pointer_size", static_cast<std::int64_t>(8 * sizeof(void*)));
    w.add("max_connections", static_cast<std::uint64_t>(server_.max_connections));
    if (server_.server_stats) server_.server_stats(w);  // connections, rusage, bytes, threads
    w.add("cmd_get", t.get_cmds);
    w.add("cmd_set", t.set_cmds);
    w.add("cmd_flush", t.flush_cmds);
    w.add("cmd_touch", t.touch_cmds);
    w.add("cmd_meta", t.meta_cmds);
    w.add("get_hits", t.get_hits);
    w.add("get_misses", t.get_misses);
    w.add("get_expired", t.get_expired);
    w.add("get_flushed", t.get_flushed);
    w.add("delete_misses", t.delete_misses);
    w.add("delete_hits", t.delete_hits);
    w.add("incr_misses", t.incr_misses);
    w.add("incr_hits", t.incr_hits);
    w.add("decr_misses", t.decr_misses);
    w.add("decr_hits", t.decr_hits);
    w.add("cas_misses", t.cas_misses);
    w.add("cas_hits", t.cas_hits);
    w.add("cas_badval", t.cas_badval);
    w.add("touch_hits", t.touch_hits);
    w.add("touch_misses", t.touch_misses);
    w.add("store_too_large", t.store_too_large);
    w.add("store_no_memory", t.store_no_memory);
    w.add("auth_cmds", std::uint64_t{0});
    w.add("auth_errors", std::uint64_t{0});
    w.add("limit_maxbytes", static_cast<std::uint64_t>(store_.memory_limit()));
    w.add("threads", server_.threads);
    w.add("hash_bytes", t.hash_buckets * sizeof(void*));
    w.add("hash_is_expanding", t.hash_resizing);  // a grow or a shrink under way
    w.add("bytes", t.bytes);
    w.add("curr_items", t.curr_items);
    w.add("total_items", t.total_items);
    w.add("expired_unfetched", t.expired_unfetched);
    w.add("evicted_unfetched", t.evicted_unfetched);
    w.add("evictions", t.evictions);
    w.add("reclaimed", t.reclaimed);
    w.add("crawler_reclaimed", t.crawler_reclaimed);
    w.add("quiesce_hash_buckets", t.hash_buckets);
    w.add("quiesce_hash_resizes", t.hash_resizes);
}

void Session::settings_stats(StatWriter& w) {
    const StoreOptions& o = store_.options();
    w.add("maxbytes", static_cast<std::uint64_t>(store_.memory_limit()));
    w.add("maxconns", static_cast<std::uint64_t>(server_.max_connections));
    w.add("tcpport", server_.port);
    w.add("udpport", server_.udp_port);
    w.add("inter", std::string_view(server_.listen));
    w.add("verbosity", server_.verbosity.load(std::memory_order_relaxed));  // relaxed: a setting
    w.add("oldest", std::uint64_t{0});
    w.add("evictions", std::string_view("on"));
    w.add("domain_socket", std::string_view("NULL"));
    w.add("umask", std::string_view("700"));
    w.add("shutdown_command", std::string_view(server_.shutdown_enabled ? "yes" : "no"));
    w.add("num_threads", server_.threads);
    w.add("cas_enabled", std::string_view(o.cas ? "yes" : "no"));
    w.add("item_size_max", static_cast<std::uint64_t>(o.item_max));
    w.add("flush_enabled", std::string_view(server_.flush_enabled ? "yes" : "no"));
    w.add("hash_algorithm", std::string_view("quiesce-rcu"));
    w.add("lru_crawler", std::string_view("yes"));
    w.add("lru_segmented", std::string_view("no"));
}

void Session::cmd_stats(std::size_t ntokens) {
    std::string text;
    StatWriter w(text);
    if (ntokens == 2) {
        general_stats(w);
    } else {
        const char* sub = tokens_[1].value;
        if (std::strcmp(sub, "reset") == 0) {
            store_.reset_totals();
            return out_string("RESET");
        }
        if (std::strcmp(sub, "detail") == 0) {
            const char* arg = ntokens < 4 ? "" : tokens_[2].value;
            if (std::strcmp(arg, "on") == 0 || std::strcmp(arg, "off") == 0)
                return out_string("OK");
            if (std::strcmp(arg, "dump") == 0) return out_string("END");
            return out_string("CLIENT_ERROR usage: stats detail on|off|dump");
        }
        if (std::strcmp(sub, "cachedump") == 0) return cmd_cachedump(ntokens);
        if (std::strcmp(sub, "settings") == 0) {
            settings_stats(w);
        } else if (std::strcmp(sub, "conns") == 0) {
            server_.conns.write(w, store_.current_time(), entry_);
        } else if (std::strcmp(sub, "sizes") == 0) {
            w.add("sizes_status", std::string_view("disabled"));  // no size histogram here
        } else if (std::strcmp(sub, "items") == 0 || std::strcmp(sub, "slabs") == 0) {
            // One class holds every item (kvcache allocates per item, no
            // slab classes); the figures tools read are there under class 1.
            const Totals t = store_.totals();
            if (std::strcmp(sub, "items") == 0) {
                if (t.curr_items > 0) {
                    w.add("items:1:number", t.curr_items);
                    w.add("items:1:evicted", t.evictions);
                    w.add("items:1:evicted_unfetched", t.evicted_unfetched);
                    w.add("items:1:expired_unfetched", t.expired_unfetched);
                    w.add("items:1:reclaimed", t.reclaimed);
                    w.add("items:1:crawler_reclaimed", t.crawler_reclaimed);
                }
            } else {
                if (t.curr_items > 0) {
                    w.add("1:chunk_size", std::uint64_t{0});
                    w.add("1:used_chunks", t.curr_items);
                    w.add("1:mem_requested", t.bytes);
                    w.add("1:get_hits", t.get_hits);
                    w.add("1:cmd_set", t.set_cmds);
                    w.add("1:delete_hits", t.delete_hits);
                    w.add("1:incr_hits", t.incr_hits);
                    w.add("1:decr_hits", t.decr_hits);
                    w.add("1:cas_hits", t.cas_hits);
                    w.add("1:cas_badval", t.cas_badval);
                    w.add("1:touch_hits", t.touch_hits);
                }
                w.add("active_slabs", std::uint64_t{t.curr_items > 0 ? 1u : 0u});
                w.add("total_malloced", t.bytes);
            }
        } else {
            return out_string("ERROR");
        }
    }
    text.append("END\r\n");
    out_->append(text);
}

void Session::cmd_cachedump(std::size_t ntokens) {
    // memcached's "stats cachedump CLASS LIMIT" (what memcdump reads): every
    // item is in class 1 here; LIMIT 0 is all, up to 2 MB of reply.
    if (ntokens < 5) return out_string("CLIENT_ERROR bad command line");
    std::uint32_t id = 0, limit = 0;
    if (!safe_strtoul(tokens_[2].value, id) || !safe_strtoul(tokens_[3].value, limit))
        return out_string("CLIENT_ERROR bad command line format");
    if (id >= 64) return out_string("CLIENT_ERROR Illegal slab id");
    constexpr std::size_t kMemLimit = 2 * 1024 * 1024;
    std::string text;
    std::uint32_t shown = 0;
    if (id == 1) {
        const auto started = static_cast<unsigned long long>(store_.process_started());
        store_.for_each([&](const Item& item) {
            if (limit != 0 && shown >= limit) return;
            const RelTime exp = item.exptime.load(std::memory_order_relaxed);
            std::string line = "ITEM ";
            line.append(item.key()).append(" [").append(std::to_string(item.nbytes));
            line.append(" b; ").append(std::to_string(exp == 0 ? 0 : exp + started));
            line.append(" s]\r\n");
            if (text.size() + line.size() + 6 > kMemLimit) {
                limit = shown;  // full: stop here
                return;
            }
            text += line;
            ++shown;
        });
    }
    text.append("END\r\n");
    out_->append(text);
}

// ---- lru_crawler ----------------------------------------------------------
// memcached's replies, byte for byte (checked against 1.6.18): a class list is
// "all", or ids 1..63 separated by commas (empty parts ignored); every item
// here is in class 1, so a dump of other classes is just END.

bool Session::parse_classes(const char* spec, bool allow_hash, bool& with_items) {
    with_items = false;
    if (std::strcmp(spec, "all") == 0 || (allow_hash && std::strcmp(spec, "hash") == 0)) {
        with_items = true;
        return true;
    }
    std::string_view rest(spec);
    while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        const std::string part(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (part.empty()) continue;
        std::uint32_t id = 0;
        if (!safe_strtoul(part.c_str(), id) || id < 1 || id >= 64) return false;
        with_items = with_items || id == 1;
    }
    return true;
}

void Session::cmd_lru_crawler(std::size_t ntokens) {
    const char* sub = ntokens >= 3 ? tokens_[1].value : "";
    if (ntokens == 4 && (std::strcmp(sub, "crawl") == 0 || std::strcmp(sub, "metadump") == 0)) {
        const bool dump = sub[0] == 'm';
        if (!store_.crawler_enabled()) return out_string("CLIENT_ERROR lru crawler disabled");
        // memcached hands the connection to its crawler thread, which it
        // cannot do with replies of earlier commands still unsent.
        if (dump && out_->size() > 0)
            return out_string("ERROR cannot pipeline other commands before metadump");
        bool with_items = false;
        if (!dump && std::strcmp(tokens_[2].value, "hash") == 0)
            return out_string("ERROR an unknown error happened");
        if (!parse_classes(tokens_[2].value, dump, with_items))
            return out_string("BADCLASS invalid class id");
        if (!dump) return out_string("OK");  // the crawler walks every 100 ms anyway
        state_ = State::kDump;
        dump_scan_ = {};
        dump_items_ = with_items;
        return;
    }
    if (ntokens == 4 && (std::strcmp(sub, "tocrawl") == 0 || std::strcmp(sub, "sleep") == 0)) {
        std::uint32_t value = 0;
        if (!safe_strtoul(tokens_[2].value, value))
            return out_string("CLIENT_ERROR bad command line format");
        if (sub[0] == 's' && value > 1'000'000)
            return out_string("CLIENT_ERROR sleep must be one second or less");
        return out_string("OK");  // accepted; the crawler's pace is its own
    }
    if (ntokens == 3 && std::strcmp(sub, "enable") == 0) {
        // memcached answers this when its crawler thread already runs.
        if (store_.crawler_enabled()) return out_string("ERROR failed to start lru crawler thread");
        store_.set_crawler_enabled(true);
        return out_string("OK");
    }
    if (ntokens == 3 && std::strcmp(sub, "disable") == 0) {
        store_.set_crawler_enabled(false);
        return out_string("OK");
    }
    out_string("ERROR");
}

namespace {

/// memcached's uriencode(): letters, digits and "-._~" as they are, every
/// other byte as %XX.
void append_uri_encoded(std::string& out, std::string_view key) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (const char c : key) {
        const auto b = static_cast<unsigned char>(c);
        if (std::isalnum(b) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(kHex[b >> 4]);
            out.push_back(kHex[b & 15]);
        }
    }
}

}  // namespace

void Session::dump_step() {
    // A slice of the table per step: process() checks the output budget
    // between steps, so a dump of millions of items is sent as the client
    // reads it, not built whole. The scan lists every item present
    // throughout once, also while the table resizes under it.
    constexpr std::size_t kSlices = 256;
    const auto started = static_cast<long long>(store_.process_started());
    std::string text;
    const bool more = dump_items_ && store_.scan_live(dump_scan_, kSlices, [&](const Item& item) {
        const RelTime exp = item.exptime.load(std::memory_order_relaxed);
        text.append("key=");
        append_uri_encoded(text, item.key());
        text.append(" exp=").append(exp == 0 ? "-1" : std::to_string(exp + started));
        text.append(" la=").append(
            std::to_string(item.time.load(std::memory_order_relaxed) + started));
        text.append(" cas=").append(std::to_string(store_.cas_of(item)));
        text.append(" fetch=").append(item.has(Item::kFetched) ? "yes" : "no");
        text.append(" cls=1 size=").append(std::to_string(item.total())).append("\n");
    });
    out_->append(text);
    if (!more) {
        state_ = State::kCommand;
        out_->append("END\r\n");
    }
}

}  // namespace kvcache
