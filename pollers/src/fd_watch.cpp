// WatchCore and FdWatch: readiness into group events, cancellation, and who
// frees a watch; see fd_watch.hpp for the lifetime rules.
//
// Threading: see fd_watch.hpp.
#include "fd_watch.hpp"

#include <event2/event.h>

#include <cerrno>

#include "fd_poller_impl.hpp"

namespace quiesce::pollers {
namespace detail {
namespace {

void libevent_callback(evutil_socket_t, short what, void* arg) {
    static_cast<WatchCore*>(arg)->on_ready(what);
}

// A level-triggered watch is one-shot inside libevent and armed again after
// each run of its handler: kept in epoll, it would be reported on every pass
// of the poller thread until the handler drains it, a poller spinning at
// full speed. Edge-triggered watches stay in epoll and cost no system call
// per event.
bool rearms_after_run(const WatchOptions& options) noexcept {
    return options.persistent && !options.edge_triggered;
}

short libevent_flags(Ready what, const WatchOptions& options) noexcept {
    short flags = 0;
    if ((what & kRead) != 0) flags |= EV_READ;
    if ((what & kWrite) != 0) flags |= EV_WRITE;
    if ((what & kHangup) != 0) flags |= EV_CLOSED;
    if (options.persistent && options.edge_triggered) flags |= EV_PERSIST | EV_ET;
    return flags;
}

}  // namespace

WatchCore::WatchCore(FdPollerImpl& poller, unsigned index, int watched, sched::Group g, Ready ready,
                     FdPoller::Handler h, WatchOptions opts)
    : owner(poller),
      base_index(index),
      fd(watched),
      group(std::move(g)),
      handler(std::move(h)),
      options(opts),
      what(ready) {
    op = &WatchCore::operation;
}

std::error_code WatchCore::add(std::chrono::nanoseconds timeout) noexcept {
    std::lock_guard lock(control_mutex);
    if (ev == nullptr) {
        ev = event_new(owner.base(base_index), fd, libevent_flags(what, options),
                       &libevent_callback, this);
        if (ev == nullptr) return std::make_error_code(std::errc::not_enough_memory);
    }
    timeval tv{};
    const bool timed = timeout.count() >= 0;
    if (timed) {
        tv.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
        tv.tv_usec = static_cast<suseconds_t>(timeout.count() % 1'000'000'000 / 1000);
    }
    errno = 0;
    if (event_add(ev, timed ? &tv : nullptr) != 0) {
        const int err = errno != 0 ? errno : EINVAL;
        return std::error_code(err, std::generic_category());
    }
    return {};
}

void WatchCore::on_ready(short libevent_what) noexcept {
    // The core stays alive throughout: cancel()'s event_del() waits for this
    // callback to return before anything can free it.
    owner.count_readiness(base_index);
    std::uint8_t bits = 0;
    if ((libevent_what & EV_READ) != 0) bits |= kRead;
    if ((libevent_what & EV_WRITE) != 0) bits |= kWrite;
    if ((libevent_what & EV_CLOSED) != 0) bits |= kHangup;
    if ((libevent_what & EV_TIMEOUT) != 0) bits |= kTimeoutBit;
    // [FW1] release, pairs with the acquire exchange in run(): the bits are
    // seen by the run that the node's queueing below (or an earlier one) causes.
    pending.fetch_or(bits, std::memory_order_release);
    // [FW2] acq_rel, pairs with [FW3] in run(): either the node is queued
    // already and its run takes our bits (it clears kQueued before reading
    // them), or we queue it.
    const std::uint32_t before = state.fetch_or(kQueued, std::memory_order_acq_rel);
    if ((before & kQueued) != 0) return;  // coalesced into the queued run
    if (sched::detail::post_node(group.core(), this)) {
        owner.count_post(base_index, true);
        return;
    }
    // The group is closed: nothing will run the handler again. Stop polling
    // (event_del() from inside our own callback does not wait) and let the
    // handle's cancel() free the core.
    state.fetch_and(~kQueued, std::memory_order_acq_rel);
    event_del(ev);
    owner.count_post(base_index, false);
}

sched::Status WatchCore::operation(sched::detail::EventNode* node, sched::detail::Action action) {
    auto* self = static_cast<WatchCore*>(node);
    switch (action) {
        case sched::detail::Action::kRun:
            self->run();
            break;
        case sched::detail::Action::kRelease:
            // After the run, also when the handler threw. Not in run(): the
            // loop still calls this operation after kRun returns.
            if (rearms_after_run(self->options)) (void)self->rearm_level();
            self->clear(kRunning);
            break;
        case sched::detail::Action::kDrop:
            self->clear(kQueued);  // its group closed with the run still queued
            break;
    }
    return sched::Status::kDone;
}

void WatchCore::run() {
    // [FW3] acq_rel, pairs with [FW2]: kQueued cleared before the bits are
    // taken, so readiness after this point queues a new run.
    const std::uint32_t before = state.fetch_xor(kQueued | kRunning, std::memory_order_acq_rel);
    const std::uint8_t bits = pending.exchange(0, std::memory_order_acquire);  // [FW1]
    if ((before & kCancelled) == 0 && bits != 0) handler(static_cast<Ready>(bits));
}

void WatchCore::clear(std::uint32_t bits) noexcept {
    const std::uint32_t before = state.fetch_and(~bits, std::memory_order_acq_rel);
    const std::uint32_t after = before & ~bits;
    if (after == kCancelled) delete this;  // cancelled, and nobody else holds it
}

CancelResult WatchCore::cancel() noexcept {
    {
        std::lock_guard lock(control_mutex);
        if ((state.load(std::memory_order_acquire) & kCancelled) != 0) {
            return CancelResult::kAlreadyCancelled;
        }
        if (ev != nullptr) {
            // Waits for this event's callback if the poller thread runs it
            // now: afterwards the poller never touches the core again.
            event_del(ev);
            event_free(ev);
            ev = nullptr;
        }
    }
    owner.forget(fd, this);
    const std::uint32_t before = state.fetch_or(kCancelled, std::memory_order_acq_rel);
    // A run that started before sees no kCancelled and may call the handler:
    // tell the caller, unless that run is the caller itself (its own group).
    if ((before & kRunning) != 0 && !(sched::Group::current() == group)) {
        return CancelResult::kRunning;
    }
    return CancelResult::kCancelled;
}

std::error_code WatchCore::modify(Ready next) noexcept {
    if ((next & kReadWrite) == 0) return std::make_error_code(std::errc::invalid_argument);
    std::lock_guard lock(control_mutex);
    if (ev == nullptr) return std::make_error_code(std::errc::operation_canceled);
    event_del(ev);
    what = next;
    event_assign(ev, owner.base(base_index), fd, libevent_flags(what, options), &libevent_callback,
                 this);
    errno = 0;
    if (event_add(ev, nullptr) != 0)
        return std::error_code(errno != 0 ? errno : EINVAL, std::generic_category());
    return {};
}

std::error_code WatchCore::rearm_level() noexcept {
    std::lock_guard lock(control_mutex);
    if (ev == nullptr) return std::make_error_code(std::errc::operation_canceled);
    errno = 0;
    if (event_add(ev, nullptr) != 0)
        return std::error_code(errno != 0 ? errno : EINVAL, std::generic_category());
    return {};
}

std::error_code WatchCore::rearm() noexcept {
    std::lock_guard lock(control_mutex);
    if (ev == nullptr) return std::make_error_code(std::errc::operation_canceled);
    if (options.persistent) return {};
    errno = 0;
    if (event_add(ev, nullptr) != 0)
        return std::error_code(errno != 0 ? errno : EINVAL, std::generic_category());
    return {};
}

void WatchCore::release_handle() noexcept {
    clear(kHandle);
}

}  // namespace detail

FdWatch& FdWatch::operator=(FdWatch&& other) noexcept {
    if (this != &other) {
        FdWatch dead(std::exchange(core_, std::exchange(other.core_, nullptr)));
    }
    return *this;
}

FdWatch::~FdWatch() {
    if (core_ == nullptr) return;
    core_->cancel();
    core_->release_handle();
}

CancelResult FdWatch::cancel() noexcept {
    return core_ != nullptr ? core_->cancel() : CancelResult::kAlreadyCancelled;
}

std::error_code FdWatch::modify(Ready what) noexcept {
    return core_ != nullptr ? core_->modify(what)
                            : std::make_error_code(std::errc::operation_canceled);
}

std::error_code FdWatch::rearm() noexcept {
    return core_ != nullptr ? core_->rearm() : std::make_error_code(std::errc::operation_canceled);
}

int FdWatch::fd() const noexcept {
    return core_ != nullptr ? core_->fd : -1;
}

}  // namespace quiesce::pollers
