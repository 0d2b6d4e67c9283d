// FdPoller: readiness of file descriptors (sockets, pipes, eventfds, ...) as
// events of the groups that own them, through libevent on poller threads.
//
//     pollers::FdPoller fds;                       // one poller thread by default
//     fds.start();
//     pollers::FdWatch watch = fds.watch(sock, conn, pollers::kRead,
//         [&](pollers::Ready ready) { drain(sock); },   // an event of `conn`
//         {.edge_triggered = true});
//     ...
//     watch.cancel();   // from any thread; after it returns no handler starts
//
// In a fiber, straight-line:
//
//     pollers::FiberFd io(fds, sock);              // a persistent watch for this fiber
//     while (io.wait_readable(5s) == pollers::WaitResult::kReady) read_until_eagain(sock);
//
// Semantics:
// - A handler runs as an event of its group: never two at once, in order with
//   the group's other events, on whichever loop runs the group (a group that
//   migrates keeps receiving its readiness). Readiness that arrives while the
//   handler is queued coalesces into one run; the handler gets the union of
//   what became ready.
// - Persistent watches (the default) fire every time the fd is ready (level)
//   or becomes ready (edge_triggered: drain until EAGAIN, or nothing fires
//   again). A level-triggered watch fires again after its handler ran if the
//   fd is still ready: it costs two epoll_ctl() calls per run (it leaves
//   epoll while its handler is queued, so the poller thread never spins);
//   an edge-triggered one costs none, so servers use edge_triggered.
//   One-shot watches fire once; rearm() arms them again.
// - cancel() from any thread: afterwards no handler of the watch starts. If
//   a handler is running on another thread right then, cancel() returns
//   kRunning (it finishes; nothing new starts); from the watch's own group it
//   never does. Destroying the FdWatch handle cancels.
// - Bad input gets an error at the call site, never from a poller thread: a
//   descriptor that is not open (EBADF), one already watched by this poller
//   (EEXIST: cancel that watch first; a closed fd must be unwatched before its
//   number is reused), one epoll cannot watch (EPERM: a regular file), or a
//   kernel refusal (ENOMEM, ENOSPC) throw std::system_error from watch(), or
//   come back as a std::error_code from try_watch().
//
// Cost: the poller thread's libevent callback does one atomic OR and, unless
// the handler is already queued, one MPSC push to the group (and a futex wake
// if the group's loop sleeps). watch() and cancel() take the poller's mutex
// and libevent's base lock and make an epoll_ctl system call.
//
// Threading: watch(), FdWatch and FiberFd members from any thread except
// where noted; handlers run on loops.
#pragma once

#include <quiesce/base/config.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include <quiesce/pollers/poller.hpp>
#include <quiesce/scheduler/group.hpp>

namespace quiesce::sched {
class Scheduler;
}

namespace quiesce::pollers {

/// What a watch asks for, and what a handler is told became ready (a bit set).
enum Ready : std::uint8_t {
    kRead = 1,
    kWrite = 2,
    kReadWrite = 3,
    /// The peer closed its sending side (FIN) or the connection (epoll's
    /// EPOLLRDHUP, libevent's EV_CLOSED). Reported only to a watch that asks
    /// for it (kRead | kHangup): an edge-triggered reader that sees a short
    /// read without it knows the socket is drained and need not read on to
    /// EAGAIN, because a later FIN raises a new edge that carries it.
    kHangup = 4,
};

struct WatchOptions {
    /// Fire until cancelled (else once, until rearm()).
    bool persistent = true;
    /// Fire when the fd becomes ready, not while it is (epoll's EPOLLET).
    bool edge_triggered = false;
};

enum class CancelResult : std::uint8_t {
    kCancelled,         ///< no handler runs and none will start
    kRunning,           ///< a handler runs on another thread now; none will start after it
    kAlreadyCancelled,  ///< cancelled before (or an empty handle)
};

/// How a fiber's wait ended.
enum class WaitResult : std::uint8_t {
    kReady,        ///< the fd is ready
    kTimedOut,     ///< the deadline passed first
    kCancelled,    ///< the watch was cancelled (FiberFd::cancel(), or the poller stopped)
    kInterrupted,  ///< FiberFd::interrupt(): the fiber has other work (the watch stays)
};

/// Where readiness is waited for (pollers/README.md, "Threads or loops").
enum class FdPlacement : std::uint8_t {
    /// On `threads` poller threads, each with its own event_base; an fd goes
    /// to thread fd % threads, which posts to the group's loop.
    kThreads,
    /// On the loops themselves: each loop gets an event_base and sleeps in
    /// its epoll_wait instead of on its futex (Scheduler::set_loop_waiter),
    /// and polls it between turns while busy; an fd goes to the base of its
    /// group's loop. No thread hop. Needs the scheduler; the loops' bases
    /// are shared with an AioPoller in AioPlacement::kLoops.
    kLoops,
};

struct FdPollerOptions {
    /// Poller threads (kThreads), each with its own libevent event_base; fds
    /// are spread over them (fd modulo threads).
    unsigned threads = 1;
    FdPlacement placement = FdPlacement::kThreads;
    /// Thread names are "NAME/i"; logs use it too.
    std::string name = "fd";
};

struct FdPollerStats {
    std::uint64_t watches = 0;        ///< registered now
    std::uint64_t readiness = 0;      ///< libevent callbacks (before coalescing)
    std::uint64_t posts = 0;          ///< handler runs queued to groups
    std::uint64_t closed_groups = 0;  ///< watches stopped because their group closed
};

namespace detail {
struct WatchCore;
class FdPollerImpl;
}  // namespace detail

/// A watch: move-only; destroying it cancels.
class FdWatch {
public:
    FdWatch() noexcept = default;
    explicit FdWatch(detail::WatchCore* core) noexcept : core_(core) {}
    FdWatch(FdWatch&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
    FdWatch& operator=(FdWatch&& other) noexcept;
    ~FdWatch();
    FdWatch(const FdWatch&) = delete;
    FdWatch& operator=(const FdWatch&) = delete;

    /// See the file comment. Thread: any. May block briefly while the poller
    /// thread's callback for this watch finishes (a few atomics and a post).
    CancelResult cancel() noexcept;
    /// Watches for `what` from now on (kRead, kWrite or both). Returns an
    /// error if cancelled or the kernel refuses. Thread: any.
    std::error_code modify(Ready what) noexcept;
    /// Arms a one-shot watch again (no-op for a persistent one).
    std::error_code rearm() noexcept;

    [[nodiscard]] int fd() const noexcept;
    [[nodiscard]] explicit operator bool() const noexcept { return core_ != nullptr; }

private:
    detail::WatchCore* core_ = nullptr;
};

class FdPoller final : public Poller {
public:
    using Handler = std::function<void(Ready)>;

    /// FdPlacement::kThreads only (std::invalid_argument otherwise).
    explicit FdPoller(FdPollerOptions options = {});
    /// Either placement; kLoops installs a waiter on every loop of
    /// `scheduler` at start(), which must outlive the poller's watches.
    FdPoller(sched::Scheduler& scheduler, FdPollerOptions options);
    /// stop(). Watches still registered keep their handles valid; cancel or
    /// destroy them before the poller goes.
    ~FdPoller() override;

    void start() override;
    void stop() noexcept override;

    /// Watches `fd` for `what` on behalf of `group`; `handler(ready)` runs as
    /// an event of `group`. Throws std::system_error (see the file comment)
    /// and std::logic_error when the poller is not running.
    [[nodiscard]] FdWatch watch(int fd, const sched::Group& group, Ready what, Handler handler,
                                WatchOptions options = {});
    /// The same, reporting errors as a code; `out` is left empty on error.
    std::error_code try_watch(int fd, const sched::Group& group, Ready what, Handler handler,
                              WatchOptions options, FdWatch& out) noexcept;

    [[nodiscard]] FdPollerStats stats() const;
    [[nodiscard]] const FdPollerOptions& options() const noexcept;

    /// Internal.
    [[nodiscard]] detail::FdPollerImpl& impl() noexcept { return *impl_; }

private:
    std::unique_ptr<detail::FdPollerImpl> impl_;
};

/// A persistent, edge-triggered watch for the fiber that makes it, for
/// straight-line I/O: read or write until EAGAIN, then wait. Thread: the
/// fiber (construction, waits); cancel() from any thread.
class FiberFd {
public:
    /// Watches `fd` for reading and writing for the calling fiber's group.
    /// Throws as FdPoller::watch(), and std::logic_error outside a fiber.
    FiberFd(FdPoller& poller, int fd);
    ~FiberFd();
    FiberFd(const FiberFd&) = delete;
    FiberFd& operator=(const FiberFd&) = delete;

    /// Returns at once if the fd became readable since the last wait that
    /// returned kReady, else suspends until it does, the timeout passes
    /// (negative: none), or the watch is cancelled. Yields: yes.
    WaitResult wait_readable(std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1));
    WaitResult wait_writable(std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1));
    /// Ends the watch; a fiber waiting gets kCancelled. Thread: any.
    void cancel() noexcept;
    /// Makes the wait in progress, or else the next one, return
    /// kInterrupted once (for work that other groups hand this fiber, such
    /// as output to send); the watch stays. Thread: any. Memory ordering:
    /// what the caller did before happens-before that wait returns.
    void interrupt() noexcept;
    [[nodiscard]] int fd() const noexcept { return fd_; }

private:
    struct State;
    WaitResult wait(Ready what, std::chrono::nanoseconds timeout);

    int fd_;
    std::shared_ptr<State> state_;
    FdWatch watch_;
};

/// One wait in a fiber, without keeping a watch: registers a one-shot watch,
/// suspends until `fd` is ready for `what`, the timeout passes (negative:
/// none), and unregisters. Three system calls per wait: keep a FiberFd for a
/// descriptor waited on often. Throws as FdPoller::watch(). Yields: yes.
WaitResult wait_ready(FdPoller& poller, int fd, Ready what,
                      std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1));
inline WaitResult wait_readable(FdPoller& poller, int fd,
                                std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) {
    return wait_ready(poller, fd, kRead, timeout);
}
inline WaitResult wait_writable(FdPoller& poller, int fd,
                                std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) {
    return wait_ready(poller, fd, kWrite, timeout);
}

}  // namespace quiesce::pollers
