// Buffer over evbuffer, and Address parsing.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include <quiesce/framework/address.hpp>
#include <quiesce/framework/buffer.hpp>

using quiesce::Buffer;
using quiesce::tcp::Address;

TEST_CASE("a buffer appends, finds, peeks, takes and drains", "[framework][buffer]") {
    Buffer buffer;
    CHECK(buffer.empty());
    buffer.append("get key1\r\n");
    buffer.append(std::string("set k 0 0 1\r\nx\r\n"));
    CHECK(buffer.size() == 26);
    REQUIRE(buffer.find("\r\n") == 8u);
    CHECK(buffer.find("\r\n", 9) == 21u);
    CHECK(buffer.find("nothing") == std::nullopt);
    CHECK(buffer.find("\r\n", 100) == std::nullopt);
    CHECK(buffer.peek(3) == "get");
    CHECK(buffer.size() == 26);
    CHECK(buffer.take(8) == "get key1");
    buffer.drain(2);
    CHECK(buffer.contiguous(5) == "set k");
    char out[4] = {};
    CHECK(buffer.copy_out(2, out, 3) == 3);
    CHECK(std::string(out, 3) == "t k");
    CHECK(buffer.copy_out(100, out, 3) == 0);
    CHECK(buffer.take(1000) == "set k 0 0 1\r\nx\r\n");
    CHECK(buffer.empty());
}

TEST_CASE("appending a buffer moves its bytes", "[framework][buffer]") {
    Buffer a;
    Buffer b;
    a.append("head-");
    std::string big(200'000, 'z');
    b.append(big);
    a.append(b);
    CHECK(b.empty());
    CHECK(a.size() == 5 + big.size());
    CHECK(a.take(5) == "head-");
    CHECK(a.take(a.size()) == big);
    Buffer moved(std::move(a));
    CHECK(moved.empty());
}

TEST_CASE("a delimiter split across blocks is found", "[framework][buffer]") {
    Buffer a;
    Buffer b;
    a.append(std::string(4095, 'a') + "\r");
    b.append("\nrest");
    a.append(b);
    CHECK(a.find("\r\n") == 4095u);
}

TEST_CASE("find searches the first block in place and the rest past it", "[framework][buffer]") {
    Buffer a;
    Buffer b;
    // Two blocks: "x\r" almost matches at the end of the first, and the
    // needle only matches whole across the boundary or in the second.
    a.append("GET x\ry END\r");
    b.append("\nEND\r\n tail \r\n");
    a.append(b);
    CHECK(a.find("\r\n") == 11u);      // straddles the two blocks
    CHECK(a.find("END\r\n") == 8u);    // starts in the first, ends in the second
    CHECK(a.find("\r") == 5u);         // inside the first block
    CHECK(a.find("\r", 6) == 11u);     // from inside the first block
    CHECK(a.find("\r\n", 12) == 16u);  // only in the second block
    CHECK(a.find("\r\n", 17) == 24u);  // from inside the second block
    CHECK(a.find("tail") == 19u);
    CHECK(a.find("x\ry END") == 4u);
    CHECK(a.find("absent") == std::nullopt);
    CHECK(a.find("\r\n", 25) == std::nullopt);
}

TEST_CASE("addresses parse as users write them", "[framework][address]") {
    Address v4 = Address::parse("127.0.0.1:8080");
    CHECK(v4.family() == AF_INET);
    CHECK(v4.port() == 8080);
    CHECK(v4.to_string() == "127.0.0.1:8080");
    Address any = Address::parse(":0");
    CHECK(any.to_string() == "0.0.0.0:0");
    Address v6 = Address::parse("[::1]:11211");
    CHECK(v6.family() == AF_INET6);
    CHECK(v6.to_string() == "[::1]:11211");
    Address local = Address::parse("unix:/tmp/q.sock");
    CHECK(local.is_unix());
    CHECK(local.to_string() == "unix:/tmp/q.sock");
    CHECK(Address::parse("localhost:1").port() == 1);
}

TEST_CASE("bad addresses are refused with a message naming them", "[framework][address]") {
    CHECK_THROWS_WITH(Address::parse("127.0.0.1"),
                      Catch::Contains("127.0.0.1") && Catch::Contains("no port"));
    CHECK_THROWS_WITH(Address::parse("127.0.0.1:99999"), Catch::Contains("0 to 65535"));
    CHECK_THROWS_WITH(Address::parse("127.0.0.1:http"), Catch::Contains("not a number"));
    CHECK_THROWS_WITH(Address::parse("::1:80"), Catch::Contains("brackets"));
    CHECK_THROWS_WITH(Address::parse("[::1:80"), Catch::Contains("']'"));
    CHECK_THROWS_WITH(Address::parse("unix:"), Catch::Contains("empty"));
    CHECK_THROWS_WITH(Address::parse("unix:/" + std::string(200, 'x')), Catch::Contains("longer"));
    CHECK_THROWS_AS(Address::parse("no.such.host.invalid:80"), std::invalid_argument);
}
