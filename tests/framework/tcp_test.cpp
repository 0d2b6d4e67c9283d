// TCP listeners and connections in a running Runtime, driven by real client
// sockets: echo exactness with many clients, back-pressure, half-close,
// timeouts, vanishing clients, limits, exceptions, graceful stop, file
// ranges sent with sendfile.
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/framework/runtime.hpp>
#include <quiesce/scheduler/need_resched.hpp>

#include "net.hpp"
#include "wait.hpp"

using quiesce::Buffer;
using quiesce::RuntimeOptions;
using quiesce::test::Client;
using quiesce::test::pattern;
using quiesce::test::RunningRuntime;
using quiesce::test::wait_until;
namespace tcp = quiesce::tcp;

namespace {

struct Echo : tcp::Handler {
    void on_data(tcp::Connection& conn, Buffer& in) override { conn.write(in); }
};

tcp::HandlerFactory echo() {
    return [] { return std::make_unique<Echo>(); };
}

}  // namespace

TEST_CASE("every client gets exactly its own bytes back", "[framework][tcp]") {
    RunningRuntime server({});
    tcp::Listener& listener = server.runtime.listen("127.0.0.1:0", echo());
    CHECK(listener.address().port() != 0);
    server.start();
    constexpr int kThreads = 4;
    constexpr int kClientsPerThread = 25;
    std::atomic<int> exact{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            std::vector<std::unique_ptr<Client>> clients;
            for (int c = 0; c < kClientsPerThread; ++c)
                clients.push_back(std::make_unique<Client>(listener.address()));
            for (int round = 0; round < 5; ++round) {
                for (int c = 0; c < kClientsPerThread; ++c) {
                    std::string message =
                        pattern(100 + static_cast<std::size_t>(c) * 37, t * 1000 + c + round);
                    clients[c]->send(message);
                    if (clients[c]->receive(message.size()) == message && round == 4) ++exact;
                }
            }
        });
    }
    for (auto& thread : threads) thread.join();
    CHECK(exact.load() == kThreads * kClientsPerThread);
    auto stats = server.runtime.stats();
    CHECK(stats.connections_accepted == kThreads * kClientsPerThread);
    // The counters are added after each system call: the last replies may
    // have arrived before their write was counted.
    CHECK(wait_until([&] {
        auto now = server.runtime.stats();
        return now.bytes_in == now.bytes_out && now.bytes_in > 0;
    }));
    CHECK(server.stop() == 0);
}

TEST_CASE("16 MiB are echoed intact through back-pressure", "[framework][tcp]") {
    RunningRuntime server({});
    tcp::ListenerOptions options;
    options.connection.high_water = 64 * 1024;
    options.connection.low_water = 16 * 1024;
    tcp::Listener& listener = server.runtime.listen("127.0.0.1:0", echo(), options);
    server.start();
    const std::string payload = pattern(16 << 20, 3);
    // The client sends without reading first: the server's output fills, it
    // stops reading, TCP pushes back, and the sender blocks until we read.
    std::string echoed = quiesce::test::echo_through(listener.address(), payload);
    CHECK(echoed.size() == payload.size());
    CHECK(echoed == payload);
    CHECK(server.stop() == 0);
}

TEST_CASE("reads of more than 64 KiB (read_chunk) take all the kernel holds", "[framework][tcp]") {
    // A read shorter than read_chunk means "nothing more for now" to the
    // connection (edge-triggered: no new edge comes for bytes already
    // there), so a read into an empty buffer must ask for all of it.
    RunningRuntime server({});
    tcp::ListenerOptions options;
    options.connection.read_chunk = 256 * 1024;
    options.connection.max_input = 1 << 20;
    tcp::Listener& listener = server.runtime.listen("127.0.0.1:0", echo(), options);
    server.start();
    const std::string payload = pattern(8 << 20, 5);
    std::string echoed = quiesce::test::echo_through(listener.address(), payload);
    CHECK(echoed.size() == payload.size());
    CHECK(echoed == payload);
    CHECK(server.stop() == 0);
}

TEST_CASE("half-close: what was sent before FIN comes back, then EOF", "[framework][tcp]") {
    RunningRuntime server({});
    tcp::Listener& listener = server.runtime.listen("127.0.0.1:0", echo());
    server.start();
    Client client(listener.address());
    client.send("last words");
    client.shutdown_write();
    CHECK(client.receive_all() == "last words");
    REQUIRE(wait_until([&] { return server.runtime.stats().connections_open == 0; }));
}

TEST_CASE("an idle connection is closed after its timeout; an active one is not",
          "[framework][tcp]") {
    RunningRuntime server({});
    tcp::ListenerOptions options;
    options.connection.idle_timeout = std::chrono::milliseconds(300);
    tcp::Listener& listener = server.runtime.listen("127.0.0.1:0", echo(), options);
    server.start();
    Client idle(listener.address());
    Client active(listener.address());
    auto start = std::chrono::steady_clock::now();
    bool active_alive = true;
    while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(900)) {
        active.send("ping");
        if (active.receive(4) != "ping") active_alive = false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(active_alive);
    CHECK(idle.closed_within(2000));
    CHECK_FALSE(active.closed_within(0));
}

TEST_CASE("clients that vanish, reset or never send leave nothing behind", "[framework][tcp]") {
    RunningRuntime server({});
    tcp::Listener& listener = server.runtime.listen("127.0.0.1:0", echo());
    server.start();
    {
        Client silent(listener.address());
        Client reset(listener.address());
        reset.send(pattern(100'000, 1));  // unread replies in flight
        reset.reset();
        Client gone(listener.address());
        gone.send("half a requ");
    }
    REQUIRE(wait_until([&] { return server.runtime.stats().connections_open == 0; }));
    Client after(listener.address());
    after.send("still here");
    CHECK(after.receive(10) == "still here");
}

TEST_CASE("past max_connections new clients are closed at once", "[framework][tcp]") {
    RunningRuntime server({.max_connections = 2});
    tcp::Listener& listener = server.runtime.listen("127.0.0.1:0", echo());
    server.start();
    Client a(listener.address());
    Client b(listener.address());
    a.send("a");
    CHECK(a.receive(1) == "a");
    b.send("b");
    CHECK(b.receive(1) == "b");
    Client c(listener.address());
    CHECK(c.closed_within(5000));
    CHECK(server.runtime.stats().connections_refused == 1);
}

namespace {

struct Throws : tcp::Handler {
    void on_data(tcp::Connection& conn, Buffer& in) override {
        if (in.find("boom")) throw std::runtime_error("handler blew up on purpose");
        conn.write(in);
    }
};

struct Hoards : tcp::Handler {
    void on_data(tcp::Connection&, Buffer&) override {}  // never consumes
};

}  // namespace

TEST_CASE("an exception escaping a handler closes only its connection", "[framework][tcp]") {
    RunningRuntime server({});
    tcp::Listener& listener =
        server.runtime.listen("127.0.0.1:0", [] { return std::make_unique<Throws>(); });
    server.start();
    Client bad(listener.address());
    Client good(listener.address());
    bad.send("boom");
    CHECK(bad.closed_within(5000));
    good.send("fine");
    CHECK(good.receive(4) == "fine");
}

TEST_CASE("input a handler leaves unconsumed is capped", "[framework][tcp]") {
    RunningRuntime server({});
    tcp::ListenerOptions options;
    options.connection.max_input = 64 * 1024;
    tcp::Listener& listener = server.runtime.listen(
        "127.0.0.1:0", [] { return std::make_unique<Hoards>(); }, options);
    server.start();
    Client client(listener.address());
    try {
        client.send(pattern(256 * 1024, 9));
    } catch (const std::system_error&) {
        // the server closed while we sent: that is the point
    }
    CHECK(client.closed_within(5000));
}

TEST_CASE("IPv6 and Unix-domain listeners serve too", "[framework][tcp]") {
    RunningRuntime server({});
    std::string path = "/tmp/quiesce-test-" + std::to_string(::getpid()) + ".sock";
    tcp::Listener& local = server.runtime.listen("unix:" + path, echo());
    tcp::Listener* v6 = nullptr;
    try {
        v6 = &server.runtime.listen("[::1]:0", echo());
    } catch (const std::system_error& e) {
        WARN("no IPv6 loopback here: " << e.what());
    }
    server.start();
    Client unix_client(local.address());
    unix_client.send("over unix");
    CHECK(unix_client.receive(9) == "over unix");
    if (v6 != nullptr) {
        Client v6_client(v6->address());
        v6_client.send("over v6");
        CHECK(v6_client.receive(7) == "over v6");
    }
    unix_client.close();
    CHECK(server.stop() == 0);
    CHECK(::access(path.c_str(), F_OK) != 0);  // the socket file is removed
}

TEST_CASE("binding a port in use fails at listen() naming the address", "[framework][tcp]") {
    RunningRuntime server({});
    tcp::Listener& first = server.runtime.listen("127.0.0.1:0", echo());
    std::string taken = first.address().to_string();
    CHECK_THROWS_WITH(server.runtime.listen(taken, echo()), Catch::Contains(taken));
    CHECK_THROWS_AS(server.runtime.listen("127.0.0.1", echo()), std::invalid_argument);
}

TEST_CASE("ListenerOptions::loop starts every connection on that loop", "[framework][tcp]") {
    RunningRuntime server({.threads = 2});
    // Loop 0 stays busy with a pinned hog, so it never asks loop 1 for work
    // and nothing it is given moves: where a connection's events run is where
    // it was placed. Without the option, the fewest-connections rule would
    // put every other connection on loop 0.
    std::atomic<bool> stop{false};
    std::atomic<bool> hog_done{false};
    quiesce::sched::Group hog =
        server.runtime.scheduler().make_group({.name = "hog", .loop = 0, .pinned = true});
    hog.post([&] {
        while (!stop.load()) {
            if (quiesce::sched::need_resched()) return quiesce::sched::Status::kAgain;
        }
        hog_done = true;
        return quiesce::sched::Status::kDone;
    });
    struct Where : tcp::Handler {
        std::atomic<int>& off_loop_1;
        explicit Where(std::atomic<int>& counter) : off_loop_1(counter) {}
        void on_data(tcp::Connection& conn, Buffer& in) override {
            if (quiesce::sched::Scheduler::current_loop() != 1) ++off_loop_1;
            conn.write(in);
        }
    };
    std::atomic<int> off_loop_1{0};
    tcp::Listener& listener = server.runtime.listen(
        "127.0.0.1:0", [&] { return std::make_unique<Where>(off_loop_1); }, {.loop = 1});
    server.start();
    std::vector<std::unique_ptr<Client>> clients;
    for (int c = 0; c < 8; ++c) {
        clients.push_back(std::make_unique<Client>(listener.address()));
        const std::string message = pattern(64, static_cast<unsigned>(c));
        clients.back()->send(message);
        CHECK(clients.back()->receive(message.size()) == message);
    }
    stop = true;
    REQUIRE(wait_until([&] { return hog_done.load(); }));
    CHECK(off_loop_1.load() == 0);
    CHECK_THROWS_AS(server.runtime.listen("127.0.0.1:0", echo(), {.loop = 2}),
                    std::invalid_argument);
    CHECK(server.stop() == 0);
}

TEST_CASE("a graceful stop sends what was accepted, then closes", "[framework][tcp]") {
    RunningRuntime server({.grace = std::chrono::milliseconds(3000)});
    tcp::Listener& listener = server.runtime.listen("127.0.0.1:0", echo());
    tcp::Address address = listener.address();
    server.start();
    Client client(address);
    client.send("before the stop");
    CHECK(client.receive(15) == "before the stop");
    client.send("in flight");
    int stopped = -1;
    std::thread stopper([&] { stopped = server.stop(); });
    std::string rest = client.receive_all();  // the echo of what the server read, then EOF
    client.close();
    stopper.join();
    CHECK(stopped == 0);
    CHECK(std::string("in flight").rfind(rest, 0) == 0);  // a prefix: nothing reordered or invented
    CHECK_THROWS(Client(address));                        // no longer listening
}

TEST_CASE("a forced stop aborts what does not finish and returns 1", "[framework][tcp]") {
    struct Stubborn : tcp::Handler {
        void on_data(tcp::Connection&, Buffer& in) override { in.clear(); }
        void on_shutdown(tcp::Connection&) override {}  // ignores the stop
    };
    RunningRuntime server({.grace = std::chrono::milliseconds(60'000)});
    tcp::Listener& listener =
        server.runtime.listen("127.0.0.1:0", [] { return std::make_unique<Stubborn>(); });
    server.start();
    Client client(listener.address());
    client.send("x");
    REQUIRE(wait_until([&] { return server.runtime.stats().bytes_in == 1; }));
    server.runtime.stop();
    std::this_thread::sleep_for(
        std::chrono::milliseconds(100));  // the stop waits for the connection
    server.runtime.force_stop();
    CHECK(server.stop() == 1);
    CHECK(client.closed_within(5000));
}

namespace {

/// A file of `bytes` pattern bytes, unlinked; the descriptor.
int pattern_file(const std::string& bytes) {
    char name[] = "/tmp/quiesce-write-file-XXXXXX";
    const int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    ::unlink(name);
    REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    return fd;
}

/// On its first data: "head:", then `length` bytes of the file `fd` from
/// `offset` (write_file on a duplicate the handler closes at once), "tail",
/// and an orderly close. Records how its connection ended.
struct FileReply : tcp::Handler {
    int fd;
    std::uint64_t offset, length;
    std::atomic<int>* queued;
    std::atomic<int>* closed_error;
    FileReply(int f, std::uint64_t off, std::uint64_t len, std::atomic<int>* q, std::atomic<int>* e)
        : fd(f), offset(off), length(len), queued(q), closed_error(e) {}
    void on_data(tcp::Connection& conn, Buffer& in) override {
        in.clear();
        conn.write("head:");
        const int mine = ::dup(fd);
        if (conn.write_file(mine, offset, length)) ++*queued;
        ::close(mine);  // the connection keeps a duplicate of its own
        conn.write("tail");
        conn.close();
    }
    void on_close(tcp::Connection&, std::error_code error) override {
        closed_error->store(error.value());
    }
};

}  // namespace

TEST_CASE("write_file sends a file range with sendfile, in order with the bytes around it",
          "[framework][tcp]") {
    RunningRuntime server({});
    const std::string file = pattern(3 << 20, 11);
    const int fd = pattern_file(file);
    std::atomic<int> queued{0};
    std::atomic<int> closed_error{-1};
    tcp::ListenerOptions options;
    // Far past high_water: a range costs no memory while it waits.
    options.connection.high_water = 64 * 1024;
    options.connection.low_water = 16 * 1024;
    tcp::Listener& listener = server.runtime.listen(
        "127.0.0.1:0",
        [&] { return std::make_unique<FileReply>(fd, 12345, 2'000'000, &queued, &closed_error); },
        options);
    server.start();
    for (int i = 0; i < 3; ++i) {
        Client client(listener.address());
        client.send("go");
        const std::string got = client.receive_all();
        CHECK(got.size() == 5 + 2'000'000 + 4);
        CHECK(got == "head:" + file.substr(12345, 2'000'000) + "tail");
    }
    CHECK(queued.load() == 3);
    CHECK(wait_until([&] { return server.runtime.stats().connections_open == 0; }));
    CHECK(closed_error.load() == 0);
    CHECK(server.stop() == 0);
    ::close(fd);
}

TEST_CASE("write_file of a file shorter than the range aborts the connection at once",
          "[framework][tcp]") {
    RunningRuntime server({});
    const std::string file = pattern(100'000, 12);
    const int fd = pattern_file(file);
    std::atomic<int> queued{0};
    std::atomic<int> closed_error{-1};
    tcp::ListenerOptions options;
    // Long enough that only the abort can end the connection in time: a
    // send stalled at the end of the file would wait for this.
    options.connection.close_timeout = std::chrono::seconds(60);
    tcp::Listener& listener = server.runtime.listen(
        "127.0.0.1:0",
        [&] { return std::make_unique<FileReply>(fd, 0, 1 << 20, &queued, &closed_error); },
        options);
    server.start();
    Client client(listener.address());
    client.send("go");
    const auto started = std::chrono::steady_clock::now();
    const std::string got = client.receive_all();  // EOF or reset, not the 20 s timeout
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
    CHECK(got.size() <= 5 + file.size());
    CHECK(got.compare(0, 5, "head:") == 0);
    CHECK(got.find("tail") == std::string::npos);
    CHECK(queued.load() == 1);
    REQUIRE(wait_until([&] { return closed_error.load() != -1; }));
    CHECK(closed_error.load() == static_cast<int>(std::errc::io_error));
    CHECK(server.stop() == 0);
    ::close(fd);
}
