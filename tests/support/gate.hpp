// A gate an event blocks in until the test opens it: holds a loop inside one
// event so that a test can queue work behind it deterministically.
//
//     Gate gate;
//     group.post([&] { gate.block(); });
//     REQUIRE(gate.wait_entered());
//     ... queue things, check state ...
//     gate.open();
#pragma once

#include <atomic>
#include <thread>

#include "wait.hpp"

namespace quiesce::test {

class Gate {
public:
    /// Called by the event: marks it entered and spins until open().
    void block() {
        entered_.store(true);
        while (!open_.load()) std::this_thread::yield();
    }
    [[nodiscard]] bool wait_entered() {
        return wait_until([&] { return entered_.load(); });
    }
    [[nodiscard]] bool entered() const { return entered_.load(); }
    void open() { open_.store(true); }

private:
    std::atomic<bool> entered_{false};
    std::atomic<bool> open_{false};
};

}  // namespace quiesce::test
