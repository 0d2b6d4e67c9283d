// Fiber-backed groups: code that runs in straight lines and waits without
// blocking its loop. Scheduler::spawn() makes a group whose fiber runs a
// function; the group's other events run between the fiber's steps, never at
// the same time, and the whole group migrates between loops as one.
//
//     sched::Group g = scheduler.spawn([] {
//         for (;;) {
//             do_some_work();
//             sched::this_fiber::yield_if_needed();    // a slice of CPU is spent
//             sched::this_fiber::sleep_for(10ms);      // a timer wakes it
//         }
//     }, {.name = "ticker"});
//
// A fiber's suspension points (yield, sleep_for, park, rcu_wait) are quiescent
// states of its loop and may resume it on another loop thread: hold no RCU
// reference, no rcu::ReadLock and nothing thread-local across them (debug
// builds assert on ReadLock and on ReadSection). When the function returns or
// throws (logged), the group closes; closing the group cancels the fiber: its
// stack unwinds from the suspension point with a private exception that fiber
// code must let pass (a `catch (...)` must rethrow).
//
// Threading: this_fiber functions only on a fiber; FiberWaker::wake() from any
// thread.
#pragma once

#include <quiesce/base/config.hpp>

#include <chrono>
#include <cstdint>
#include <utility>

#include <quiesce/scheduler/group.hpp>

namespace quiesce::sched {

namespace detail {
struct FiberState;
}

/// Wakes a fiber from park(). Holds its group alive. Copyable.
class FiberWaker {
public:
    FiberWaker() noexcept = default;
    /// Internal: use this_fiber::waker().
    FiberWaker(Group group, detail::FiberState* state) noexcept
        : group_(std::move(group)), state_(state) {}
    /// Gives the fiber a permit and resumes it if it is parked (a wake before
    /// park() makes that park() return at once). Returns false if the group is
    /// closed. Thread: any. Memory ordering: release; what the caller did
    /// before happens-before park() returns.
    bool wake() const noexcept;

private:
    Group group_;
    detail::FiberState* state_ = nullptr;
};

namespace this_fiber {

/// True on a fiber of a spawned group.
[[nodiscard]] bool active() noexcept;
/// Lets every other ready group run, then continues (possibly on another
/// loop). A quiescent state. Yields: yes.
void yield();
/// yield() if need_resched() says the slice is spent; returns whether it
/// yielded. Out of line, so safe to call in loops (see need_resched.hpp).
bool yield_if_needed();
/// Suspends for at least `duration` (a timer of its loop). Yields: yes.
void sleep_for(std::chrono::nanoseconds duration);
/// Suspends until a FiberWaker wakes it (returns at once if a wake came
/// since the last park). Spurious returns do not happen. Yields: yes.
void park();
/// A handle that wakes this fiber.
[[nodiscard]] FiberWaker waker();
/// Waits for a full RCU grace period of the default domain without
/// blocking the loop (start_grace_period() + poll()). Yields: yes.
void rcu_wait();

}  // namespace this_fiber

/// A QSBR read section in fiber code: free in release builds; debug builds
/// count it per fiber and assert that no suspension point is reached inside.
class [[nodiscard]] ReadSection {
public:
    ReadSection() noexcept;
    ~ReadSection();
    ReadSection(const ReadSection&) = delete;
    ReadSection& operator=(const ReadSection&) = delete;
};

}  // namespace quiesce::sched
