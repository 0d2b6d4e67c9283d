// The scheduler module's logger (private).
#pragma once

#include <quiesce/base/log.hpp>

namespace quiesce::sched::detail {

inline spdlog::logger& logger() {
    static const std::shared_ptr<spdlog::logger> instance = log::get(log::kScheduler);
    return *instance;
}

}  // namespace quiesce::sched::detail
