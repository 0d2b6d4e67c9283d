// How a loop measures its groups' slices of thread CPU time (see
// need_resched.hpp). SchedulerOptions carries one; each loop's SliceClock
// resolves it once, on its own thread.
#pragma once

#include <quiesce/base/config.hpp>

#include <initializer_list>
#include <optional>
#include <string_view>

namespace quiesce::sched {

enum class SliceMode {
    /// A perf task-clock event if perf_event_open() allows it, else kWallConfirm.
    kAuto,
    /// A software perf event samples this thread's CPU time into a ring buffer
    /// that the kernel writes; no signal and no system call per slice.
    kPerfEvent,
    /// A per-thread wall-clock timer whose signal bumps a tick counter; one
    /// read of CLOCK_THREAD_CPUTIME_ID confirms each tick. For hosts that
    /// refuse perf_event_open() (perf_event_paranoid 3, seccomp, containers),
    /// and the framework's default (RuntimeOptions::slice_mode): no cost per
    /// context switch of the loop, which kPerfEvent has.
    kWallConfirm,
};

/// "auto", "perf", "wall".
[[nodiscard]] constexpr std::string_view to_string(SliceMode mode) noexcept {
    switch (mode) {
        case SliceMode::kAuto:
            return "auto";
        case SliceMode::kPerfEvent:
            return "perf";
        case SliceMode::kWallConfirm:
            return "wall";
    }
    return "?";
}

/// The mode to_string() names ("auto", "perf", "wall"); nullopt for others.
[[nodiscard]] constexpr std::optional<SliceMode> slice_mode_from_string(
    std::string_view name) noexcept {
    for (SliceMode mode : {SliceMode::kAuto, SliceMode::kPerfEvent, SliceMode::kWallConfirm}) {
        if (to_string(mode) == name) return mode;
    }
    return std::nullopt;
}

}  // namespace quiesce::sched
