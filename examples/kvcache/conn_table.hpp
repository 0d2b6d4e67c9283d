// ConnTable: what "stats conns" lists, as memcached 1.6 does: every
// listening socket, the UDP socket and each client connection, by
// descriptor, with its address, the listener it came through, its state and
// the seconds since its last command.
//
//     STAT 12:addr tcp:127.0.0.1:56502
//     STAT 12:listen_addr tcp:127.0.0.1:11211
//     STAT 12:state conn_read
//     STAT 12:secs_since_last_cmd 0
//
// Threading: add() and remove() take the table's mutex; an entry's state and
// time are relaxed atomics its own connection writes after each batch of
// commands and any loop reads for the listing (a snapshot, as memcached's
// is: it reads other threads' connections without a lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <quiesce/framework/address.hpp>

#include "store.hpp"

namespace kvcache {

class StatWriter;

class ConnTable {
public:
    enum class Kind : std::uint8_t { kListen, kUdp, kClient };
    /// memcached's conn_states that a listing shows here.
    enum class State : std::uint8_t {
        kNewCmd,   ///< conn_new_cmd: no command yet
        kRead,     ///< conn_read: waiting for the next command
        kNread,    ///< conn_nread: a data block is still coming
        kClosing,  ///< conn_closing
    };

    struct Entry {
        Entry(int f, Kind k, std::string a, std::string l, RelTime now)
            : fd(f), kind(k), addr(std::move(a)), listen_addr(std::move(l)), last_cmd(now) {}
        const int fd;
        const Kind kind;
        const std::string addr;                    ///< "tcp:127.0.0.1:56502"
        const std::string listen_addr;             ///< clients: the listener's addr
        std::atomic<RelTime> last_cmd;             // relaxed: a statistic
        std::atomic<State> state{State::kNewCmd};  // relaxed: a statistic
        quiesce::tcp::Address bound{};             ///< listeners: where they listen
    };

    /// memcached's spelling of a socket address: "tcp:IP:PORT",
    /// "tcp6:[IP]:PORT", "udp:…", "unix:PATH"; an unnamed Unix-domain
    /// client is "?:<AF 0>".
    static std::string describe(const quiesce::tcp::Address& address, bool udp);

    /// Lists a listening socket (TCP or Unix-domain) or the UDP socket.
    Entry* add_listener(int fd, const quiesce::tcp::Address& address, bool udp, RelTime now);
    /// Lists a client connection; `local` (the socket's own address) names
    /// the listener it came through.
    Entry* add_client(int fd, const quiesce::tcp::Address& peer, const quiesce::tcp::Address& local,
                      RelTime now);
    void remove(Entry* entry) noexcept;

    /// Writes the listing, ordered by descriptor; `self` (the connection
    /// asking, may be null) shows as conn_parse_cmd, running its command.
    void write(StatWriter& w, RelTime now, const Entry* self) const;

private:
    mutable std::mutex mutex_;
    std::list<Entry> listeners_;  // mutex_; a few, never removed; std::list: entries never move
    // mutex_; by address: a connect or a close costs O(1), not a walk of every connection.
    std::unordered_map<const Entry*, std::unique_ptr<Entry>> clients_;
};

}  // namespace kvcache
