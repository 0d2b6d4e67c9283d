// HTTP/1.1 over real sockets: framing, keep-alive, pipelining, limits,
// timeouts, late and streamed replies, and the admin endpoint.
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <quiesce/framework/admin.hpp>
#include <quiesce/framework/http.hpp>

#include "net.hpp"
#include "wait.hpp"

using quiesce::test::Client;
using quiesce::test::RunningRuntime;
namespace http = quiesce::http;

namespace {

struct Reply {
    int status = 0;
    std::string head;  // status line and headers
    std::string body;
    bool ok = false;  // a whole reply arrived
    [[nodiscard]] std::string header(const std::string& name) const {
        auto at = head.find("\r\n" + name + ": ");
        if (at == std::string::npos) return {};
        at += name.size() + 4;
        return head.substr(at, head.find("\r\n", at) - at);
    }
};

/// One line without its CRLF.
std::string line_of(Client& client) {
    std::string line = client.receive_line();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

/// Reads one reply: the head, then Content-Length bytes (none for HEAD).
Reply read_reply(Client& client, bool head_only = false) {
    Reply reply;
    std::string line = line_of(client);
    if (line.size() < 12 || line.rfind("HTTP/1.1 ", 0) != 0) return reply;
    reply.status = std::stoi(line.substr(9, 3));
    reply.head = line + "\r\n";
    for (;;) {
        line = line_of(client);
        if (line.empty()) {
            if (client.eof()) return reply;
            break;
        }
        reply.head += line + "\r\n";
    }
    const std::string length = reply.header("Content-Length");
    if (length.empty() || head_only) {
        reply.ok = true;
        return reply;
    }
    const std::size_t size = std::stoul(length);
    reply.body = client.receive(size);
    reply.ok = reply.body.size() == size;
    return reply;
}

Reply get(Client& client, const std::string& target, const std::string& extra = "") {
    client.send("GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n");
    return read_reply(client);
}

/// Replies after giving way `left` times (a later event each time).
void later(http::Responder& responder, int left) {
    if (left == 0) {
        responder.send(http::Response::text(200, "later\n"));
        return;
    }
    std::move(responder).defer([left](http::Responder& next) { later(next, left - 1); });
}

std::shared_ptr<http::Router> test_router() {
    auto router = std::make_shared<http::Router>();
    router->get("/", [](http::Responder r) { r.send(http::Response::text(200, "hello\n")); });
    router->get("/path", [](http::Responder r) {
        r.send(http::Response::text(200, std::string(r.request().path())));
    });
    router->add({"POST"}, "/echo", [](http::Responder r) {
        r.send(http::Response::text(200, std::string(r.request().body())));
    });
    router->get("/query", [](http::Responder r) {
        r.send(http::Response::text(200, r.request().query_param("name").value_or("(none)")));
    });
    // Replies after giving way three times (a later event each time).
    router->get("/later", [](http::Responder r) { later(r, 3); });
    // A 4 MiB body in 256 KiB pieces, each after the output drained.
    router->get("/stream", [](http::Responder r) {
        constexpr std::size_t kPiece = 256 * 1024;
        constexpr int kPieces = 16;
        auto responder = std::make_shared<http::Responder>(std::move(r));
        responder->start(http::Response{}, kPiece * kPieces);
        auto next = std::make_shared<std::function<void(int)>>();
        *next = [responder, next](int i) {
            if (i == kPieces) {
                responder->finish();
                *next = nullptr;  // break the cycle
                return;
            }
            responder->write(std::string(kPiece, static_cast<char>('a' + i)));
            responder->when_drained([next, i] { (*next)(i + 1); });
        };
        (*next)(0);
    });
    // Replies 500 ms later, from a timer of the connection's group.
    router->get("/slow", [](http::Responder r) {
        auto holder = std::make_shared<http::Responder>(std::move(r));
        (void)holder->group().after(std::chrono::milliseconds(500), [holder] {
            holder->send(http::Response::text(200, "slow\n"));
        });
    });
    router->get("/throw", [](http::Responder) { throw std::runtime_error("handler failed"); });
    router->get("/drop", [](http::Responder) {});
    return router;
}

struct Server {
    explicit Server(http::ServerOptions options = {}, quiesce::RuntimeOptions runtime = {})
        : running(std::move(runtime)),
          listener(&http::listen(running.runtime, "127.0.0.1:0", test_router(), options)) {
        running.start();
    }
    RunningRuntime running;
    quiesce::tcp::Listener* listener;
    [[nodiscard]] const quiesce::tcp::Address& address() const { return listener->address(); }
};

}  // namespace

TEST_CASE("http helpers: dates, percent-decoding, reasons", "[framework][http]") {
    CHECK(http::http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(http::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777);
    CHECK_FALSE(http::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"));
    CHECK_FALSE(http::parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"));
    CHECK(http::percent_decode("/a%20b/%2e%2E") == "/a b/..");
    CHECK_FALSE(http::percent_decode("/a%2"));
    CHECK_FALSE(http::percent_decode("/a%zz"));
    CHECK_FALSE(http::percent_decode("/a%00b"));
    CHECK(http::reason(431) == "Request Header Fields Too Large");

    bool unsatisfiable = false;
    auto range = http::parse_byte_range("bytes=0-4", 10, unsatisfiable);
    REQUIRE(range);
    CHECK((range->first == 0 && range->last == 4));
    range = http::parse_byte_range("bytes=5-", 10, unsatisfiable);
    CHECK((range && range->first == 5 && range->last == 9));
    range = http::parse_byte_range("bytes=-3", 10, unsatisfiable);
    CHECK((range && range->first == 7 && range->last == 9));
    range = http::parse_byte_range("bytes=2-100", 10, unsatisfiable);
    CHECK((range && range->first == 2 && range->last == 9));
    CHECK_FALSE(http::parse_byte_range("bytes=10-", 10, unsatisfiable));
    CHECK(unsatisfiable);
    CHECK_FALSE(http::parse_byte_range("bytes=-0", 10, unsatisfiable));
    CHECK(unsatisfiable);
    for (const char* ignored :
         {"bytes=3-1", "bytes=0-1,3-4", "items=0-1", "bytes=x-2", "bytes=1"}) {
        CHECK_FALSE(http::parse_byte_range(ignored, 10, unsatisfiable));
        CHECK_FALSE(unsatisfiable);
    }

    // Several ranges: in the order asked, those past the end dropped.
    auto ranges = http::parse_byte_ranges("bytes=0-1, 5-,-2,20-30", 10, unsatisfiable);
    REQUIRE(ranges.size() == 3);
    CHECK((ranges[0].first == 0 && ranges[0].last == 1));
    CHECK((ranges[1].first == 5 && ranges[1].last == 9));
    CHECK((ranges[2].first == 8 && ranges[2].last == 9));
    CHECK_FALSE(unsatisfiable);
    CHECK(http::parse_byte_ranges("bytes=10-,20-", 10, unsatisfiable).empty());
    CHECK(unsatisfiable);
    CHECK(http::parse_byte_ranges("bytes=0-1,x", 10, unsatisfiable).empty());  // malformed
    CHECK_FALSE(unsatisfiable);
    CHECK(http::parse_byte_ranges("bytes=0-0,1-1,2-2", 10, unsatisfiable, 2).empty());  // too many
    CHECK_FALSE(unsatisfiable);
    CHECK(http::parse_byte_ranges("bytes=0-0,1-1", 10, unsatisfiable, 2).size() == 2);

    CHECK(http::etag_listed("\"a\", \"b-1\"", "\"b-1\"", false));
    CHECK(http::etag_listed(" * ", "\"b-1\"", false));
    CHECK(http::etag_listed("W/\"b-1\"", "\"b-1\"", true));
    CHECK_FALSE(http::etag_listed("W/\"b-1\"", "\"b-1\"", false));  // strong: weak never matches
    CHECK_FALSE(http::etag_listed("\"a\",\"c\"", "\"b-1\"", true));
}

TEST_CASE("http: GET, HEAD, keep-alive and the server's headers", "[framework][http]") {
    Server server;
    Client client(server.address());
    Reply reply = get(client, "/");
    REQUIRE(reply.ok);
    CHECK(reply.status == 200);
    CHECK(reply.body == "hello\n");
    CHECK(reply.header("Server") == "quiesce");
    CHECK(reply.header("Date").size() == 29);  // IMF-fixdate
    CHECK(reply.header("Content-Length") == "6");
    CHECK(reply.header("Connection").empty());

    client.send("HEAD / HTTP/1.1\r\nHost: test\r\n\r\n");
    Reply head = read_reply(client, true);
    REQUIRE(head.ok);
    CHECK(head.header("Content-Length") == "6");
    // No body followed the HEAD reply: the next reply starts right after.
    reply = get(client, "/path");
    CHECK(reply.body == "/path");

    reply = get(client, "/nowhere");
    CHECK(reply.status == 404);
    client.send("DELETE / HTTP/1.1\r\nHost: test\r\n\r\n");
    reply = read_reply(client);
    CHECK(reply.status == 405);
    CHECK(reply.header("Allow") == "GET, HEAD");
    CHECK(get(client, "/query?x=1&name=a%20b+c").body == "a b c");
    CHECK(get(client, "/a%00b").status == 400);  // an encoded NUL never reaches a handler
}

TEST_CASE("http: HTTP/1.0 closes unless it asks for keep-alive", "[framework][http]") {
    Server server;
    {
        Client client(server.address());
        client.send("GET / HTTP/1.0\r\n\r\n");
        Reply reply = read_reply(client);
        CHECK(reply.status == 200);
        CHECK(reply.header("Connection") == "close");
        CHECK(client.closed_within(2000));
    }
    {
        Client client(server.address());
        client.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        Reply reply = read_reply(client);
        CHECK(reply.header("Connection") == "keep-alive");
        client.send("GET /path HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        CHECK(read_reply(client).body == "/path");
    }
    {
        Client client(server.address());
        Reply reply = get(client, "/", "Connection: close\r\n");
        CHECK(reply.header("Connection") == "close");
        CHECK(client.closed_within(2000));
    }
}

TEST_CASE("http: pipelined requests are answered in order, late replies included",
          "[framework][http]") {
    Server server;
    Client client(server.address());
    std::string batch;
    for (int i = 0; i < 200; ++i) {
        batch += "GET " + std::string(i % 10 == 3 ? "/later" : "/path?" + std::to_string(i)) +
                 " HTTP/1.1\r\nHost: test\r\n\r\n";
    }
    client.send(batch);
    for (int i = 0; i < 200; ++i) {
        Reply reply = read_reply(client);
        REQUIRE(reply.ok);
        CHECK(reply.body == (i % 10 == 3 ? "later\n" : "/path"));
    }
}

TEST_CASE("http: a client that pipelines without reading is held back, then served",
          "[framework][http]") {
    Server server;
    Client client(server.address());
    // 10,000 requests; the replies (~1.3 MB) exceed the high-water mark, so
    // the server stops reading until this client reads.
    std::string request = "GET /path HTTP/1.1\r\nHost: test\r\n\r\n";
    std::thread sender([&] {
        std::string batch;
        for (int i = 0; i < 1000; ++i) batch += request;
        for (int i = 0; i < 10; ++i) client.send(batch);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    int replies = 0;
    for (; replies < 10000; ++replies) {
        Reply reply = read_reply(client);
        if (!reply.ok || reply.body != "/path") break;
    }
    sender.join();
    CHECK(replies == 10000);
}

TEST_CASE("http: request bodies, chunked and with 100-continue", "[framework][http]") {
    Server server;
    Client client(server.address());
    client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    CHECK(read_reply(client).body == "hello");
    client.send(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
    CHECK(read_reply(client).body == "abcdefg");
    client.send(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    CHECK(line_of(client) == "HTTP/1.1 100 Continue");
    CHECK(line_of(client).empty());
    client.send("body");
    CHECK(read_reply(client).body == "body");
}

TEST_CASE("http: framing attacks and limits get their status and a close", "[framework][http]") {
    http::ServerOptions options;
    options.max_header_bytes = 2048;
    options.max_target = 512;
    options.max_body = 1024;
    Server server(options);
    auto refused = [&](const std::string& request) {
        Client client(server.address());
        client.send(request);
        Reply reply = read_reply(client);
        const bool closed = client.closed_within(2000);
        CHECK(closed);
        return reply.status;
    };
    CHECK(refused("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: "
                  "chunked\r\n\r\n0\r\n\r\n") == 400);
    CHECK(refused("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: "
                  "4\r\n\r\nabcd") == 400);
    CHECK(refused("GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(4000, 'x') + "\r\n\r\n") == 431);
    CHECK(refused("GET /" + std::string(1000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n") == 414);
    CHECK(refused("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n") == 413);
    CHECK(refused("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  std::string("800\r\n") + std::string(2048, 'z') + "\r\n") == 413);
    CHECK(refused("GARBAGE\r\n\r\n") == 400);
    CHECK(refused("GET / HTTP/1.1\r\nBad Header\r\n\r\n") == 400);
    CHECK(refused("GET / HTTP/2.0\r\nHost: t\r\n\r\n") == 505);
    // The server still serves.
    Client client(server.address());
    CHECK(get(client, "/").status == 200);
}

TEST_CASE("http: a request head that dribbles in is cut off", "[framework][http]") {
    http::ServerOptions options;
    options.header_timeout = std::chrono::milliseconds(300);
    Server server(options);
    Client client(server.address());
    client.send("GET / HTTP/1.1\r\nHost: t\r\n");
    const auto start = std::chrono::steady_clock::now();
    Reply reply = read_reply(client);
    CHECK(reply.status == 408);
    CHECK(client.closed_within(2000));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    // A whole request is not subject to it, however slowly the next comes.
    Client patient(server.address());
    CHECK(get(patient, "/").status == 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK(get(patient, "/").status == 200);
    // A head that never completes behind a slow reply (pipelined) waits
    // unparsed until that reply is sent; then its timer runs.
    Client pipelined(server.address());
    pipelined.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n");
    CHECK(read_reply(pipelined).body == "slow\n");
    CHECK(read_reply(pipelined).status == 408);
    CHECK(pipelined.closed_within(2000));
}

TEST_CASE("http: streamed bodies wait for the output to drain", "[framework][http]") {
    Server server;
    Client client(server.address());
    client.send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the output fill up
    Reply reply = read_reply(client);
    REQUIRE(reply.ok);
    REQUIRE(reply.body.size() == 16u * 256 * 1024);
    for (int i = 0; i < 16; ++i)
        CHECK(reply.body[static_cast<std::size_t>(i) * 256 * 1024] == static_cast<char>('a' + i));
    CHECK(get(client, "/").status == 200);  // the connection goes on
}

TEST_CASE("http: a handler that throws or drops its responder gets 500", "[framework][http]") {
    Server server;
    {
        Client client(server.address());
        CHECK(get(client, "/throw").status == 500);
        CHECK(client.closed_within(2000));
    }
    {
        Client client(server.address());
        CHECK(get(client, "/drop").status == 500);
    }
}

TEST_CASE("the admin endpoint serves the dashboard and the statistics", "[framework][http]") {
    quiesce::RuntimeOptions options;
    options.admin = "127.0.0.1:0";
    options.name = "admin-test";
    RunningRuntime running(options);
    running.start();
    REQUIRE(running.runtime.admin() != nullptr);
    Client client(running.runtime.admin()->address());
    Reply page = get(client, "/dashboard");
    CHECK(page.status == 200);
    CHECK(page.header("Content-Type") == "text/html; charset=utf-8");
    CHECK(page.body.find("fetch(\"stats\"") != std::string::npos);
    CHECK(page.body.find("http://") == std::string::npos);  // loads nothing from elsewhere
    CHECK(page.body.find("https://") == std::string::npos);

    Reply stats = get(client, "/stats");
    REQUIRE(stats.status == 200);
    auto json = nlohmann::json::parse(stats.body);
    CHECK(json["name"] == "admin-test");
    CHECK(json["loops"].size() == 2);
    CHECK(json["loops"][0].contains("queued"));
    CHECK(json["loops"][0].contains("running_ms"));
    CHECK(json["rcu"]["grace_period_histogram"].size() == 16);
    CHECK(json["stalls"]["recent"].is_array());
    CHECK(json["connections"]["open"].get<int>() >= 1);  // this one

    Reply metrics = get(client, "/metrics");
    CHECK(metrics.status == 200);
    CHECK(metrics.body.find("quiesce_rcu_grace_period_seconds_bucket{le=\"+Inf\"}") !=
          std::string::npos);
    CHECK(get(client, "/dump").body.find("loop 0") != std::string::npos);
    Reply root = get(client, "/");
    CHECK(root.status == 302);
    CHECK(root.header("Location") == "/dashboard");
}
