// One kvcache connection on the framework: a protocol Session whose replies
// go out per batch of input, held back when the client does not read.
//
// Threading: a handler belongs to its connection's group.
#pragma once

#include <cstddef>
#include <memory>

#include <quiesce/framework/runtime.hpp>

#include "protocol.hpp"

namespace kvcache {

class ConnectionHandler final : public quiesce::tcp::Handler {
public:
    ConnectionHandler(Server& server, std::size_t high_water)
        : server_(server), session_(server), high_water_(high_water) {}

    void on_open(quiesce::tcp::Connection& conn) override;
    void on_data(quiesce::tcp::Connection& conn, quiesce::Buffer& in) override;
    void on_drain(quiesce::tcp::Connection& conn) override;
    void on_close(quiesce::tcp::Connection& conn, std::error_code error) override;

private:
    void resume(quiesce::tcp::Connection& conn);

    Server& server_;
    Session session_;
    ConnTable::Entry* entry_ = nullptr;  // in server_.conns while open
    quiesce::Buffer out_;  // empty again after each write(): kept, not reallocated
    const std::size_t high_water_;
    bool paused_ = false;
};

/// The listener options kvcache uses: input up to one item and a line,
/// output held under 1 MiB.
quiesce::tcp::ListenerOptions listener_options(std::size_t item_max);

/// Listens on `address` with kvcache connections; returns the listener,
/// listed in "stats conns".
quiesce::tcp::Listener& listen(quiesce::Runtime& runtime, Server& server,
                               const std::string& address);

/// Reclaims expired and flushed items every 100 ms (a slice of the table
/// each time) on a group of its own; cancel the timer before the store goes.
quiesce::sched::Timer start_crawler(quiesce::Runtime& runtime, Store& store);

}  // namespace kvcache
