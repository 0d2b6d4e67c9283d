// QtPoller: a Qt event loop (QCoreApplication, QApplication) beside the
// loops. The Qt thread runs closures that groups hand it, in order, and Qt
// slots post events to groups as any thread may. The Qt thread is a QSBR
// reader of the default domain: offline while Qt waits for events, online
// while it delivers them, so Qt slots read rcu::Ptr data directly.
//
//     // Qt Widgets on the main thread
//     QApplication app(argc, argv);
//     pollers::QtPoller gui;
//     ... build widgets; a loop's group does gui.invoke([=] { label->setText(...); });
//     int code = gui.run_here();     // app.exec() until gui.stop() or quit()
//
//     // a headless Qt (QtNetwork, a Qt library) on a thread of its own
//     pollers::QtPoller qt;
//     qt.start();                    // makes the QCoreApplication on its thread
//     auto n = qt.call([] { return QSysInfo::machineHostName().size(); });   // a fiber
//
// From Qt to the loops: `group.post(fn)` from any slot.
//
// Limits: the Qt thread is the thread of the application object (Qt's own
// rule for widgets): run_here() on the thread that made it; start() only
// when the process has none yet (it makes one, owned by the poller, on its
// thread). A slot may hold rcu references for its whole length: only the
// outermost event loop's wait is a quiescent state (in a nested one,
// QDialog::exec(), the thread stays online and grace periods wait), and it
// must not call rcu synchronize() (use retire()). A long slot holds up grace
// periods like a long group turn. The Qt thread must not already be a QSBR
// reader (a loop thread cannot run_here()). stop() from another thread waits
// for run_here() to return.
//
// Threading: start(), stop(), run_here() from any one thread at a time;
// stop() also from the Qt thread itself; invoke() from any thread; call() on
// a fiber.
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <quiesce/pollers/outcome.hpp>
#include <quiesce/pollers/poller.hpp>
#include <quiesce/scheduler/fiber.hpp>

namespace quiesce::pollers {

struct QtPollerOptions {
    /// Thread name (at most 15 bytes are kept), log name, and the
    /// application name start() gives the QCoreApplication it makes.
    std::string name = "qt";
};

struct QtPollerStats {
    std::uint64_t invoked = 0;  ///< closures run on the Qt thread
    std::uint64_t waits = 0;    ///< times Qt was about to wait (quiescent states reported)
    std::uint64_t queued = 0;   ///< closures waiting now
};

namespace detail {
class QtPollerImpl;
}  // namespace detail

class QtPoller final : public Poller {
public:
    explicit QtPoller(QtPollerOptions options = {});
    /// stop().
    ~QtPoller() override;

    /// Starts a thread that makes a QCoreApplication and runs its event
    /// loop until stop(). Throws std::logic_error when the process already
    /// has an application object (use run_here() on its thread).
    void start() override;
    /// Makes the thread or run_here() return once the closures already
    /// queued have run (nothing accepted is dropped); joins the thread.
    /// Bounded: the event loop is told to quit. Idempotent.
    void stop() noexcept override;

    /// On the thread that made the application object: runs its event loop
    /// (QCoreApplication::exec()) until stop() or QCoreApplication::quit(),
    /// and returns exec()'s code. Throws std::logic_error without an
    /// application object, on another thread, or on a QSBR reader thread.
    int run_here();

    /// Queues `fn` to run on the Qt thread after every closure queued before
    /// it. Returns false, running nothing, when the event loop is not
    /// running. An exception escaping `fn` is logged and dropped. Thread:
    /// any. Cost: a mutex and, when the queue was empty, one posted Qt event.
    bool invoke(std::function<void()> fn);

    /// In a fiber: runs `fn()` on the Qt thread and returns its result (or
    /// rethrows its exception). Throws std::system_error(operation_canceled)
    /// when the event loop is not running. Yields: yes (a quiescent state).
    template <typename F>
    std::invoke_result_t<F&> call(F&& fn);

    /// True on the thread that runs the event loop now.
    [[nodiscard]] bool on_qt_thread() const noexcept;
    /// True between start()/run_here() and stop().
    [[nodiscard]] bool running() const noexcept;
    [[nodiscard]] QtPollerStats stats() const;

private:
    std::unique_ptr<detail::QtPollerImpl> impl_;
};

template <typename F>
std::invoke_result_t<F&> QtPoller::call(F&& fn) {
    return detail::call_elsewhere(
        [this](std::function<void()> job) { return invoke(std::move(job)); }, std::forward<F>(fn),
        "the Qt poller is not running");
}

}  // namespace quiesce::pollers
