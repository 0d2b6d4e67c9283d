// The text protocol's framing (lines, data blocks, bytes to swallow) and the
// classic commands. Each command follows memcached 1.6's proto_text.c: the
// same tokenizer, number parsing, checks in the same order and the same
// reply strings, so that replies match memcached's byte for byte.
#include "protocol.hpp"

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace kvcache {

namespace {

constexpr std::size_t kMaxTokens = 24;      // memcached's MAX_TOKENS
constexpr std::size_t kKeyMaxLength = 250;  // memcached's KEY_MAX_LENGTH
constexpr std::size_t kLineMax = 2048;      // a line longer than this must be a get
// A get copies values up to this size into its reply text; larger ones are
// moved to the output as blocks of their own (one copy, not two).
constexpr std::size_t kInlineValue = 16 * 1024;
// The reply text's capacity kept for the next get.
constexpr std::size_t kKeptReplyText = 256 * 1024;

template <typename T>
void append_decimal(std::string& out, T value) {
    char digits[24];
    const auto [end, error] = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, end);
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool ends_number(const char* end, const char* start) {
    return is_space(*end) || (*end == '\0' && end != start);
}

}  // namespace

// ---- memcached's helpers --------------------------------------------------

std::size_t tokenize_command(char* command, std::size_t length, Session::Token* tokens,
                             std::size_t max_tokens) {
    // memcached's tokenizer, finding the spaces with memchr().
    std::size_t ntokens = 0;
    char* s = command;
    char* e = command;
    char* const end = command + length;
    while (e < end) {
        auto* space = static_cast<char*>(std::memchr(e, ' ', static_cast<std::size_t>(end - e)));
        if (space == nullptr) {
            e = end;
            break;
        }
        e = space + 1;
        if (s != space) {
            tokens[ntokens].value = s;
            tokens[ntokens].length = static_cast<std::size_t>(space - s);
            ++ntokens;
            *space = '\0';
            if (ntokens == max_tokens - 1) {
                s = e;  // so no extra token is added
                break;
            }
        }
        s = e;
    }
    if (s != e) {
        tokens[ntokens].value = s;
        tokens[ntokens].length = static_cast<std::size_t>(e - s);
        ++ntokens;
    }
    // The terminal token: what is left of the line, or null at its end.
    tokens[ntokens].value = *e == '\0' ? nullptr : e;
    tokens[ntokens].length = 0;
    return ntokens + 1;
}

bool safe_strtoull(const char* str, std::uint64_t& out) {
    out = 0;
    errno = 0;
    char* end = nullptr;
    unsigned long long v = std::strtoull(str, &end, 10);
    if (errno == ERANGE || str == end) return false;
    if (!ends_number(end, str)) return false;
    if (static_cast<long long>(v) < 0 && std::strchr(str, '-') != nullptr) return false;
    out = v;
    return true;
}

bool safe_strtoul(const char* str, std::uint32_t& out) {
    out = 0;
    errno = 0;
    char* end = nullptr;
    unsigned long v = std::strtoul(str, &end, 10);
    if (errno == ERANGE || str == end) return false;
    if (!ends_number(end, str)) return false;
    if (static_cast<long>(v) < 0 && std::strchr(str, '-') != nullptr) return false;
    out = static_cast<std::uint32_t>(v);  // as memcached: truncated to 32 bits
    return true;
}

bool safe_strtol(const char* str, std::int32_t& out) {
    out = 0;
    errno = 0;
    char* end = nullptr;
    long v = std::strtol(str, &end, 10);
    if (errno == ERANGE || str == end) return false;
    if (!ends_number(end, str)) return false;
    out = static_cast<std::int32_t>(v);  // as memcached: truncated to 32 bits
    return true;
}

// ---- the session ------------------------------------------------------------

Session::Session(Server& server) : server_(server), store_(server.store), tokens_(kMaxTokens + 1) {
    store_.attach(counters_);
}

Session::~Session() {
    store_.discard(pending_.item);
    store_.detach(counters_);
}

void Session::reset() {
    store_.discard(pending_.item);
    pending_ = Pending{};
    state_ = State::kCommand;
    swallow_ = 0;
    close_ = false;
    noreply_ = false;
}

void Session::out_string(std::string_view text) {
    if (noreply_) {
        noreply_ = false;
        return;
    }
    out_->append(text);
    out_->append("\r\n", 2);
}

void Session::out_error(std::string_view text) {
    noreply_ = false;
    out_string(text);
}

bool Session::set_noreply_maybe(std::size_t ntokens) {
    const Token& t = tokens_[ntokens - 2];
    if (t.value != nullptr && std::strcmp(t.value, "noreply") == 0) noreply_ = true;
    return noreply_;
}

void Session::count_dead(Store::Miss miss) noexcept {
    if (miss == Store::Miss::kExpired) Counters::bump(counters_.get_expired);
    if (miss == Store::Miss::kFlushed) Counters::bump(counters_.get_flushed);
}

void Session::swallow(std::size_t bytes) {
    swallow_ = bytes;
    state_ = State::kSwallow;
}

Session::Status Session::process(quiesce::Buffer& in, quiesce::Buffer& out, std::size_t budget) {
    out_ = &out;
    stopped_early_ = false;
    Status status = Status::kOpen;
    while (!close_) {
        if (out.size() > budget) {
            stopped_early_ = !in.empty() || state_ == State::kDump;
            break;
        }
        if (state_ == State::kDump) {
            dump_step();
        } else if (state_ == State::kSwallow) {
            const std::size_t n = std::min(in.size(), swallow_);
            in.drain(n);
            swallow_ -= n;
            if (swallow_ > 0) break;
            state_ = State::kCommand;
        } else if (state_ == State::kData) {
            if (in.size() < pending_.vlen + 2) break;
            complete_data(in);
        } else if (!read_line(in, status)) {
            break;
        }
    }
    out_ = nullptr;
    if (entry_ != nullptr) note_activity();
    return close_ ? Status::kClose : status;
}

void Session::note_activity() {
    // Once per batch of input, not per command: a listing counts seconds.
    // Only this session writes its entry; "stats conns" on any loop reads it.
    using Shown = ConnTable::State;
    if (close_) {
        entry_->state.store(Shown::kClosing, std::memory_order_relaxed);  // relaxed: a statistic
    } else if (state_ == State::kData || state_ == State::kSwallow) {
        entry_->state.store(Shown::kNread, std::memory_order_relaxed);  // relaxed: a statistic
    } else if (dispatched_) {
        entry_->state.store(Shown::kRead, std::memory_order_relaxed);  // relaxed: a statistic
    }
    if (dispatched_) {
        dispatched_ = false;
        entry_->last_cmd.store(store_.current_time(), std::memory_order_relaxed);  // relaxed: ditto
    }
}

bool Session::read_line(quiesce::Buffer& in, Status& status) {
    const auto newline = in.find("\n");
    if (!newline) {
        if (in.size() > kLineMax) {
            // No newline in the first 2 KiB: only a large multiget may do
            // that; anything else closes the connection, as memcached does.
            const std::string head = in.peek(110);
            std::size_t skip = 0;
            while (skip < head.size() && head[skip] == ' ') ++skip;
            const std::string_view rest = std::string_view(head).substr(skip);
            if (skip > 100 || (!rest.starts_with("get ") && !rest.starts_with("gets "))) {
                close_ = true;
                status = Status::kClose;
            }
        }
        return false;
    }
    const std::size_t end = *newline;
    line_.assign(in.contiguous(end + 1).substr(0, end));
    in.drain(end + 1);
    if (line_.size() > 1 && line_.back() == '\r') line_.pop_back();
    noreply_ = false;
    // memcached works on a C string: a NUL byte ends the line there.
    const std::size_t length = std::strlen(line_.c_str());
    const std::size_t ntokens = tokenize_command(line_.data(), length, tokens_.data(), kMaxTokens);
    dispatched_ = true;
    dispatch(ntokens);
    return true;
}

void Session::dispatch(std::size_t ntokens) {
    Token* t = tokens_.data();
    auto is = [&](const char* name) { return std::strcmp(t[0].value, name) == 0; };
    if (ntokens < 2 || t[0].length < 2) return out_string("ERROR");
    const char first = t[0].value[0];
    if (first == 'm' && t[0].length == 2) {
        switch (t[0].value[1]) {
            case 'g':
                return cmd_meta_get(ntokens);
            case 's':
                return cmd_meta_set(ntokens);
            case 'd':
                return cmd_meta_delete(ntokens);
            case 'n':
                return out_string("MN");
            case 'a':
                return cmd_meta_arithmetic(ntokens);
            case 'e':
                return cmd_meta_debug(ntokens);
            default:
                return out_string("ERROR");
        }
    }
    auto want_or = [&](std::size_t a, std::size_t b) {
        if (ntokens == a || ntokens == b) return true;
        out_string("ERROR");
        return false;
    };
    if (first == 'g') {
        if (ntokens < 3) return out_string("ERROR");
        if (is("get")) return cmd_get(ntokens, false, false);
        if (is("gets")) return cmd_get(ntokens, true, false);
        if (is("gat")) return cmd_get(ntokens, false, true);
        if (is("gats")) return cmd_get(ntokens, true, true);
        return out_string("ERROR");
    }
    if (first == 's') {
        if (is("set")) return want_or(6, 7) ? cmd_update(ntokens, Mode::kSet, false) : void();
        if (is("stats")) return cmd_stats(ntokens);
        if (is("shutdown")) return cmd_shutdown(ntokens);
        return out_string("ERROR");
    }
    if (first == 'a') {
        if (is("add")) return want_or(6, 7) ? cmd_update(ntokens, Mode::kAdd, false) : void();
        if (is("append")) return want_or(6, 7) ? cmd_update(ntokens, Mode::kAppend, false) : void();
        return out_string("ERROR");
    }
    if (first == 'c') {
        if (is("cas")) return want_or(7, 8) ? cmd_update(ntokens, Mode::kCas, true) : void();
        if (is("cache_memlimit")) return want_or(3, 4) ? cmd_memlimit(ntokens) : void();
        return out_string("ERROR");
    }
    if (first == 'i') {
        if (is("incr")) return want_or(4, 5) ? cmd_arithmetic(ntokens, true) : void();
        return out_string("ERROR");
    }
    if (first == 'd') {
        if (is("delete")) {
            if (ntokens < 3 || ntokens > 5) return out_string("ERROR");
            return cmd_delete(ntokens);
        }
        if (is("decr")) return want_or(4, 5) ? cmd_arithmetic(ntokens, false) : void();
        return out_string("ERROR");
    }
    if (first == 't') {
        if (is("touch")) return want_or(4, 5) ? cmd_touch(ntokens) : void();
        return out_string("ERROR");
    }
    if (is("replace")) return want_or(6, 7) ? cmd_update(ntokens, Mode::kReplace, false) : void();
    if (is("prepend")) return want_or(6, 7) ? cmd_update(ntokens, Mode::kPrepend, false) : void();
    if (is("bget")) return ntokens < 3 ? out_string("ERROR") : cmd_get(ntokens, false, false);
    if (is("flush_all")) {
        if (ntokens < 2 || ntokens > 4) return out_string("ERROR");
        return cmd_flush_all(ntokens);
    }
    if (is("version")) return out_string("VERSION " + server_.version);
    if (is("quit")) {
        close_ = true;
        return;
    }
    if (is("verbosity")) return want_or(3, 4) ? cmd_verbosity(ntokens) : void();
    if (is("lru_crawler")) return cmd_lru_crawler(ntokens);
    // A browser tricked into posting to a cache port sends an HTTP request
    // line: close at once, as memcached does.
    if (std::strncmp(t[ntokens - 2].value, "HTTP/", 5) == 0) {
        close_ = true;
        return;
    }
    out_string("ERROR");
}

// ---- retrieval ----------------------------------------------------------------

void Session::cmd_get(std::size_t, bool return_cas, bool touch) {
    std::size_t k = 1;
    RelTime exptime = 0;
    if (touch) {
        std::int32_t exptime_int = 0;
        if (!safe_strtol(tokens_[1].value, exptime_int))
            return out_string("CLIENT_ERROR invalid exptime argument");
        ++k;
        exptime = store_.realtime(exptime_int);
    }
    // The reply is built whole (dropped if a key turns out too long): as
    // text, with values over kInlineValue moved to `reply_` in between, so
    // that a get of small items makes one append to the output.
    std::string& text = reply_text_;
    quiesce::Buffer& reply = reply_;
    text.clear();
    reply.clear();
    std::size_t in_reply = 0;  // bytes moved to `reply`
    bool fail_length = false, fail_memory = false;
    for (;;) {
        for (; tokens_[k].length != 0; ++k) {
            const std::string_view key(tokens_[k].value, tokens_[k].length);
            if (key.size() > kKeyMaxLength) {
                fail_length = true;
                break;
            }
            // One get may name a large value many times over: its reply is
            // capped, as memcached caps the memory of a connection's replies.
            if (in_reply + text.size() > server_.max_get_reply) {
                fail_memory = true;
                break;
            }
            Store::Miss miss = Store::Miss::kNone;
            const Item* item = store_.get(key, &miss);
            count_dead(miss);
            if (item != nullptr) {
                if (touch) {
                    store_.set_exptime(*item, exptime);
                    Counters::bump(counters_.touch_cmds);
                    Counters::bump(counters_.touch_hits);
                } else {
                    Counters::bump(counters_.get_cmds);
                    Counters::bump(counters_.get_hits);
                }
                text.append("VALUE ").append(item->key()).push_back(' ');
                append_decimal(text, item->flags);
                text.push_back(' ');
                append_decimal(text, item->nbytes);
                if (return_cas) {
                    text.push_back(' ');
                    append_decimal(text, store_.cas_of(*item));
                }
                text.append("\r\n");
                const std::string_view value = item->value();
                if (value.size() <= kInlineValue) {
                    text.append(value);
                } else {
                    in_reply += text.size() + value.size();
                    reply.append(text);
                    reply.append(value);
                    text.clear();
                }
                text.append("\r\n");
            } else if (touch) {
                Counters::bump(counters_.touch_cmds);
                Counters::bump(counters_.touch_misses);
            } else {
                Counters::bump(counters_.get_misses);
                Counters::bump(counters_.get_cmds);
            }
        }
        if (fail_length || fail_memory || tokens_[k].value == nullptr) break;
        // More than 23 keys: tokenize what is left of the line.
        char* rest = tokens_[k].value;
        (void)tokenize_command(rest, std::strlen(rest), tokens_.data(), kMaxTokens);
        k = 0;
    }
    if (fail_length || fail_memory) {
        reply.clear();
    } else {
        text.append("END\r\n");
        if (in_reply != 0) out_->append(reply);
        out_->append(text);
    }
    text.clear();
    if (text.capacity() > kKeptReplyText) std::string().swap(text);  // a large reply's memory goes
    if (fail_length) return out_string("CLIENT_ERROR bad command line format");
    if (fail_memory) return out_string("SERVER_ERROR out of memory writing get response");
}

// ---- storage ------------------------------------------------------------------

void Session::cmd_update(std::size_t ntokens, Mode mode, bool handle_cas) {
    set_noreply_maybe(ntokens);
    if (tokens_[1].length > kKeyMaxLength)
        return out_string("CLIENT_ERROR bad command line format");
    const std::string_view key(tokens_[1].value, tokens_[1].length);
    std::uint32_t flags = 0;
    std::int32_t exptime_int = 0, vlen = 0;
    if (!(safe_strtoul(tokens_[2].value, flags) && safe_strtol(tokens_[3].value, exptime_int) &&
          safe_strtol(tokens_[4].value, vlen)))
        return out_string("CLIENT_ERROR bad command line format");
    const RelTime exptime = store_.realtime(exptime_int);
    std::uint64_t cas = 0;
    if (handle_cas && !safe_strtoull(tokens_[5].value, cas))
        return out_string("CLIENT_ERROR bad command line format");
    if (vlen < 0 || vlen > INT_MAX - 2) return out_string("CLIENT_ERROR bad command line format");
    const auto size = static_cast<std::size_t>(vlen);
    Item* item = nullptr;
    if (store_.too_large(key.size(), flags, size)) {
        out_string("SERVER_ERROR object too large for cache");
        Counters::bump(counters_.store_too_large);
    } else if ((item = store_.allocate(key, flags, exptime, size)) == nullptr) {
        out_string("SERVER_ERROR out of memory storing object");
        Counters::bump(counters_.store_no_memory);
    }
    if (item == nullptr) {
        swallow(size + 2);
        // A set that failed must not leave the old value readable.
        if (mode == Mode::kSet) store_.unlink(key);
        return;
    }
    pending_ = Pending{};
    pending_.mode = mode;
    pending_.item = item;
    pending_.cas = cas;
    pending_.vlen = size;
    state_ = State::kData;
}

void Session::complete_data(quiesce::Buffer& in) {
    Item* item = pending_.item;
    pending_.item = nullptr;
    in.copy_out(0, item->value_data(), pending_.vlen);
    char tail[2] = {0, 0};
    in.copy_out(pending_.vlen, tail, 2);
    in.drain(pending_.vlen + 2);
    state_ = State::kCommand;
    Counters::bump(counters_.set_cmds);
    if (tail[0] != '\r' || tail[1] != '\n') {
        store_.discard(item);
        if (pending_.meta) noreply_ = false;  // meta sets always report errors
        out_string("CLIENT_ERROR bad data chunk");
        return;
    }
    std::uint64_t cas = 0;
    const StoreResult result =
        store_.store(item, pending_.mode, pending_.cas, counters_, pending_.set_stale, &cas);
    if (pending_.meta) return finish_meta_set(result, cas);
    switch (result) {
        case StoreResult::kStored:
            return out_string("STORED");
        case StoreResult::kExists:
            return out_string("EXISTS");
        case StoreResult::kNotFound:
            return out_string("NOT_FOUND");
        case StoreResult::kNotStored:
            return out_string("NOT_STORED");
    }
}

void Session::cmd_touch(std::size_t ntokens) {
    set_noreply_maybe(ntokens);
    if (tokens_[1].length > kKeyMaxLength)
        return out_string("CLIENT_ERROR bad command line format");
    const std::string_view key(tokens_[1].value, tokens_[1].length);
    std::int32_t exptime_int = 0;
    if (!safe_strtol(tokens_[2].value, exptime_int))
        return out_string("CLIENT_ERROR invalid exptime argument");
    const RelTime exptime = store_.realtime(exptime_int);
    Counters::bump(counters_.touch_cmds);
    Store::Miss miss = Store::Miss::kNone;
    if (const Item* item = store_.get(key, &miss)) {
        store_.set_exptime(*item, exptime);
        Counters::bump(counters_.touch_hits);
        return out_string("TOUCHED");
    }
    count_dead(miss);
    Counters::bump(counters_.touch_misses);
    out_string("NOT_FOUND");
}

void Session::cmd_arithmetic(std::size_t ntokens, bool incr) {
    set_noreply_maybe(ntokens);
    if (tokens_[1].length > kKeyMaxLength)
        return out_string("CLIENT_ERROR bad command line format");
    const std::string_view key(tokens_[1].value, tokens_[1].length);
    std::uint64_t delta = 0;
    if (!safe_strtoull(tokens_[2].value, delta))
        return out_string("CLIENT_ERROR invalid numeric delta argument");
    std::string value;
    switch (store_.delta(key, incr, delta, 0, value)) {
        case DeltaResult::kOk:
            Counters::bump(incr ? counters_.incr_hits : counters_.decr_hits);
            return out_string(value);
        case DeltaResult::kNonNumeric:
            return out_string("CLIENT_ERROR cannot increment or decrement non-numeric value");
        case DeltaResult::kNoMemory:
            return out_string("SERVER_ERROR out of memory");
        case DeltaResult::kNotFound:
        case DeltaResult::kCasMismatch:
            Counters::bump(incr ? counters_.incr_misses : counters_.decr_misses);
            return out_string("NOT_FOUND");
    }
}

void Session::cmd_delete(std::size_t ntokens) {
    if (ntokens > 3) {
        const bool hold_is_zero = std::strcmp(tokens_[2].value, "0") == 0;
        const bool sets_noreply = set_noreply_maybe(ntokens);
        const bool valid = (ntokens == 4 && (hold_is_zero || sets_noreply)) ||
                           (ntokens == 5 && hold_is_zero && sets_noreply);
        if (!valid)
            return out_string(
                "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
    }
    if (tokens_[1].length > kKeyMaxLength)
        return out_string("CLIENT_ERROR bad command line format");
    const std::string_view key(tokens_[1].value, tokens_[1].length);
    if (store_.remove(key) == Store::DeleteResult::kDeleted) {
        Counters::bump(counters_.delete_hits);
        return out_string("DELETED");
    }
    Counters::bump(counters_.delete_misses);
    out_string("NOT_FOUND");
}

void Session::cmd_flush_all(std::size_t ntokens) {
    set_noreply_maybe(ntokens);
    Counters::bump(counters_.flush_cmds);
    if (!server_.flush_enabled) return out_string("CLIENT_ERROR flush_all not allowed");
    std::int32_t exptime = 0;
    if (ntokens != (noreply_ ? 3u : 2u) && !safe_strtol(tokens_[1].value, exptime))
        return out_string("CLIENT_ERROR invalid exptime argument");
    store_.flush(exptime);
    out_string("OK");
}

void Session::cmd_verbosity(std::size_t ntokens) {
    set_noreply_maybe(ntokens);
    std::uint32_t level = 0;
    if (!safe_strtoul(tokens_[1].value, level))
        return out_string("CLIENT_ERROR bad command line format");
    server_.verbosity.store(static_cast<int>(std::min<std::uint32_t>(level, 2)),
                            std::memory_order_relaxed);  // relaxed: a setting
    out_string("OK");
}

void Session::cmd_memlimit(std::size_t ntokens) {
    // memcached's process_memlimit_command: MiB, at least 8; more than 10^9
    // must be a value in bytes by mistake. Lowering it evicts down to the
    // new limit as the crawler and later stores go.
    set_noreply_maybe(ntokens);
    std::uint32_t mib = 0;
    if (!safe_strtoul(tokens_[1].value, mib)) return out_string("ERROR");
    if (mib < 8) return out_string("MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m");
    if (mib > 1'000'000'000)
        return out_string("MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes");
    store_.set_memory_limit(std::size_t{mib} << 20);
    out_string("OK");
}

void Session::cmd_shutdown(std::size_t ntokens) {
    if (!server_.shutdown_enabled) return out_string("ERROR: shutdown not enabled");
    if (ntokens == 2 || (ntokens == 3 && std::strcmp(tokens_[1].value, "graceful") == 0)) {
        close_ = true;
        if (server_.shutdown) server_.shutdown();
        return;
    }
    out_string("CLIENT_ERROR invalid shutdown mode");
}

}  // namespace kvcache
