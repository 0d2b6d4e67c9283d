// The framework's logger (private).
#pragma once

#include <quiesce/base/log.hpp>

namespace quiesce::detail {

inline spdlog::logger& logger() {
    static const std::shared_ptr<spdlog::logger> instance = log::get(log::kFramework);
    return *instance;
}

}  // namespace quiesce::detail
