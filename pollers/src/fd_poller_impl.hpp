// The FdPoller's state (private): one libevent event_base and one thread per
// poller thread, and the registry of watched fds.
//
// Threading: bases_ is fixed between start() and the destructor; each base is
// run by its thread and reached from other threads only through libevent's
// thread-safe calls (evthread_use_pthreads); mutex_ guards the registry and
// running_.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <quiesce/base/cacheline.hpp>
#include <quiesce/pollers/fd_poller.hpp>

#include "poller_thread.hpp"
#include "reactor.hpp"

struct event_base;

namespace quiesce::pollers::detail {

struct WatchCore;

class FdPollerImpl {
public:
    FdPollerImpl(FdPoller& api, sched::Scheduler* scheduler, FdPollerOptions options);
    ~FdPollerImpl();

    void start();
    void stop() noexcept;
    std::error_code try_watch(int fd, const sched::Group& group, Ready what,
                              FdPoller::Handler handler, WatchOptions options,
                              std::chrono::nanoseconds timeout, FdWatch& out) noexcept;

    [[nodiscard]] event_base* base(unsigned index) const noexcept { return bases_[index]->base; }
    /// The fd leaves the registry (cancel()).
    void forget(int fd, const WatchCore* core) noexcept;
    /// Counters, bumped by the poller threads (their own lines).
    void count_readiness(unsigned base_index) noexcept;
    void count_post(unsigned base_index, bool posted) noexcept;

    [[nodiscard]] FdPollerStats stats() const;
    const FdPollerOptions options;

private:
    struct Base {
        event_base* base = nullptr;
        std::unique_ptr<PollerThread> thread;  // kThreads
        std::shared_ptr<Reactor> reactor;      // kLoops: owns `base`
        // Written by this base's thread only (relaxed), read by stats().
        alignas(base::kNoFalseSharing) std::atomic<std::uint64_t> readiness{0};
        std::atomic<std::uint64_t> posts{0};
        std::atomic<std::uint64_t> closed_groups{0};
    };

    void run(Base& base, PollerThread& self);

    void make_bases();
    [[nodiscard]] unsigned base_for(int fd, const sched::Group& group) const noexcept;

    FdPoller& api_;
    sched::Scheduler* const scheduler_;  // kLoops
    std::vector<std::unique_ptr<Base>> bases_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    bool running_ = false;                         // mutex_
    std::unordered_map<int, WatchCore*> watches_;  // mutex_
};

}  // namespace quiesce::pollers::detail
