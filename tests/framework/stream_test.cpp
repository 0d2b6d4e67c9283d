// Fiber-backed connections: straight-line reads and writes, limits,
// timeouts, exceptions and the graceful stop.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/framework/runtime.hpp>
#include <quiesce/framework/stream.hpp>

#include "net.hpp"
#include "wait.hpp"

using quiesce::test::Client;
using quiesce::test::RunningRuntime;
using quiesce::test::wait_until;
namespace tcp = quiesce::tcp;

namespace {

void line_echo(tcp::Stream& stream) {
    while (auto line = stream.read_until("\n", 4096)) {
        if (*line == "boom") throw std::runtime_error("fiber handler blew up on purpose");
        stream.write(*line);
        stream.write("\n");
    }
}

void byte_echo(tcp::Stream& stream) {
    while (stream.read_some() > 0) stream.write(stream.in());
}

}  // namespace

TEST_CASE("fiber connections answer line by line, each client its own lines",
          "[framework][stream]") {
    RunningRuntime server({});
    tcp::Listener& listener = server.runtime.listen_fibers("127.0.0.1:0", line_echo);
    server.start();
    std::atomic<int> exact{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            std::vector<std::unique_ptr<Client>> clients;
            for (int c = 0; c < 20; ++c)
                clients.push_back(std::make_unique<Client>(listener.address()));
            bool all = true;
            for (int round = 0; round < 5; ++round) {
                for (int c = 0; c < 20; ++c) {
                    std::string line = "client " + std::to_string(t) + "/" + std::to_string(c) +
                                       " round " + std::to_string(round) + "\n";
                    // Two lines in one send, and one split over two sends.
                    clients[c]->send(line + line.substr(0, 3));
                    clients[c]->send(line.substr(3));
                    if (clients[c]->receive(2 * line.size()) != line + line) all = false;
                }
            }
            if (all) exact += 20;
        });
    }
    for (auto& thread : threads) thread.join();
    CHECK(exact.load() == 80);
    CHECK(server.stop() == 0);
}

TEST_CASE("16 MiB through a fiber echo, with back-pressure", "[framework][stream]") {
    RunningRuntime server({});
    tcp::ListenerOptions options;
    options.connection.high_water = 64 * 1024;
    tcp::Listener& listener = server.runtime.listen_fibers("127.0.0.1:0", byte_echo, options);
    server.start();
    const std::string payload = quiesce::test::pattern(16 << 20, 5);
    std::string echoed = quiesce::test::echo_through(listener.address(), payload);
    CHECK(echoed.size() == payload.size());
    CHECK(echoed == payload);
    CHECK(server.stop() == 0);
}

TEST_CASE("a line over the limit, an idle client and a throwing handler each end one connection",
          "[framework][stream]") {
    RunningRuntime server({});
    tcp::ListenerOptions options;
    options.connection.idle_timeout = std::chrono::milliseconds(300);
    tcp::Listener& listener = server.runtime.listen_fibers("127.0.0.1:0", line_echo, options);
    server.start();
    Client too_long(listener.address());
    Client idle(listener.address());
    Client thrower(listener.address());
    Client good(listener.address());
    too_long.send(std::string(5000, 'x'));
    thrower.send("boom\n");
    good.send("still fine\n");
    CHECK(good.receive(11) == "still fine\n");
    CHECK(too_long.closed_within(5000));
    CHECK(thrower.closed_within(5000));
    CHECK(idle.closed_within(5000));
}

TEST_CASE("a graceful stop ends fiber reads with EOF and sends what they wrote",
          "[framework][stream]") {
    std::atomic<bool> saw_stop{false};
    RunningRuntime server({.grace = std::chrono::milliseconds(3000)});
    tcp::Listener& listener = server.runtime.listen_fibers("127.0.0.1:0", [&](tcp::Stream& stream) {
        while (auto line = stream.read_until("\n", 100)) stream.write(*line + "\n");
        if (stream.stopping()) {
            saw_stop = true;
            stream.write("bye\n");  // sent before the close
        }
    });
    server.start();
    Client client(listener.address());
    client.send("hello\n");
    CHECK(client.receive(6) == "hello\n");
    int stopped = -1;
    std::thread stopper([&] { stopped = server.stop(); });
    CHECK(client.receive_all() == "bye\n");
    client.close();
    stopper.join();
    CHECK(stopped == 0);
    CHECK(saw_stop.load());
}

TEST_CASE("fiber and stackless listeners share a runtime and its limit", "[framework][stream]") {
    RunningRuntime server({.max_connections = 1});
    tcp::Listener& fibers = server.runtime.listen_fibers("127.0.0.1:0", byte_echo);
    server.start();
    Client first(fibers.address());
    first.send("one");
    CHECK(first.receive(3) == "one");
    Client second(fibers.address());
    CHECK(second.closed_within(5000));
    CHECK(server.runtime.stats().connections_refused == 1);
}

TEST_CASE("post() hands a fiber connection output from other connections", "[framework][stream]") {
    // A tiny relay: "to N text" sends "text" to the N-th connection.
    std::mutex mutex;
    std::vector<std::weak_ptr<tcp::Stream>> streams;
    RunningRuntime server({});
    tcp::Listener& listener = server.runtime.listen_fibers("127.0.0.1:0", [&](tcp::Stream& stream) {
        std::size_t index = 0;
        {
            std::lock_guard lock(mutex);
            index = streams.size();
            streams.push_back(stream.shared_from_this());
        }
        stream.write("you are " + std::to_string(index) + "\n");
        while (auto line = stream.read_until("\n", 1000)) {
            std::size_t target = std::stoul(line->substr(3));
            std::string text = line->substr(line->find(' ', 3) + 1) + "\n";
            std::shared_ptr<tcp::Stream> to;
            {
                std::lock_guard lock(mutex);
                to = streams.at(target).lock();
            }
            if (to) to->post([text](tcp::Stream& s) { s.write(text); });
        }
    });
    server.start();
    Client a(listener.address());
    CHECK(a.receive_line() == "you are 0");
    Client b(listener.address());
    CHECK(b.receive_line() == "you are 1");
    // b waits in a read; a's message must wake it to send.
    for (int i = 0; i < 200; ++i) {
        a.send("to 1 hello " + std::to_string(i) + "\n");
        REQUIRE(b.receive_line() == "hello " + std::to_string(i));
    }
    b.send("to 0 back\n");
    CHECK(a.receive_line() == "back");
}
