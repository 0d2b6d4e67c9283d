// A poller's thread (private): a std::thread that is a QSBR reader of the
// default domain, offline while it blocks and reporting a quiescent state
// after each batch, started with every asynchronous signal blocked, and whose
// escaping exception fails its poller instead of ending the process.
//
//     PollerThread thread(poller, "fd-poll/0");
//     thread.start([&](PollerThread& self) {
//         while (!stopping) {
//             int n = self.blocking([&] { return epoll_wait(ep, events, 64, -1); });
//             for (...) post(...);           // may read RCU data here
//             self.batch_done();             // quiescent state, own callbacks
//         }
//     });
//     ... wake it (an eventfd) ...
//     thread.join();
//
// Threading: start() and join() from the owner; blocking() and batch_done()
// only on the thread itself.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <quiesce/pollers/poller.hpp>
#include <quiesce/rcu/qsbr.hpp>

namespace quiesce::pollers::detail {

class PollerThread {
public:
    using Body = std::function<void(PollerThread&)>;

    PollerThread(Poller& owner, std::string thread_name);
    ~PollerThread();
    PollerThread(const PollerThread&) = delete;
    PollerThread& operator=(const PollerThread&) = delete;

    /// Starts the thread running `body` and returns once it is registered
    /// as a QSBR reader. Throws std::system_error if the thread cannot start.
    void start(Body body);
    /// Waits for the thread to end (the owner must have woken it). Idempotent.
    void join() noexcept;
    [[nodiscard]] bool running() const noexcept { return thread_.joinable(); }

    /// Runs `fn` (a blocking call) with this thread offline, so that no grace
    /// period waits for it meanwhile. Thread: this one.
    template <typename F>
    decltype(auto) blocking(F&& fn) {
        rcu::OfflineScope offline(*reader_);
        return fn();
    }
    /// The end of a batch: a quiescent state and this thread's due RCU
    /// callbacks. Thread: this one. Cost: a load when nothing is due.
    void batch_done() noexcept {
        reader_->quiescent_state();
        reader_->process_callbacks(64);
    }

    /// The thread's QSBR reader, for code that must report for it from
    /// inside a library's own loop (the GLib poller's poll function). Thread:
    /// this one.
    [[nodiscard]] rcu::QsbrReader& reader() noexcept { return *reader_; }

private:
    void main(Body& body) noexcept;

    Poller& owner_;
    const std::string name_;
    std::thread thread_;
    rcu::QsbrReader* reader_ = nullptr;  // the thread's own, while it runs
};

}  // namespace quiesce::pollers::detail
