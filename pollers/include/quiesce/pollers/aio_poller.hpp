// AioPoller: reads, writes and fsync of files at offsets without blocking a
// loop, through io_uring (liburing), or a small pool of pread/pwrite threads
// where io_uring is refused (old kernels, containers, seccomp,
// kernel.io_uring_disabled). Which one is in use is logged once and said by
// backend().
//
//     pollers::AioPoller aio;                       // io_uring if it can
//     aio.start();
//     // a stackless group: the completion is an event of the group
//     aio.read_at(group, fd, buf, 4096, offset, [](pollers::AioResult r) {
//         if (r.error) log(r.error.message()); else use(r.bytes);
//     });
//     // a fiber: straight-line, suspends until done
//     pollers::AioResult r = aio.read_at(fd, buf, 4096, offset);
//
// Results: `bytes` is what the kernel transferred (fewer than asked is a
// short read or write, 0 at end of file); `error` is the errno the kernel
// gave (EBADF, EINVAL, EIO, ...). An interrupted request (EINTR) is
// submitted again; nothing is thrown across a loop. The buffer must stay
// valid until the completion (stackless) or the return (fiber).
//
// Bounded: at most `queue_depth` requests are in flight. A stackless
// submission beyond it completes at once with EAGAIN
// (resource_unavailable_try_again); a fiber waits its turn. Before start()
// and after stop(), requests complete with operation_canceled.
//
// Threading: submissions from any thread (stackless) or a fiber; completions
// run on loops.
#pragma once

#include <quiesce/base/config.hpp>

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include <quiesce/pollers/poller.hpp>
#include <quiesce/scheduler/group.hpp>

namespace quiesce::sched {
class Scheduler;
}

namespace quiesce::pollers {

struct AioResult {
    std::size_t bytes = 0;
    std::error_code error;
};

enum class AioBackend : std::uint8_t {
    kIoUring,  ///< one ring, submitted from the caller's thread, reaped by the poller thread
    kThreads,  ///< pread/pwrite/fsync on a pool of threads
};

/// Where requests are submitted and completions reaped.
enum class AioPlacement : std::uint8_t {
    /// One ring (or the fallback pool) for the process, reaped by a poller
    /// thread that hands completions to the loops.
    kThread,
    /// A ring per loop: a request made on a loop goes to its ring and its
    /// completion is reaped on that loop (at once for a cached page, else when
    /// the ring's eventfd wakes the loop's reactor). Requests made off the
    /// loops use a shared ring. Needs the scheduler and io_uring.
    kLoops,
};

struct AioPollerOptions {
    /// Requests in flight at most (the ring's size; the pool's queue).
    unsigned queue_depth = 256;
    /// False: use the thread pool even where io_uring works (tests).
    bool use_io_uring = true;
    /// Threads of the fallback pool.
    unsigned fallback_threads = 4;
    std::string name = "aio";
    AioPlacement placement = AioPlacement::kThread;
    /// Reads first try preadv2(RWF_NOWAIT) on the calling thread: what is in
    /// the page cache is copied there and then, with no request, no ring and
    /// no thread hop (a server's hot files); only what would block goes to
    /// the backend (a partial hit sends the rest). Costs a wasted system call
    /// per read that misses the cache. False: every read goes to the backend.
    bool cached_reads = true;
};

struct AioPollerStats {
    std::uint64_t submitted = 0;
    std::uint64_t completed = 0;
    std::uint64_t refused = 0;    ///< stackless submissions over queue_depth
    std::uint64_t in_flight = 0;  ///< now
    /// Reads answered from the page cache at the call (not submitted).
    std::uint64_t cached = 0;
};

namespace detail {
class AioBackendImpl;
}

class AioPoller final : public Poller {
public:
    using Completion = std::function<void(AioResult)>;

    /// AioPlacement::kThread only (std::invalid_argument otherwise).
    explicit AioPoller(AioPollerOptions options = {});
    /// Either placement; kLoops shares the loops' reactors with an FdPoller
    /// in FdPlacement::kLoops. `scheduler` must outlive the poller.
    AioPoller(sched::Scheduler& scheduler, AioPollerOptions options);
    ~AioPoller() override;

    /// Sets up io_uring (or the fallback) and starts the poller thread.
    /// Throws std::system_error only if neither can be set up.
    void start() override;
    /// Waits for the requests in flight, then joins. Idempotent.
    void stop() noexcept override;

    /// Stackless: `done(result)` runs as an event of `group`. Thread: any.
    void read_at(const sched::Group& group, int fd, void* buf, std::size_t len, off_t offset,
                 Completion done);
    void write_at(const sched::Group& group, int fd, const void* buf, std::size_t len, off_t offset,
                  Completion done);
    void fsync(const sched::Group& group, int fd, Completion done);

    /// In a fiber: suspends until done. Yields: yes.
    AioResult read_at(int fd, void* buf, std::size_t len, off_t offset);
    AioResult write_at(int fd, const void* buf, std::size_t len, off_t offset);
    AioResult fsync(int fd);

    /// Known once start() has run.
    [[nodiscard]] AioBackend backend() const noexcept;
    [[nodiscard]] AioPollerStats stats() const;
    [[nodiscard]] const AioPollerOptions& options() const noexcept { return options_; }

private:
    const AioPollerOptions options_;
    sched::Scheduler* const scheduler_ = nullptr;
    std::unique_ptr<detail::AioBackendImpl> impl_;
};

[[nodiscard]] constexpr const char* to_string(AioBackend backend) noexcept {
    return backend == AioBackend::kIoUring ? "io_uring" : "threads";
}

}  // namespace quiesce::pollers
