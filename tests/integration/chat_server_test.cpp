// examples/chat_server as a process: messages reach every member of a room
// exactly once, in order per sender, while others join and leave; a member
// that does not read is cut off without holding the room.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../framework/net.hpp"
#include "server_process.hpp"

using quiesce::test::Client;
using quiesce::test::example_path;
using quiesce::test::ServerProcess;

namespace {

quiesce::tcp::Address local(int port) {
    return quiesce::tcp::Address::parse("127.0.0.1:" + std::to_string(port));
}

/// Connects, reads the welcome, takes `nick`, joins `room` (waits for the
/// acknowledgements).
std::unique_ptr<Client> member(int port, const std::string& nick, const std::string& room) {
    auto client = std::make_unique<Client>(local(port));
    REQUIRE(client->receive_line().rfind("welcome", 0) == 0);
    client->send("/nick " + nick + "\n/join " + room + "\n");
    REQUIRE(client->receive_line() == "ok nick " + nick);
    REQUIRE(client->receive_line() == "ok join " + room);
    return client;
}

}  // namespace

TEST_CASE(
    "chat: every member gets every message once, in order per sender, while others come and go",
    "[integration][chat]") {
    ServerProcess server(example_path("chat_server"),
                         {"--listen", "127.0.0.1:0", "--threads", "2"});
    const int port = server.port();
    constexpr int kMembers = 8;
    constexpr int kMessages = 60;
    std::vector<std::unique_ptr<Client>> members;
    for (int i = 0; i < kMembers; ++i)
        members.push_back(member(port, "m" + std::to_string(i), "r"));
    // Everyone has joined: drain the join notices the earlier members got.
    for (int i = 0; i < kMembers; ++i)
        for (int later = i + 1; later < kMembers; ++later)
            REQUIRE(members[i]->receive_line() == "* m" + std::to_string(later) + " joined r");

    std::atomic<bool> churn{true};
    std::thread churner([&] {
        int round = 0;
        while (churn.load()) {
            Client guest(local(port));
            guest.receive_line();
            guest.send("/nick c" + std::to_string(round++) +
                       "\n/join r\n/join elsewhere\n/join r\n/quit\n");
            while (!guest.eof() && guest.receive_line() != "bye") {
            }
        }
    });

    std::vector<std::thread> senders;
    for (int i = 0; i < kMembers; ++i) {
        senders.emplace_back([&, i] {
            for (int n = 0; n < kMessages; ++n) members[i]->send("msg " + std::to_string(n) + "\n");
        });
    }
    // Each member reads until it has every other member's messages; lines
    // from the churning guests (joins) are skipped.
    bool all_in_order = true;
    int missing = 0;
    for (auto& sender : senders) sender.join();
    for (int i = 0; i < kMembers; ++i) {
        std::map<std::string, int> next;  // sender -> expected sequence number
        int got = 0;
        while (got < (kMembers - 1) * kMessages) {
            std::string line = members[i]->receive_line();
            if (members[i]->eof()) break;
            if (line.rfind("* ", 0) == 0) continue;
            auto colon = line.find(": msg ");
            if (colon == std::string::npos) continue;
            std::string from = line.substr(0, colon);
            int seq = std::stoi(line.substr(colon + 6));
            if (seq != next[from]) all_in_order = false;
            next[from] = seq + 1;
            ++got;
        }
        missing += (kMembers - 1) * kMessages - got;
    }
    churn = false;
    churner.join();
    CHECK(missing == 0);
    CHECK(all_in_order);
    // A member that speaks after all this is still heard, and /who is right.
    members[0]->send("/who\n");
    std::string who = members[0]->receive_line();
    while (who.rfind("members", 0) != 0 && !members[0]->eof()) who = members[0]->receive_line();
    CHECK(who.rfind("members r: m0 m1 m2 m3 m4 m5 m6 m7", 0) == 0);
    server.signal(SIGTERM);
    members.clear();
    CHECK(server.wait_exit() == 0);
}

TEST_CASE("chat: a member that never reads is cut off; the room goes on", "[integration][chat]") {
    ServerProcess server(example_path("chat_server"),
                         {"--listen", "127.0.0.1:0", "--threads", "2", "--max-queue-kib", "64"});
    const int port = server.port();
    auto talker = member(port, "talker", "flood");
    auto slow = member(port, "slow", "flood");
    REQUIRE(talker->receive_line() == "* slow joined flood");
    const std::string text(2000, 'z');
    std::thread flood([&] {
        for (int i = 0; i < 3000; ++i)
            talker->send(text + "\n");  // 6 MB to a member that does not read
        talker->send("/who\n");
    });
    flood.join();
    std::string line = talker->receive_line();
    CHECK(line.rfind("members flood: talker", 0) == 0);  // slow was dropped from the room
    // The slow member's connection ends once it reads what the kernel holds.
    int lines = 0;
    while (!slow->eof() && lines < 100'000) {
        slow->receive_line();
        ++lines;
    }
    CHECK(slow->eof());
    server.signal(SIGTERM);
    CHECK(server.wait_exit() == 0);
}
