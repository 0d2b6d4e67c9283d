// kvcache served by a Runtime in this process, driven by client threads over
// loopback: concurrent sets and gets of shared keys across two loops with
// every value verified, "stats conns" listing them meanwhile, a pipelined burst larger than the
// output budget, and the crawler running. In every build, so ThreadSanitizer and AddressSanitizer
// watch the whole path (loops, sessions, store, timers).
#include <catch2/catch.hpp>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "connection.hpp"
#include "net.hpp"
#include "protocol.hpp"
#include "store.hpp"

using namespace kvcache;
using quiesce::test::Client;

namespace {

std::string value_for(const std::string& key, unsigned writer, unsigned seq) {
    std::string v = key + "|" + std::to_string(writer) + "|" + std::to_string(seq) + "|";
    v.append(50 + seq % 200, static_cast<char>('a' + seq % 26));
    return v;
}

bool value_ok(const std::string& key, const std::string& value) {
    if (!value.starts_with(key + "|")) return false;
    const auto last = value.rfind('|');
    const auto seq_start = value.rfind('|', last - 1) + 1;
    const unsigned seq =
        static_cast<unsigned>(std::stoul(value.substr(seq_start, last - seq_start)));
    const std::string tail = value.substr(last + 1);
    return tail == std::string(50 + seq % 200, static_cast<char>('a' + seq % 26));
}

}  // namespace

TEST_CASE("kvcache in a runtime: concurrent clients on shared keys", "[kvcache][server]") {
    Store store({.memory_limit = 4u << 20});
    Server server(store);
    quiesce::test::RunningRuntime running({.threads = 2, .handle_signals = false});
    auto& listener = kvcache::listen(running.runtime, server, "127.0.0.1:0");
    auto crawler = start_crawler(running.runtime, store);
    running.start();

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> bad{0}, hits{0}, ops{0};
    auto client = [&](unsigned id) {
        Client c(listener.address());
        std::mt19937 rng(id);
        unsigned seq = 0;
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled
            const std::string key = "k" + std::to_string(rng() % 64);
            if (rng() % 3 == 0) {
                const std::string v = value_for(key, id, ++seq);
                c.send("set " + key + " 0 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\n");
                if (c.receive_line() != "STORED\r") bad.fetch_add(1);
            } else {
                c.send("get " + key + "\r\n");
                std::string line = c.receive_line();
                if (line.starts_with("VALUE ")) {
                    // Values hold no newline: the next line is the value.
                    const auto size = std::stoul(line.substr(line.rfind(' ') + 1));
                    std::string value = c.receive_line();
                    if (value.size() != size + 1 || value.back() != '\r') bad.fetch_add(1);
                    value.resize(size);
                    if (!value_ok(key, value)) bad.fetch_add(1);
                    hits.fetch_add(1);
                    line = c.receive_line();
                }
                if (line != "END\r") bad.fetch_add(1);
            }
            ops.fetch_add(1);
        }
    };
    // "stats conns" from fresh connections meanwhile: it reads the other
    // loops' entries while their connections write them, and connections
    // come and go under it.
    std::atomic<std::uint64_t> listings{0}, full_listings{0};
    auto lister = [&] {
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled
            Client c(listener.address());
            c.send("stats conns\r\n");
            int asking = 0, clients = 0;
            for (;;) {
                const std::string line = c.receive_line();
                if (line == "END\r") break;
                if (!line.starts_with("STAT ")) {
                    bad.fetch_add(1);
                    break;
                }
                if (line.ends_with(":state conn_parse_cmd\r")) ++asking;
                if (line.find(":listen_addr tcp:127.0.0.1:") != std::string::npos) ++clients;
            }
            // Itself alone as the asker; the four clients once they connected.
            if (asking != 1 || clients < 1) bad.fetch_add(1);
            if (clients >= 5) full_listings.fetch_add(1);
            listings.fetch_add(1);
        }
    };
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < 4; ++i) threads.emplace_back(client, i + 1);
    threads.emplace_back(lister);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    stop.store(true);
    for (auto& t : threads) t.join();
    INFO("ops " << ops.load() << " hits " << hits.load() << " listings " << listings.load() << " ("
                << full_listings.load() << " with every client)");
    CHECK(bad.load() == 0);
    CHECK(hits.load() > 0);
    CHECK(full_listings.load() > 0);

    // A burst of pipelined gets far over the 1 MiB output budget, sent
    // before any reply is read: every reply arrives, in order.
    {
        Client c(listener.address());
        const std::string big(20000, 'z');
        c.send("set big 0 0 20000\r\n" + big + "\r\n");
        REQUIRE(c.receive_line() == "STORED\r");
        std::string burst;
        for (int i = 0; i < 200; ++i) burst += "get big\r\n";
        std::thread sender([&] { c.send(burst); });
        int complete = 0;
        for (int i = 0; i < 200; ++i) {
            if (c.receive_line() != "VALUE big 0 20000\r") break;
            if (c.receive_line() != big + "\r") break;
            if (c.receive_line() != "END\r") break;
            ++complete;
        }
        sender.join();
        CHECK(complete == 200);
    }
    // lru_crawler metadump of more than the output budget: sent as the client
    // reads it, every item once, then what was pipelined behind it.
    {
        Client c(listener.address());
        constexpr int kItems = 20'000;
        std::string sets;
        for (int i = 0; i < kItems; ++i)
            sets += "set d" + std::to_string(i) + " 0 0 1 noreply\r\nx\r\n";
        c.send(sets + "version\r\n");
        REQUIRE(c.receive_line().starts_with("VERSION "));
        c.send("lru_crawler metadump all\r\nget big\r\n");
        std::vector<bool> seen(kItems, false);
        int listed = 0, twice = 0, bad_lines = 0;
        for (;;) {
            const std::string line = c.receive_line();
            if (line == "END\r") break;
            if (!line.starts_with("key=") || line.find(" cls=1 size=") == std::string::npos) {
                ++bad_lines;
                break;
            }
            if (line.starts_with("key=d")) {
                const int i = std::stoi(line.substr(5, line.find(' ') - 5));
                if (seen[static_cast<std::size_t>(i)]) ++twice;
                seen[static_cast<std::size_t>(i)] = true;
                ++listed;
            }
        }
        CHECK(bad_lines == 0);
        CHECK(listed == kItems);
        CHECK(twice == 0);
        CHECK(c.receive_line() == "VALUE big 0 20000\r");
    }
    crawler.cancel();
    CHECK(running.stop() == 0);
}
