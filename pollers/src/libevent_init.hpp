// libevent's process-wide set-up (private): its log lines go to the pollers
// logger, and its thread support is on (every event_base made afterwards has
// locks, so events may be added and deleted from any thread).
#pragma once

struct event_base;

namespace quiesce::pollers::detail {

/// Idempotent; call before making any event_base. Thread: any.
void init_libevent();

/// A new event_base (after init_libevent()) whose timeouts never fire early
/// and come on time. By default libevent computes a new timeout's deadline
/// from the time it read when epoll_wait last returned, while it runs that
/// pass's callbacks: a watch added from another thread then (or from a
/// callback) ends early by however long the pass has taken, milliseconds on
/// a loaded machine (a 30 ms wait seen ending after 28 ms under ASan in CI);
/// EVENT_BASE_FLAG_NO_CACHE_TIME reads the clock for each. And it reads
/// CLOCK_MONOTONIC_COARSE (4 ms resolution here), which makes a 10 ms
/// timeout fire after 11.1 ms at best (10.005 ms with
/// EVENT_BASE_FLAG_PRECISE_TIMER: CLOCK_MONOTONIC through the vDSO, ~20 ns
/// a read). Null on failure, errno set.
[[nodiscard]] event_base* new_precise_base();

}  // namespace quiesce::pollers::detail
