// Runtime: process setup, the pollers and loops, the connection registry and
// the graceful stop (see runtime.hpp).
#include <quiesce/framework/runtime.hpp>

#include <quiesce/framework/admin.hpp>
#include <quiesce/framework/http.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <limits>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "log.hpp"
#include "runtime_internal.hpp"

namespace quiesce {
namespace {

std::uint64_t raise_descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        rlim_t before = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
            detail::logger().info(
                "descriptor limit raised from {} to {} (RLIMIT_NOFILE hard limit)", before,
                limit.rlim_cur);
        } else {
            detail::logger().warn("cannot raise the descriptor limit from {}: {}", before,
                                  std::generic_category().message(errno));
            limit.rlim_cur = before;
        }
    }
    return limit.rlim_cur == RLIM_INFINITY ? std::numeric_limits<std::uint64_t>::max()
                                           : static_cast<std::uint64_t>(limit.rlim_cur);
}

sched::SchedulerOptions scheduler_options(const RuntimeOptions& options) {
    sched::SchedulerOptions out;
    out.threads = options.threads;
    out.slice = options.slice;
    out.slice_mode = options.slice_mode;
    out.name = options.name;
    return out;
}

pollers::FdPollerOptions fd_options(const RuntimeOptions& options) {
    pollers::FdPollerOptions out;
    out.placement =
        options.fd_pollers == 0 ? pollers::FdPlacement::kLoops : pollers::FdPlacement::kThreads;
    out.threads = options.fd_pollers == 0 ? 1 : options.fd_pollers;
    out.name = options.name + "-fd";
    return out;
}

}  // namespace

Runtime::Internal::Internal(Runtime& owner, unsigned loop_count)
    : runtime(owner), per_loop(new std::atomic<std::int64_t>[loop_count]), loops(loop_count) {
    for (unsigned i = 0; i < loops; ++i) per_loop[i].store(0, std::memory_order_relaxed);
}

unsigned Runtime::Internal::pick_loop() noexcept {
    unsigned best = 0;
    std::int64_t fewest = std::numeric_limits<std::int64_t>::max();
    for (unsigned i = 0; i < loops; ++i) {
        // relaxed: a placement hint; two racing accepts may pick the same loop
        std::int64_t n = per_loop[i].load(std::memory_order_relaxed);
        if (n < fewest) {
            fewest = n;
            best = i;
        }
    }
    return best;
}

bool Runtime::Internal::admit(const std::shared_ptr<tcp::Session>& session, unsigned loop) {
    std::lock_guard lock(mutex);
    if (stop_requested) return false;
    std::size_t limit = runtime.options_.max_connections;
    if (limit != 0 && connections.size() >= limit) return false;
    connections.emplace(session->session_id(), session);
    per_loop[loop].fetch_add(1, std::memory_order_relaxed);  // relaxed: a hint (pick_loop)
    open.fetch_add(1, std::memory_order_relaxed);            // relaxed: a statistic
    accepted.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void Runtime::Internal::release(std::uint64_t id, unsigned loop) noexcept {
    std::shared_ptr<tcp::Session> last;  // freed outside the lock
    {
        std::lock_guard lock(mutex);
        auto it = connections.find(id);
        if (it == connections.end()) return;
        last = std::move(it->second);
        connections.erase(it);
        per_loop[loop].fetch_sub(1, std::memory_order_relaxed);  // relaxed: see admit()
        open.fetch_sub(1, std::memory_order_relaxed);
    }
    changed.notify_all();
}

Runtime::Runtime(RuntimeOptions options) : options_(std::move(options)) {
    if (!log::set_level(options_.log_level))
        throw std::invalid_argument("unknown log level '" + options_.log_level +
                                    "' (trace, debug, info, warn, err, critical, off)");
    if (options_.slice.count() < 0) throw std::invalid_argument("the slice must not be negative");
    if (options_.stall.count() < 0)
        throw std::invalid_argument("the stall threshold must not be negative");
    descriptor_limit_ = raise_descriptor_limit();
    pollers::SignalPoller::ignore_sigpipe();
    if (options_.handle_signals) {
        // Blocked here, before any thread starts, so that every thread
        // inherits the mask and only the signalfd sees them.
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
    }
    signals_ = std::make_unique<pollers::SignalPoller>(options_.name + "-signal");
    signals_->start();
    scheduler_ = std::make_unique<sched::Scheduler>(scheduler_options(options_));
    fds_ = std::make_unique<pollers::FdPoller>(*scheduler_, fd_options(options_));
    internal_ = std::make_unique<Internal>(*this, scheduler_->loop_count());
    auto on_failure = [this](const pollers::Poller& poller, std::string_view why) {
        detail::logger().error("poller {} failed ({}): stopping", poller.name(), why);
        stop();
    };
    fds_->set_failure_handler(on_failure);
    signals_->set_failure_handler(on_failure);
    fds_->start();
    internal_->control = scheduler_->make_group({.name = options_.name + " control"});
    internal_->stalls = std::make_unique<detail::StallDetector>(*scheduler_, options_.stall);

    if (options_.handle_signals) {
        auto on_signal = [this](const pollers::SignalInfo& info) {
            const char* name = info.signal == SIGINT ? "SIGINT" : "SIGTERM";
            if (stopping() || info.count > 1) {
                detail::logger().warn("{} during the graceful stop: forcing it", name);
                stop();
                force_stop();
                return;
            }
            detail::logger().info("{}: stopping gracefully (grace {} ms; send it again to force)",
                                  name, options_.grace.count());
            stop();
        };
        internal_->on_sigint = signals_->subscribe(SIGINT, internal_->control, on_signal);
        internal_->on_sigterm = signals_->subscribe(SIGTERM, internal_->control, on_signal);
        internal_->on_sigusr2 =
            signals_->subscribe(SIGUSR2, internal_->control, [this](const pollers::SignalInfo&) {
                detail::logger().info("SIGUSR2: what the loops run now:\n{}", dump());
            });
    }
    if (!options_.admin.empty()) {
        auto router = std::make_shared<http::Router>();
        add_admin_routes(*router, *this);
        http::ServerOptions server{.keep_alive_timeout = std::chrono::seconds(30), .name = "admin"};
        tcp::ListenerOptions listener = http::listener_options(server);
        listener.announce = false;  // its own line below says where it is
        admin_ = &listen(options_.admin, http::handler_factory(router, server), listener);
        detail::logger().info("admin endpoint: http://{}/dashboard (also /stats, /metrics, /dump)",
                              admin_->address().to_string());
    }
    if (options_.stats_interval.count() > 0) {
        internal_->stats_timer = internal_->control.every(options_.stats_interval, [this] {
            RuntimeStats s = stats();
            std::uint64_t events = 0;
            for (const auto& loop : s.scheduler.loops) events += loop.events;
            detail::logger().info(
                "stats: {} connections open, {} accepted, {} refused; {} bytes in, {} out; "
                "{} loops, {} events, {} groups",
                s.connections_open, s.connections_accepted, s.connections_refused, s.bytes_in,
                s.bytes_out, s.scheduler.loops.size(), events, s.scheduler.groups);
        });
    }
    detail::logger().info(
        "{} loops, slice {} us, readiness {}", scheduler_->loop_count(), options_.slice.count(),
        options_.fd_pollers == 0 ? std::string("in the loops")
                                 : std::to_string(options_.fd_pollers) + " poller threads");
}

Runtime::~Runtime() {
    stop();
    shutdown();
}

tcp::Listener& Runtime::listen(std::string_view address, tcp::HandlerFactory factory,
                               tcp::ListenerOptions options) {
    if (!factory) throw std::invalid_argument("Runtime::listen: no handler factory");
    return add_listener(address, std::move(factory), {}, std::move(options));
}

tcp::Listener& Runtime::listen_fibers(std::string_view address, tcp::StreamHandler serve,
                                      tcp::ListenerOptions options) {
    if (!serve) throw std::invalid_argument("Runtime::listen_fibers: no handler");
    return add_listener(address, {}, std::move(serve), std::move(options));
}

tcp::Listener& Runtime::add_listener(std::string_view address, tcp::HandlerFactory factory,
                                     tcp::StreamHandler serve, tcp::ListenerOptions options) {
    tcp::Address parsed = tcp::Address::parse(address);
    auto listener = std::make_unique<tcp::Listener>(*this, parsed, std::move(factory),
                                                    std::move(serve), std::move(options));
    tcp::Listener& out = *listener;
    // Watched before it is published: shutdown() may close it from then on.
    out.start(*fds_);
    {
        std::lock_guard lock(internal_->mutex);
        if (internal_->stop_requested) throw std::logic_error("Runtime::listen() after stop()");
        internal_->listeners.push_back(std::move(listener));
    }
    if (out.options().announce) detail::logger().info("listening on {}", out.address().to_string());
    return out;
}

udp::Socket& Runtime::bind_udp(std::string_view address, udp::Handler handler,
                               udp::Options options) {
    if (!handler) throw std::invalid_argument("Runtime::bind_udp: no handler");
    auto socket = std::make_unique<udp::Socket>(*this, tcp::Address::parse(address),
                                                std::move(handler), std::move(options));
    udp::Socket& out = *socket;
    out.start(*fds_);  // watched before it is published, as listen()
    {
        std::lock_guard lock(internal_->mutex);
        if (internal_->stop_requested) throw std::logic_error("Runtime::bind_udp() after stop()");
        internal_->datagram_sockets.push_back(std::move(socket));
    }
    detail::logger().info("udp bound to {}", out.address().to_string());
    return out;
}

int Runtime::run() {
    {
        std::unique_lock lock(internal_->mutex);
        internal_->ran = true;
        internal_->changed.wait(lock, [this] { return internal_->stop_requested; });
    }
    shutdown();
    std::lock_guard lock(internal_->mutex);
    return internal_->forced ? 1 : 0;
}

void Runtime::stop() noexcept {
    if (!internal_) return;  // still being constructed
    {
        std::lock_guard lock(internal_->mutex);
        if (internal_->stop_requested) return;
        internal_->stop_requested = true;
    }
    internal_->changed.notify_all();
}

void Runtime::force_stop() noexcept {
    if (!internal_) return;
    {
        std::lock_guard lock(internal_->mutex);
        internal_->stop_requested = true;
        internal_->forced = true;
    }
    internal_->changed.notify_all();
}

bool Runtime::stopping() const noexcept {
    std::lock_guard lock(internal_->mutex);
    return internal_->stop_requested;
}

RuntimeStats Runtime::stats() const {
    RuntimeStats out;
    out.name = options_.name;
    // relaxed: statistics, a snapshot
    out.connections_open = internal_->open.load(std::memory_order_relaxed);
    out.connections_accepted = internal_->accepted.load(std::memory_order_relaxed);
    out.connections_refused = internal_->refused.load(std::memory_order_relaxed);
    out.accept_pauses = internal_->accept_pauses.load(std::memory_order_relaxed);
    out.bytes_in = internal_->bytes_in.value();
    out.bytes_out = internal_->bytes_out.value();
    out.stall_reports = internal_->stalls->reports();
    out.last_stall = internal_->stalls->last();
    out.recent_stalls = internal_->stalls->recent();
    out.loops_now = internal_->stalls->now();
    out.uptime_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - internal_->started)
            .count();
    out.scheduler = scheduler_->stats();
    out.rcu = rcu::Domain::default_domain().stats();
    out.fds = fds_->stats();
    out.signals = signals_->stats();
    out.readiness = options_.fd_pollers == 0
                        ? std::string("in the loops")
                        : std::to_string(options_.fd_pollers) + " poller threads";
    return out;
}

std::string Runtime::dump() const {
    return internal_->stalls->dump();
}

void Runtime::shutdown() noexcept {
    Internal& in = *internal_;
    std::vector<tcp::Listener*> listeners;
    {
        std::lock_guard lock(in.mutex);
        if (in.shut_down) return;
        in.shut_down = true;
        for (auto& listener : in.listeners) listeners.push_back(listener.get());
        for (auto& socket : in.datagram_sockets) socket->close();
    }
    auto started = std::chrono::steady_clock::now();
    for (tcp::Listener* listener : listeners) listener->close();
    {
        // Each closes on its own group (bounded: a group runs within a slice).
        std::unique_lock lock(in.mutex);
        in.changed.wait_for(lock, std::chrono::seconds(2), [&] {
            if (in.forced) return true;
            for (tcp::Listener* listener : listeners)
                if (!listener->closed()) return false;
            return true;
        });
    }

    std::vector<std::shared_ptr<tcp::Session>> open;
    auto snapshot = [&] {
        std::lock_guard lock(in.mutex);
        open.clear();
        for (auto& [id, conn] : in.connections) open.push_back(conn);
    };
    snapshot();
    if (!open.empty()) detail::logger().info("stopping: {} connections to finish", open.size());
    for (auto& session : open) session->request_shutdown();
    open.clear();

    bool forced = false;
    {
        std::unique_lock lock(in.mutex);
        in.changed.wait_until(lock, started + options_.grace,
                              [&] { return in.connections.empty() || in.forced; });
        forced = in.forced;
    }
    snapshot();
    if (!open.empty()) {
        detail::logger().warn("{} connections still open {}: aborting them", open.size(),
                              forced ? "(stop forced)" : "after the grace period");
        for (auto& session : open) session->request_abort();
        open.clear();
        std::unique_lock lock(in.mutex);
        in.changed.wait_for(lock, std::chrono::seconds(1), [&] { return in.connections.empty(); });
    }
    in.stats_timer.cancel();
    in.on_sigint.cancel();
    in.on_sigterm.cancel();
    in.on_sigusr2.cancel();
    in.stalls.reset();  // before the loops go: it reads their activity
    // Closes every group: connections still open tear down in their close
    // handlers; then every RCU callback runs.
    scheduler_->stop();
    {
        // Destroyed outside the lock: handlers' destructors may call stats().
        decltype(in.connections) connections;
        decltype(in.listeners) listeners_owned;
        decltype(in.datagram_sockets) sockets_owned;
        {
            std::lock_guard lock(in.mutex);
            connections.swap(in.connections);
            listeners_owned.swap(in.listeners);
            sockets_owned.swap(in.datagram_sockets);
        }
    }
    fds_->stop();
    signals_->stop();
    detail::logger().info("stopped{}", forced ? " (forced)" : "");
}

}  // namespace quiesce
