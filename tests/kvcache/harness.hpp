// A kvcache Session driven without sockets: bytes in, reply bytes out, with
// a clock the test sets.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

#include <quiesce/framework/buffer.hpp>
#include <quiesce/rcu/read_lock.hpp>

#include "protocol.hpp"
#include "store.hpp"

namespace kvcache::test {

struct Harness {
    explicit Harness(StoreOptions options = {})
        : store(options, quiesce::rcu::Domain::default_domain(), [this] { return now; }),
          server(store),
          session(std::make_unique<Session>(server)) {}

    /// Feeds `input` (after what is left from earlier calls) and returns
    /// the replies. `status` gets what process() said.
    std::string send(std::string_view input, std::size_t budget = SIZE_MAX) {
        quiesce::rcu::ReadLock lock;
        in.append(input);
        quiesce::Buffer out;
        status = session->process(in, out, budget);
        return out.take(out.size());
    }

    std::time_t now = 1'800'000'000;  // the test's clock (Unix seconds)
    Store store;
    Server server;
    std::unique_ptr<Session> session;
    quiesce::Buffer in;
    Session::Status status = Session::Status::kOpen;
};

}  // namespace kvcache::test
