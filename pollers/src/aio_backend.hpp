// The two ways AioPoller does file I/O (private): io_uring (aio_uring.cpp)
// and a pool of threads making the blocking calls (aio_threads.cpp).
//
// Threading: submit() from any thread; start()/stop() from the poller's owner.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include <quiesce/base/sharded_counter.hpp>
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
        out.submitted = submitted.value();
        out.completed = completed.value();
        out.refused = refused.value();
        out.in_flight = admission.in_flight();
        out.cached = cached.value();
        return out;
    }

    Admission admission;
    base::ShardedCounter cached;           // reads answered by the page-cache fast path
    std::atomic<bool> nowait_reads{true};  // false once the kernel refused RWF_NOWAIT
    // Bumped by every loop: a shared atomic would bounce between CPUs.
    base::ShardedCounter submitted;
    base::ShardedCounter completed;
    base::ShardedCounter refused;
};

/// The fiber side of a request: submits it to `impl` and waits. Unwinding
/// while the request is in flight waits for it (its buffer may be on the
/// fiber's stack).
AioResult fiber_io(AioBackendImpl& impl, std::unique_ptr<AioRequest> request);

/// A fiber that cannot park (it is unwinding) waits on its loop's thread for
/// a request it made: does what the loop would have done for it (submits and
/// reaps the rings of the calling loop's reactor). Safe while the backend is
/// being destroyed. Thread: a loop's.
void drive_current_loop() noexcept;

/// Throws std::system_error when io_uring cannot be set up here.
std::unique_ptr<AioBackendImpl> make_uring_backend(Poller& owner, const AioPollerOptions& options);
std::unique_ptr<AioBackendImpl> make_thread_backend(const AioPollerOptions& options);
/// A ring per loop of `scheduler` (AioPlacement::kLoops); throws
/// std::system_error when io_uring cannot be set up.
std::unique_ptr<AioBackendImpl> make_loops_backend(Poller& owner, sched::Scheduler& scheduler,
                                                   const AioPollerOptions& options);

}  // namespace quiesce::pollers::detail
