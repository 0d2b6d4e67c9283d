// Reactor; see reactor.hpp.
#include "reactor.hpp"

#include "libevent_init.hpp"
#include "log.hpp"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
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

}  // namespace

Reactor::Reactor() {
    base_ = new_base();  // locks (init_libevent()): watches come from other threads
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
    timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd_ < 0) {
        const int err = errno;
        release();
        throw std::system_error(err, std::generic_category(), "pollers: timerfd for a loop");
    }
    wake_event_ = event_new(base_, wake_fd_, EV_READ | EV_PERSIST, &drain_wake, nullptr);
    timer_event_ = event_new(base_, timer_fd_, EV_READ | EV_PERSIST, &Reactor::on_timer, this);
    if (wake_event_ == nullptr || timer_event_ == nullptr || event_add(wake_event_, nullptr) != 0 ||
        event_add(timer_event_, nullptr) != 0) {
        release();
        throw std::system_error(ENOMEM, std::generic_category(), "pollers: events for a loop");
    }
}

Reactor::~Reactor() {
    release();
}

void Reactor::release() noexcept {
    if (timer_event_ != nullptr) event_free(timer_event_);
    if (wake_event_ != nullptr) event_free(wake_event_);
    if (timer_fd_ >= 0) close(timer_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    if (base_ != nullptr) event_base_free(base_);
    timer_event_ = wake_event_ = nullptr;
    timer_fd_ = wake_fd_ = -1;
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
    // poll instead of blocking, as for a timeout of zero.
    if (flush() || timeout.count() == 0) {
        event_base_loop(base_, EVLOOP_NONBLOCK);
        return;
    }
    if (timeout.count() > 0) arm_timer(timeout);
    // One epoll_wait with no timeout of libevent's (the timerfd ends it), then
    // the callbacks. A timerfd still set for a deadline the loop dropped may
    // wake it once for nothing later: the loop re-checks its timers.
    event_base_loop(base_, EVLOOP_ONCE);
}

void Reactor::arm_timer(std::chrono::nanoseconds timeout) noexcept {
    // steady_clock is CLOCK_MONOTONIC, the scheduler's timer clock and the timerfd's.
    const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
    constexpr std::int64_t kFar = std::int64_t{1} << 62;  // ~146 years: no overflow below
    const std::int64_t deadline = timeout.count() >= kFar - now ? kFar : now + timeout.count();
    if (timer_armed_ns_ != kDisarmed && timer_armed_ns_ >= deadline - kTimerSlackNs &&
        timer_armed_ns_ <= deadline + kTimerSlackNs)
        return;  // set for this deadline already: a sleep after an early return
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(deadline / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(deadline % 1'000'000'000);
    if (timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr) == 0) {
        timer_armed_ns_ = deadline;
    } else {
        // Not expected with these arguments; if it happens the loop sleeps
        // past its timer until something else wakes it, so say so.
        timer_armed_ns_ = kDisarmed;
        logger().error("pollers: timerfd_settime for a loop's sleep failed: {}",
                       std::generic_category().message(errno));
    }
}

void Reactor::on_timer(int fd, short, void* self) noexcept {
    std::uint64_t expirations = 0;
    (void)!read(fd, &expirations, sizeof expirations);
    static_cast<Reactor*>(self)->timer_armed_ns_ = kDisarmed;
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
