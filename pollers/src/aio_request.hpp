// One AIO request (private) and the admission that bounds how many are in
// flight. Shared by the io_uring backend and the thread-pool fallback.
//
// Threading: a request is written by its submitter, then owned by the
// backend until complete(), which hands the result to the group (stackless:
// the request travels in the posted event) or to the fiber (which owns it
// and waits for `finished`). Admission's mutex guards its count and waiters.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include <quiesce/pollers/aio_poller.hpp>
#include <quiesce/scheduler/fiber.hpp>

#include "fiber_wait_queue.hpp"

namespace quiesce::pollers::detail {

enum class AioOp : std::uint8_t { kRead, kWrite, kFsync };

struct AioRequest {
    AioOp op = AioOp::kRead;
    int fd = -1;
    void* buf = nullptr;
    std::size_t len = 0;
    off_t offset = 0;
    std::size_t carried = 0;  // bytes read at the call, before this request (a partial cache hit)

    bool fiber = false;
    sched::Group group;                  // stackless: where `done` runs
    AioPoller::Completion done;          // stackless
    sched::FiberWaker waker;             // fiber
    std::atomic<bool> finished{false};   // fiber: [AIO2]
    std::atomic<bool> published{false};  // io_uring: [AIO1]
    AioResult result;

    /// Hands `r` over (with the `carried` bytes added: after a partial cache
    /// hit an error is a short read). Stackless: posts done(r) to the group, which then owns
    /// (and frees) the request; a closed group frees it at once. Fiber: sets
    /// `finished` and wakes the fiber, which frees it. Thread: any.
    static void complete(std::unique_ptr<AioRequest> request, AioResult r) noexcept;

    /// Does the I/O with the blocking system call (the fallback; EINTR is
    /// retried). Thread: a pool thread.
    [[nodiscard]] AioResult run_blocking() const noexcept;
};

/// At most `capacity` requests in flight; a fiber waits for room, a
/// stackless submitter is refused.
class Admission {
public:
    explicit Admission(std::size_t capacity) : capacity_(capacity) {}
    /// True when the caller may submit; `wait` (in a fiber) parks until it
    /// may, or returns false once closed.
    bool acquire(bool wait);
    void release() noexcept;
    /// Wakes every waiter; acquire() fails from now on.
    void close() noexcept;
    void open() noexcept;
    [[nodiscard]] bool closed() const noexcept;
    [[nodiscard]] std::size_t in_flight() const;

private:
    const std::size_t capacity_;
    mutable std::mutex mutex_;
    std::size_t in_flight_ = 0;  // mutex_
    // Written under mutex_; relaxed: read without it only as a hint (a
    // request that races a close is still refused by acquire()).
    std::atomic<bool> closed_{true};
    FiberWaitQueue waiters_;  // mutex_
};

}  // namespace quiesce::pollers::detail
