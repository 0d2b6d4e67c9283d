// The stats command: the names and order memcached 1.6 uses for what kvcache
// has (general, settings, items, slabs), and the runtime's own figures after
// memcached's (prefixed "quiesce_").
#include <unistd.h>

#include <cstdio>
#include <cstring>

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
    w.add("limit_maxbytes", static_cast<std::uint64_t>(store_.options().memory_limit));
    w.add("threads", server_.threads);
    w.add("hash_bytes", t.hash_buckets * sizeof(void*));
    w.add("hash_is_expanding", std::uint64_t{0});
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
    w.add("maxbytes", static_cast<std::uint64_t>(o.memory_limit));
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

}  // namespace kvcache
