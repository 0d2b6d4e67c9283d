// LoopWaiter: how an idle loop sleeps and is woken, and what it polls between
// turns. By default a loop sleeps on a futex; a poller module can give each
// loop a waiter that sleeps in epoll (or io_uring) on the loop's own sources
// instead, so that readiness reaches the loop with no thread hop: the loop
// wakes from its own epoll_wait, runs the source's callbacks (which post to
// groups), and runs the groups.
//
//     class Reactor final : public sched::LoopWaiter { ... };   // pollers/
//     scheduler.set_loop_waiter(i, std::make_shared<Reactor>(...));
//
// Threading: wait() and poll() run on the loop's thread (wait() while the
// loop is RCU-offline: it may block); wake() from any thread.
#pragma once

#include <quiesce/base/config.hpp>

#include <chrono>

namespace quiesce::sched {

class LoopWaiter {
public:
    virtual ~LoopWaiter() = default;

    /// The loop is idle: block until wake() is called, one of the waiter's
    /// sources is ready, or `timeout` passes (negative: no limit), and deliver
    /// what is ready (by posting to groups). A wake() that came before the
    /// call makes it return at once. Thread: the loop's.
    virtual void wait(std::chrono::nanoseconds timeout) noexcept = 0;

    /// Makes a wait() in progress return, or the next one return at once.
    /// Thread: any other than the loop's. Cost: a system call (an eventfd
    /// write); the loop calls it only when it found the loop asleep.
    virtual void wake() noexcept = 0;

    /// The loop is busy: deliver what is ready now, without blocking. The
    /// loop calls it between turns once per SchedulerOptions::poll_interval
    /// of its CPU time. Thread: the loop's.
    virtual void poll() noexcept = 0;
};

}  // namespace quiesce::sched
