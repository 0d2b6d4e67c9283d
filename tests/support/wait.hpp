// Bounded waiting for a condition another thread makes true. Not a sleep used
// as synchronisation: it polls the condition and fails the test after a
// generous limit instead of hanging.
#pragma once

#include <sched.h>

#include <chrono>

namespace quiesce::test {

template <typename Pred>
[[nodiscard]] bool wait_until(Pred pred,
                              std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        sched_yield();
    }
    return true;
}

}  // namespace quiesce::test
