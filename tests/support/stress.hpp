// Stress-test duration: QUIESCE_STRESS_SECONDS (scripts/test sets it; CI keeps
// it short, a developer can run for minutes). Default 5 s.
#pragma once

#include <chrono>
#include <cstdlib>
#include <string>

namespace quiesce::test {

inline std::chrono::milliseconds stress_duration() {
    const char* env = std::getenv("QUIESCE_STRESS_SECONDS");
    double seconds = env != nullptr ? std::strtod(env, nullptr) : 5.0;
    if (!(seconds > 0)) seconds = 5.0;
    return std::chrono::milliseconds(static_cast<long>(seconds * 1000));
}

}  // namespace quiesce::test
