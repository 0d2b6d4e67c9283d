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
// --stall-ms N, --fd-pollers N, --max-connections N, --log-level L, --stats-interval S,
// --grace-ms N, --help, --version. parse() prints help or the version and
// exits 0, and prints what is wrong and exits 2 on a bad value (an unknown
// flag, a number out of range, an address that does not parse).
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
    std::string slice_clock_;
    unsigned grace_ms_ = 0;
    unsigned stall_ms_ = 0;
    unsigned stats_seconds_ = 0;
};

/// What --slice-clock says in --help, for servers that parse their own
/// command line (kvcache's is memcached's): its values are "wall", "perf"
/// and "auto" (sched::slice_mode_from_string()).
inline constexpr const char* kSliceClockHelp =
    "how loops time slices: wall (a timer signal per tick of a busy loop), perf (the kernel's "
    "task clock: exact, but a few us per context switch of a loop) or auto (perf where allowed)";

/// The version string --version prints ("quiesce 0.1.0").
[[nodiscard]] const char* version() noexcept;

}  // namespace quiesce
