// libevent's process-wide set-up (private): its log lines go to the pollers
// logger, and its thread support is on (every event_base made afterwards has
// locks, so events may be added and deleted from any thread).
#pragma once

namespace quiesce::pollers::detail {

/// Idempotent; call before making any event_base. Thread: any.
void init_libevent();

}  // namespace quiesce::pollers::detail
