// The shared command line (see command_line.hpp).
#include <quiesce/framework/command_line.hpp>

#include <iostream>
#include <stdexcept>

#include <quiesce/framework/address.hpp>

#ifndef QUIESCE_VERSION
#error "meson defines QUIESCE_VERSION"
#endif

namespace quiesce {

const char* version() noexcept {
    return "quiesce " QUIESCE_VERSION;
}

namespace {

// What is wrong with an address flag's value (CLI11 validator: empty = fine).
std::string address_problem(const std::string& text) {
    try {
        (void)tcp::Address::parse(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}

}  // namespace

CLI::Option* add_slice_clock_option(CLI::App& app, sched::SliceMode& mode) {
    auto known = [](const std::string& name) {
        return sched::slice_mode_from_string(name) ? std::string()
                                                   : "not wall, perf or auto: " + name;
    };
    // CLI11 runs the callback only for a value the check let through.
    auto set = [&mode](const std::string& name) { mode = *sched::slice_mode_from_string(name); };
    return app
        .add_option_function<std::string>(
            "--slice-clock", set,
            "how loops time slices: wall (a timer signal per tick of a busy loop), perf (the "
            "kernel's task clock: exact, but a few us per context switch of a loop) or auto "
            "(perf where allowed)")
        ->check(known, "wall|perf|auto")
        ->default_str(std::string(sched::to_string(mode)));
}

CommandLine::CommandLine(std::string name, std::string description, RuntimeOptions defaults)
    : app_(std::move(description), std::move(name)), options_(std::move(defaults)) {
    slice_us_ = static_cast<unsigned>(options_.slice.count());
    grace_ms_ = static_cast<unsigned>(options_.grace.count());
    stall_ms_ = static_cast<unsigned>(options_.stall.count());
    stats_seconds_ = static_cast<unsigned>(options_.stats_interval.count());
    app_.set_version_flag("--version", std::string(version()));
    app_.add_option("--listen", options_.listen,
                    "address to listen on: HOST:PORT, [IPV6]:PORT or unix:PATH "
                    "(repeatable; port 0 picks a free port)")
        ->type_name("ADDR")
        ->check(address_problem)
        ->capture_default_str();
    app_.add_option("--threads", options_.threads, "event-loop threads (0: one per CPU)")
        ->check(CLI::Range(0u, 1024u))
        ->capture_default_str();
    app_.add_option("--slice-us", slice_us_,
                    "CPU time a group runs before it gives way, in microseconds")
        ->check(CLI::Range(0u, 1'000'000u))
        ->capture_default_str();
    add_slice_clock_option(app_, options_.slice_mode);
    app_.add_option("--stall-ms", stall_ms_,
                    "report an event that runs this long (loop CPU time) without giving way, with "
                    "a backtrace "
                    "(0: never)")
        ->check(CLI::Range(0u, 3'600'000u))
        ->capture_default_str();
    app_.add_option("--fd-pollers", options_.fd_pollers,
                    "threads that wait for socket readiness (0: the loops wait themselves)")
        ->check(CLI::Range(0u, 64u))
        ->capture_default_str();
    app_.add_option("--max-connections", options_.max_connections,
                    "open connections past which new ones are closed at once (0: no limit)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app_.add_option("--log-level", options_.log_level,
                    "trace, debug, info, warn, err, critical or off")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "err", "critical", "off"}))
        ->capture_default_str();
    app_.add_option("--stats-interval", stats_seconds_,
                    "log a statistics line every S seconds (0: never)")
        ->check(CLI::Range(0u, 86'400u))
        ->capture_default_str();
    app_.add_option("--admin", options_.admin,
                    "serve the live dashboard and /stats, /metrics on HOST:PORT (off when empty; "
                    "no authentication: keep it on loopback)")
        ->type_name("ADDR")
        ->check([](const std::string& text) {
            return text.empty() ? std::string() : address_problem(text);
        })
        ->capture_default_str();
    app_.add_option("--grace-ms", grace_ms_,
                    "how long a graceful stop waits for connections to finish")
        ->check(CLI::Range(0u, 3'600'000u))
        ->capture_default_str();
}

int CommandLine::try_parse(int argc, const char* const* argv, RuntimeOptions& out) {
    try {
        app_.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::cout << app_.help();
        return 0;
    } catch (const CLI::CallForAllHelp&) {
        std::cout << app_.help("", CLI::AppFormatMode::All);
        return 0;
    } catch (const CLI::CallForVersion&) {
        std::cout << version() << "\n";
        return 0;
    } catch (const CLI::ParseError& e) {
        std::cerr << app_.get_name() << ": " << e.what() << "\n"
                  << "Run with --help for more information.\n";
        return 2;
    }
    options_.slice = std::chrono::microseconds(slice_us_);
    options_.grace = std::chrono::milliseconds(grace_ms_);
    options_.stall = std::chrono::milliseconds(stall_ms_);
    options_.stats_interval = std::chrono::seconds(stats_seconds_);
    out = options_;
    return -1;
}

RuntimeOptions CommandLine::parse(int argc, const char* const* argv) {
    RuntimeOptions out;
    int code = try_parse(argc, argv, out);
    if (code >= 0) std::exit(code);
    return out;
}

}  // namespace quiesce
