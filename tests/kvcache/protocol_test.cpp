// The text and meta protocol of kvcache, command by command, with the
// replies memcached 1.6 gives (the differential test checks the same
// against a running memcached; these run without one).
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "harness.hpp"

using kvcache::Session;
using kvcache::test::Harness;

TEST_CASE("storage commands and their replies", "[kvcache][unit]") {
    Harness h;
    CHECK(h.send("set a 5 0 3\r\nabc\r\n") == "STORED\r\n");
    CHECK(h.send("get a\r\n") == "VALUE a 5 3\r\nabc\r\nEND\r\n");
    CHECK(h.send("add a 0 0 1\r\nx\r\n") == "NOT_STORED\r\n");
    CHECK(h.send("add b 0 0 1\r\nx\r\n") == "STORED\r\n");
    CHECK(h.send("replace c 0 0 1\r\nx\r\n") == "NOT_STORED\r\n");
    CHECK(h.send("append a 0 0 2\r\nde\r\nprepend a 0 0 1\r\nZ\r\n") == "STORED\r\nSTORED\r\n");
    CHECK(h.send("get a\r\n") == "VALUE a 5 6\r\nZabcde\r\nEND\r\n");  // old flags kept
    CHECK(h.send("gets b\r\n") == "VALUE b 0 1 2\r\nx\r\nEND\r\n");
    CHECK(h.send("cas b 0 0 1 2\r\ny\r\n") == "STORED\r\n");
    CHECK(h.send("cas b 0 0 1 2\r\nz\r\n") == "EXISTS\r\n");
    CHECK(h.send("cas nob 0 0 1 2\r\nz\r\n") == "NOT_FOUND\r\n");
    CHECK(h.send("get a b nob\r\n") == "VALUE a 5 6\r\nZabcde\r\nVALUE b 0 1\r\ny\r\nEND\r\n");
    CHECK(h.send("set n 0 0 1 noreply\r\n1\r\n") == "");
    CHECK(h.send("delete b\r\ndelete b\r\n") == "DELETED\r\nNOT_FOUND\r\n");
}

TEST_CASE("a command split across reads waits for the rest", "[kvcache][unit]") {
    Harness h;
    CHECK(h.send("se") == "");
    CHECK(h.send("t k 0 0 5\r\nab") == "");
    CHECK(h.send("cde") == "");
    CHECK(h.send("\r") == "");
    CHECK(h.send("\nget k\r\n") == "STORED\r\nVALUE k 0 5\r\nabcde\r\nEND\r\n");
}

TEST_CASE("incr and decr as memcached does them", "[kvcache][unit]") {
    Harness h;
    h.send("set n 0 0 2\r\n10\r\n");
    CHECK(h.send("incr n 5\r\n") == "15\r\n");
    CHECK(h.send("decr n 6\r\n") == "9\r\n");
    CHECK(h.send("get n\r\n") == "VALUE n 0 2\r\n9 \r\nEND\r\n");  // padded, as memcached
    CHECK(h.send("decr n 100\r\n") == "0\r\n");
    CHECK(h.send("incr n 18446744073709551615\r\nincr n 1\r\n") == "18446744073709551615\r\n0\r\n");
    CHECK(h.send("incr none 1\r\n") == "NOT_FOUND\r\n");
    CHECK(h.send("incr n x\r\n") == "CLIENT_ERROR invalid numeric delta argument\r\n");
    h.send("set s 0 0 1\r\nx\r\n");
    CHECK(h.send("incr s 1\r\n") ==
          "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
}

TEST_CASE("bad input gets memcached's errors and the connection goes on", "[kvcache][unit]") {
    Harness h;
    CHECK(h.send("bogus\r\n") == "ERROR\r\n");
    CHECK(h.send("\r\n") == "ERROR\r\n");
    CHECK(h.send("set a 0 0\r\n") == "ERROR\r\n");
    CHECK(h.send("set a x 0 1\r\n") == "CLIENT_ERROR bad command line format\r\n");
    CHECK(h.send("set a 0 0 -1\r\n") == "CLIENT_ERROR bad command line format\r\n");
    const std::string long_key(251, 'k');
    CHECK(h.send("get " + long_key + "\r\n") == "CLIENT_ERROR bad command line format\r\n");
    CHECK(h.send("set a 0 0 3\r\nabcd\r\n") == "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    CHECK(h.send("delete a 5\r\n") ==
          "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
    CHECK(h.send("touch a x\r\n") == "CLIENT_ERROR invalid exptime argument\r\n");
    CHECK(h.send("shutdown\r\n") == "ERROR: shutdown not enabled\r\n");
    CHECK(h.status == Session::Status::kOpen);
}

TEST_CASE("too large: the data is swallowed and the old value removed", "[kvcache][unit]") {
    Harness h({.memory_limit = 8u << 20, .item_max = 1024});
    h.send("set a 0 0 1\r\nx\r\n");
    const std::string big(2000, 'v');
    CHECK(h.send("set a 0 0 2000\r\n" + big + "\r\nget a\r\n") ==
          "SERVER_ERROR object too large for cache\r\nEND\r\n");
    // Swallowing works across reads too.
    CHECK(h.send("set a 0 0 2000\r\n" + big.substr(0, 500)) ==
          "SERVER_ERROR object too large for cache\r\n");
    CHECK(h.send(big.substr(500) + "\r\nget a\r\n") == "END\r\n");
}

TEST_CASE("lines that close the connection", "[kvcache][unit]") {
    SECTION("an HTTP request") {
        Harness h;
        CHECK(h.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == "");
        CHECK(h.status == Session::Status::kClose);
    }
    SECTION("over 2048 bytes without a newline, not a get") {
        Harness h;
        CHECK(h.send(std::string(3000, 'x')) == "");
        CHECK(h.status == Session::Status::kClose);
    }
    SECTION("a long get line is waited for") {
        Harness h;
        std::string line = "get";
        for (int i = 0; i < 500; ++i) line += " k" + std::to_string(i);
        CHECK(h.send(line) == "");
        CHECK(h.status == Session::Status::kOpen);
        CHECK(h.send("\r\n") == "END\r\n");
    }
    SECTION("quit") {
        Harness h;
        CHECK(h.send("set a 0 0 1\r\nx\r\nquit\r\nget a\r\n") == "STORED\r\n");
        CHECK(h.status == Session::Status::kClose);
    }
}

TEST_CASE("expiry follows memcached's time rules", "[kvcache][unit]") {
    Harness h;
    h.send("set rel 0 10 1\r\nx\r\nset abs 0 " + std::to_string(h.now + 20) +
           " 1\r\ny\r\nset past 0 -1 1\r\nz\r\nset never 0 0 1\r\nw\r\n");
    CHECK(h.send("get past\r\n") == "END\r\n");
    CHECK(h.send("get rel abs never\r\n") ==
          "VALUE rel 0 1\r\nx\r\nVALUE abs 0 1\r\ny\r\nVALUE never 0 1\r\nw\r\nEND\r\n");
    h.now += 10;
    CHECK(h.send("get rel abs\r\n") == "VALUE abs 0 1\r\ny\r\nEND\r\n");
    h.now += 10;
    CHECK(h.send("get abs never\r\n") == "VALUE never 0 1\r\nw\r\nEND\r\n");
    CHECK(h.store.totals().get_expired == 3);  // past, rel, abs
    // touch and gat move the expiry.
    h.send("set t 0 5 1\r\nx\r\n");
    CHECK(h.send("touch t 100\r\n") == "TOUCHED\r\n");
    h.now += 50;
    CHECK(h.send("gat 10 t\r\n") == "VALUE t 0 1\r\nx\r\nEND\r\n");
    h.now += 11;
    CHECK(h.send("get t\r\n") == "END\r\n");
}

TEST_CASE("expired items are reclaimed by the crawler without a read", "[kvcache][unit]") {
    Harness h;
    for (int i = 0; i < 100; ++i) h.send("set k" + std::to_string(i) + " 0 5 1\r\nx\r\n");
    h.send("set keep 0 0 1\r\nx\r\n");
    CHECK(h.store.size() == 101);
    h.now += 6;
    {
        quiesce::rcu::ReadLock lock;
        for (int i = 0; i < 10 && h.store.size() > 1; ++i) h.store.crawl(1 << 16);
    }
    CHECK(h.store.size() == 1);
    CHECK(h.store.totals().expired_unfetched == 100);
    CHECK(h.send("get keep\r\n") == "VALUE keep 0 1\r\nx\r\nEND\r\n");
}

TEST_CASE("flush_all, now and delayed", "[kvcache][unit]") {
    Harness h;
    h.send("set a 0 0 1\r\nx\r\n");
    CHECK(h.send("flush_all\r\nget a\r\n") == "OK\r\nEND\r\n");
    CHECK(h.send("set a 0 0 1\r\ny\r\nget a\r\n") == "STORED\r\nVALUE a 0 1\r\ny\r\nEND\r\n");
    CHECK(h.send("flush_all 10\r\nget a\r\n") == "OK\r\nVALUE a 0 1\r\ny\r\nEND\r\n");
    h.now += 10;
    CHECK(h.send("get a\r\n") == "END\r\n");
    h.now += 1;
    CHECK(h.send("set b 0 0 1\r\nz\r\nget b\r\n") == "STORED\r\nVALUE b 0 1\r\nz\r\nEND\r\n");
}

TEST_CASE("the memory limit evicts, inactive items first", "[kvcache][unit]") {
    Harness h({.memory_limit = 256 * 1024, .item_max = 8 * 1024});
    const std::string value(1000, 'v');
    h.send("set hot 0 0 1000\r\n" + value + "\r\n");
    for (int i = 0; i < 2000; ++i) {
        REQUIRE(h.send("set k" + std::to_string(i) + " 0 0 1000\r\n" + value + "\r\n") ==
                "STORED\r\n");
        REQUIRE(h.send("get hot\r\n").starts_with("VALUE hot"));  // read: kept by CLOCK
        REQUIRE(h.store.bytes() <= 256 * 1024);
    }
    const auto totals = h.store.totals();
    CHECK(totals.evictions > 1500);
    CHECK(totals.curr_items < 260);
    CHECK(h.send("get k1999\r\n").starts_with("VALUE k1999"));
}

TEST_CASE("cache_memlimit changes the limit; a lower one is reached by evicting",
          "[kvcache][unit]") {
    Harness h({.memory_limit = 64u << 20, .item_max = 8 * 1024});
    const std::string value(1000, 'v');
    for (int i = 0; i < 20000; ++i)
        REQUIRE(h.send("set k" + std::to_string(i) + " 0 0 1000\r\n" + value + "\r\n") ==
                "STORED\r\n");
    REQUIRE(h.store.bytes() > (16u << 20));
    CHECK(h.send("cache_memlimit 7\r\n") ==
          "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n");
    CHECK(h.store.memory_limit() == (64u << 20));
    CHECK(h.send("cache_memlimit 16\r\n") == "OK\r\n");
    CHECK(h.store.memory_limit() == (16u << 20));
    CHECK(h.send("stats settings\r\n").find("STAT maxbytes 16777216\r\n") != std::string::npos);
    CHECK(h.send("stats\r\n").find("STAT limit_maxbytes 16777216\r\n") != std::string::npos);
    // The crawler evicts a window of buckets per pass until under it.
    for (int pass = 0; pass < 1000 && h.store.bytes() > (16u << 20); ++pass) h.store.crawl(4096);
    CHECK(h.store.bytes() <= (16u << 20));
    CHECK(h.store.totals().evictions > 0);
    // Stores go on under the new limit.
    CHECK(h.send("set new 0 0 1000\r\n" + value + "\r\n") == "STORED\r\n");
    CHECK(h.store.bytes() <= (16u << 20));
}

TEST_CASE("a pipelined burst stops at the output budget and resumes", "[kvcache][unit]") {
    Harness h;
    h.send("set v 0 0 1000\r\n" + std::string(1000, 'v') + "\r\n");
    std::string burst;
    for (int i = 0; i < 1000; ++i) burst += "get v\r\n";
    std::string out = h.send(burst, 64 * 1024);
    CHECK(h.session->stopped_early());
    CHECK(out.size() < 70 * 1024);
    std::size_t replies = 0;
    for (int rounds = 0; rounds < 100; ++rounds) {
        for (std::size_t at = out.find("END\r\n"); at != std::string::npos;
             at = out.find("END\r\n", at + 1))
            ++replies;
        if (!h.session->stopped_early()) break;
        out = h.send("", 64 * 1024);
    }
    CHECK(replies == 1000);
}

TEST_CASE("meta commands", "[kvcache][unit]") {
    Harness h;
    CHECK(h.send("ms a 2 T100 F5 c k O1\r\nhi\r\n") == "HD c1 ka O1\r\n");
    CHECK(h.send("mg a v f t c s k\r\n") == "VA 2 f5 t100 c1 s2 ka\r\nhi\r\n");
    CHECK(h.send("mg a\r\n") == "HD\r\n");
    CHECK(h.send("mg none v\r\nmg none v q\r\nmn\r\n") == "EN\r\nMN\r\n");
    CHECK(h.send("ms a 1 MA\r\n!\r\nmg a v\r\n") == "HD\r\nVA 3\r\nhi!\r\n");
    CHECK(h.send("ms a 1 C99\r\nx\r\n") == "EX\r\n");
    CHECK(h.send("ms a 1 q\r\nx\r\nmn\r\n") == "MN\r\n");
    CHECK(h.send("md a q\r\nmd a\r\n") == "NF\r\n");
    CHECK(h.send("ma n N0 J5 v\r\nma n D3 v\r\nma n MD v\r\n") ==
          "VA 1\r\n5\r\nVA 1\r\n8\r\nVA 1\r\n7\r\n");
    CHECK(h.send("mg z N30 v c\r\nmg z v c\r\n") == "VA 0 c7 W\r\n\r\nVA 0 c7 Z\r\n\r\n");
    CHECK(h.send("mg a v v\r\n") == "CLIENT_ERROR duplicate flag\r\n");
    CHECK(h.send("mg a !\r\n") == "CLIENT_ERROR invalid flag\r\n");
    CHECK(h.send("ms a 1 MX\r\nx\r\nmn\r\n") ==
          "CLIENT_ERROR invalid mode for ms M token\r\nMN\r\n");
    // Binary keys, base64 on the wire.
    CHECK(h.send("ms AAE= 1 b k\r\nx\r\nmg AAE= b v k\r\n") ==
          "HD kAAE= b\r\nVA 1 kAAE= b\r\nx\r\n");
}

TEST_CASE("stats hash_is_expanding is 1 while the table grows", "[kvcache][unit]") {
    // 256 buckets (the smallest) take 256 items; the 257th starts a grow to
    // 512 that the next stores finish, 16 buckets each.
    Harness h({.initial_buckets = 256});
    auto sets = [](int from, int to) {
        std::string out;
        for (int i = from; i < to; ++i)
            out += "set k" + std::to_string(i) + " 0 0 1 noreply\r\nx\r\n";
        return out;
    };
    h.send(sets(0, 256));
    CHECK(h.send("stats\r\n").find("STAT hash_is_expanding 0\r\n") != std::string::npos);
    h.send(sets(256, 257));
    std::string stats = h.send("stats\r\n");
    CHECK(stats.find("STAT hash_is_expanding 1\r\n") != std::string::npos);
    CHECK(stats.find("STAT quiesce_hash_buckets 256\r\n") != std::string::npos);
    h.send(sets(257, 300));
    stats = h.send("stats\r\n");
    CHECK(stats.find("STAT hash_is_expanding 0\r\n") != std::string::npos);
    CHECK(stats.find("STAT quiesce_hash_buckets 512\r\n") != std::string::npos);
}

TEST_CASE("stats report what memcached users read", "[kvcache][unit]") {
    Harness h;
    h.send("set a 0 0 1\r\nx\r\nget a\r\nget b\r\n");
    const std::string stats = h.send("stats\r\n");
    for (const char* name :
         {"pid",          "uptime",        "time",           "version",     "curr_items",
          "total_items",  "bytes",         "limit_maxbytes", "evictions",   "expired_unfetched",
          "get_hits",     "get_misses",    "get_expired",    "cmd_get",     "cmd_set",
          "delete_hits",  "delete_misses", "incr_hits",      "incr_misses", "decr_hits",
          "decr_misses",  "cas_hits",      "cas_misses",     "cas_badval",  "touch_hits",
          "touch_misses", "threads"})
        CHECK(stats.find(std::string("STAT ") + name + " ") != std::string::npos);
    CHECK(stats.find("STAT get_hits 1\r\n") != std::string::npos);
    CHECK(stats.find("STAT get_misses 1\r\n") != std::string::npos);
    CHECK(stats.ends_with("END\r\n"));
    CHECK(h.send("stats settings\r\n").find("STAT item_size_max 1048576\r\n") != std::string::npos);
    CHECK(h.send("stats items\r\n").find("STAT items:1:number 1\r\n") != std::string::npos);
    CHECK(h.send("stats reset\r\nstats\r\n").find("STAT get_hits 0\r\n") != std::string::npos);
    CHECK(h.send("stats nosuch\r\n") == "ERROR\r\n");
}

TEST_CASE("stats cachedump lists the items, as memcdump reads them", "[kvcache][unit]") {
    Harness h;
    h.send("set a 0 0 3\r\nabc\r\nset b 0 100 1\r\nx\r\n");
    const std::string dump = h.send("stats cachedump 1 0\r\n");
    CHECK(dump.find("ITEM a [3 b; 0 s]\r\n") != std::string::npos);
    const auto expires = std::to_string(h.now + 100);
    CHECK(dump.find("ITEM b [1 b; " + expires + " s]\r\n") != std::string::npos);
    CHECK(dump.ends_with("END\r\n"));
    CHECK(h.send("stats cachedump 1 1\r\n").size() < dump.size());
    CHECK(h.send("stats cachedump 2 0\r\n") == "END\r\n");
    CHECK(h.send("stats cachedump 99 0\r\n") == "CLIENT_ERROR Illegal slab id\r\n");
    CHECK(h.send("stats cachedump 1\r\n") == "CLIENT_ERROR bad command line\r\n");
}

TEST_CASE("lru_crawler metadump lists the live items as memcached does", "[kvcache][unit]") {
    Harness h;
    h.send("set a%20b 0 0 3\r\nabc\r\nset k2 0 100 2\r\nxy\r\nget k2\r\nset gone 0 -1 1\r\nz\r\n");
    const std::string now = std::to_string(h.now);
    const std::string dump = h.send("lru_crawler metadump all\r\n");
    // The key URI-encoded, absolute times, fetched or not, every item in class 1.
    CHECK(dump.find("key=a%2520b exp=-1 la=" + now + " cas=1 fetch=no cls=1 size=") !=
          std::string::npos);
    CHECK(dump.find("key=k2 exp=" + std::to_string(h.now + 100) + " la=" + now +
                    " cas=2 fetch=yes cls=1 size=") != std::string::npos);
    CHECK(dump.find("gone") == std::string::npos);  // expired: not listed
    CHECK(std::count(dump.begin(), dump.end(), '\n') == 3);
    CHECK(dump.ends_with("\nEND\r\n"));
    CHECK(h.send("lru_crawler metadump 1,\r\n") == dump);
    CHECK(h.send("lru_crawler metadump hash\r\n") == dump);
    CHECK(h.send("lru_crawler metadump 5\r\n") == "END\r\n");
    CHECK(h.send("lru_crawler metadump 64\r\n") == "BADCLASS invalid class id\r\n");
    CHECK(h.send("lru_crawler metadump 0\r\n") == "BADCLASS invalid class id\r\n");
    CHECK(h.send("lru_crawler metadump\r\n") == "ERROR\r\n");
    CHECK(h.send("version\r\nlru_crawler metadump all\r\n")
              .ends_with("\r\nERROR cannot pipeline other commands before metadump\r\n"));
    CHECK(h.send("lru_crawler crawl 1\r\nlru_crawler crawl hash\r\n") ==
          "OK\r\nERROR an unknown error happened\r\n");
    CHECK(h.send("lru_crawler tocrawl 5\r\nlru_crawler tocrawl x\r\n") ==
          "OK\r\nCLIENT_ERROR bad command line format\r\n");
    CHECK(h.send("lru_crawler sleep 2000000\r\n") ==
          "CLIENT_ERROR sleep must be one second or less\r\n");
    CHECK(h.send("lru_crawler enable\r\n") == "ERROR failed to start lru crawler thread\r\n");
    CHECK(h.send("lru_crawler disable\r\nlru_crawler metadump all\r\n") ==
          "OK\r\nCLIENT_ERROR lru crawler disabled\r\n");
    CHECK(h.store.crawl(1024) == 0);  // disabled: the crawler reclaims nothing
    CHECK(h.send("lru_crawler enable\r\nlru_crawler foo\r\n") == "OK\r\nERROR\r\n");
    CHECK(h.send("stats sizes\r\n") == "STAT sizes_status disabled\r\nEND\r\n");
}

TEST_CASE("a metadump larger than the output budget goes on a step at a time", "[kvcache][unit]") {
    Harness h;
    constexpr int kItems = 5000;
    std::string sets;
    for (int i = 0; i < kItems; ++i)
        sets += "set k" + std::to_string(i) + " 0 0 1 noreply\r\nx\r\n";
    h.send(sets);
    constexpr std::size_t kBudget = 4096;
    std::string all = h.send("lru_crawler metadump all\r\nget k7\r\n", kBudget);
    CHECK(h.session->dumping());
    CHECK(h.session->stopped_early());
    int calls = 1;
    std::size_t largest = all.size();
    // Until the dump is over and the get pipelined behind it has run (the
    // step that ends the dump may fill the budget and hold it back).
    while ((h.session->dumping() || h.session->stopped_early()) && calls < 100'000) {
        const std::string more = h.send("", kBudget);
        largest = std::max(largest, more.size());
        all += more;
        ++calls;
    }
    CHECK_FALSE(h.session->dumping());
    CHECK(calls > 10);
    CHECK(largest < kBudget + 64 * 1024);  // one step past the budget at most
    CHECK(all.ends_with("END\r\nVALUE k7 0 1\r\nx\r\nEND\r\n"));
    std::vector<int> seen(kItems, 0);
    std::size_t at = 0;
    while ((at = all.find("key=k", at)) != std::string::npos) {
        at += 5;
        seen[static_cast<std::size_t>(std::stoi(all.substr(at)))]++;
    }
    CHECK(std::count(seen.begin(), seen.end(), 1) == kItems);
}

TEST_CASE("a get of small and large values replies with each in order", "[kvcache][unit]") {
    // Values up to 16 KiB are copied into the reply text, larger ones are
    // appended as blocks of their own in between: the bytes must not move.
    Harness h;
    const std::string big(40'000, 'B');
    const std::string huge(300'000, 'H');
    h.send("set s1 1 0 3\r\none\r\n");
    h.send("set b 2 0 40000\r\n" + big + "\r\n");
    h.send("set s2 3 0 3\r\ntwo\r\n");
    h.send("set h 4 0 300000\r\n" + huge + "\r\n");
    CHECK(h.send("get s1 b s2 h s1 missing b\r\n") ==
          "VALUE s1 1 3\r\none\r\nVALUE b 2 40000\r\n" + big + "\r\nVALUE s2 3 3\r\ntwo\r\n" +
              "VALUE h 4 300000\r\n" + huge + "\r\nVALUE s1 1 3\r\none\r\nVALUE b 2 40000\r\n" +
              big + "\r\nEND\r\n");
    // After a large reply the next get starts clean.
    CHECK(h.send("get s2\r\n") == "VALUE s2 3 3\r\ntwo\r\nEND\r\n");
    // A bad key after large values drops the whole reply.
    CHECK(h.send("get b h " + std::string(251, 'k') + "\r\n") ==
          "CLIENT_ERROR bad command line format\r\n");
    CHECK(h.send("gets s1\r\n").starts_with("VALUE s1 1 3 "));
}

TEST_CASE("a get whose reply would be too large is refused", "[kvcache][unit]") {
    Harness h;
    h.server.max_get_reply = 100 * 1024;
    h.send("set v 0 0 10000\r\n" + std::string(10000, 'v') + "\r\n");
    std::string line = "get";
    for (int i = 0; i < 50; ++i) line += " v";
    CHECK(h.send(line + "\r\n") == "SERVER_ERROR out of memory writing get response\r\n");
    CHECK(h.send("get v v\r\n").starts_with("VALUE v 0 10000\r\n"));  // the connection goes on
    // The same with values large enough to be appended as blocks of their own.
    h.send("set w 0 0 20000\r\n" + std::string(20000, 'w') + "\r\n");
    line = "get";
    for (int i = 0; i < 10; ++i) line += " w";
    CHECK(h.send(line + "\r\n") == "SERVER_ERROR out of memory writing get response\r\n");
    CHECK(h.send("get w\r\n").starts_with("VALUE w 0 20000\r\n"));
}

namespace {

// The tokens of `line` as memcached's tokenizer cuts them; the last entry is
// what is left after the last token ("<end>" when nothing is).
std::vector<std::string> tokens_of(std::string line, std::size_t max_tokens) {
    std::vector<Session::Token> tokens(max_tokens + 1);
    const std::size_t n =
        kvcache::tokenize_command(line.data(), line.size(), tokens.data(), max_tokens);
    std::vector<std::string> out;
    for (std::size_t i = 0; i + 1 < n; ++i) out.emplace_back(tokens[i].value, tokens[i].length);
    const Session::Token& rest = tokens[n - 1];
    CHECK(rest.length == 0);
    out.emplace_back(rest.value == nullptr ? "<end>" : rest.value);
    return out;
}

}  // namespace

TEST_CASE("the tokenizer splits as memcached's does", "[kvcache][unit]") {
    using V = std::vector<std::string>;
    CHECK(tokens_of("get a", 24) == V{"get", "a", "<end>"});
    CHECK(tokens_of("  get   a  b ", 24) == V{"get", "a", "b", "<end>"});
    CHECK(tokens_of("", 24) == V{"<end>"});
    CHECK(tokens_of("   ", 24) == V{"<end>"});
    CHECK(tokens_of("tab\tis not a space", 24) == V{"tab\tis", "not", "a", "space", "<end>"});
    // At max_tokens - 1 tokens it stops: the rest of the line is left whole.
    CHECK(tokens_of("get a b c d", 4) == V{"get", "a", "b", "c d"});
    CHECK(tokens_of("get a b  c d", 4) == V{"get", "a", "b", " c d"});
    CHECK(tokens_of("get a b", 4) == V{"get", "a", "b", "<end>"});
    CHECK(tokens_of("get a b ", 4) == V{"get", "a", "b", "<end>"});
}
