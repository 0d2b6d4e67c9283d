// How a Listener hands an accepted socket to a Connection (private).
#pragma once

#include <quiesce/framework/tcp.hpp>

namespace quiesce::tcp {

struct Connection::Init {
    std::uint64_t id;
    int fd;
    Runtime& runtime;
    unsigned loop;
    ConnectionOptions options;
    Address peer;
    std::unique_ptr<Handler> handler;
    sched::Group group;
};

}  // namespace quiesce::tcp
