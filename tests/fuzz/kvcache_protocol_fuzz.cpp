// libFuzzer target: the kvcache protocol parser and store, fed arbitrary
// bytes split into arbitrary reads. Whatever arrives, a Session must answer
// or ask to close, never crash, never read or write out of bounds (ASan),
// never hit undefined behaviour (UBSan), and keep the store's byte count
// within its limit.
//
// Built and run by tests/fuzz/run_fuzz.sh (clang-14, -fsanitize=fuzzer,
// address,undefined); seeds in tests/fuzz/kvcache_corpus/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <quiesce/rcu/read_lock.hpp>

#include "protocol.hpp"
#include "store.hpp"

namespace {

struct World {
    std::time_t now = 1'800'000'000;
    kvcache::Store store{{.memory_limit = 1u << 20, .item_max = 64 * 1024},
                         quiesce::rcu::Domain::default_domain(),
                         [this] { return now; }};
    kvcache::Server server{store};
};

World& world() {
    static World* w = new World;  // shared across inputs: state builds up, as on a server
    return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    World& w = world();
    if (size == 0) return 0;
    // The first byte picks how the rest is cut into reads and moves the clock.
    const std::size_t chunk = 1 + data[0] % 64;
    w.now += data[0] % 3;
    const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    quiesce::rcu::ReadLock lock;
    kvcache::Session session(w.server);
    quiesce::Buffer in;
    for (std::size_t at = 0; at < input.size(); at += chunk) {
        in.append(input.substr(at, chunk));
        quiesce::Buffer out;
        if (session.process(in, out, 256 * 1024) == kvcache::Session::Status::kClose) break;
        while (session.stopped_early()) {
            out.clear();
            session.process(in, out, 256 * 1024);
        }
    }
    if (w.store.bytes() > (1u << 20) + 64 * 1024) std::abort();
    w.store.crawl(64);
    return 0;
}
