// The memcached text protocol, as memcached 1.6 speaks it: the classic
// commands (get, set, incr, stats, ...) and the meta commands (mg, ms, md,
// ma, mn, me), with memcached's replies and error strings byte for byte.
//
//     kvcache::Session session(server);           // one per connection
//     auto status = session.process(in, out);     // every complete command in `in`
//     if (status == kvcache::Session::Status::kClose) conn.close();
//
// A Session parses what it is given and keeps what it cannot finish (half a
// line, a data block not yet complete, bytes it must swallow). It owns its
// counters (no other thread writes them) and reads the store with no lock:
// process() runs inside a read section (a loop thread, or a ReadLock).
//
// Threading: a Session belongs to one connection's group.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <quiesce/framework/buffer.hpp>

#include "conn_table.hpp"
#include "store.hpp"

namespace kvcache {

struct MetaFlags;

/// Writes "STAT name value\r\n" lines.
class StatWriter {
public:
    explicit StatWriter(std::string& out) : out_(out) {}
    void add(std::string_view name, std::string_view value);
    void add(std::string_view name, std::uint64_t value);
    void add(std::string_view name, std::int64_t value);
    void add(std::string_view name, int value) { add(name, static_cast<std::int64_t>(value)); }
    void add(std::string_view name, unsigned value) {
        add(name, static_cast<std::uint64_t>(value));
    }
    void add(std::string_view name, double value);

private:
    std::string& out_;
};

/// What every session of one server shares.
struct Server {
    explicit Server(Store& s) : store(s) {}
    Store& store;
    std::string version = "1.6.18";  ///< what "version" answers (clients parse it)
    bool shutdown_enabled = false;   ///< -A
    bool flush_enabled = true;       ///< -F turns flush_all off
    std::atomic<int> verbosity{0};
    /// Settings "stats settings" reports.
    int port = 11211;
    int udp_port = 0;
    std::string listen = "127.0.0.1";
    unsigned threads = 1;
    std::size_t max_connections = 1024;
    /// What "stats conns" lists: listeners, the UDP socket, connections.
    ConnTable conns;
    /// The most one get's reply may hold before it is refused with
    /// "SERVER_ERROR out of memory writing get response" (a multiget that
    /// names a large value thousands of times).
    std::size_t max_get_reply = 64u << 20;
    /// Adds the runtime's lines to "stats" (connections, bytes, threads,
    /// rusage, grace periods); "stats conns" style extras. May be empty.
    std::function<void(StatWriter&)> server_stats;
    /// Called by "shutdown" when enabled (stops the server gracefully).
    std::function<void()> shutdown;
};

class Session {
public:
    enum class Status { kOpen, kClose };

    explicit Session(Server& server);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    /// Runs the complete commands in `in`, appending replies to `out`; stops
    /// early once `out` holds more than `budget` bytes (call again later).
    /// kClose: the connection must close after `out` is sent (quit, a line
    /// too long, an HTTP request, shutdown).
    Status process(quiesce::Buffer& in, quiesce::Buffer& out, std::size_t budget = SIZE_MAX);
    /// True while a complete command may wait in the input, or a metadump
    /// has more to send (process() stopped for the budget).
    [[nodiscard]] bool stopped_early() const noexcept { return stopped_early_; }
    /// An `lru_crawler metadump` is under way: call process() again (with
    /// no new input if need be) once the output has drained.
    [[nodiscard]] bool dumping() const noexcept { return state_ == State::kDump; }
    [[nodiscard]] Counters& counters() noexcept { return counters_; }
    /// Drops a half-read request (UDP: each datagram stands alone).
    void reset();
    /// This session's line in "stats conns" (a connection's; null for UDP
    /// and tests): its state and time are kept there after each batch.
    void set_conn_entry(ConnTable::Entry* entry) noexcept { entry_ = entry; }

    /// memcached's tokens: value is NUL-terminated inside the line buffer.
    struct Token {
        char* value = nullptr;
        std::size_t length = 0;
    };

private:
    enum class State { kCommand, kData, kSwallow, kDump };
    struct Pending {
        Mode mode = Mode::kSet;
        Item* item = nullptr;  // allocated, being filled
        std::uint64_t cas = 0;
        std::size_t vlen = 0;  // value bytes, without "\r\n"
        bool meta = false;
        bool set_stale = false;
        bool key_binary = false;
        std::string key;  // ms: for the k return flag
        std::string ret;  // ms: the return flags, in request order ('O...', 'k', 'c')
    };

    // protocol.cpp: framing and the classic commands.
    bool read_line(quiesce::Buffer& in, Status& status);
    void complete_data(quiesce::Buffer& in);
    void dispatch(std::size_t ntokens);
    void out_string(std::string_view text);
    void out_error(std::string_view text);  // memcached's out_errstring: ignores noreply
    bool set_noreply_maybe(std::size_t ntokens);
    void cmd_get(std::size_t ntokens, bool return_cas, bool touch);
    void cmd_update(std::size_t ntokens, Mode mode, bool handle_cas);
    void cmd_touch(std::size_t ntokens);
    void cmd_arithmetic(std::size_t ntokens, bool incr);
    void cmd_delete(std::size_t ntokens);
    void cmd_flush_all(std::size_t ntokens);
    void cmd_verbosity(std::size_t ntokens);
    void cmd_shutdown(std::size_t ntokens);
    void cmd_memlimit(std::size_t ntokens);
    void note_activity();
    void swallow(std::size_t bytes);
    /// Counts a read that found its key expired or flushed.
    void count_dead(Store::Miss miss) noexcept;

    // meta.cpp
    void cmd_meta_get(std::size_t ntokens);
    void cmd_meta_set(std::size_t ntokens);
    void cmd_meta_delete(std::size_t ntokens);
    void cmd_meta_arithmetic(std::size_t ntokens);
    void cmd_meta_debug(std::size_t ntokens);
    void finish_meta_set(StoreResult result, std::uint64_t cas);
    bool meta_preamble(std::size_t ntokens, MetaFlags& of);
    bool append_opaque_and_key(std::string& p, std::size_t ntokens, std::string_view key,
                               bool binary) const;

    // stats_text.cpp
    void cmd_stats(std::size_t ntokens);
    void cmd_cachedump(std::size_t ntokens);
    void cmd_lru_crawler(std::size_t ntokens);
    /// Parses an lru_crawler class list ("all", "1,2", ...): false for a bad
    /// one; `with_items` says whether class 1 (every item here) is in it.
    static bool parse_classes(const char* spec, bool allow_hash, bool& with_items);
    /// Sends the next buckets of a metadump; END once the walk is done.
    void dump_step();
    void general_stats(StatWriter& w);
    void settings_stats(StatWriter& w);

    Server& server_;
    Store& store_;
    Counters counters_;
    State state_ = State::kCommand;
    Pending pending_;
    std::size_t swallow_ = 0;
    // A metadump in progress: where its scan stands, and whether it lists
    // items at all (classes other than 1 have none).
    quiesce::rcu::HashScanCursor dump_scan_;
    bool dump_items_ = false;
    ConnTable::Entry* entry_ = nullptr;
    bool dispatched_ = false;  // a command ran since the last note_activity()
    bool noreply_ = false;
    bool close_ = false;
    bool stopped_early_ = false;
    std::string line_;           // the command line being processed (NULs between tokens)
    std::vector<Token> tokens_;  // memcached's MAX_TOKENS
    quiesce::Buffer* out_ = nullptr;
    // A get's reply, built whole (see cmd_get()): the text, and the values
    // larger than kInlineValue. Both kept between gets: no allocation per get.
    std::string reply_text_;
    quiesce::Buffer reply_;
};

/// memcached's tokenize_command(): splits at single spaces, at most
/// `max_tokens - 1` tokens, the last entry is the terminal token (value
/// points at what is left of the line, or null). Returns the count with it.
std::size_t tokenize_command(char* command, std::size_t length, Session::Token* tokens,
                             std::size_t max_tokens);

/// memcached's safe_strto* (util.c): digits, then a blank or the end.
bool safe_strtoull(const char* str, std::uint64_t& out);
bool safe_strtoul(const char* str, std::uint32_t& out);
bool safe_strtol(const char* str, std::int32_t& out);

/// Base64 for meta commands' b flag (binary keys).
std::size_t base64_decode(const char* in, std::size_t len, char* out, std::size_t out_len);
std::string base64_encode(std::string_view in);

}  // namespace kvcache
