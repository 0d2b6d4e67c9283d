// SignalPoller: signals as ordinary events of groups, through signalfd on a
// poller thread.
//
//     pollers::SignalPoller signals;               // in main(), before other threads
//     signals.start();
//     auto hup = signals.subscribe(SIGHUP, config_group,
//                                  [](const pollers::SignalInfo& s) { reload(); });
//     pollers::SignalPoller::ignore_sigpipe();     // a closed peer is an EPIPE, not a death
//
// A signal is delivered to signalfd only while every thread blocks it: the
// threads quiesce starts block every asynchronous signal (loops, pollers,
// offload workers, the RCU callback thread), and subscribe() blocks the
// signal in the calling thread. Threads the application starts inherit the
// mask of the thread that creates them: subscribe (or call
// block_in_this_thread()) before starting them, or block the signals in them
// yourself, or the kernel may hand the signal to one of them instead.
//
// Coalescing: the kernel keeps one pending instance of each standard signal
// (two SIGHUPs in quick succession may arrive as one; real-time signals
// queue), and a handler that is queued when more instances arrive runs once:
// SignalInfo::count says how many were read, and the sender fields describe
// the last one. A storm of tens of thousands of signals costs each
// subscriber a handful of runs, never a queue that grows.
//
// Refused with std::invalid_argument at subscribe(): numbers outside 1..SIGRTMAX,
// SIGKILL and SIGSTOP (they cannot be caught), the fault signals (SIGSEGV,
// SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT), and the scheduler's tick
// signal (SIGRTMAX-3), the stall detector's (SIGRTMAX-4). Only process-directed signals (kill(),
// the terminal, a timer) and signals directed at the poller's thread are seen.
//
// Threading: subscribe() and handles from any thread; handlers run on loops.
#pragma once

#include <quiesce/base/config.hpp>

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <quiesce/pollers/poller.hpp>
#include <quiesce/scheduler/group.hpp>

namespace quiesce::pollers {

struct SignalInfo {
    int signal = 0;
    /// Instances read since the handler last ran (at least 1).
    std::uint64_t count = 0;
    /// The last instance's sender (0 for the kernel) and si_code.
    pid_t sender_pid = 0;
    uid_t sender_uid = 0;
    int code = 0;
};

struct SignalPollerStats {
    std::uint64_t received = 0;       ///< signals read from the signalfd
    std::uint64_t runs = 0;           ///< handler runs queued (after coalescing)
    std::uint64_t subscriptions = 0;  ///< registered now
};

namespace detail {
struct SignalSubscriptionCore;
class SignalPollerImpl;
}  // namespace detail

/// A subscription: move-only; destroying it unsubscribes. After cancel()
/// returns no handler of it starts (one that started already finishes).
class SignalSubscription {
public:
    SignalSubscription() noexcept = default;
    explicit SignalSubscription(std::shared_ptr<detail::SignalSubscriptionCore> core) noexcept
        : core_(std::move(core)) {}
    SignalSubscription(SignalSubscription&&) noexcept = default;
    SignalSubscription& operator=(SignalSubscription&& other) noexcept;
    ~SignalSubscription();
    SignalSubscription(const SignalSubscription&) = delete;
    SignalSubscription& operator=(const SignalSubscription&) = delete;

    /// Thread: any. Returns false if it was cancelled before.
    bool cancel() noexcept;
    [[nodiscard]] explicit operator bool() const noexcept { return core_ != nullptr; }

private:
    std::shared_ptr<detail::SignalSubscriptionCore> core_;
};

class SignalPoller final : public Poller {
public:
    using Handler = std::function<void(const SignalInfo&)>;

    explicit SignalPoller(std::string name = "signal");
    ~SignalPoller() override;

    void start() override;
    void stop() noexcept override;

    /// Runs `handler(info)` as an event of `group` for each (coalesced)
    /// arrival of `signal`, and blocks `signal` in the calling thread. Several
    /// subscriptions may share a signal; each gets every arrival. Throws
    /// std::invalid_argument for a signal it cannot handle (see above).
    [[nodiscard]] SignalSubscription subscribe(int signal, const sched::Group& group,
                                               Handler handler);

    /// Blocks every signal this poller handles now in the calling thread.
    void block_in_this_thread() const;

    /// SIGPIPE ignored process-wide: a write to a closed socket or pipe fails
    /// with EPIPE instead of killing the process. Servers want this.
    static void ignore_sigpipe();

    [[nodiscard]] SignalPollerStats stats() const;

private:
    std::unique_ptr<detail::SignalPollerImpl> impl_;
};

}  // namespace quiesce::pollers
