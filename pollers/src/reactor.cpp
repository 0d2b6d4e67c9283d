// Reactor; see reactor.hpp.
#include "reactor.hpp"

#include "libevent_init.hpp"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

#include <quiesce/scheduler/scheduler.hpp>

namespace quiesce::pollers::detail {
namespace {

void drain_wake(evutil_socket_t fd, short, void*) {
    std::uint64_t count = 0;
    (void)!read(fd, &count, sizeof count);
}

void nothing(evutil_socket_t, short, void*) {}

}  // namespace

Reactor::Reactor() {
    base_ = new_precise_base();  // locks (init_libevent()): watches come from other threads
    if (base_ == nullptr) {
        throw std::system_error(errno != 0 ? errno : ENOMEM, std::generic_category(),
                                "pollers: event_base_new for a loop");
    }
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
        const int err = errno;
        event_base_free(base_);
        throw std::system_error(err, std::generic_category(), "pollers: eventfd for a loop");
    }
    wake_event_ = event_new(base_, wake_fd_, EV_READ | EV_PERSIST, &drain_wake, nullptr);
    timeout_event_ = evtimer_new(base_, &nothing, nullptr);
    if (wake_event_ == nullptr || timeout_event_ == nullptr ||
        event_add(wake_event_, nullptr) != 0) {
        release();
        throw std::system_error(ENOMEM, std::generic_category(), "pollers: events for a loop");
    }
}

Reactor::~Reactor() {
    release();
}

void Reactor::release() noexcept {
    if (timeout_event_ != nullptr) event_free(timeout_event_);
    if (wake_event_ != nullptr) event_free(wake_event_);
    if (wake_fd_ >= 0) close(wake_fd_);
    if (base_ != nullptr) event_base_free(base_);
    timeout_event_ = wake_event_ = nullptr;
    wake_fd_ = -1;
    base_ = nullptr;
}

void Reactor::add_source(ReactorSource* source) {
    std::lock_guard lock(sources_mutex_);
    sources_.push_back(source);
    have_sources_.store(true, std::memory_order_relaxed);  // relaxed: see the member
}

void Reactor::remove_source(ReactorSource* source) noexcept {
    std::lock_guard lock(sources_mutex_);
    std::erase(sources_, source);
    have_sources_.store(!sources_.empty(), std::memory_order_relaxed);  // relaxed: see the member
}

bool Reactor::flush() noexcept {
    if (!have_sources_.load(std::memory_order_relaxed)) return false;  // relaxed: see the member
    std::lock_guard lock(sources_mutex_);
    bool delivered = false;
    for (ReactorSource* source : sources_) delivered |= source->flush();
    return delivered;
}

void Reactor::wait(std::chrono::nanoseconds timeout) noexcept {
    // The sources send their batches first. What they deliver goes to this
    // loop's own groups, which does not wake it (sched::LoopWaiter): then
    // poll instead of blocking.
    if (flush()) {
        event_base_loop(base_, EVLOOP_NONBLOCK);
        return;
    }
    const bool timed = timeout.count() >= 0;
    if (timed) {
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
        tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1'000'000'000 + 999) / 1000);
        evtimer_add(timeout_event_, &tv);
    }
    event_base_loop(base_, EVLOOP_ONCE);  // one epoll_wait, then the callbacks
    if (timed) evtimer_del(timeout_event_);
}

void Reactor::wake() noexcept {
    const std::uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
}

void Reactor::poll() noexcept {
    (void)flush();
    event_base_loop(base_, EVLOOP_NONBLOCK);
}

}  // namespace quiesce::pollers::detail

namespace quiesce::pollers::detail {

std::shared_ptr<Reactor> reactor_for(sched::Scheduler& scheduler, unsigned index) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (std::shared_ptr<sched::LoopWaiter> waiter = scheduler.loop_waiter(index)) {
            auto reactor = std::dynamic_pointer_cast<Reactor>(waiter);
            if (!reactor) {
                throw std::logic_error("pollers: loop " + std::to_string(index) +
                                       " already has a waiter that is not a pollers reactor");
            }
            return reactor;
        }
        auto reactor = std::make_shared<Reactor>();
        try {
            scheduler.set_loop_waiter(index, reactor);
            return reactor;
        } catch (const std::logic_error&) {
            // Another poller installed one meanwhile: use that.
        }
    }
    throw std::logic_error("pollers: cannot install a reactor on loop " + std::to_string(index));
}

}  // namespace quiesce::pollers::detail
