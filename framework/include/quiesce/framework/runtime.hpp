// Runtime: the one object a server makes. It owns the scheduler (one loop per
// CPU), the FD poller, the signal poller and the process-wide setup a server
// wants (descriptor limit raised, SIGPIPE ignored, log level), starts the
// listeners, and stops it all gracefully on SIGINT/SIGTERM.
//
//     int main(int argc, char** argv) {
//         quiesce::CommandLine cli("echo_server", "Echoes every byte back.");
//         quiesce::RuntimeOptions options = cli.parse(argc, argv);  // exits on --help / bad flags
//         quiesce::Runtime runtime(options);
//         for (const auto& address : options.listen)
//             runtime.listen(address, [] { return std::make_unique<Echo>(); });
//         return runtime.run();   // until SIGINT/SIGTERM or runtime.stop()
//     }
//
// Graceful stop (stop(), SIGINT or SIGTERM): listeners close; every
// connection's handler gets on_shutdown() (default: close(), which sends what
// is queued, then FIN); the runtime waits up to `grace` for the connections
// to finish, aborts the rest, stops the pollers and the loops (every group's
// close handler runs, every RCU callback runs) and run() returns 0. A second
// SIGINT/SIGTERM during the stop forces it: remaining connections are
// aborted at once and run() returns 1 (the log says so).
//
// Threading: the constructor, run() and the destructor on one thread (the
// main thread, usually); stop(), listen() and stats() from any thread.
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <quiesce/framework/tcp.hpp>
#include <quiesce/framework/udp.hpp>
#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/pollers/signal_poller.hpp>
#include <quiesce/rcu/domain.hpp>
#include <quiesce/scheduler/scheduler.hpp>

namespace quiesce {

struct RuntimeOptions {
    /// Addresses the application listens on (Runtime does not open them by
    /// itself: the application knows what each serves). HOST:PORT,
    /// [IPV6]:PORT or unix:PATH.
    std::vector<std::string> listen{};
    /// Loop threads; 0 = one per CPU.
    unsigned threads = 0;
    /// CPU time a group runs before need_resched() turns true.
    std::chrono::microseconds slice{500};
    /// How loops time those slices (sched::SliceMode). The wall timer
    /// (kWallConfirm), not the scheduler's kAuto: a server's loops share
    /// their CPUs with other threads (clients on the same machine, the RCU
    /// callback thread), and the perf task clock adds a few microseconds to
    /// every context switch of a loop; under memcslap on the same two CPUs
    /// that cost kvcache about a quarter of its throughput (docs/BENCHMARKS.md,
    /// "kvcache under memcslap"). kPerfEvent charges CPU time exactly where
    /// loops have their CPUs to themselves (scheduler/README.md, "Which
    /// clock"). The flag is --slice-clock.
    sched::SliceMode slice_mode = sched::SliceMode::kWallConfirm;
    /// An event that runs longer than this much of its loop's CPU time
    /// without giving way is reported while it runs, with a backtrace of the
    /// loop thread (framework/README.md, "Stall reports"); 0 = never.
    std::chrono::milliseconds stall{25};
    /// Threads that wait for socket readiness; 0 = the loops wait themselves
    /// (no thread hop; pollers/README.md, "Threads or loops").
    unsigned fd_pollers = 0;
    /// Open connections over all listeners; past it new ones are accepted
    /// and closed at once. 0 = no limit but the descriptor limit.
    std::size_t max_connections = 0;
    /// trace, debug, info, warn, err, critical, off.
    std::string log_level = "info";
    /// Logs a line of statistics this often; 0 = never.
    std::chrono::seconds stats_interval{0};
    /// How long a graceful stop waits for connections to finish.
    std::chrono::milliseconds grace{5000};
    /// SIGINT and SIGTERM stop the runtime gracefully (else the application
    /// subscribes what it wants).
    bool handle_signals = true;
    /// Thread names and logs.
    std::string name = "quiesce";
    /// HOST:PORT of the admin endpoint (admin.hpp: /dashboard, /stats,
    /// /metrics, /dump over HTTP); empty = none. Bind it to loopback or a
    /// management network: it has no authentication.
    std::string admin{};
};

/// What one loop runs at the moment stats() looked.
struct LoopNow {
    unsigned loop = 0;
    bool running = false;  ///< an event of a group runs
    std::string group{};   ///< its group's name
    std::uint64_t group_id = 0;
    /// How long that event has been seen running (sampled every few ms by
    /// the stall detector: a short event shows 0).
    double running_ms = 0;
    std::int64_t queued = 0;  ///< groups waiting for the loop
};

/// One loop stall report (framework/README.md, "Stall reports").
struct StallRecord {
    double unix_time = 0;  ///< when it was reported
    std::string text{};    ///< its first line
};

struct RuntimeStats {
    std::string name{};  ///< RuntimeOptions::name
    std::uint64_t connections_open = 0;
    std::uint64_t connections_accepted = 0;
    std::uint64_t connections_refused = 0;  ///< over max_connections
    std::uint64_t accept_pauses = 0;        ///< EMFILE/ENFILE back-offs
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t stall_reports = 0;           ///< loop stalls reported
    std::string last_stall{};                  ///< the last report's first line
    std::vector<StallRecord> recent_stalls{};  ///< the last 16, oldest first
    std::vector<LoopNow> loops_now{};          ///< what each loop runs now
    double uptime_seconds = 0;
    sched::SchedulerStats scheduler{};
    rcu::DomainStats rcu{};
    pollers::FdPollerStats fds{};
    pollers::SignalPollerStats signals{};
    /// "in the loops" or "N poller threads".
    std::string readiness{};
};

class Runtime {
public:
    /// Sets up logging and the process (descriptor limit, SIGPIPE, signals
    /// blocked in this thread before any thread starts), starts the loops
    /// and pollers. Throws std::system_error when a thread or descriptor
    /// cannot be set up, std::invalid_argument on bad options.
    explicit Runtime(RuntimeOptions options = {});
    /// stop() and the shutdown run() would do, if run() did not.
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    /// Listens on `address` (see Address::parse); each accepted connection
    /// gets a handler from `factory`. Throws std::invalid_argument for a bad
    /// address, std::system_error when the socket cannot be bound (the
    /// message names the address). Thread: any.
    tcp::Listener& listen(std::string_view address, tcp::HandlerFactory factory,
                          tcp::ListenerOptions options = {});

    /// The same for fiber-backed connections: each runs `serve(stream)` on
    /// a fiber of its own (see stream.hpp).
    tcp::Listener& listen_fibers(std::string_view address, tcp::StreamHandler serve,
                                 tcp::ListenerOptions options = {});

    /// Binds a datagram socket; `handler` runs for each datagram as an event
    /// of the socket's group (see udp.hpp). Throws as listen(). Thread: any.
    udp::Socket& bind_udp(std::string_view address, udp::Handler handler,
                          udp::Options options = {});

    /// Blocks until stop() (or SIGINT/SIGTERM), then stops gracefully and
    /// returns the exit code: 0, or 1 if the stop was forced.
    int run();
    /// Starts a graceful stop. Thread: any, loops included.
    void stop() noexcept;
    /// Forces the stop under way (what a second signal does).
    void force_stop() noexcept;
    [[nodiscard]] bool stopping() const noexcept;

    [[nodiscard]] RuntimeStats stats() const;
    /// What every loop runs now, one line per loop (also logged on SIGUSR2).
    [[nodiscard]] std::string dump() const;
    [[nodiscard]] const RuntimeOptions& options() const noexcept { return options_; }
    [[nodiscard]] sched::Scheduler& scheduler() noexcept { return *scheduler_; }
    [[nodiscard]] pollers::FdPoller& fds() noexcept { return *fds_; }
    [[nodiscard]] pollers::SignalPoller& signals() noexcept { return *signals_; }
    /// The admin endpoint's listener (RuntimeOptions::admin), or null.
    [[nodiscard]] const tcp::Listener* admin() const noexcept { return admin_; }
    /// The soft RLIMIT_NOFILE after start (raised to the hard limit).
    [[nodiscard]] std::uint64_t descriptor_limit() const noexcept { return descriptor_limit_; }

    /// Internal (Listener, Connection).
    struct Internal;
    Internal& internal() noexcept { return *internal_; }

private:
    void shutdown() noexcept;
    tcp::Listener& add_listener(std::string_view address, tcp::HandlerFactory factory,
                                tcp::StreamHandler serve, tcp::ListenerOptions options);

    RuntimeOptions options_;
    std::uint64_t descriptor_limit_ = 0;
    std::unique_ptr<pollers::SignalPoller> signals_;
    std::unique_ptr<sched::Scheduler> scheduler_;
    std::unique_ptr<pollers::FdPoller> fds_;
    std::unique_ptr<Internal> internal_;
    tcp::Listener* admin_ = nullptr;
};

}  // namespace quiesce
