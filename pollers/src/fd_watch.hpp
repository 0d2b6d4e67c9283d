// One watch of the FdPoller (private): the libevent event, the node that runs
// the handler as an event of the group, and the state that decides who frees
// it.
//
// Lifetime: four bits of `state` say who still needs the core. kQueued: the
// node is in the group's queue (set by the poller thread's callback, cleared
// when the node runs or is dropped). kRunning: the handler runs on a loop.
// kHandle: an FdWatch (or FiberFd) refers to it. kCancelled: cancel() has
// taken the event out of libevent (event_del, which waits for a callback in
// flight on the poller thread) and freed it, so no callback can set kQueued
// again. The core is deleted by whoever clears the last of kQueued, kRunning
// and kHandle once kCancelled is set.
//
// Threading: on_ready() on the poller thread; run()/drop() on the group's
// loop; cancel()/modify()/rearm() from any thread under control_mutex.
// Labels [FW1]-[FW3] in pollers/README.md.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <system_error>

#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/scheduler/event.hpp>
#include <quiesce/scheduler/group.hpp>

struct event;

namespace quiesce::pollers::detail {

class FdPollerImpl;

/// Passed to a handler with the Ready bits when a one-shot watch's timeout
/// (internal: wait_ready()) fired instead.
inline constexpr std::uint8_t kTimeoutBit = 0x10;

struct WatchCore : sched::detail::EventNode {
    static constexpr std::uint32_t kQueued = 1;
    static constexpr std::uint32_t kRunning = 2;
    static constexpr std::uint32_t kCancelled = 4;
    static constexpr std::uint32_t kHandle = 8;

    WatchCore(FdPollerImpl& owner, unsigned base_index, int fd, sched::Group group, Ready what,
              FdPoller::Handler handler, WatchOptions options);

    /// The libevent callback (poller thread): accumulate, and queue the node
    /// unless it is queued already.
    void on_ready(short libevent_what) noexcept;
    /// Takes the event out of libevent for good. Thread: any but the poller's.
    CancelResult cancel() noexcept;
    std::error_code modify(Ready next) noexcept;
    std::error_code rearm() noexcept;
    /// A level-triggered persistent watch, after its handler ran: arms the
    /// one-shot libevent event again (see fd_watch.cpp).
    std::error_code rearm_level() noexcept;
    /// The handle is gone (after cancel()).
    void release_handle() noexcept;

    /// Adds the event to libevent (`timeout` negative: none); errno-style
    /// error on failure. Called once by the poller, then by modify/rearm.
    std::error_code add(std::chrono::nanoseconds timeout) noexcept;

    FdPollerImpl& owner;
    const unsigned base_index;
    const int fd;
    const sched::Group group;
    const FdPoller::Handler handler;
    const WatchOptions options;
    Ready what;                  // control_mutex
    struct event* ev = nullptr;  // control_mutex; libevent's, freed by cancel()

    /// See the file comment. [FW1]-[FW3].
    std::atomic<std::uint32_t> state{kHandle};
    /// Ready bits (and kTimeoutBit) seen since the handler last ran; [FW1].
    std::atomic<std::uint8_t> pending{0};
    std::mutex control_mutex;

private:
    static sched::Status operation(sched::detail::EventNode* node, sched::detail::Action action);
    void run();
    /// Clears `bits`; deletes the core if that left it unreferenced.
    void clear(std::uint32_t bits) noexcept;
};

}  // namespace quiesce::pollers::detail
