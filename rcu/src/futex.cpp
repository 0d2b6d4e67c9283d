// futex(2) wrappers; see futex.hpp.
#include "futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>

#include "log.hpp"

namespace quiesce::rcu::detail {
namespace {

static_assert(sizeof(std::atomic<std::int32_t>) == 4, "futex words are 32 bits");

void wait_raw(void* word, std::uint32_t expected, std::chrono::nanoseconds timeout) noexcept {
    timespec ts{};
    timespec* tsp = nullptr;
    if (timeout.count() >= 0) {
        ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
        tsp = &ts;
    }
    long rc = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, tsp, nullptr, 0);
    if (rc != 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
        logger().critical("futex wait failed: errno {}", errno);
        std::abort();
    }
}

}  // namespace

void futex_wait(std::atomic<std::int32_t>& word, std::int32_t expected,
                std::chrono::nanoseconds timeout) noexcept {
    wait_raw(&word, static_cast<std::uint32_t>(expected), timeout);
}

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::chrono::nanoseconds timeout) noexcept {
    wait_raw(&word, expected, timeout);
}

void futex_wake_all(void* word) noexcept {
    if (syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0) < 0) {
        logger().critical("futex wake failed: errno {}", errno);
        std::abort();
    }
}

}  // namespace quiesce::rcu::detail
