// GlibPoller: a GLib main context (and with it GTK) beside the loops. The
// GLib thread runs closures that groups hand it, in order, and GLib code
// posts events to groups as any thread may. The GLib thread is a QSBR reader
// of the default domain: offline while GLib polls, a quiescent state at each
// poll, so GLib and GTK callbacks read rcu::Ptr data directly.
//
//     // GLib on a thread of its own (a context the poller owns)
//     pollers::GlibPoller glib;
//     glib.start();
//     glib.invoke([] { g_print("on the GLib thread\n"); });   // any thread
//     std::string title = glib.call([&] { return read_title(window); });  // a fiber
//
//     // GTK on the main thread: its default context, run here until stop()
//     pollers::GlibPoller gui({.context = g_main_context_default()});
//     gtk_init();
//     ... build windows; a loop's group does gui.invoke([=] { update(label); });
//     gui.run_here();                  // returns once something calls gui.stop()
//
//     // or around a GtkApplication's own loop
//     gui.run_here([&] { return g_application_run(app, argc, argv); },
//                  [&] { g_application_quit(app); });    // what stop() runs
//
// From GLib to the loops: `group.post(fn)` from any GLib callback.
//
// Limits: a dispatch (a GLib callback, an invoked closure) runs between two
// quiescent states of the GLib thread and may hold rcu references for its
// whole length: only the outermost poll is a quiescent state, so a poll
// inside a dispatch (g_main_context_pending(), a nested main loop) keeps
// the thread online and grace periods wait until the dispatch returns. It
// must not call rcu synchronize() (an online reader; use retire()/call()).
// A long dispatch holds up grace periods like a long group turn. The thread
// that runs the context must not already be a QSBR reader (a loop thread
// cannot run_here()). start() on a context another thread runs throws
// std::logic_error; stop() from another thread waits for run_here() to
// return.
//
// Threading: start(), stop(), run_here() from any one thread at a time;
// stop() also from the GLib thread itself (a window's close handler);
// invoke() from any thread; call() on a fiber.
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

typedef struct _GMainContext GMainContext;  // NOLINT: GLib's own declaration

namespace quiesce::pollers {

struct GlibPollerOptions {
    /// Thread name ("NAME", at most 15 bytes are kept) and log name.
    std::string name = "glib";
    /// The context to run (the poller takes a reference). Null: a new
    /// context the poller owns. GTK uses g_main_context_default().
    GMainContext* context = nullptr;
};

struct GlibPollerStats {
    std::uint64_t invoked = 0;  ///< closures run on the GLib thread
    std::uint64_t polls = 0;    ///< times GLib polled (quiescent states reported)
    std::uint64_t queued = 0;   ///< closures waiting now
};

namespace detail {
class GlibPollerImpl;
}  // namespace detail

class GlibPoller final : public Poller {
public:
    explicit GlibPoller(GlibPollerOptions options = {});
    /// stop().
    ~GlibPoller() override;

    /// Starts a thread that iterates the context until stop(). Throws
    /// std::logic_error if the context already runs here (run_here()).
    void start() override;
    /// Makes the thread or run_here() return once the closures already
    /// queued have run (they all run: nothing accepted is dropped); joins
    /// the thread. After run_here(body, quit), runs `quit` on the GLib
    /// thread. Bounded: the context is woken. Idempotent.
    void stop() noexcept override;

    /// Makes the calling thread the GLib thread and iterates the context on
    /// it until stop(). For GTK: the main thread, after gtk_init().
    void run_here();
    /// The same around a main loop that is not ours (g_application_run()):
    /// runs `body` with the hooks installed and returns its result; stop()
    /// asks `quit` (run on the GLib thread) to make `body` return.
    int run_here(const std::function<int()>& body, std::function<void()> quit);

    /// Queues `fn` to run on the GLib thread after every closure queued
    /// before it. Returns false, running nothing, when the context is not
    /// running. An exception escaping `fn` is logged and dropped. Thread:
    /// any. Cost: a mutex and, when the queue was empty, one wake-up of the
    /// context (a write to its eventfd).
    bool invoke(std::function<void()> fn);

    /// In a fiber: runs `fn()` on the GLib thread and returns its result (or
    /// rethrows its exception). Throws std::system_error(operation_canceled)
    /// when the context is not running. Yields: yes (a quiescent state).
    template <typename F>
    std::invoke_result_t<F&> call(F&& fn);

    [[nodiscard]] GMainContext* context() const noexcept;
    /// True on the thread that iterates the context now.
    [[nodiscard]] bool on_glib_thread() const noexcept;
    /// True between start()/run_here() and stop().
    [[nodiscard]] bool running() const noexcept;
    [[nodiscard]] GlibPollerStats stats() const;

private:
    std::unique_ptr<detail::GlibPollerImpl> impl_;
};

template <typename F>
std::invoke_result_t<F&> GlibPoller::call(F&& fn) {
    return detail::call_elsewhere(
        [this](std::function<void()> job) { return invoke(std::move(job)); }, std::forward<F>(fn),
        "the GLib poller is not running");
}

}  // namespace quiesce::pollers
