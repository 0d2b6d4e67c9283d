// CommandLine: the flags every quiesce server shares, parsed with CLI11, and
// room for the server's own.
//
//     quiesce::CommandLine cli("echo_server", "Echoes every byte back.",
//                              {.listen = {"127.0.0.1:7000"}});
//     int delay = 0;
//     cli.app().add_option("--delay-ms", delay, "wait before each echo");  // its own flags
//     quiesce::RuntimeOptions options = cli.parse(argc, argv);
//
// Shared flags: --listen HOST:PORT (repeatable), --threads N, --slice-us N,
// --slice-clock wall|perf|auto, --stall-ms N, --fd-pollers N, --max-connections N,
// --log-level L, --stats-interval S, --grace-ms N, --admin HOST:PORT, --help, --version. parse()
// prints help or the version and exits 0, and prints what is wrong and exits 2 on a bad value (an
// unknown flag, a number out of range, an address that does not parse, a --slice-clock other
// than wall, perf or auto).
//
// Threading: one thread.
#pragma once

#include <quiesce/base/config.hpp>

#include <string>

#include <CLI/CLI.hpp>

#include <quiesce/framework/runtime.hpp>

namespace quiesce {

class CommandLine {
public:
    /// `defaults` are what the flags start from (and what --help shows).
    CommandLine(std::string name, std::string description, RuntimeOptions defaults = {});

    /// The CLI11 application, to add the server's own options before parse().
    [[nodiscard]] CLI::App& app() noexcept { return app_; }

    /// Parses, or exits the process (0 after --help/--version, 2 on errors).
    RuntimeOptions parse(int argc, const char* const* argv);
    /// Parses without exiting: returns -1 and fills the options, or the exit
    /// code (0 or 2) after printing help, the version or the error.
    int try_parse(int argc, const char* const* argv, RuntimeOptions& out);

private:
    CLI::App app_;
    RuntimeOptions options_;
    unsigned slice_us_ = 0;
    unsigned grace_ms_ = 0;
    unsigned stall_ms_ = 0;
    unsigned stats_seconds_ = 0;
};

/// Adds --slice-clock wall|perf|auto to `app`, parsed into `mode` (whose
/// value is the default --help shows). CommandLine adds it for its servers;
/// this is for servers that parse a command line of their own (kvcache
/// parses memcached's).
CLI::Option* add_slice_clock_option(CLI::App& app, sched::SliceMode& mode);

/// The version string --version prints ("quiesce 0.1.0").
[[nodiscard]] const char* version() noexcept;

}  // namespace quiesce
