// Timers: run an event of a group after a delay or every period, from the
// timer heap of a loop (no thread per timer). Create them with
// Group::after() / Group::every(); a Timer handle cancels.
//
// Threading: a Timer handle may be used from any thread; the timer fires on a
// loop thread, which posts its event to the group.
#pragma once

#include <quiesce/base/config.hpp>

#include <memory>

namespace quiesce::sched {

namespace detail {
struct TimerState;
}

class Timer {
public:
    Timer() noexcept = default;
    explicit Timer(std::shared_ptr<detail::TimerState> state) noexcept : state_(std::move(state)) {}

    /// Stops the timer: its event does not run after cancel() returns unless
    /// it has already started. Returns false if it had already fired (one-shot),
    /// was cancelled, or its group closed. Thread: any.
    bool cancel() noexcept;
    /// True until it fired (one-shot), was cancelled, or its group closed.
    [[nodiscard]] bool active() const noexcept;

private:
    std::shared_ptr<detail::TimerState> state_;
};

}  // namespace quiesce::sched
