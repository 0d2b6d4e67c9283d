// What the runtime shares with its listeners and connections (private).
//
// Threading: `mutex` guards the connection registry, the listeners and the
// stop state; the counters are relaxed (statistics).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <quiesce/base/sharded_counter.hpp>
#include <quiesce/framework/runtime.hpp>

#include "stall_detector.hpp"

namespace quiesce {

struct Runtime::Internal {
    explicit Internal(Runtime& owner, unsigned loops);

    /// The loop with the fewest open connections placed on it.
    unsigned pick_loop() noexcept;
    /// Registers an accepted connection; false (nothing registered) when
    /// the runtime is stopping or `max_connections` are open.
    bool admit(const std::shared_ptr<tcp::Session>& session, unsigned loop);
    /// Drops a connection from the registry (its last call ran).
    void release(std::uint64_t id, unsigned loop) noexcept;
    std::uint64_t next_id() noexcept { return ids.fetch_add(1, std::memory_order_relaxed) + 1; }

    Runtime& runtime;
    std::mutex mutex;
    std::condition_variable changed;  // stop requested, a connection or listener went
    std::unordered_map<std::uint64_t, std::shared_ptr<tcp::Session>> connections;  // mutex
    std::vector<std::unique_ptr<tcp::Listener>> listeners;                         // mutex
    std::vector<std::unique_ptr<udp::Socket>> datagram_sockets;                    // mutex
    bool stop_requested = false;                                                   // mutex
    bool forced = false;                                                           // mutex
    bool shut_down = false;  // mutex: shutdown() ran
    bool ran = false;        // mutex: run() started

    std::unique_ptr<std::atomic<std::int64_t>[]> per_loop;  // open connections placed there
    unsigned loops;
    const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::atomic<std::uint64_t> ids{0};
    std::atomic<std::uint64_t> open{0};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> refused{0};
    std::atomic<std::uint64_t> accept_pauses{0};
    base::ShardedCounter bytes_in;
    base::ShardedCounter bytes_out;

    sched::Group control;  // signal handlers, the stats timer
    std::unique_ptr<detail::StallDetector> stalls;
    pollers::SignalSubscription on_sigusr2;
    pollers::SignalSubscription on_sigint;
    pollers::SignalSubscription on_sigterm;
    sched::Timer stats_timer;
};

}  // namespace quiesce
