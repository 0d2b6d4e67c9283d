// SignalPoller: a signalfd and an eventfd polled by one thread; arrivals are
// coalesced per subscription and posted to its group.
//
// Threading: mutex_ guards the subscriptions and the signal mask (the
// signalfd's mask is changed under it); the poller thread reads the signalfd
// and delivers; a subscription's pending info has its own mutex, shared by
// the poller thread (adding) and the handler's run (taking). Labels [SG1]-[SG2]
// in pollers/README.md.
#include <quiesce/pollers/signal_poller.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include <quiesce/base/signals.hpp>

#include "log.hpp"
#include "poller_thread.hpp"

namespace quiesce::pollers {
namespace detail {

struct SignalSubscriptionCore {
    SignalPollerImpl* owner = nullptr;
    int signal = 0;
    sched::Group group;
    SignalPoller::Handler handler;
    static constexpr std::uint32_t kRunning = 1, kCancelled = 2;
    /// [SG3]: a run that sets kRunning after cancel() set kCancelled does not
    /// call the handler; one that set it before is running already.
    std::atomic<std::uint32_t> state{0};
    /// True while a run is queued; [SG1] with the pending info below.
    std::atomic<bool> queued{false};
    std::mutex info_mutex;
    SignalInfo pending;  // info_mutex: count since the last run, last sender

    void run();
};

class SignalPollerImpl {
public:
    SignalPollerImpl(SignalPoller& api) : api_(api) { sigemptyset(&mask_); }
    ~SignalPollerImpl() { stop(); }

    void start();
    void stop() noexcept;
    SignalSubscription subscribe(int signal, const sched::Group& group,
                                 SignalPoller::Handler handler);
    void unsubscribe(SignalSubscriptionCore* core) noexcept;
    void block_in_this_thread() const;
    SignalPollerStats stats() const;

    std::atomic<std::uint64_t> runs{0};  // relaxed: a counter

private:
    void run(PollerThread& self);
    void deliver(const signalfd_siginfo& info);

    SignalPoller& api_;
    mutable std::mutex mutex_;
    std::multimap<int, std::shared_ptr<SignalSubscriptionCore>> subscriptions_;  // mutex_
    sigset_t mask_;         // mutex_: every signal subscribed so far
    int signal_fd_ = -1;    // mutex_ (set once by start)
    int wake_fd_ = -1;      // mutex_ (set once by start)
    bool running_ = false;  // mutex_
    std::unique_ptr<PollerThread> thread_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> received_{0};  // poller thread only (relaxed)
};

namespace {

void check_signal(int signal) {
    if (signal <= 0 || signal > SIGRTMAX) {
        throw std::invalid_argument(
            fmt::format("pollers::SignalPoller::subscribe: {} is not a signal number (1..{})",
                        signal, SIGRTMAX));
    }
    if (signal == SIGKILL || signal == SIGSTOP) {
        throw std::invalid_argument(
            fmt::format("pollers::SignalPoller::subscribe: signal {} ({}) cannot be caught", signal,
                        sigabbrev_np(signal)));
    }
    for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT}) {
        if (signal == fault) {
            throw std::invalid_argument(fmt::format(
                "pollers::SignalPoller::subscribe: SIG{} is raised by faults in the thread "
                "that causes them; it cannot become an event",
                sigabbrev_np(signal)));
        }
    }
    if (signal == base::tick_signal()) {
        throw std::invalid_argument(fmt::format(
            "pollers::SignalPoller::subscribe: signal {} (SIGRTMAX-3) is the scheduler's tick "
            "signal",
            signal));
    }
    if (signal == base::backtrace_signal()) {
        throw std::invalid_argument(fmt::format(
            "pollers::SignalPoller::subscribe: signal {} (SIGRTMAX-4) is the stall detector's "
            "backtrace signal",
            signal));
    }
}

}  // namespace

void SignalSubscriptionCore::run() {
    // [SG1] seq_cst exchange, pairs with the one in deliver(): cleared before
    // the info is taken, so an arrival after this point queues another run.
    queued.exchange(false, std::memory_order_seq_cst);
    SignalInfo info;
    {
        std::lock_guard lock(info_mutex);
        info = pending;
        pending.count = 0;
    }
    if (info.count == 0) return;
    // [SG3] acq_rel, pairs with the exchange in SignalSubscription::cancel().
    if ((state.fetch_or(kRunning, std::memory_order_acq_rel) & kCancelled) != 0) return;
    struct Done {
        std::atomic<std::uint32_t>& state;
        ~Done() { state.fetch_and(~kRunning, std::memory_order_release); }  // also if it throws
    } done{state};
    handler(info);
}

void SignalPollerImpl::start() {
    std::lock_guard lock(mutex_);
    if (running_) return;
    if (signal_fd_ < 0) {
        signal_fd_ = signalfd(-1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
        if (signal_fd_ < 0) {
            throw std::system_error(errno, std::generic_category(),
                                    "pollers::SignalPoller: signalfd");
        }
        wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_fd_ < 0) {
            throw std::system_error(errno, std::generic_category(),
                                    "pollers::SignalPoller: eventfd");
        }
    }
    stopping_.store(false, std::memory_order_relaxed);  // relaxed: the thread is not running
    thread_ = std::make_unique<PollerThread>(api_, api_.name());
    thread_->start([this](PollerThread& self) { run(self); });
    running_ = true;
}

void SignalPollerImpl::stop() noexcept {
    {
        std::lock_guard lock(mutex_);
        if (!running_) return;
        running_ = false;
    }
    // [SG2] release, pairs with the acquire load in run(): the thread that
    // wakes from the eventfd sees the stop.
    stopping_.store(true, std::memory_order_release);
    const std::uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
    thread_->join();
    thread_.reset();
    std::uint64_t drained = 0;
    (void)!read(wake_fd_, &drained, sizeof drained);
}

void SignalPollerImpl::run(PollerThread& self) {
    signalfd_siginfo batch[32];
    while (!stopping_.load(std::memory_order_acquire)) {  // [SG2]
        pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        const int ready = self.blocking([&] { return poll(fds, 2, -1); });
        if (ready < 0 && errno != EINTR) {
            throw std::system_error(errno, std::generic_category(), "poll of the signalfd");
        }
        for (;;) {
            ssize_t n = 0;
            {
                // Under mutex_, which subscribe() holds while it changes the
                // signalfd's mask (the kernel would cope; ThreadSanitizer
                // sees the two calls on one descriptor as a race).
                std::lock_guard lock(mutex_);
                n = read(signal_fd_, batch, sizeof batch);
            }
            if (n <= 0) break;  // EAGAIN: drained
            const auto count = static_cast<std::size_t>(n) / sizeof(signalfd_siginfo);
            received_.store(received_.load(std::memory_order_relaxed) + count,
                            std::memory_order_relaxed);  // relaxed: one writer, a counter
            for (std::size_t i = 0; i < count; ++i) deliver(batch[i]);
        }
        self.batch_done();
    }
}

void SignalPollerImpl::deliver(const signalfd_siginfo& info) {
    std::vector<std::shared_ptr<SignalSubscriptionCore>> targets;
    {
        std::lock_guard lock(mutex_);
        auto [first, last] = subscriptions_.equal_range(static_cast<int>(info.ssi_signo));
        for (auto it = first; it != last; ++it) targets.push_back(it->second);
    }
    for (auto& core : targets) {
        {
            std::lock_guard lock(core->info_mutex);
            core->pending.signal = static_cast<int>(info.ssi_signo);
            core->pending.count += 1;
            core->pending.sender_pid = static_cast<pid_t>(info.ssi_pid);
            core->pending.sender_uid = static_cast<uid_t>(info.ssi_uid);
            core->pending.code = info.ssi_code;
        }
        // [SG1] seq_cst, pairs with the exchange in run(): either the queued
        // run has not taken the info yet and takes ours, or we queue another.
        if (core->queued.exchange(true, std::memory_order_seq_cst)) continue;
        runs.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
        if (!core->group.post([core] { core->run(); })) {
            core->queued.store(false, std::memory_order_relaxed);  // relaxed: the group is gone
        }
    }
}

SignalSubscription SignalPollerImpl::subscribe(int signal, const sched::Group& group,
                                               SignalPoller::Handler handler) {
    check_signal(signal);
    if (!group || !handler) {
        throw std::invalid_argument("pollers::SignalPoller::subscribe needs a group and a handler");
    }
    auto core = std::make_shared<SignalSubscriptionCore>();
    core->owner = this;
    core->signal = signal;
    core->group = group;
    core->handler = std::move(handler);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signal);
    // Blocked here before it is added to the signalfd: it stays pending for
    // the signalfd instead of taking its default action in this thread.
    pthread_sigmask(SIG_BLOCK, &one, nullptr);
    std::lock_guard lock(mutex_);
    if (sigismember(&mask_, signal) == 0) {
        sigaddset(&mask_, signal);
        if (signal_fd_ >= 0 && signalfd(signal_fd_, &mask_, 0) < 0) {
            sigdelset(&mask_, signal);
            throw std::system_error(errno, std::generic_category(),
                                    "pollers::SignalPoller: signalfd (changing its mask)");
        }
    }
    subscriptions_.emplace(signal, core);
    return SignalSubscription(std::move(core));
}

void SignalPollerImpl::unsubscribe(SignalSubscriptionCore* core) noexcept {
    std::lock_guard lock(mutex_);
    auto [first, last] = subscriptions_.equal_range(core->signal);
    for (auto it = first; it != last; ++it) {
        if (it->second.get() == core) {
            subscriptions_.erase(it);
            break;
        }
    }
    // The signal stays in the mask and blocked: unblocking it would let its
    // default action (often: end the process) happen in some thread.
}

void SignalPollerImpl::block_in_this_thread() const {
    std::lock_guard lock(mutex_);
    pthread_sigmask(SIG_BLOCK, &mask_, nullptr);
}

SignalPollerStats SignalPollerImpl::stats() const {
    SignalPollerStats out;
    out.received = received_.load(std::memory_order_relaxed);  // relaxed: counters
    out.runs = runs.load(std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    out.subscriptions = subscriptions_.size();
    return out;
}

}  // namespace detail

SignalSubscription& SignalSubscription::operator=(SignalSubscription&& other) noexcept {
    if (this != &other) {
        cancel();
        core_ = std::move(other.core_);
    }
    return *this;
}

SignalSubscription::~SignalSubscription() {
    cancel();
}

bool SignalSubscription::cancel() noexcept {
    if (!core_) return false;
    // [SG3] acq_rel, pairs with the fetch_or in run(): a run that has not
    // started its handler by now never will.
    const std::uint32_t before = core_->state.fetch_or(detail::SignalSubscriptionCore::kCancelled,
                                                       std::memory_order_acq_rel);
    if ((before & detail::SignalSubscriptionCore::kCancelled) != 0) return false;
    core_->owner->unsubscribe(core_.get());
    return true;
}

SignalPoller::SignalPoller(std::string name)
    : Poller(name.empty() ? "signal" : std::move(name)),
      impl_(std::make_unique<detail::SignalPollerImpl>(*this)) {}

SignalPoller::~SignalPoller() = default;

void SignalPoller::start() {
    impl_->start();
}
void SignalPoller::stop() noexcept {
    impl_->stop();
}

SignalSubscription SignalPoller::subscribe(int signal, const sched::Group& group, Handler handler) {
    return impl_->subscribe(signal, group, std::move(handler));
}

void SignalPoller::block_in_this_thread() const {
    impl_->block_in_this_thread();
}

void SignalPoller::ignore_sigpipe() {
    struct sigaction action {};
    action.sa_handler = SIG_IGN;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGPIPE, &action, nullptr) != 0) {
        throw std::system_error(errno, std::generic_category(), "sigaction(SIGPIPE, SIG_IGN)");
    }
}

SignalPollerStats SignalPoller::stats() const {
    return impl_->stats();
}

}  // namespace quiesce::pollers
