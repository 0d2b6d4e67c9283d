// Statistics: the JSON parses and carries the counters; the Prometheus text
// follows the exposition format's rules (checked line by line here).
#include <catch2/catch.hpp>

#include <cctype>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>
#include <quiesce/framework/stats.hpp>

#include "net.hpp"
#include "wait.hpp"

using quiesce::test::Client;
using quiesce::test::RunningRuntime;

namespace {

struct Echo : quiesce::tcp::Handler {
    void on_data(quiesce::tcp::Connection& conn, quiesce::Buffer& in) override { conn.write(in); }
};

bool metric_name(const std::string& name) {
    if (name.empty() ||
        !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_' || name[0] == ':'))
        return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':')) return false;
    return true;
}

/// Checks the text exposition format 0.0.4 as Prometheus parses it: every
/// sample's family has one HELP and one TYPE line before it, types are
/// known, counters end in _total, names and labels are well formed, values
/// parse, no series repeats. Returns the problems found.
std::vector<std::string> check_exposition(const std::string& text) {
    std::vector<std::string> problems;
    std::map<std::string, std::string> types;
    std::set<std::string> helped;
    std::set<std::string> series;
    std::istringstream lines(text);
    std::string line;
    int number = 0;
    if (text.empty() || text.back() != '\n')
        problems.push_back("the text does not end with a newline");
    while (std::getline(lines, line)) {
        ++number;
        auto where = " (line " + std::to_string(number) + ": " + line + ")";
        if (line.empty()) continue;
        if (line.rfind("# HELP ", 0) == 0) {
            std::string name = line.substr(7, line.find(' ', 7) - 7);
            if (!metric_name(name)) problems.push_back("bad name in HELP" + where);
            if (!helped.insert(name).second) problems.push_back("second HELP" + where);
            continue;
        }
        if (line.rfind("# TYPE ", 0) == 0) {
            std::istringstream parts(line.substr(7));
            std::string name, type;
            parts >> name >> type;
            if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
                type != "untyped")
                problems.push_back("unknown type" + where);
            if (types.count(name) != 0) problems.push_back("second TYPE" + where);
            if (type == "counter" && (name.size() < 6 || name.substr(name.size() - 6) != "_total"))
                problems.push_back("counter not ending in _total" + where);
            types[name] = type;
            continue;
        }
        if (line[0] == '#') continue;
        auto space = line.rfind(' ');
        if (space == std::string::npos) {
            problems.push_back("no value" + where);
            continue;
        }
        std::string key = line.substr(0, space);
        std::string value = line.substr(space + 1);
        std::string name = key.substr(0, key.find('{'));
        if (!metric_name(name)) problems.push_back("bad metric name" + where);
        // A histogram's samples are its family name + _bucket, _sum, _count.
        for (const char* suffix : {"_bucket", "_sum", "_count"}) {
            const std::string tail(suffix);
            if (types.count(name) == 0 && name.size() > tail.size() &&
                name.compare(name.size() - tail.size(), tail.size(), tail) == 0) {
                std::string family = name.substr(0, name.size() - tail.size());
                if (types.count(family) != 0 && types[family] == "histogram") name = family;
            }
        }
        if (types.count(name) == 0) problems.push_back("sample before its TYPE" + where);
        if (helped.count(name) == 0) problems.push_back("sample without HELP" + where);
        if (key.find('{') != std::string::npos) {
            if (key.back() != '}') problems.push_back("unclosed labels" + where);
            std::string labels = key.substr(key.find('{') + 1, key.size() - key.find('{') - 2);
            std::istringstream pairs(labels);
            std::string pair;
            while (std::getline(pairs, pair, ',')) {
                auto eq = pair.find('=');
                if (eq == std::string::npos || !metric_name(pair.substr(0, eq)) ||
                    pair.size() < eq + 3 || pair[eq + 1] != '"' || pair.back() != '"')
                    problems.push_back("bad label '" + pair + "'" + where);
            }
        }
        char* end = nullptr;
        std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0') problems.push_back("value does not parse" + where);
        if (!series.insert(key).second) problems.push_back("repeated series" + where);
    }
    return problems;
}

}  // namespace

TEST_CASE("the format check itself catches what Prometheus refuses", "[framework][stats]") {
    CHECK(check_exposition("# HELP a_total x\n# TYPE a_total counter\na_total 1\n").empty());
    CHECK_FALSE(check_exposition("a_total 1\n").empty());                          // no TYPE
    CHECK_FALSE(check_exposition("# HELP a x\n# TYPE a counter\na 1\n").empty());  // counter name
    CHECK_FALSE(check_exposition("# HELP a x\n# TYPE a gauge\na one\n").empty());  // value
    CHECK_FALSE(
        check_exposition("# HELP a x\n# TYPE a gauge\na{l=1} 1\n").empty());  // label quotes
    CHECK_FALSE(check_exposition("# HELP a x\n# TYPE a gauge\na 1\na 2\n").empty());  // repeated
    CHECK_FALSE(check_exposition("# HELP 1a x\n# TYPE 1a gauge\n1a 1\n").empty());    // name
    CHECK_FALSE(check_exposition("# HELP a x\n# TYPE a gauge\na 1").empty());         // newline
}

TEST_CASE("stats as JSON and Prometheus text follow the traffic", "[framework][stats]") {
    RunningRuntime server({});
    quiesce::tcp::Listener& listener =
        server.runtime.listen("127.0.0.1:0", [] { return std::make_unique<Echo>(); });
    server.start();
    Client client(listener.address());
    client.send("0123456789");
    REQUIRE(client.receive(10) == "0123456789");
    REQUIRE(quiesce::test::wait_until([&] { return server.runtime.stats().bytes_out == 10; }));

    quiesce::RuntimeStats stats = server.runtime.stats();
    auto json = nlohmann::json::parse(quiesce::to_json(stats));
    CHECK(json["connections"]["open"] == 1);
    CHECK(json["connections"]["accepted"] == 1);
    CHECK(json["bytes"]["in"] == 10);
    CHECK(json["bytes"]["out"] == 10);
    CHECK(json["loops"].size() == 2);
    CHECK(json["loops"][0]["events"].get<std::uint64_t>() > 0);
    CHECK(json["fd_poller"]["readiness"] == "in the loops");
    CHECK(json["rcu"]["qsbr_readers"].get<std::uint64_t>() >= 2);

    std::string text = quiesce::to_prometheus(stats);
    auto problems = check_exposition(text);
    for (const auto& problem : problems) UNSCOPED_INFO(problem);
    CHECK(problems.empty());
    CHECK_THAT(text, Catch::Contains("quiesce_connections_open 1\n"));
    CHECK_THAT(text, Catch::Contains("quiesce_received_bytes_total 10\n"));
    CHECK_THAT(text, Catch::Contains("quiesce_loop_events_total{loop=\"1\"}"));
}

TEST_CASE("a server's loops time slices with the wall timer unless told", "[framework][stats]") {
    // The scheduler's own default (kAuto) would take the perf task clock
    // where the kernel allows it, as it does on the CI machines.
    RunningRuntime server({});
    server.start();
    auto json = nlohmann::json::parse(quiesce::to_json(server.runtime.stats()));
    REQUIRE(json["loops"].size() == 2);
    for (const auto& loop : json["loops"]) CHECK(loop["slice_mode"] == "wall");
}
