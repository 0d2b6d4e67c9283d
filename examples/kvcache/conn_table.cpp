// ConnTable (conn_table.hpp).
#include "conn_table.hpp"

#include <algorithm>
#include <vector>

#include "protocol.hpp"

namespace kvcache {

std::string ConnTable::describe(const quiesce::tcp::Address& address, bool udp) {
    switch (address.family()) {
        case AF_INET:
            return (udp ? "udp:" : "tcp:") + address.to_string();
        case AF_INET6:
            return (udp ? "udp6:" : "tcp6:") + address.to_string();
        case AF_UNIX: {
            std::string text = address.to_string();  // "unix:PATH" or "unix:(unnamed)"
            if (text != "unix:(unnamed)") return text;
            break;
        }
        default:
            break;
    }
    // memcached: a client of a Unix-domain socket has no address.
    return "?:<AF 0>";
}

ConnTable::Entry* ConnTable::add_listener(int fd, const quiesce::tcp::Address& address, bool udp,
                                          RelTime now) {
    std::lock_guard lock(mutex_);
    Entry& e = listeners_.emplace_back(fd, udp ? Kind::kUdp : Kind::kListen, describe(address, udp),
                                       "", now);
    e.bound = address;
    // memcached's UDP socket waits in conn_read; a listener in conn_listening.
    e.state.store(State::kRead, std::memory_order_relaxed);  // relaxed: before it is listed
    return &e;
}

ConnTable::Entry* ConnTable::add_client(int fd, const quiesce::tcp::Address& peer,
                                        const quiesce::tcp::Address& local, RelTime now) {
    std::lock_guard lock(mutex_);
    std::string listen_addr = describe(local, false);
    for (const Entry& l : listeners_) {
        if (l.kind != Kind::kListen || l.bound.family() != local.family()) continue;
        const bool same = local.is_unix() ? l.addr == listen_addr : l.bound.port() == local.port();
        if (same) {
            listen_addr = l.addr;  // "tcp:0.0.0.0:11211" for a wildcard listener, as memcached
            break;
        }
    }
    auto entry = std::make_unique<Entry>(fd, Kind::kClient, describe(peer, false),
                                         std::move(listen_addr), now);
    Entry* raw = entry.get();
    clients_.emplace(raw, std::move(entry));
    return raw;
}

void ConnTable::remove(Entry* entry) noexcept {
    if (entry == nullptr) return;
    std::lock_guard lock(mutex_);
    clients_.erase(entry);
}

void ConnTable::write(StatWriter& w, RelTime now, const Entry* self) const {
    static constexpr const char* kStates[] = {"conn_new_cmd", "conn_read", "conn_nread",
                                              "conn_closing"};
    std::lock_guard lock(mutex_);
    std::vector<const Entry*> sorted;
    sorted.reserve(listeners_.size() + clients_.size());
    for (const Entry& e : listeners_) sorted.push_back(&e);
    for (const auto& [key, e] : clients_) sorted.push_back(key);
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const Entry* a, const Entry* b) { return a->fd < b->fd; });
    for (const Entry* e : sorted) {
        const std::string prefix = std::to_string(e->fd) + ":";
        if (e->kind == Kind::kUdp) w.add(prefix + "UDP", std::string_view("UDP"));
        w.add(prefix + "addr", std::string_view(e->addr));
        if (e->kind == Kind::kClient)
            w.add(prefix + "listen_addr", std::string_view(e->listen_addr));
        const char* state =
            e->kind == Kind::kListen ? "conn_listening"
            : e == self              ? "conn_parse_cmd"
                        : kStates[static_cast<int>(e->state.load(std::memory_order_relaxed))];
        w.add(prefix + "state", std::string_view(state));
        const RelTime last = e->last_cmd.load(std::memory_order_relaxed);  // relaxed: a statistic
        w.add(prefix + "secs_since_last_cmd",
              static_cast<std::uint64_t>(now >= last ? now - last : 0));
    }
}

}  // namespace kvcache
