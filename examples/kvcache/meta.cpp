// The meta commands of memcached 1.6 (mg, ms, md, ma, me; mn is a line in
// dispatch()), following proto_text.c: flags parsed by one pre-pass that
// rejects duplicates and unknown flags, return flags echoed in request order.
#include <climits>
#include <cstring>

#include "protocol.hpp"

namespace kvcache {

/// What a meta command's flags asked for (memcached's struct _meta_flags).
struct MetaFlags {
    bool has_error = false, no_update = false, locked = false, vivify = false, la = false,
         value = false, set_stale = false, no_reply = false, has_cas = false, new_ttl = false,
         key_binary = false;
    char mode = 0;
    RelTime exptime = 0, autoviv_exptime = 0, recache_time = 0;
    std::uint32_t client_flags = 0;
    std::uint64_t req_cas_id = 0, delta = 1, initial = 0;
};

namespace {

constexpr std::size_t kKeyMaxLength = 250;
constexpr std::size_t kMaxOptLength = 20;     // memcached's MFLAG_MAX_OPT_LENGTH
constexpr std::size_t kMaxOpaqueLength = 32;  // MFLAG_MAX_OPAQUE_LENGTH

using Token = Session::Token;

// memcached's _meta_flag_preparse(): 0, or -1 with `errstr` set.
int preparse(Token* tokens, std::size_t start, MetaFlags& of, const char*& errstr,
             const Store& store) {
    bool seen[127] = {};
    for (std::size_t i = start; tokens[i].length != 0; ++i) {
        const auto o = static_cast<unsigned char>(tokens[i].value[0]);
        if (o >= 127 || seen[o]) {
            errstr = "CLIENT_ERROR duplicate flag";
            return -1;
        }
        seen[o] = true;
        const char* arg = tokens[i].value + 1;
        std::int32_t tmp = 0;
        auto parse_time = [&](RelTime& into) {
            if (!safe_strtol(arg, tmp)) {
                errstr = "CLIENT_ERROR bad token in command line format";
                of.has_error = true;
            } else {
                into = store.realtime(tmp);
            }
        };
        switch (o) {
            case 'b': {
                Token& key = tokens[1];
                const std::size_t n = base64_decode(key.value, key.length, key.value, key.length);
                if (n == 0) {
                    errstr = "CLIENT_ERROR error decoding key";
                    of.has_error = true;
                }
                key.length = n;
                of.key_binary = true;
                break;
            }
            case 'N':
                of.locked = of.vivify = true;
                parse_time(of.autoviv_exptime);
                break;
            case 'T':
                of.locked = true;
                parse_time(of.exptime);
                if (!of.has_error) of.new_ttl = true;
                break;
            case 'R':
                of.locked = true;
                parse_time(of.recache_time);
                break;
            case 'l':
                of.la = of.locked = true;
                break;
            case 'O':
            case 'P':
            case 'L':
            case 'k':
            case 's':
            case 't':
            case 'c':
            case 'f':
                break;
            case 'v':
                of.value = true;
                break;
            case 'h':
                of.locked = true;
                break;
            case 'u':
                of.no_update = true;
                break;
            case 'q':
                of.no_reply = true;
                break;
            case 'F':
                if (!safe_strtoul(arg, of.client_flags)) of.has_error = true;
                break;
            case 'C':
                if (!safe_strtoull(arg, of.req_cas_id)) {
                    errstr = "CLIENT_ERROR bad token in command line format";
                    of.has_error = true;
                } else {
                    of.has_cas = true;
                }
                break;
            case 'M':
                if (tokens[i].length != 2) {
                    errstr = "CLIENT_ERROR incorrect length for M token";
                    of.has_error = true;
                } else {
                    of.mode = tokens[i].value[1];
                }
                break;
            case 'J':
                if (!safe_strtoull(arg, of.initial)) {
                    errstr = "CLIENT_ERROR invalid numeric initial value";
                    of.has_error = true;
                }
                break;
            case 'D':
                if (!safe_strtoull(arg, of.delta)) {
                    errstr = "CLIENT_ERROR invalid numeric delta value";
                    of.has_error = true;
                }
                break;
            case 'I':
                of.set_stale = true;
                break;
            default:
                errstr = "CLIENT_ERROR invalid flag";
                return -1;
        }
    }
    return of.has_error ? -1 : 0;
}

void append_key(std::string& p, std::string_view key, bool binary) {
    p.append(" k");
    if (!binary) {
        p.append(key);
    } else {
        p.append(base64_encode(key)).append(" b");
    }
}

}  // namespace

bool Session::append_opaque_and_key(std::string& p, std::size_t ntokens, std::string_view key,
                                    bool binary) const {
    // The return flags a reply without an item echoes: O (opaque), k (key).
    for (std::size_t i = 2; i < ntokens - 1; ++i) {
        const Token& t = tokens_[i];
        if (t.value[0] == 'O') {
            if (t.length > kMaxOpaqueLength) return false;
            p.append(" ").append(t.value, t.length);
        } else if (t.value[0] == 'k') {
            append_key(p, key, binary);
        }
    }
    return true;
}

bool Session::meta_preamble(std::size_t ntokens, MetaFlags& of) {
    // md and ma check their line alike (mg and ms word their errors apart).
    if (ntokens < 3) {
        out_string("ERROR");
    } else if (tokens_[1].length > kKeyMaxLength) {
        out_string("CLIENT_ERROR bad command line format");
    } else if (ntokens > kMaxOptLength) {
        out_string("CLIENT_ERROR options flags too long");
    } else {
        const char* errstr = "CLIENT_ERROR bad command line format";
        if (preparse(tokens_.data(), 2, of, errstr, store_) == 0) {
            noreply_ = of.no_reply;
            return true;
        }
        out_error("CLIENT_ERROR invalid or duplicate flag");
    }
    return false;
}

void Session::cmd_meta_get(std::size_t ntokens) {
    if (ntokens < 3) return out_string("ERROR");
    if (tokens_[1].length > kKeyMaxLength) return out_error("CLIENT_ERROR bad command line format");
    if (ntokens > kMaxOptLength) return out_error("CLIENT_ERROR options flags are too long");
    MetaFlags of;
    const char* errstr = "CLIENT_ERROR bad command line format";
    if (preparse(tokens_.data(), 2, of, errstr, store_) != 0) return out_error(errstr);
    noreply_ = of.no_reply;
    const std::string_view key(tokens_[1].value, tokens_[1].length);

    // Looked up without the LRU bump, which comes after the reply is built
    // (so h and l report the state before this request, as memcached's
    // locked mode does).
    Store::Miss miss = Store::Miss::kNone;
    const Item* item = store_.get(key, &miss, true);
    count_dead(miss);
    bool item_created = false;
    if (item == nullptr && of.vivify) {
        item = store_.vivify(key, {}, of.autoviv_exptime);
        item_created = item != nullptr;
    }
    std::string p;
    if (item != nullptr) {
        bool won_token = false, ttl_set = false;
        const RelTime now = store_.current_time();
        p = of.value ? "VA " + std::to_string(item->nbytes) : "HD";
        for (std::size_t i = 2; i < ntokens - 1; ++i) {
            const Token& t = tokens_[i];
            switch (t.value[0]) {
                case 'T':
                    ttl_set = true;
                    store_.set_exptime(*item, of.exptime);
                    break;
                case 'N':
                    if (item_created) won_token = true;
                    break;
                case 'R': {
                    const RelTime exp = item->exptime.load(std::memory_order_relaxed);
                    if (!item->has(Item::kTokenSent) && !item_created && exp != 0 &&
                        exp < of.recache_time)
                        won_token = true;
                    break;
                }
                case 's':
                    p.append(" s").append(std::to_string(item->nbytes));
                    break;
                case 't': {
                    const RelTime exp = item->exptime.load(std::memory_order_relaxed);
                    p.append(" t").append(exp == 0 ? "-1" : std::to_string(exp - now));
                    break;
                }
                case 'c':
                    p.append(" c").append(std::to_string(store_.cas_of(*item)));
                    break;
                case 'f':
                    p.append(" f").append(std::to_string(item->flags));
                    break;
                case 'l':
                    p.append(" l").append(std::to_string(
                        static_cast<RelTime>(now - item->time.load(std::memory_order_relaxed))));
                    break;
                case 'h':
                    p.append(item->has(Item::kFetched) ? " h1" : " h0");
                    break;
                case 'O':
                    if (t.length > kMaxOpaqueLength)
                        return out_error("CLIENT_ERROR opaque token too long");
                    p.append(" ").append(t.value, t.length);
                    break;
                case 'k':
                    append_key(p, item->key(), of.key_binary);
                    break;
            }
        }
        if (item->has(Item::kTokenSent)) p.append(" Z");
        if (item->has(Item::kStale)) {
            p.append(" X");
            if (!item->has(Item::kTokenSent)) won_token = true;
        }
        if (won_token) {
            p.append(" W");
            Store::set_bits(*item, Item::kTokenSent);
        }
        p.append("\r\n");
        out_->append(p);
        if (of.value) {
            out_->append(item->value());
            out_->append("\r\n", 2);
        }
        if (!of.no_update) (void)store_.get(key, nullptr, false);  // the delayed bump
        if (ttl_set) {
            Counters::bump(counters_.touch_cmds);
            Counters::bump(counters_.touch_hits);
        } else {
            Counters::bump(counters_.get_cmds);
            Counters::bump(counters_.get_hits);
        }
        return;
    }
    Counters::bump(counters_.get_misses);
    Counters::bump(counters_.get_cmds);
    p = "EN";
    if (!append_opaque_and_key(p, ntokens, key, of.key_binary))
        return out_error("CLIENT_ERROR opaque token too long");
    if (noreply_) return;  // q: a miss says nothing
    p.append("\r\n");
    out_->append(p);
}

void Session::cmd_meta_set(std::size_t ntokens) {
    if (ntokens < 3) return out_string("ERROR");
    if (tokens_[1].length > kKeyMaxLength) return out_error("CLIENT_ERROR bad command line format");
    if (ntokens == 3) return out_error("CLIENT_ERROR bad command line format");
    if (ntokens > kMaxOptLength) return out_error("CLIENT_ERROR options flags too long");
    std::int32_t vlen = 0;
    if (!safe_strtol(tokens_[2].value, vlen) || vlen < 0 || vlen > INT32_MAX - 2)
        return out_error("CLIENT_ERROR bad command line format");
    const auto size = static_cast<std::size_t>(vlen);
    MetaFlags of;
    const char* errstr = "CLIENT_ERROR bad command line format";
    auto fail = [&](const char* message) {
        swallow(size + 2);
        out_error(message);
    };
    if (preparse(tokens_.data(), 3, of, errstr, store_) != 0) return fail(errstr);
    const std::string_view key(tokens_[1].value, tokens_[1].length);
    noreply_ = of.no_reply;

    std::string ret;
    bool has_error = false;
    for (std::size_t i = 2; i < ntokens - 1; ++i) {
        const Token& t = tokens_[i];
        switch (t.value[0]) {
            case 'O':
                if (t.length > kMaxOpaqueLength) {
                    errstr = "CLIENT_ERROR opaque token too long";
                    has_error = true;
                    break;
                }
                ret.append(" ").append(t.value, t.length);
                break;
            case 'k':
                ret.append(" k");
                break;
            case 'c':
                ret.append(" c");
                break;
        }
    }
    Mode mode = Mode::kSet;
    switch (of.mode) {
        case 0:
            break;
        case 'E':
            mode = Mode::kAdd;
            break;
        case 'A':
            mode = Mode::kAppend;
            break;
        case 'P':
            mode = Mode::kPrepend;
            break;
        case 'R':
            mode = Mode::kReplace;
            break;
        case 'S':
            mode = Mode::kSet;
            break;
        default:
            return fail("CLIENT_ERROR invalid mode for ms M token");
    }
    if (of.has_cas && (mode == Mode::kSet || mode == Mode::kReplace)) mode = Mode::kCas;
    if (has_error) return fail(errstr);

    Item* item = nullptr;
    if (store_.too_large(key.size(), of.client_flags, size)) {
        errstr = "SERVER_ERROR object too large for cache";
        Counters::bump(counters_.store_too_large);
    } else if ((item = store_.allocate(key, of.client_flags, of.exptime, size)) == nullptr) {
        errstr = "SERVER_ERROR out of memory storing object";
        Counters::bump(counters_.store_no_memory);
    }
    if (item == nullptr) {
        store_.unlink(key);  // no stale value left behind a failed store
        return fail(errstr);
    }
    pending_ = Pending{.mode = mode,
                       .item = item,
                       .cas = of.req_cas_id,
                       .vlen = size,
                       .meta = true,
                       .set_stale = of.set_stale && mode == Mode::kCas,
                       .key_binary = of.key_binary,
                       .key = std::string(key),
                       .ret = std::move(ret)};
    state_ = State::kData;
}

void Session::finish_meta_set(StoreResult result, std::uint64_t cas) {
    std::string p;
    switch (result) {
        case StoreResult::kStored:
            if (noreply_) return;  // q: a success says nothing
            p = "HD";
            break;
        case StoreResult::kExists:
            p = "EX";
            break;
        case StoreResult::kNotFound:
            p = "NF";
            break;
        case StoreResult::kNotStored:
            p = "NS";
            break;
    }
    if (result != StoreResult::kStored) cas = 0;
    // The stashed return flags: " O...", " k", " c", in request order.
    const std::string& ret = pending_.ret;
    for (std::size_t i = 0; i < ret.size(); ++i) {
        if (ret[i] != ' ' || i + 1 >= ret.size()) continue;
        const char flag = ret[i + 1];
        if (flag == 'O') {
            const std::size_t end = std::min(ret.find(' ', i + 1), ret.size());
            p.append(ret, i, end - i);
            i = end - 1;
        } else if (flag == 'k') {
            append_key(p, pending_.key, pending_.key_binary);
            ++i;
        } else if (flag == 'c') {
            p.append(" c").append(std::to_string(cas));
            ++i;
        }
    }
    p.append("\r\n");
    out_->append(p);
}

void Session::cmd_meta_delete(std::size_t ntokens) {
    MetaFlags of;
    if (!meta_preamble(ntokens, of)) return;
    const std::string_view key(tokens_[1].value, tokens_[1].length);
    std::string ret;
    if (!append_opaque_and_key(ret, ntokens, key, of.key_binary))
        return out_error("CLIENT_ERROR opaque token too long");
    const auto result = store_.remove(key, of.has_cas ? of.req_cas_id : 0, of.set_stale,
                                      of.set_stale && of.new_ttl ? &of.exptime : nullptr);
    std::string p;
    switch (result) {
        case Store::DeleteResult::kDeleted:
            if (!of.set_stale) Counters::bump(counters_.delete_hits);
            if (noreply_) return;
            p = "HD";
            break;
        case Store::DeleteResult::kExists:
            Counters::bump(counters_.delete_misses);
            p = "EX";
            break;
        case Store::DeleteResult::kNotFound:
            Counters::bump(counters_.delete_misses);
            p = "NF";
            break;
    }
    p.append(ret).append("\r\n");
    out_->append(p);
}

void Session::cmd_meta_arithmetic(std::size_t ntokens) {
    MetaFlags of;
    if (!meta_preamble(ntokens, of)) return;
    const std::string_view key(tokens_[1].value, tokens_[1].length);
    bool incr = true;
    switch (of.mode) {
        case 0:
        case 'I':
        case '+':
            incr = true;
            break;
        case 'D':
        case '-':
            incr = false;
            break;
        default:
            return out_error("CLIENT_ERROR invalid mode for ma M token");
    }
    std::string number;
    const Item* item = nullptr;
    bool item_created = false, skip = false;
    std::string p;
    switch (store_.delta(key, incr, of.delta, of.req_cas_id, number, &item)) {
        case DeltaResult::kOk:
            Counters::bump(incr ? counters_.incr_hits : counters_.decr_hits);
            skip = noreply_;
            break;
        case DeltaResult::kNonNumeric:
            return out_error("CLIENT_ERROR cannot increment or decrement non-numeric value");
        case DeltaResult::kNoMemory:
            return out_error("SERVER_ERROR out of memory");
        case DeltaResult::kNotFound:
            if (of.vivify) {
                number = std::to_string(of.initial);
                item = store_.vivify(key, number, 0);
                if (item == nullptr)
                    p = "NS";
                else
                    item_created = true;
            } else {
                Counters::bump(incr ? counters_.incr_misses : counters_.decr_misses);
                p = "NF";
            }
            break;
        case DeltaResult::kCasMismatch:
            p = "EX";
            break;
    }
    if (item != nullptr) {
        const RelTime now = store_.current_time();
        p = of.value ? "VA " + std::to_string(number.size()) : "HD";
        for (std::size_t i = 2; i < ntokens - 1; ++i) {
            const Token& t = tokens_[i];
            switch (t.value[0]) {
                case 'c':
                    p.append(" c").append(std::to_string(store_.cas_of(*item)));
                    break;
                case 't': {
                    const RelTime exp = item->exptime.load(std::memory_order_relaxed);
                    p.append(" t").append(exp == 0 ? "-1" : std::to_string(exp - now));
                    break;
                }
                case 'T':
                    store_.set_exptime(*item, of.exptime);
                    break;
                case 'N':
                    if (item_created) store_.set_exptime(*item, of.autoviv_exptime);
                    break;
                case 'O':
                    if (t.length > kMaxOpaqueLength)
                        return out_error("CLIENT_ERROR opaque token too long");
                    p.append(" ").append(t.value, t.length);
                    break;
                case 'k':
                    append_key(p, key, of.key_binary);
                    break;
            }
        }
        if (of.value) p.append("\r\n").append(number);
    } else {
        if (!append_opaque_and_key(p, ntokens, key, of.key_binary))
            return out_error("CLIENT_ERROR opaque token too long");
    }
    if (skip) return;
    p.append("\r\n");
    out_->append(p);
}

void Session::cmd_meta_debug(std::size_t ntokens) {
    if (ntokens < 3 || tokens_[1].length > kKeyMaxLength)
        return out_string("CLIENT_ERROR bad command line format");
    Token& key_token = tokens_[1];
    bool binary = false;
    if (ntokens >= 4 && tokens_[2].length == 1 && tokens_[2].value[0] == 'b') {
        const std::size_t n =
            base64_decode(key_token.value, key_token.length, key_token.value, key_token.length);
        if (n == 0) return out_string("CLIENT_ERROR bad command line format");
        key_token.length = n;
        binary = true;
    }
    const std::string_view key(key_token.value, key_token.length);
    Counters::bump(counters_.meta_cmds);
    const Item* item = store_.get(key, nullptr, true);
    if (item == nullptr) return out_string("EN");
    const RelTime now = store_.current_time();
    const RelTime exp = item->exptime.load(std::memory_order_relaxed);
    std::string p = "ME ";
    p.append(binary ? base64_encode(item->key()) : std::string(item->key()));
    p.append(" exp=").append(exp == 0 ? "-1" : std::to_string(static_cast<int>(now - exp)));
    p.append(" la=").append(
        std::to_string(static_cast<RelTime>(now - item->time.load(std::memory_order_relaxed))));
    p.append(" cas=").append(std::to_string(store_.cas_of(*item)));
    p.append(" fetch=").append(item->has(Item::kFetched) ? "yes" : "no");
    p.append(" cls=1 size=").append(std::to_string(item->total())).append("\r\n");
    out_->append(p);
}

// ---- base64 (RFC 4648, with padding) ----------------------------------------

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
int decode_char(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}
}  // namespace

std::size_t base64_decode(const char* in, std::size_t len, char* out, std::size_t out_len) {
    if (len == 0 || len % 4 != 0) return 0;
    std::string result;
    for (std::size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; ++j) {
            const char c = in[i + static_cast<std::size_t>(j)];
            if (c == '=' && i + 4 == len && j >= 2) {
                v[j] = 0;
                ++pad;
            } else if (pad > 0 || (v[j] = decode_char(c)) < 0) {
                return 0;
            }
        }
        const std::uint32_t n =
            (static_cast<std::uint32_t>(v[0]) << 18) | (static_cast<std::uint32_t>(v[1]) << 12) |
            (static_cast<std::uint32_t>(v[2]) << 6) | static_cast<std::uint32_t>(v[3]);
        result.push_back(static_cast<char>(n >> 16));
        if (pad < 2) result.push_back(static_cast<char>((n >> 8) & 0xff));
        if (pad < 1) result.push_back(static_cast<char>(n & 0xff));
    }
    if (result.size() > out_len) return 0;
    std::memcpy(out, result.data(), result.size());
    return result.size();
}

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < in.size(); i += 3) {
        std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16;
        if (i + 1 < in.size())
            n |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
        if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
        out.push_back(kAlphabet[(n >> 18) & 63]);
        out.push_back(kAlphabet[(n >> 12) & 63]);
        out.push_back(i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=');
        out.push_back(i + 2 < in.size() ? kAlphabet[n & 63] : '=');
    }
    return out;
}

}  // namespace kvcache
