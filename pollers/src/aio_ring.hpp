// What the two io_uring backends share (private): preparing a request's
// submission entry, and submitting through a ring that is briefly busy.
//
// Threading: the caller owns the ring's submission side.
#pragma once

#include <liburing.h>
#include <sched.h>

#include <cerrno>

#include "aio_request.hpp"

namespace quiesce::pollers::detail {

/// Fills `sqe` for `request` and tags it with the request.
inline void prepare_sqe(io_uring_sqe* sqe, AioRequest* request) noexcept {
    switch (request->op) {
        case AioOp::kRead:
            io_uring_prep_read(sqe, request->fd, request->buf, static_cast<unsigned>(request->len),
                               static_cast<__u64>(request->offset));
            break;
        case AioOp::kWrite:
            io_uring_prep_write(sqe, request->fd, request->buf, static_cast<unsigned>(request->len),
                                static_cast<__u64>(request->offset));
            break;
        case AioOp::kFsync:
            io_uring_prep_fsync(sqe, request->fd, 0);
            break;
    }
    io_uring_sqe_set_data(sqe, request);
}

/// A free submission entry, flushing the ring once if it is full; null if
/// there is still none.
inline io_uring_sqe* free_sqe(io_uring* ring) noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (sqe != nullptr) return sqe;
    io_uring_submit(ring);
    return io_uring_get_sqe(ring);
}

/// io_uring_submit(), tried again while the kernel says the ring is busy
/// (the entries stay in the ring: a later submit would send them anyway,
/// perhaps never). A negative errno, or 0.
inline int submit_retrying(io_uring* ring) noexcept {
    int rc = 0;
    for (int attempt = 0; attempt < 1000; ++attempt) {
        rc = io_uring_submit(ring);
        if (rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) break;
        sched_yield();
    }
    return rc < 0 ? rc : 0;
}

}  // namespace quiesce::pollers::detail
