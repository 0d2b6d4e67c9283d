// Thin futex(2) wrappers on a 32-bit atomic. Waits are process-private; a
// spurious or interrupted return is normal, callers loop. A failure other than
// those cannot happen in steady state: it is logged to stderr and aborts.
#pragma once

#include <quiesce/base/config.hpp>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace quiesce::base {

namespace detail {
[[noreturn, gnu::cold]] inline void futex_failed(const char* what) noexcept {
    std::fprintf(stderr, "quiesce: futex %s failed: errno %d\n", what, errno);
    std::abort();
}

inline void futex_wait_raw(void* word, std::uint32_t expected,
                           std::chrono::nanoseconds timeout) noexcept {
    static_assert(sizeof(std::atomic<std::uint32_t>) == 4, "futex words are 32 bits");
    timespec ts{};
    timespec* tsp = nullptr;
    if (timeout.count() >= 0) {
        ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
        tsp = &ts;
    }
    long rc = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, tsp, nullptr, 0);
    if (rc != 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) futex_failed("wait");
}
}  // namespace detail

/// Sleeps while `word` holds `expected`, at most `timeout` (negative: no
/// limit). Returns at once if the value differs. Cost: a system call.
inline void futex_wait(std::atomic<std::int32_t>& word, std::int32_t expected,
                       std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) noexcept {
    detail::futex_wait_raw(&word, static_cast<std::uint32_t>(expected), timeout);
}
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) noexcept {
    detail::futex_wait_raw(&word, expected, timeout);
}

/// Wakes up to `count` threads sleeping on `word`. Cost: a system call.
inline void futex_wake(void* word, int count = INT_MAX) noexcept {
    if (syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0) < 0) {
        detail::futex_failed("wake");
    }
}

/// Wakes every thread sleeping on `word`.
inline void futex_wake_all(void* word) noexcept {
    futex_wake(word, INT_MAX);
}

}  // namespace quiesce::base
