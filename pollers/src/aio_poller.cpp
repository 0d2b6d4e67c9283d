// AioPoller: choosing the backend (io_uring, or threads where it is refused),
// and turning calls into requests.
//
// Threading: start()/stop() from the owner; submissions from any thread or a
// fiber (see aio_request.hpp).
#include <quiesce/pollers/aio_poller.hpp>

#include <sys/uio.h>

#include <cerrno>
#include <stdexcept>

#include <quiesce/scheduler/fiber.hpp>

#include "aio_backend.hpp"
#include "log.hpp"

namespace quiesce::pollers {
namespace {

AioPollerOptions validated(AioPollerOptions options) {
    if (options.queue_depth == 0 || options.queue_depth > 32768) {
        throw std::invalid_argument("AioPollerOptions::queue_depth must be 1..32768");
    }
    if (options.fallback_threads == 0) {
        throw std::invalid_argument("AioPollerOptions::fallback_threads must be >= 1");
    }
    if (options.name.empty()) options.name = "aio";
    return options;
}

std::unique_ptr<detail::AioRequest> make_request(detail::AioOp op, int fd, void* buf,
                                                 std::size_t len, off_t offset) {
    auto request = std::make_unique<detail::AioRequest>();
    request->op = op;
    request->fd = fd;
    request->buf = buf;
    request->len = len;
    request->offset = offset;
    return request;
}

}  // namespace

AioPoller::AioPoller(AioPollerOptions options)
    : Poller(options.name.empty() ? "aio" : options.name), options_(validated(std::move(options))) {
    if (options_.placement == AioPlacement::kLoops) {
        throw std::invalid_argument(
            "AioPlacement::kLoops needs the scheduler: AioPoller(scheduler, options)");
    }
}

AioPoller::AioPoller(sched::Scheduler& scheduler, AioPollerOptions options)
    : Poller(options.name.empty() ? "aio" : options.name),
      options_(validated(std::move(options))),
      scheduler_(&scheduler) {}

AioPoller::~AioPoller() {
    stop();
}

void AioPoller::start() {
    if (impl_) {
        impl_->start();
        return;
    }
    if (options_.use_io_uring) {
        try {
            impl_ = options_.placement == AioPlacement::kLoops
                        ? detail::make_loops_backend(*this, *scheduler_, options_)
                        : detail::make_uring_backend(*this, options_);
            detail::logger().debug(
                "aio poller '{}': io_uring ({}), {} requests in flight at most", name(),
                options_.placement == AioPlacement::kLoops ? "a ring per loop" : "one ring",
                options_.queue_depth);
        } catch (const std::system_error& error) {
            detail::logger().warn(
                "aio poller '{}': io_uring refused ({}): using {} threads of pread/pwrite "
                "instead; AioPoller::backend() says kThreads",
                name(), error.what(), options_.fallback_threads);
        }
    }
    if (!impl_) {
        if (!options_.use_io_uring) {
            detail::logger().debug("aio poller '{}': {} threads of pread/pwrite (io_uring off)",
                                   name(), options_.fallback_threads);
        }
        impl_ = detail::make_thread_backend(options_);
    }
    impl_->start();
}

void AioPoller::stop() noexcept {
    if (impl_) impl_->stop();
}

AioBackend AioPoller::backend() const noexcept {
    return impl_ ? impl_->kind() : AioBackend::kThreads;
}

AioPollerStats AioPoller::stats() const {
    return impl_ ? impl_->stats() : AioPollerStats{};
}

namespace {

void submit_stackless(detail::AioBackendImpl* impl, std::unique_ptr<detail::AioRequest> request,
                      const sched::Group& group, AioPoller::Completion done) {
    if (!group || !done)
        throw std::invalid_argument("pollers::AioPoller needs a group and a completion");
    request->group = group;
    request->done = std::move(done);
    if (impl != nullptr && impl->submit(request, /*wait=*/false)) return;
    // Full, or not running: the completion still runs, as an event, with why.
    const auto why = impl == nullptr || impl->admission.closed()
                         ? std::errc::operation_canceled
                         : std::errc::resource_unavailable_try_again;
    detail::AioRequest::complete(std::move(request), AioResult{0, std::make_error_code(why)});
}

void require_fiber() {
    if (!sched::this_fiber::active())
        throw std::logic_error("pollers::AioPoller: a fiber call outside a fiber");
}

// A read of what the page cache holds, with preadv2(RWF_NOWAIT) on the
// calling thread (it never blocks). True when that answers the read (`out`):
// all of it, end of file, or nothing more to read. False: the backend must
// read `len - *carried` bytes from `offset + *carried` (the first *carried
// were read here; on EAGAIN, EOPNOTSUPP or an error, 0: the backend gives
// the error as it would without the fast path).
bool read_cached(detail::AioBackendImpl& impl, int fd, void* buf, std::size_t len, off_t offset,
                 AioResult& out, std::size_t& carried) noexcept {
    carried = 0;
    // relaxed: a hint; a read that still tries after another turned it off
    // only wastes a call.
    if (!impl.nowait_reads.load(std::memory_order_relaxed) || impl.admission.closed()) return false;
    iovec iov{buf, len};
    const ssize_t n = preadv2(fd, &iov, 1, offset, RWF_NOWAIT);
    if (n < 0) {
        if (errno == EOPNOTSUPP && impl.nowait_reads.exchange(false, std::memory_order_relaxed)) {
            detail::logger().info(
                "aio: the kernel refused preadv2(RWF_NOWAIT) (fd {}): reads go to the backend "
                "without trying the page cache first",
                fd);
        }
        return false;
    }
    const auto got = static_cast<std::size_t>(n);
    if (got == len || got == 0) {
        impl.cached.add();
        out = AioResult{got, {}};
        return true;
    }
    carried = got;
    return false;
}

// The request for what the page cache did not give: all of the read, or
// after a partial hit (`carried` bytes read at the call) the rest of it.
std::unique_ptr<detail::AioRequest> rest_of_read(int fd, void* buf, std::size_t len, off_t offset,
                                                 std::size_t carried) {
    auto request = make_request(detail::AioOp::kRead, fd, static_cast<char*>(buf) + carried,
                                len - carried, offset + static_cast<off_t>(carried));
    request->carried = carried;
    return request;
}

AioResult submit_fiber(detail::AioBackendImpl* impl, std::unique_ptr<detail::AioRequest> request) {
    require_fiber();
    if (impl == nullptr) return AioResult{0, std::make_error_code(std::errc::operation_canceled)};
    return detail::fiber_io(*impl, std::move(request));
}

}  // namespace

void AioPoller::read_at(const sched::Group& group, int fd, void* buf, std::size_t len, off_t offset,
                        Completion done) {
    std::size_t carried = 0;
    if (impl_ && options_.cached_reads) {
        if (!group || !done)
            throw std::invalid_argument("pollers::AioPoller needs a group and a completion");
        AioResult result;
        if (read_cached(*impl_, fd, buf, len, offset, result, carried)) {
            // Still an event of the group, never a call from here.
            (void)group.post([done = std::move(done), result] { done(result); });
            return;
        }
    }
    submit_stackless(impl_.get(), rest_of_read(fd, buf, len, offset, carried), group,
                     std::move(done));
}

void AioPoller::write_at(const sched::Group& group, int fd, const void* buf, std::size_t len,
                         off_t offset, Completion done) {
    submit_stackless(impl_.get(),
                     make_request(detail::AioOp::kWrite, fd, const_cast<void*>(buf), len, offset),
                     group, std::move(done));
}

void AioPoller::fsync(const sched::Group& group, int fd, Completion done) {
    submit_stackless(impl_.get(), make_request(detail::AioOp::kFsync, fd, nullptr, 0, 0), group,
                     std::move(done));
}

AioResult AioPoller::read_at(int fd, void* buf, std::size_t len, off_t offset) {
    std::size_t carried = 0;
    if (impl_ && options_.cached_reads) {
        require_fiber();
        AioResult result;
        if (read_cached(*impl_, fd, buf, len, offset, result, carried)) {
            (void)sched::this_fiber::yield_if_needed();  // a loop of hits still gives way
            return result;
        }
    }
    return submit_fiber(impl_.get(), rest_of_read(fd, buf, len, offset, carried));
}

AioResult AioPoller::write_at(int fd, const void* buf, std::size_t len, off_t offset) {
    return submit_fiber(
        impl_.get(), make_request(detail::AioOp::kWrite, fd, const_cast<void*>(buf), len, offset));
}

AioResult AioPoller::fsync(int fd) {
    return submit_fiber(impl_.get(), make_request(detail::AioOp::kFsync, fd, nullptr, 0, 0));
}

}  // namespace quiesce::pollers
