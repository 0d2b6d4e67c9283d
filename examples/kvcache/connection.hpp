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
        : session_(server), high_water_(high_water) {}

    void on_data(quiesce::tcp::Connection& conn, quiesce::Buffer& in) override;
    void on_drain(quiesce::tcp::Connection& conn) override;

private:
    void resume(quiesce::tcp::Connection& conn);

    Session session_;
    quiesce::Buffer out_;  // empty again after each write(): kept, not reallocated
    const std::size_t high_water_;
    bool paused_ = false;
};

/// The listener options kvcache uses: input up to one item and a line,
/// output held under 1 MiB.
quiesce::tcp::ListenerOptions listener_options(std::size_t item_max);

/// Listens on `address` with kvcache connections; returns the listener.
quiesce::tcp::Listener& listen(quiesce::Runtime& runtime, Server& server,
                               const std::string& address);

/// Reclaims expired and flushed items every 100 ms (a slice of the table
/// each time) on a group of its own; cancel the timer before the store goes.
quiesce::sched::Timer start_crawler(quiesce::Runtime& runtime, Store& store);

}  // namespace kvcache
