// The poller interface: a poller owns threads that block on one kind of
// source (file descriptors, signals, file I/O, a GUI main loop, blocking
// calls) and turns what they see into events of the groups that asked.
//
//     pollers::FdPoller fds(scheduler);          // a Poller
//     fds.set_failure_handler([&](const pollers::Poller& p, std::string_view why) {
//         runtime.stop();                        // a dead poller stops the server
//     });
//     fds.start();
//     ...
//     fds.stop();                                // joins its threads, bounded
//
// Writing a new one: derive from Poller, run each thread with PollerThread
// (pollers/README.md, "Writing a poller"): it makes the thread a QSBR reader
// of the default domain that is offline while it blocks and reports a
// quiescent state after each batch, blocks every asynchronous signal in it,
// and turns an exception escaping the thread into fail().
//
// Threading: start(), stop() and the failure handler's setter from any one
// thread at a time (not from the poller's own threads); name() and stats from
// any thread.
#pragma once

#include <quiesce/base/config.hpp>

#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace quiesce::pollers {

class Poller {
public:
    /// Called once, from the failing thread, when the poller cannot go on
    /// (its thread threw, or a system call that cannot fail did). Must not
    /// block for long or call stop() on this poller (post to a group, or set a
    /// flag, instead).
    using FailureHandler = std::function<void(const Poller& poller, std::string_view why)>;

    explicit Poller(std::string name) : name_(std::move(name)) {}
    virtual ~Poller() = default;
    Poller(const Poller&) = delete;
    Poller& operator=(const Poller&) = delete;

    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    /// Starts the poller's threads. Throws std::system_error when a thread,
    /// descriptor or ring cannot be set up. Idempotent.
    virtual void start() = 0;
    /// Stops and joins the poller's threads, also while they block (bounded:
    /// each is woken). What is registered stays registered but no longer
    /// fires. Idempotent.
    virtual void stop() noexcept = 0;

    void set_failure_handler(FailureHandler handler);
    /// True once fail() has been called.
    [[nodiscard]] bool failed() const noexcept;

    /// Logs `why` at error and calls the failure handler once. Thread: any
    /// (a poller's own thread, usually).
    void fail(std::string_view why) noexcept;

private:
    const std::string name_;
    mutable std::mutex mutex_;
    FailureHandler on_failure_;  // mutex_
    bool failed_ = false;        // mutex_
};

}  // namespace quiesce::pollers
