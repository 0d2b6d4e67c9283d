// The shared command line: values, defaults, --help/--version, and exit code
// 2 with a message for bad values.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <quiesce/framework/command_line.hpp>

namespace {

int parse(std::vector<const char*> args, quiesce::RuntimeOptions& out,
          quiesce::RuntimeOptions defaults = {}) {
    quiesce::CommandLine cli("server", "A test server.", std::move(defaults));
    args.insert(args.begin(), "server");
    return cli.try_parse(static_cast<int>(args.size()), args.data(), out);
}

}  // namespace

TEST_CASE("the shared flags set the runtime's options", "[framework][cli]") {
    quiesce::RuntimeOptions out;
    REQUIRE(parse({"--listen", "127.0.0.1:0", "--listen", "[::1]:7", "--threads", "3", "--slice-us",
                   "250", "--fd-pollers", "2", "--max-connections", "100", "--log-level", "debug",
                   "--stats-interval", "10", "--grace-ms", "1500"},
                  out) == -1);
    CHECK(out.listen == std::vector<std::string>{"127.0.0.1:0", "[::1]:7"});
    CHECK(out.threads == 3);
    CHECK(out.slice == std::chrono::microseconds(250));
    CHECK(out.fd_pollers == 2);
    CHECK(out.max_connections == 100);
    CHECK(out.log_level == "debug");
    CHECK(out.stats_interval == std::chrono::seconds(10));
    CHECK(out.grace == std::chrono::milliseconds(1500));
    CHECK(out.slice_mode == quiesce::sched::SliceMode::kWallConfirm);  // the default
    REQUIRE(parse({"--slice-clock", "perf"}, out) == -1);
    CHECK(out.slice_mode == quiesce::sched::SliceMode::kPerfEvent);
    REQUIRE(parse({"--slice-clock", "auto"}, out,
                  {.slice_mode = quiesce::sched::SliceMode::kPerfEvent}) == -1);
    CHECK(out.slice_mode == quiesce::sched::SliceMode::kAuto);
}

TEST_CASE("defaults stay when no flag is given", "[framework][cli]") {
    quiesce::RuntimeOptions out;
    REQUIRE(parse({}, out, {.listen = {"127.0.0.1:7000"}, .threads = 4}) == -1);
    CHECK(out.listen == std::vector<std::string>{"127.0.0.1:7000"});
    CHECK(out.threads == 4);
    CHECK(out.grace == std::chrono::milliseconds(5000));
    CHECK(out.slice_mode == quiesce::sched::SliceMode::kWallConfirm);
    REQUIRE(parse({}, out, {.slice_mode = quiesce::sched::SliceMode::kPerfEvent}) == -1);
    CHECK(out.slice_mode == quiesce::sched::SliceMode::kPerfEvent);
}

TEST_CASE("bad values exit 2, help and version exit 0", "[framework][cli]") {
    quiesce::RuntimeOptions out;
    CHECK(parse({"--threads", "-1"}, out) == 2);
    CHECK(parse({"--threads", "many"}, out) == 2);
    CHECK(parse({"--log-level", "loud"}, out) == 2);
    CHECK(parse({"--slice-clock", "tsc"}, out) == 2);
    CHECK(parse({"--slice-clock", "Wall"}, out) == 2);
    CHECK(parse({"--listen", "127.0.0.1"}, out) == 2);
    CHECK(parse({"--listen", "1.2.3.4:70000"}, out) == 2);
    CHECK(parse({"--no-such-flag"}, out) == 2);
    CHECK(parse({"--help"}, out) == 0);
    CHECK(parse({"--version"}, out) == 0);
    CHECK(std::string(quiesce::version()).rfind("quiesce ", 0) == 0);
}

TEST_CASE("a server adds its own flags", "[framework][cli]") {
    quiesce::CommandLine cli("server", "A test server.");
    int delay = 0;
    cli.app().add_option("--delay-ms", delay, "delay");
    quiesce::RuntimeOptions out;
    std::vector<const char*> args{"server", "--delay-ms", "12", "--threads", "1"};
    REQUIRE(cli.try_parse(static_cast<int>(args.size()), args.data(), out) == -1);
    CHECK(delay == 12);
    CHECK(out.threads == 1);
}
