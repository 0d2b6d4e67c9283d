// FdPoller: libevent set-up, the poller threads, and registration.
//
// Threading: see fd_poller_impl.hpp. Registration validates on the calling
// thread and adds the event with libevent's thread-safe event_add(), which
// calls epoll_ctl() on this thread and wakes the base's thread if needed.
#include <event2/event.h>
#include <fcntl.h>

#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include <quiesce/base/misuse.hpp>
#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "fd_poller_impl.hpp"
#include "fd_watch.hpp"
#include "libevent_init.hpp"
#include "log.hpp"

namespace quiesce::pollers {
namespace detail {
namespace {

FdPollerOptions validated(FdPollerOptions options) {
    if (options.threads == 0) throw std::invalid_argument("FdPollerOptions::threads must be >= 1");
    if (options.name.empty()) options.name = "fd";
    return options;
}

}  // namespace

FdPollerImpl::FdPollerImpl(FdPoller& api, sched::Scheduler* scheduler, FdPollerOptions opts)
    : options(validated(std::move(opts))), api_(api), scheduler_(scheduler) {
    if (options.placement == FdPlacement::kLoops && scheduler_ == nullptr) {
        throw std::invalid_argument(
            "FdPlacement::kLoops needs the scheduler: FdPoller(scheduler, options)");
    }
}

FdPollerImpl::~FdPollerImpl() {
    stop();
    {
        std::lock_guard lock(mutex_);
        if (!watches_.empty()) {
            base::misuse(fmt::format(
                "pollers::FdPoller '{}' destroyed with {} watches still registered (fd {} among "
                "them): cancel or destroy every FdWatch and FiberFd before their poller",
                options.name, watches_.size(), watches_.begin()->first));
        }
    }
    for (auto& base : bases_) {
        if (!base->reactor) event_base_free(base->base);  // a reactor frees its own
    }
}

void FdPollerImpl::make_bases() {
    if (options.placement == FdPlacement::kLoops) {
        // Every loop sleeps in its own base from its next scheduling point.
        for (unsigned i = 0; i < scheduler_->loop_count(); ++i) {
            auto base = std::make_unique<Base>();
            base->reactor = reactor_for(*scheduler_, i);
            base->base = base->reactor->base();
            bases_.push_back(std::move(base));
        }
        return;
    }
    for (unsigned i = 0; i < options.threads; ++i) {
        auto base = std::make_unique<Base>();
        base->base = detail::new_base();
        if (base->base == nullptr) {
            throw std::system_error(errno != 0 ? errno : ENOMEM, std::generic_category(),
                                    "pollers::FdPoller: event_base_new");
        }
        bases_.push_back(std::move(base));
    }
}

unsigned FdPollerImpl::base_for(int fd, const sched::Group& group) const noexcept {
    const auto count = static_cast<unsigned>(bases_.size());
    if (options.placement == FdPlacement::kLoops) {
        const int loop = group.stats().loop;  // where the group runs (or will)
        if (loop >= 0) return static_cast<unsigned>(loop) % count;
    }
    return static_cast<unsigned>(fd) % count;
}

void FdPollerImpl::start() {
    std::lock_guard lock(mutex_);
    if (running_) return;
    init_libevent();
    if (bases_.empty()) make_bases();
    stopping_.store(false, std::memory_order_relaxed);  // relaxed: no thread runs yet
    for (unsigned i = 0; i < bases_.size() && options.placement == FdPlacement::kThreads; ++i) {
        Base& base = *bases_[i];
        base.thread = std::make_unique<PollerThread>(api_, options.name + "/" + std::to_string(i));
        base.thread->start([this, &base](PollerThread& self) { run(base, self); });
    }
    running_ = true;
    logger().debug("fd poller '{}': {} {}, libevent {} ({})", options.name, bases_.size(),
                   options.placement == FdPlacement::kLoops ? "loops" : "thread(s)",
                   event_get_version(), event_base_get_method(bases_[0]->base));
}

void FdPollerImpl::run(Base& base, PollerThread& self) {
    // [FP1] acquire, pairs with the release store in stop(): a stop seen here
    // is not missed (the loopbreak also wakes a blocked epoll_wait).
    while (!stopping_.load(std::memory_order_acquire)) {
        const int rc = self.blocking(
            [&] { return event_base_loop(base.base, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY); });
        if (rc < 0) throw std::runtime_error("event_base_loop failed");
        self.batch_done();
    }
}

void FdPollerImpl::stop() noexcept {
    {
        std::lock_guard lock(mutex_);
        if (!running_) return;
        running_ = false;
    }
    if (options.placement == FdPlacement::kLoops) return;        // the loops keep their bases
    stopping_.store(true, std::memory_order_release);            // [FP1]
    for (auto& base : bases_) event_base_loopbreak(base->base);  // thread-safe: wakes it
    for (auto& base : bases_) {
        base->thread->join();
        base->thread.reset();
    }
}

std::error_code FdPollerImpl::try_watch(int fd, const sched::Group& group, Ready what,
                                        FdPoller::Handler handler, WatchOptions watch_options,
                                        std::chrono::nanoseconds timeout, FdWatch& out) noexcept {
    out = FdWatch();
    if (fd < 0 || fcntl(fd, F_GETFD) == -1)
        return std::make_error_code(std::errc::bad_file_descriptor);
    if ((what & kReadWrite) == 0 || !group || !handler) {
        return std::make_error_code(std::errc::invalid_argument);
    }
    WatchCore* core = nullptr;
    {
        std::lock_guard lock(mutex_);
        if (!running_) return std::make_error_code(std::errc::operation_canceled);
        if (watches_.count(fd) != 0) return std::make_error_code(std::errc::file_exists);
        const unsigned index = base_for(fd, group);
        try {
            core = new WatchCore(*this, index, fd, group, what, std::move(handler), watch_options);
            watches_.emplace(fd, core);
        } catch (const std::bad_alloc&) {
            delete core;
            return std::make_error_code(std::errc::not_enough_memory);
        }
    }
    if (std::error_code error = core->add(timeout)) {
        core->cancel();
        core->release_handle();
        return error;
    }
    out = FdWatch(core);
    return {};
}

void FdPollerImpl::forget(int fd, const WatchCore* core) noexcept {
    std::lock_guard lock(mutex_);
    if (auto it = watches_.find(fd); it != watches_.end() && it->second == core) watches_.erase(it);
}

void FdPollerImpl::count_readiness(unsigned base_index) noexcept {
    auto& counter = bases_[base_index]->readiness;
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void FdPollerImpl::count_post(unsigned base_index, bool posted) noexcept {
    auto& counter = posted ? bases_[base_index]->posts : bases_[base_index]->closed_groups;
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

FdPollerStats FdPollerImpl::stats() const {
    FdPollerStats out;
    for (const auto& base : bases_) {
        // relaxed: counters, a snapshot
        out.readiness += base->readiness.load(std::memory_order_relaxed);
        out.posts += base->posts.load(std::memory_order_relaxed);
        out.closed_groups += base->closed_groups.load(std::memory_order_relaxed);
    }
    std::lock_guard lock(mutex_);
    out.watches = watches_.size();
    return out;
}

}  // namespace detail

FdPoller::FdPoller(FdPollerOptions options)
    : Poller(options.name.empty() ? "fd" : options.name),
      impl_(std::make_unique<detail::FdPollerImpl>(*this, nullptr, std::move(options))) {}

FdPoller::FdPoller(sched::Scheduler& scheduler, FdPollerOptions options)
    : Poller(options.name.empty() ? "fd" : options.name),
      impl_(std::make_unique<detail::FdPollerImpl>(*this, &scheduler, std::move(options))) {}

FdPoller::~FdPoller() = default;

void FdPoller::start() {
    impl_->start();
}

void FdPoller::stop() noexcept {
    impl_->stop();
}

FdWatch FdPoller::watch(int fd, const sched::Group& group, Ready what, Handler handler,
                        WatchOptions options) {
    FdWatch out;
    std::error_code error = try_watch(fd, group, what, std::move(handler), options, out);
    if (!error) return out;
    const std::string where = fmt::format("pollers::FdPoller('{}')::watch(fd {})", name(), fd);
    if (error == std::errc::operation_canceled) {
        throw std::logic_error(where + ": the poller is not running (start() it first)");
    }
    std::string why;
    if (error == std::errc::bad_file_descriptor) {
        why = "not an open file descriptor";
    } else if (error == std::errc::file_exists) {
        why =
            "already watched by this poller; cancel that watch first (a closed fd must be "
            "unwatched before its number is reused)";
    } else if (error == std::errc::operation_not_permitted) {
        why =
            "epoll cannot watch this kind of file (a regular file or a directory: read it "
            "through the AIO poller)";
    } else if (error == std::errc::invalid_argument) {
        why = "needs kRead and/or kWrite, a group and a handler";
    } else if (error == std::errc::no_space_on_device) {
        why = "the kernel's limit of epoll watches is reached (fs.epoll.max_user_watches)";
    } else {
        why = "the kernel refused";
    }
    throw std::system_error(error, where + ": " + why);
}

std::error_code FdPoller::try_watch(int fd, const sched::Group& group, Ready what, Handler handler,
                                    WatchOptions options, FdWatch& out) noexcept {
    return impl_->try_watch(fd, group, what, std::move(handler), options,
                            std::chrono::nanoseconds(-1), out);
}

FdPollerStats FdPoller::stats() const {
    return impl_->stats();
}

const FdPollerOptions& FdPoller::options() const noexcept {
    return impl_->options;
}

}  // namespace quiesce::pollers
