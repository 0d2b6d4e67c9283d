// AioRequest delivery, the blocking fallback's I/O, admission and the fiber
// side of a request; see aio_request.hpp.
//
// Threading: see aio_request.hpp. Labels [AIO1]-[AIO2] in pollers/README.md.
#include "aio_request.hpp"

#include "aio_backend.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

namespace quiesce::pollers::detail {

void AioRequest::complete(std::unique_ptr<AioRequest> request, AioResult r) noexcept {
    if (request->carried != 0) r = AioResult{r.bytes + request->carried, {}};
    request->result = r;
    if (request->fiber) {
        AioRequest* raw = request.release();  // the fiber owns it
        sched::FiberWaker wake = raw->waker;  // copied out: once `finished` is seen, it may go
        // [AIO2] release, pairs with the acquire loads in fiber_io(): the
        // result happens-before the fiber reads it.
        raw->finished.store(true, std::memory_order_release);
        (void)wake.wake();
        return;
    }
    struct Deliver {
        std::unique_ptr<AioRequest> request;
        void operator()() { request->done(request->result); }
    };
    // Our own handle: the request (and its `group`) may be gone before
    // post() returns. A closed group drops the node and with it the request.
    const sched::Group target = request->group;
    (void)target.post(Deliver{std::move(request)});
}

AioResult AioRequest::run_blocking() const noexcept {
    for (;;) {
        ssize_t n = 0;
        switch (op) {
            case AioOp::kRead:
                n = pread(fd, buf, len, offset);
                break;
            case AioOp::kWrite:
                n = pwrite(fd, buf, len, offset);
                break;
            case AioOp::kFsync:
                n = ::fsync(fd);
                break;
        }
        if (n >= 0) return AioResult{static_cast<std::size_t>(n), {}};
        if (errno != EINTR) return AioResult{0, std::error_code(errno, std::generic_category())};
    }
}

bool Admission::acquire(bool wait) {
    std::unique_lock lock(mutex_);
    while (!closed_.load(std::memory_order_relaxed) && in_flight_ >= capacity_) {
        if (!wait) return false;
        waiters_.wait(lock);
    }
    if (closed_.load(std::memory_order_relaxed)) return false;
    ++in_flight_;
    return true;
}

void Admission::release() noexcept {
    std::lock_guard lock(mutex_);
    --in_flight_;
    (void)waiters_.notify_one();
}

void Admission::close() noexcept {
    std::lock_guard lock(mutex_);
    closed_.store(true, std::memory_order_relaxed);
    waiters_.notify_all();
}

void Admission::open() noexcept {
    std::lock_guard lock(mutex_);
    closed_.store(false, std::memory_order_relaxed);
}

bool Admission::closed() const noexcept {
    return closed_.load(std::memory_order_relaxed);
}

std::size_t Admission::in_flight() const {
    std::lock_guard lock(mutex_);
    return in_flight_;
}

AioResult fiber_io(AioBackendImpl& impl, std::unique_ptr<AioRequest> request) {
    request->fiber = true;
    request->waker = sched::this_fiber::waker();
    AioRequest* raw = request.get();
    if (!impl.submit(request, /*wait=*/true)) {
        return AioResult{0, std::make_error_code(std::errc::operation_canceled)};
    }
    // The backend owns it until complete(); then we do. If the fiber unwinds
    // meanwhile (its group closed), the kernel or a pool thread may still
    // write into a buffer on this stack: wait for the completion first.
    struct Owner {
        AioRequest* raw;
        ~Owner() {
            // [AIO2] acquire, pairs with the release store in complete().
            for (int spins = 0; !raw->finished.load(std::memory_order_acquire); ++spins) {
                drive_current_loop();  // it may wait in our own loop's ring
                if (spins < 100) {
                    std::this_thread::yield();
                } else {
                    std::this_thread::sleep_for(std::chrono::microseconds(100));
                }
            }
            delete raw;
        }
    } owner{raw};
    // [AIO2] acquire, pairs with the release store in complete().
    while (!raw->finished.load(std::memory_order_acquire)) sched::this_fiber::park();
    return raw->result;
}

}  // namespace quiesce::pollers::detail
