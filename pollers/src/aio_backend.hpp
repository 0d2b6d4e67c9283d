// The two ways AioPoller does file I/O (private): io_uring (aio_uring.cpp)
// and a pool of threads making the blocking calls (aio_threads.cpp).
//
// Threading: submit() from any thread; start()/stop() from the poller's owner.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include <quiesce/pollers/aio_poller.hpp>

namespace quiesce::sched {
class Scheduler;
}

#include "aio_request.hpp"

namespace quiesce::pollers::detail {

class AioBackendImpl {
public:
    explicit AioBackendImpl(std::size_t capacity) : admission(capacity) {}
    virtual ~AioBackendImpl() = default;

    [[nodiscard]] virtual AioBackend kind() const noexcept = 0;
    virtual void start() = 0;
    /// Waits for the requests in flight, then stops its threads.
    virtual void stop() noexcept = 0;
    /// Takes `request` (true) or leaves it with the caller (false: no room
    /// and `wait` is false, or stopped). `wait`: a fiber waits for room.
    virtual bool submit(std::unique_ptr<AioRequest>& request, bool wait) = 0;

    [[nodiscard]] virtual AioPollerStats stats() const {
        AioPollerStats out;
        out.submitted = submitted.load(std::memory_order_relaxed);  // relaxed: counters
        out.completed = completed.load(std::memory_order_relaxed);
        out.refused = refused.load(std::memory_order_relaxed);
        out.in_flight = admission.in_flight();
        return out;
    }

    Admission admission;
    std::atomic<std::uint64_t> submitted{0};
    std::atomic<std::uint64_t> completed{0};
    std::atomic<std::uint64_t> refused{0};
};

/// Throws std::system_error when io_uring cannot be set up here.
std::unique_ptr<AioBackendImpl> make_uring_backend(Poller& owner, const AioPollerOptions& options);
std::unique_ptr<AioBackendImpl> make_thread_backend(const AioPollerOptions& options);
/// A ring per loop of `scheduler` (AioPlacement::kLoops); throws
/// std::system_error when io_uring cannot be set up.
std::unique_ptr<AioBackendImpl> make_loops_backend(Poller& owner, sched::Scheduler& scheduler,
                                                   const AioPollerOptions& options);

}  // namespace quiesce::pollers::detail
