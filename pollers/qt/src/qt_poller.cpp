// QtPoller: the invoke queue (an eventfd the Qt thread watches with a
// QSocketNotifier: one write per burst; nothing we own crosses Qt's own
// queues, whose locks ThreadSanitizer cannot see), the hooks that
// make the Qt thread a QSBR reader (the event dispatcher's aboutToBlock and
// awake signals, and an application event filter), and the two ways to run
// the event loop (a thread of ours with its own QCoreApplication, or the
// caller's thread with the application it made).
//
// Threading: mutex_ guards the queue and the run's state (accepting_,
// stopping_, the thread); the queue runs on the Qt thread only. The hooks
// run on the Qt thread and touch its reader only.
#include <quiesce/pollers/qt_poller.hpp>

#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QEvent>
#include <QObject>
#include <QSocketNotifier>
#include <QThread>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <quiesce/rcu/qsbr.hpp>

#include "log.hpp"
#include "poller_thread.hpp"

namespace quiesce::pollers::detail {
namespace {

// The Qt thread's reader, driven by what Qt says it does: about to wait
// (a quiescent state, then offline), awake again or delivering an event
// (online). Qt does not promise the two signals in strict pairs, so each
// step only acts when it changes something.
class ReaderHooks final : public QObject {
public:
    ReaderHooks(rcu::QsbrReader& reader, std::atomic<std::uint64_t>& waits)
        : reader_(reader), waits_(waits) {}

    void about_to_block() noexcept {
        // Only the outermost event loop's wait is a quiescent state: in a
        // nested one (QDialog::exec() in a slot) the slot that started it
        // may still hold references; the thread stays online there, and
        // grace periods wait until it returns.
        if (offline_ || QThread::currentThread()->loopLevel() > 1) return;
        reader_.quiescent_state();
        reader_.process_callbacks(64);
        waits_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
        reader_.offline();
        offline_ = true;
    }
    void awake() noexcept {
        if (!offline_) return;
        reader_.online();
        offline_ = false;
    }
    // Every event the application delivers on this thread passes here
    // first: whatever the dispatcher said, its receiver runs online.
    bool eventFilter(QObject*, QEvent*) override {
        awake();
        return false;
    }

private:
    rcu::QsbrReader& reader_;
    std::atomic<std::uint64_t>& waits_;
    bool offline_ = false;
};

}  // namespace

class QtPollerImpl {
public:
    QtPollerImpl(Poller& owner, QtPollerOptions options)
        : owner_(owner),
          options_(std::move(options)),
          app_name_(options_.name),
          wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        if (wake_fd_ < 0) {
            throw std::system_error(errno, std::generic_category(), "QtPoller: eventfd");
        }
    }

    ~QtPollerImpl() {
        stop();
        close(wake_fd_);
    }

    void start() {
        std::unique_ptr<PollerThread> old;
        {
            std::lock_guard lock(mutex_);
            if (thread_ && !accepting_) old.swap(thread_);  // stopped from its own thread
        }
        if (old) old->join();
        std::unique_lock lock(mutex_);
        if (thread_) return;
        if (here_) throw std::logic_error("QtPoller::start(): the event loop runs in run_here()");
        if (QCoreApplication::instance() != nullptr) {
            throw std::logic_error(
                "QtPoller::start(): this process already has a Qt application object; run its "
                "event loop with QtPoller::run_here() on the thread that made it");
        }
        stopping_ = false;
        setup_done_ = false;
        thread_ = std::make_unique<PollerThread>(owner_, options_.name);
        try {
            thread_->start([this](PollerThread& self) { run_thread(self); });
        } catch (...) {
            thread_.reset();
            throw;
        }
        // Started means invoke() is accepted: wait for the loop to be set up.
        ready_.wait(lock, [&] { return setup_done_; });
        logger().debug("qt poller '{}': a thread of its own", owner_.name());
    }

    void stop() noexcept {
        std::unique_ptr<PollerThread> thread;
        {
            std::unique_lock lock(mutex_);
            if (!thread_ && !here_) return;
            stopping_ = true;
            accepting_ = false;
            wake();  // the Qt thread sees stopping_ and quits its loop
            if (!on_qt_thread()) {
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

    int run_here() {
        QCoreApplication* app = QCoreApplication::instance();
        if (app == nullptr) {
            throw std::logic_error(
                "QtPoller::run_here(): make the QApplication (or QCoreApplication) first");
        }
        if (app->thread() != QThread::currentThread()) {
            throw std::logic_error(
                "QtPoller::run_here(): call it on the thread that made the application object");
        }
        if (rcu::current_qsbr_reader(rcu::Domain::default_domain()) != nullptr) {
            throw std::logic_error(
                "QtPoller::run_here(): this thread is already a QSBR reader (a loop thread?)");
        }
        {
            std::lock_guard lock(mutex_);
            if (thread_ || here_) throw std::logic_error("QtPoller::run_here(): already running");
            here_ = true;
            stopping_ = false;
        }
        struct Leave {
            QtPollerImpl& impl;
            ~Leave() {
                {
                    std::lock_guard lock(impl.mutex_);
                    impl.here_ = false;
                }
                impl.left_.notify_all();
            }
        } leave{*this};
        rcu::QsbrReader reader(rcu::Domain::default_domain(), options_.name);
        logger().debug("qt poller '{}': runs on the calling thread", owner_.name());
        return run_loop(reader);
    }

    bool invoke(std::function<void()> fn) {
        bool first = false;
        {
            std::lock_guard lock(mutex_);
            if (!accepting_) return false;
            first = queue_.empty();
            queue_.push_back(std::move(fn));
        }
        // Only the first of a burst wakes the Qt thread: its run takes the
        // whole queue.
        if (first) wake();
        return true;
    }

    bool on_qt_thread() const noexcept {
        // relaxed: equal only if this thread wrote it
        return qt_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id();
    }

    bool running() const {
        std::lock_guard lock(mutex_);
        return accepting_;
    }

    QtPollerStats stats() const {
        QtPollerStats out;
        out.invoked = invoked_.load(std::memory_order_relaxed);  // relaxed: counters
        out.waits = waits_.load(std::memory_order_relaxed);
        std::lock_guard lock(mutex_);
        out.queued = queue_.size();
        return out;
    }

private:
    void run_thread(PollerThread& self) {
        // start() waits for the setup, also when it fails.
        struct SetUp {
            QtPollerImpl& impl;
            ~SetUp() {
                {
                    std::lock_guard lock(impl.mutex_);
                    impl.setup_done_ = true;
                }
                impl.ready_.notify_all();
            }
        } set_up{*this};
        int argc = 1;
        char* argv[] = {app_name_.data(), nullptr};
        QCoreApplication app(argc, argv);
        (void)run_loop(self.reader());
    }

    // Runs what is queued now, in order; what is queued meanwhile comes with
    // the next posted event (a closure that invokes again cannot starve Qt).
    void run_queued() noexcept {
        std::vector<std::function<void()>> batch;
        {
            std::lock_guard lock(mutex_);
            batch.swap(queue_);
        }
        for (auto& fn : batch) {
            try {
                fn();
            } catch (const std::exception& error) {
                logger().error("qt poller '{}': an invoked closure threw: {}", owner_.name(),
                               error.what());
            } catch (...) {
                logger().error("qt poller '{}': an invoked closure threw", owner_.name());
            }
            invoked_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
        }
    }

    // The Qt thread's whole run, with the application object made: the hooks
    // in, exec(), every accepted closure run, the hooks out.
    int run_loop(rcu::QsbrReader& reader) {
        QCoreApplication* app = QCoreApplication::instance();
        QObject receiver;
        ReaderHooks hooks(reader, waits_);
        app->installEventFilter(&hooks);
        QAbstractEventDispatcher* dispatcher = QAbstractEventDispatcher::instance();
        const auto blocking = QObject::connect(
            dispatcher, &QAbstractEventDispatcher::aboutToBlock, &hooks,
            [&hooks] { hooks.about_to_block(); }, Qt::DirectConnection);
        const auto waking = QObject::connect(
            dispatcher, &QAbstractEventDispatcher::awake, &hooks, [&hooks] { hooks.awake(); },
            Qt::DirectConnection);
        QSocketNotifier notifier(static_cast<qintptr>(wake_fd_), QSocketNotifier::Read);
        QObject::connect(
            &notifier, &QSocketNotifier::activated, &receiver,
            [this, &hooks] {
                hooks.awake();  // closures run online, whatever Qt signalled
                std::uint64_t count = 0;
                while (read(wake_fd_, &count, sizeof count) > 0) {
                }
                bool stop = false;
                {
                    std::lock_guard lock(mutex_);
                    stop = stopping_;
                }
                run_queued();
                if (stop) QCoreApplication::exit(0);
            },
            Qt::DirectConnection);
        // relaxed: on_qt_thread() compares it with its own id, so only the
        // storing thread's own loads can see a match.
        qt_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
        bool stop_at_once = false;
        {
            std::lock_guard lock(mutex_);
            accepting_ = !stopping_;
            stop_at_once = stopping_;
            setup_done_ = true;
        }
        ready_.notify_all();
        const int code = stop_at_once ? 0 : app->exec();
        {
            std::lock_guard lock(mutex_);
            accepting_ = false;
        }
        hooks.awake();
        for (;;) {
            {
                std::lock_guard lock(mutex_);
                if (queue_.empty()) break;
            }
            run_queued();
        }
        QObject::disconnect(blocking);
        QObject::disconnect(waking);
        app->removeEventFilter(&hooks);
        qt_thread_.store(std::thread::id(), std::memory_order_relaxed);  // relaxed: as above
        return code;
    }

    void wake() noexcept {
        const std::uint64_t one = 1;
        // Cannot fail but by overflow (2^64 - 1 unread writes).
        while (write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }

    Poller& owner_;
    const QtPollerOptions options_;
    std::string app_name_;  // argv[0] of the application start() makes
    const int wake_fd_;     // an eventfd: invoke() and stop() wake the Qt thread
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::condition_variable left_;              // here_ became false
    std::vector<std::function<void()>> queue_;  // mutex_
    std::unique_ptr<PollerThread> thread_;      // mutex_
    bool accepting_ = false;                    // mutex_
    bool here_ = false;                         // mutex_
    bool stopping_ = false;                     // mutex_
    bool setup_done_ = false;                   // mutex_
    std::atomic<std::thread::id> qt_thread_{};
    std::atomic<std::uint64_t> invoked_{0};
    std::atomic<std::uint64_t> waits_{0};
};

}  // namespace quiesce::pollers::detail

namespace quiesce::pollers {

QtPoller::QtPoller(QtPollerOptions options) : Poller(options.name.empty() ? "qt" : options.name) {
    if (options.name.empty()) options.name = "qt";
    impl_ = std::make_unique<detail::QtPollerImpl>(*this, std::move(options));
}

QtPoller::~QtPoller() {
    stop();
}

void QtPoller::start() {
    impl_->start();
}

void QtPoller::stop() noexcept {
    impl_->stop();
}

int QtPoller::run_here() {
    return impl_->run_here();
}

bool QtPoller::invoke(std::function<void()> fn) {
    if (!fn) throw std::invalid_argument("QtPoller::invoke() needs a function");
    return impl_->invoke(std::move(fn));
}

bool QtPoller::on_qt_thread() const noexcept {
    return impl_->on_qt_thread();
}

bool QtPoller::running() const noexcept {
    return impl_->running();
}

QtPollerStats QtPoller::stats() const {
    return impl_->stats();
}

}  // namespace quiesce::pollers
