// libevent's process-wide set-up (private): its log lines go to the pollers
// logger, and its thread support is on (every event_base made afterwards has
// locks, so events may be added and deleted from any thread).
#pragma once

struct event_base;

namespace quiesce::pollers::detail {

/// Idempotent; call before making any event_base. Thread: any.
void init_libevent();

/// A new event_base (after init_libevent()) whose timeouts are computed from
/// the clock read when each is added (EVENT_BASE_FLAG_NO_CACHE_TIME). By
/// default libevent takes a new timeout's start from the time it read when
/// epoll_wait last returned, while it runs that pass's callbacks: a watch
/// added from another thread then (or from a callback) would end early by
/// however long the pass has taken, milliseconds on a loaded machine (a 30 ms
/// wait was seen ending after 28 ms under ASan in CI).
///
/// The base's clock is CLOCK_MONOTONIC_COARSE (a tick of 4 ms here), so one
/// of its timeouts may fire up to a tick early or late: wait_ready() checks
/// CLOCK_MONOTONIC when one fires and waits on if it came early, and a
/// loop's sleep is timed by its Reactor's own timerfd. Not
/// EVENT_BASE_FLAG_PRECISE_TIMER: its epoll backend sets a timerfd before
/// every epoll_wait, a system call per poll of a busy loop. Null on failure,
/// errno set.
[[nodiscard]] event_base* new_base();

}  // namespace quiesce::pollers::detail
