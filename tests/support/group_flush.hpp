// Waiting until a group has run everything queued on it: what a test needs
// before it frees something a handler of that group may still be using
// (FdWatch::cancel() returns kRunning without waiting for the handler).
#pragma once

#include <atomic>
#include <memory>

#include <quiesce/scheduler/group.hpp>

#include "wait.hpp"

namespace quiesce::test {

// Posts a marker to `group` and waits for it to run. A group's events run one
// at a time and in order, so once the marker has run, every event queued or
// running before the call has returned. False if the group is closed or the
// marker did not run within wait_until()'s limit.
[[nodiscard]] inline bool flush_group(const sched::Group& group) {
    // Shared: a marker that runs after a timed-out wait must not touch a
    // returned frame.
    auto ran = std::make_shared<std::atomic<bool>>(false);
    // release: pairs with the acquire load below; what the group's earlier
    // events did happens-before the caller's next step.
    if (!group.post([ran] { ran->store(true, std::memory_order_release); })) return false;
    return wait_until([&] { return ran->load(std::memory_order_acquire); });
}

}  // namespace quiesce::test
