// Thin futex(2) wrappers on a 32-bit atomic (private). Waits are
// process-private; a spurious or interrupted return is normal, callers loop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace quiesce::rcu::detail {

/// Sleeps while `word` holds `expected`, at most `timeout` (negative: no
/// limit). Returns immediately if the value differs.
void futex_wait(std::atomic<std::int32_t>& word, std::int32_t expected,
                std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) noexcept;
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) noexcept;

/// Wakes every thread sleeping on `word`.
void futex_wake_all(void* word) noexcept;

}  // namespace quiesce::rcu::detail
