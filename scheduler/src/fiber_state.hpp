// The fiber of a spawned group (private): its context, the Event that resumes
// it, and its wake-up permit.
//
// Threading: the fields without a label are touched only by the group's token
// holder (the loop running the group, or the fiber itself, which runs inside
// the group's resume event); `permit` is written by wakers on any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include <quiesce/scheduler/event.hpp>

#include "fiber_context.hpp"

namespace quiesce::sched::detail {

class GroupCore;
class SchedulerImpl;

struct FiberState {
    FiberState(GroupCore& owner, std::function<void()> body);

    /// The resume event's body: runs the fiber to its next suspension point.
    Status run();
    /// Cancels the fiber (unwinds its stack) and returns its context to the
    /// pool. Runs when the group closes. Thread: the token holder, not the fiber.
    void finish() noexcept;
    /// Posts the resume event to the group (coalesces if queued).
    bool post_resume() noexcept;

    GroupCore& group;
    std::function<void()> main;
    Event resume{[this] { return run(); }};
    std::unique_ptr<FiberContext> context;  // created on the first resume, on a loop
    bool yielded = false;                   // the fiber called yield(): requeue behind others
    bool sleep_done = false;                // sleep_for()'s timer ran
    bool ended = false;                     // main returned, threw, or was cancelled
    bool stack_reserved = false;            // spawn() reserved a stack not yet acquired
    std::uint32_t read_sections = 0;        // debug: ReadSection scopes open
    /// [P1] wake-up permit: release store in FiberWaker::wake(), acquire
    /// exchange in park().
    std::atomic<bool> permit{false};
};

}  // namespace quiesce::sched::detail
