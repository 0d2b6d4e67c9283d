// GlibPoller: the invoke queue (a GSource of our own), the poll function
// that makes the GLib thread a QSBR reader, and the two ways to run the
// context (a thread of ours, or the caller's thread).
//
// Threading: mutex_ guards the queue and the state of the run (accepting_,
// the thread, quit_); the queue runs on the GLib thread only. The poll
// function runs on whatever thread iterates the context: it reports for the
// reader registered on that thread (tls_reader), and only that.
#include <quiesce/pollers/glib_poller.hpp>

#include <glib.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <quiesce/rcu/qsbr.hpp>

#include "log.hpp"
#include "poller_thread.hpp"

namespace quiesce::pollers::detail {
namespace {

// The reader of the thread that iterates one of our contexts now; null on
// any other thread (the poll function then only polls).
thread_local rcu::QsbrReader* tls_reader = nullptr;
thread_local std::atomic<std::uint64_t>* tls_polls = nullptr;

// Every poll of the GLib thread is a quiescent state, and a poll that may
// block is an extended one (offline): a grace period never waits for an
// idle GUI. GLib calls this with its context lock released.
gint quiesce_poll(GPollFD* fds, guint count, gint timeout) {
    rcu::QsbrReader* reader = tls_reader;
    // Only the outermost poll is a quiescent state: a poll inside a dispatch
    // (g_main_context_pending(), a nested main loop) may have a caller that
    // still holds references. There the thread stays online, and grace
    // periods wait until the dispatch returns.
    if (reader == nullptr || g_main_depth() > 0) return g_poll(fds, count, timeout);
    reader->quiescent_state();
    reader->process_callbacks(64);
    tls_polls->fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
    if (timeout == 0) return g_poll(fds, count, 0);
    rcu::OfflineScope offline(*reader);
    return g_poll(fds, count, timeout);
}

}  // namespace

class GlibPollerImpl {
public:
    GlibPollerImpl(Poller& owner, GlibPollerOptions options)
        : owner_(owner),
          options_(std::move(options)),
          context_(options_.context != nullptr ? g_main_context_ref(options_.context)
                                               : g_main_context_new()) {
        static GSourceFuncs funcs = {&InvokeSource::prepare,
                                     &InvokeSource::check,
                                     &InvokeSource::dispatch,
                                     nullptr,
                                     nullptr,
                                     nullptr};
        source_ = reinterpret_cast<InvokeSource*>(g_source_new(&funcs, sizeof(InvokeSource)));
        source_->impl = this;
        g_source_set_name(&source_->base, "quiesce invoke");
        g_source_attach(&source_->base, context_);
    }

    ~GlibPollerImpl() {
        stop();
        g_source_destroy(&source_->base);
        g_source_unref(&source_->base);
        g_main_context_unref(context_);
    }

    void start() {
        std::unique_ptr<PollerThread> old;
        {
            std::lock_guard lock(mutex_);
            if (here_)
                throw std::logic_error("GlibPoller::start(): the context runs in run_here()");
            if (thread_) {
                if (accepting_) return;
                old.swap(thread_);  // stopped from its own thread: joined here
            }
        }
        if (old) old->join();
        // A context another thread owns (GTK's default one while the main
        // thread runs it) cannot run here: say so now, not from the thread.
        if (!g_main_context_acquire(context_)) {
            throw std::logic_error(
                "GlibPoller::start(): another thread runs this context; use "
                "run_here() on that thread");
        }
        g_main_context_release(context_);
        std::lock_guard lock(mutex_);
        if (thread_ || here_) return;  // another start() won the race
        // [GL2] relaxed: no GLib thread of ours runs yet.
        stopping_.store(false, std::memory_order_relaxed);
        accepting_ = true;
        thread_ = std::make_unique<PollerThread>(owner_, options_.name);
        try {
            thread_->start([this](PollerThread& self) { run_thread(self); });
        } catch (...) {
            thread_.reset();
            accepting_ = false;
            throw;
        }
        logger().debug("glib poller '{}': a thread of its own", owner_.name());
    }

    void stop() noexcept {
        std::unique_ptr<PollerThread> thread;
        {
            std::unique_lock lock(mutex_);
            if (!thread_ && !here_) return;
            // A quit function runs on the GLib thread, queued after what was
            // accepted before; only while the run still accepts (once it
            // ends by itself, nothing would run it).
            if (accepting_ && quit_) {
                queue_.push_back(std::move(quit_));
                pending_.store(true, std::memory_order_release);  // [GL3], under mutex_
            }
            quit_ = nullptr;
            accepting_ = false;
            // [GL2] release: the loop that iterates reads it after each
            // iteration (acquire); the wake-up below makes it iterate.
            stopping_.store(true, std::memory_order_release);
            g_main_context_wakeup(context_);
            if (!on_glib_thread()) {
                if (thread_) {
                    thread.swap(thread_);
                } else {
                    // run_here() on another thread: wait until it has left
                    // (the poller may be destroyed next).
                    left_.wait(lock, [&] { return !here_; });
                }
            }
        }
        if (thread) thread->join();
    }

    void run_here(const std::function<int()>* body, std::function<void()> quit, int& result) {
        {
            std::lock_guard lock(mutex_);
            if (thread_ || here_) {
                throw std::logic_error("GlibPoller::run_here(): the context already runs");
            }
            if (rcu::current_qsbr_reader(rcu::Domain::default_domain()) != nullptr) {
                throw std::logic_error(
                    "GlibPoller::run_here(): this thread is already a QSBR reader (a loop "
                    "thread?); the GLib thread must be one of its own");
            }
            here_ = true;
            accepting_ = true;
            quit_ = std::move(quit);
            // [GL2] relaxed: this thread reads it; stop() writes it under mutex_.
            stopping_.store(false, std::memory_order_relaxed);
        }
        struct Leave {
            GlibPollerImpl& impl;
            ~Leave() {
                {
                    std::lock_guard lock(impl.mutex_);
                    impl.here_ = false;
                    impl.accepting_ = false;
                    impl.quit_ = nullptr;
                }
                impl.left_.notify_all();
            }
        } leave{*this};
        rcu::QsbrReader reader(rcu::Domain::default_domain(), options_.name);
        logger().debug("glib poller '{}': runs on the calling thread", owner_.name());
        iterate(reader, body, result);
    }

    bool invoke(std::function<void()> fn) {
        bool wake = false;
        {
            std::lock_guard lock(mutex_);
            if (!accepting_) return false;
            wake = queue_.empty();
            queue_.push_back(std::move(fn));
            // [GL3] release, pairs with the acquire load in has_work(): a
            // hint; the queue itself is read under mutex_.
            pending_.store(true, std::memory_order_release);
        }
        // Only the first of a burst wakes the context: the others find it
        // already told (its dispatch empties the whole queue).
        if (wake) g_main_context_wakeup(context_);
        return true;
    }

    GMainContext* context() const noexcept { return context_; }

    bool on_glib_thread() const noexcept {
        // relaxed: equal only if this thread wrote it
        return glib_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id();
    }

    bool running() const {
        std::lock_guard lock(mutex_);
        return accepting_;
    }

    GlibPollerStats stats() const {
        GlibPollerStats out;
        out.invoked = invoked_.load(std::memory_order_relaxed);  // relaxed: counters
        out.polls = polls_.load(std::memory_order_relaxed);
        std::lock_guard lock(mutex_);
        out.queued = queue_.size();
        return out;
    }

private:
    struct InvokeSource {
        GSource base;
        GlibPollerImpl* impl;

        static gboolean prepare(GSource* source, gint* timeout) {
            *timeout = -1;
            return reinterpret_cast<InvokeSource*>(source)->impl->has_work();
        }
        static gboolean check(GSource* source) {
            return reinterpret_cast<InvokeSource*>(source)->impl->has_work();
        }
        static gboolean dispatch(GSource* source, GSourceFunc, gpointer) {
            reinterpret_cast<InvokeSource*>(source)->impl->run_queued();
            return G_SOURCE_CONTINUE;
        }
    };

    bool has_work() const noexcept {
        // [GL3] acquire, pairs with the release store in invoke().
        return pending_.load(std::memory_order_acquire);
    }

    // Runs what is queued now, in order; what is queued meanwhile waits for
    // the next dispatch (a closure that invokes again cannot starve GLib).
    void run_queued() noexcept {
        std::vector<std::function<void()>> batch;
        {
            std::lock_guard lock(mutex_);
            batch.swap(queue_);
            pending_.store(false, std::memory_order_relaxed);  // relaxed: under mutex_
        }
        for (auto& fn : batch) {
            try {
                fn();
            } catch (const std::exception& error) {
                logger().error("glib poller '{}': an invoked closure threw: {}", owner_.name(),
                               error.what());
            } catch (...) {
                logger().error("glib poller '{}': an invoked closure threw", owner_.name());
            }
            invoked_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
        }
    }

    void run_thread(PollerThread& self) {
        int unused = 0;
        iterate(self.reader(), nullptr, unused);
    }

    // The GLib thread's whole run: the hooks in, the loop, what was queued
    // run, the hooks out.
    void iterate(rcu::QsbrReader& reader, const std::function<int()>* body, int& result) {
        if (!g_main_context_acquire(context_)) {
            // Nothing accepted may wait forever: what is queued is dropped
            // (a fiber's call() then throws operation_canceled).
            std::vector<std::function<void()>> dropped;
            {
                std::lock_guard lock(mutex_);
                accepting_ = false;
                quit_ = nullptr;
                dropped.swap(queue_);
                pending_.store(false, std::memory_order_relaxed);  // relaxed: under mutex_
            }
            throw std::logic_error("glib poller '" + owner_.name() +
                                   "': another thread owns the context");
        }
        // relaxed: on_glib_thread() compares it with its own id, so only the
        // storing thread's own loads can see a match.
        glib_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
        g_main_context_push_thread_default(context_);
        GPollFunc previous = g_main_context_get_poll_func(context_);
        g_main_context_set_poll_func(context_, &quiesce_poll);
        tls_reader = &reader;
        tls_polls = &polls_;
        struct Restore {
            GlibPollerImpl& impl;
            GPollFunc previous;
            ~Restore() {
                // Whatever made the loop end (stop(), or a body that returned
                // by itself), nothing is accepted from here on, and every
                // closure accepted before runs, here, in order.
                {
                    std::lock_guard lock(impl.mutex_);
                    impl.accepting_ = false;
                    impl.quit_ = nullptr;
                }
                while (impl.has_work()) impl.run_queued();
                tls_reader = nullptr;
                tls_polls = nullptr;
                g_main_context_set_poll_func(impl.context_, previous);
                g_main_context_pop_thread_default(impl.context_);
                // relaxed: as the store in iterate()
                impl.glib_thread_.store(std::thread::id(), std::memory_order_relaxed);
                g_main_context_release(impl.context_);
            }
        } restore{*this, previous};
        if (body != nullptr) {
            result = (*body)();
            return;
        }
        // [GL2] acquire, pairs with the release store in stop().
        while (!stopping_.load(std::memory_order_acquire)) g_main_context_iteration(context_, TRUE);
    }

    Poller& owner_;
    const GlibPollerOptions options_;
    GMainContext* const context_;
    InvokeSource* source_ = nullptr;
    mutable std::mutex mutex_;
    std::condition_variable left_;              // here_ became false
    std::vector<std::function<void()>> queue_;  // mutex_
    std::function<void()> quit_;                // mutex_
    std::unique_ptr<PollerThread> thread_;      // mutex_
    bool accepting_ = false;                    // mutex_
    bool here_ = false;                         // mutex_
    std::atomic<bool> pending_{false};          // queue_ not empty; written under mutex_
    std::atomic<bool> stopping_{false};
    std::atomic<std::thread::id> glib_thread_{};
    std::atomic<std::uint64_t> invoked_{0};
    std::atomic<std::uint64_t> polls_{0};
};

}  // namespace quiesce::pollers::detail

namespace quiesce::pollers {

GlibPoller::GlibPoller(GlibPollerOptions options)
    : Poller(options.name.empty() ? "glib" : options.name) {
    if (options.name.empty()) options.name = "glib";
    impl_ = std::make_unique<detail::GlibPollerImpl>(*this, std::move(options));
}

GlibPoller::~GlibPoller() {
    stop();
}

void GlibPoller::start() {
    impl_->start();
}

void GlibPoller::stop() noexcept {
    impl_->stop();
}

void GlibPoller::run_here() {
    int unused = 0;
    impl_->run_here(nullptr, nullptr, unused);
}

int GlibPoller::run_here(const std::function<int()>& body, std::function<void()> quit) {
    if (!body) throw std::invalid_argument("GlibPoller::run_here() needs a body");
    int result = 0;
    impl_->run_here(&body, std::move(quit), result);
    return result;
}

bool GlibPoller::invoke(std::function<void()> fn) {
    if (!fn) throw std::invalid_argument("GlibPoller::invoke() needs a function");
    return impl_->invoke(std::move(fn));
}

GMainContext* GlibPoller::context() const noexcept {
    return impl_->context();
}

bool GlibPoller::on_glib_thread() const noexcept {
    return impl_->on_glib_thread();
}

bool GlibPoller::running() const noexcept {
    return impl_->running();
}

GlibPollerStats GlibPoller::stats() const {
    return impl_->stats();
}

}  // namespace quiesce::pollers
