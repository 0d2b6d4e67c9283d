// The pollers module's logger (private).
#pragma once

#include <quiesce/base/log.hpp>

namespace quiesce::pollers::detail {

inline spdlog::logger& logger() {
    static const std::shared_ptr<spdlog::logger> instance = log::get(log::kPollers);
    return *instance;
}

}  // namespace quiesce::pollers::detail
