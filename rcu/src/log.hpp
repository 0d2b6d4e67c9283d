// The rcu module's logger (private).
#pragma once

#include <quiesce/base/log.hpp>

namespace quiesce::rcu::detail {

inline spdlog::logger& logger() {
    static const std::shared_ptr<spdlog::logger> instance = log::get(log::kRcu);
    return *instance;
}

}  // namespace quiesce::rcu::detail
