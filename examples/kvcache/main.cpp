// kvcache: a memcached-compatible cache on quiesce. Existing memcached
// clients and tools use it unchanged (text and meta protocol, memcached's
// command line); every get on every loop reads the table with no lock.
//
//     build/examples/kvcache/kvcache                 # 127.0.0.1:11211, one loop per CPU, 64 MiB
//     build/examples/kvcache/kvcache -p 0 -m 1024 -t 2
//     printf 'set a 0 0 1\r\nx\r\nget a\r\n' | nc -q1 127.0.0.1 11211
//
// Each connection is a stackless group that parses what arrives and answers
// in one write; examples/kvcache/README.md has the design and the limits.
#include <sys/resource.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <quiesce/framework/command_line.hpp>
#include <quiesce/framework/runtime.hpp>

#include "connection.hpp"
#include "protocol.hpp"
#include "udp_frontend.hpp"

namespace {

using namespace std::chrono_literals;

/// memcached's -I: bytes, or with a k or m suffix.
std::size_t parse_size(const std::string& text) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
    if (end == text.c_str()) throw CLI::ValidationError("-I", "not a size: " + text);
    std::size_t size = n;
    const std::string suffix(end);
    if (suffix == "k" || suffix == "K")
        size *= 1024;
    else if (suffix == "m" || suffix == "M")
        size *= 1024 * 1024;
    else if (!suffix.empty())
        throw CLI::ValidationError("-I", "not a size: " + text);
    return size;
}

/// memcached's -l (a comma-separated list of interfaces, each maybe with
/// its own :port) as the runtime's HOST:PORT addresses.
std::vector<std::string> listen_addresses(const std::string& list, int port) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= list.size()) {
        std::size_t comma = list.find(',', start);
        if (comma == std::string::npos) comma = list.size();
        std::string host = list.substr(start, comma - start);
        start = comma + 1;
        if (host.empty()) continue;
        const std::string p = std::to_string(port);
        if (host.starts_with("unix:"))
            out.push_back(host);
        else if (host.front() == '[')
            out.push_back(host.find("]:") != std::string::npos ? host : host + ":" + p);
        else if (host.find(':') == std::string::npos)
            out.push_back(host + ":" + p);
        else if (host.find(':') == host.rfind(':'))
            out.push_back(host);  // HOST:PORT
        else
            out.push_back("[" + host + "]:" + p);  // a bare IPv6 address
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"kvcache: a memcached-compatible cache on quiesce (memcached's flags)."};
    app.set_version_flag("-V,--version",
                         std::string("kvcache 1.6.18 (") + quiesce::version() + ")");
    int port = 11211, udp_port = 0;
    std::string listen = "127.0.0.1", item_size = "1m", unix_socket;
    unsigned threads = 0, slice_us = 500, stall_ms = 25, grace_ms = 5000, stats_seconds = 0;
    std::size_t memory_mb = 64, conn_limit = 1024;
    int verbose = 0;
    bool enable_shutdown = false, disable_cas = false, disable_flush = false;
    std::string log_level;
    std::string admin;
    quiesce::sched::SliceMode slice_mode = quiesce::RuntimeOptions{}.slice_mode;
    app.add_option("-p,--port", port, "TCP port (0: pick a free one, logged)")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    app.add_option("-l,--listen", listen, "interfaces, comma-separated (HOST or HOST:PORT)")
        ->capture_default_str();
    app.add_option("-s,--unix-socket", unix_socket, "also listen on this Unix-domain socket");
    app.add_option("-U,--udp-port", udp_port, "UDP port (0: off)")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    app.add_option("-t,--threads", threads, "event loops (0: one per CPU)")->capture_default_str();
    app.add_option("-m,--memory-limit", memory_mb, "item memory in MiB")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
        ->capture_default_str();
    app.add_option("-I,--max-item-size", item_size, "largest item (bytes, or k/m suffix)")
        ->capture_default_str();
    app.add_option("-c,--conn-limit", conn_limit, "simultaneous connections")
        ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}))
        ->capture_default_str();
    app.add_flag("-v,--verbose", verbose, "log more (-vv: debug, -vvv: trace)");
    app.add_flag("-A,--enable-shutdown", enable_shutdown, "allow the shutdown command");
    app.add_flag("-C,--disable-cas", disable_cas, "no CAS values");
    app.add_flag("-F,--disable-flush-all", disable_flush, "refuse flush_all");
    app.add_option("--slice-us", slice_us, "CPU time a connection runs before giving way")
        ->capture_default_str();
    quiesce::add_slice_clock_option(app, slice_mode);
    app.add_option("--stall-ms", stall_ms, "report an event that runs longer (0: never)")
        ->capture_default_str();
    app.add_option("--grace-ms", grace_ms, "graceful stop: wait this long for connections")
        ->capture_default_str();
    app.add_option("--stats-interval", stats_seconds, "log statistics every S seconds (0: never)")
        ->capture_default_str();
    app.add_option("--log-level", log_level, "trace, debug, info, warn, err (overrides -v)");
    app.add_option("--admin", admin,
                   "serve the runtime's live dashboard, /stats and /metrics on HOST:PORT (off when "
                   "empty; no authentication: keep it on loopback)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    std::size_t item_max = 0;
    try {
        item_max = parse_size(item_size);
    } catch (const CLI::Error& e) {
        std::cerr << "kvcache: -I: " << e.what() << "\n";
        return 2;
    }
    const std::size_t memory = memory_mb << 20;
    if (item_max < 1024 || item_max > (std::size_t{1} << 30) || item_max > memory / 2) {
        std::cerr << "kvcache: -I " << item_size
                  << ": the item size limit must be at least 1k, at most 1m... 1g, and at most "
                     "half of -m\n";
        return 2;
    }

    quiesce::RuntimeOptions options;
    options.listen = listen_addresses(listen, port);
    if (!unix_socket.empty()) options.listen.push_back("unix:" + unix_socket);
    options.threads = threads;
    options.slice = std::chrono::microseconds(slice_us);
    options.slice_mode = slice_mode;
    options.stall = std::chrono::milliseconds(stall_ms);
    options.grace = std::chrono::milliseconds(grace_ms);
    options.stats_interval = std::chrono::seconds(stats_seconds);
    options.max_connections = conn_limit;
    options.log_level = !log_level.empty() ? log_level
                        : verbose >= 3     ? "trace"
                        : verbose == 2     ? "debug"
                                           : "info";
    options.name = "kvcache";
    options.admin = admin;

    kvcache::Store store({.memory_limit = memory, .item_max = item_max, .cas = !disable_cas});
    kvcache::Server server(store);
    server.shutdown_enabled = enable_shutdown;
    server.flush_enabled = !disable_flush;
    server.verbosity.store(verbose, std::memory_order_relaxed);  // relaxed: before any thread
    server.listen = listen;
    server.udp_port = udp_port;
    server.max_connections = conn_limit;

    std::unique_ptr<quiesce::Runtime> runtime;
    try {
        runtime = std::make_unique<quiesce::Runtime>(options);
    } catch (const std::exception& e) {
        std::cerr << "kvcache: " << e.what() << "\n";
        return 1;
    }
    server.threads = static_cast<unsigned>(runtime->stats().scheduler.loops.size());
    server.shutdown = [&runtime] { runtime->stop(); };
    server.server_stats = [&runtime](kvcache::StatWriter& w) {
        const quiesce::RuntimeStats s = runtime->stats();
        rusage usage{};
        ::getrusage(RUSAGE_SELF, &usage);
        auto seconds = [](const timeval& tv) {
            return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6;
        };
        w.add("rusage_user", seconds(usage.ru_utime));
        w.add("rusage_system", seconds(usage.ru_stime));
        w.add("curr_connections", s.connections_open);
        w.add("total_connections", s.connections_accepted);
        w.add("rejected_connections", s.connections_refused);
        w.add("bytes_read", s.bytes_in);
        w.add("bytes_written", s.bytes_out);
        w.add("quiesce_grace_periods", s.rcu.grace_periods);
        w.add("quiesce_rcu_callbacks", s.rcu.callbacks_invoked);
        std::uint64_t stolen = 0, events = 0;
        for (const auto& loop : s.scheduler.loops) {
            stolen += loop.stolen;
            events += loop.events;
        }
        w.add("quiesce_loop_events", events);
        w.add("quiesce_groups_stolen", stolen);
        w.add("quiesce_stall_reports", s.stall_reports);
    };

    try {
        for (const auto& address : options.listen) {
            auto& l = kvcache::listen(*runtime, server, address);
            if (!address.starts_with("unix:")) server.port = l.address().port();
        }
        if (udp_port != 0) kvcache::serve_udp(*runtime, server, listen, udp_port);
    } catch (const std::exception& e) {
        std::cerr << "kvcache: " << e.what() << "\n";
        return 1;
    }

    // Expired and flushed items are reclaimed as the crawler walks by, not
    // only when a read meets them.
    auto crawl_timer = kvcache::start_crawler(*runtime, store);
    const int code = runtime->run();
    crawl_timer.cancel();
    return code;
}
