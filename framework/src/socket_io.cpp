// See socket_io.hpp.
#include "socket_io.hpp"

#include <event2/buffer.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <new>

namespace quiesce::detail {

namespace {

constexpr std::size_t kScratch = 64 * 1024;

// Reads into an empty buffer land here first, then only what came is copied
// in: a request of a few hundred bytes then takes a block of its own size
// (a small one comes from malloc's per-thread cache) instead of a block of
// `chunk` bytes allocated and freed around every read. One per thread:
// reads never nest.
ssize_t read_via_scratch(Buffer& buffer, int fd, std::size_t chunk) {
    thread_local std::unique_ptr<char[]> scratch;
    if (!scratch) scratch = std::make_unique<char[]>(kScratch);
    const ssize_t n = ::read(fd, scratch.get(), chunk);
    if (n > 0) buffer.append(scratch.get(), static_cast<std::size_t>(n));
    return n;
}

}  // namespace

ssize_t read_into(Buffer& buffer, int fd, std::size_t chunk) {
    // An empty buffer: most reads of a request-reply protocol (bulk input
    // goes on into a buffer that holds its start). Only where the scratch
    // holds all of `chunk`: the caller takes a short read for "the kernel
    // had no more".
    if (chunk <= kScratch && buffer.empty()) return read_via_scratch(buffer, fd, chunk);
    evbuffer_iovec vec[2];
    int count = evbuffer_reserve_space(buffer.raw(), static_cast<ev_ssize_t>(chunk), vec, 2);
    if (count <= 0) throw std::bad_alloc();
    iovec io[2];
    for (int i = 0; i < count; ++i) io[i] = {vec[i].iov_base, vec[i].iov_len};
    ssize_t n = ::readv(fd, io, count);
    if (n <= 0) {
        int error = errno;
        evbuffer_commit_space(buffer.raw(), vec, 0);
        errno = error;
        return n;
    }
    // Commit what was read, spread over the reserved vectors in order.
    std::size_t left = static_cast<std::size_t>(n);
    for (int i = 0; i < count; ++i) {
        vec[i].iov_len = std::min(left, vec[i].iov_len);
        left -= vec[i].iov_len;
    }
    evbuffer_commit_space(buffer.raw(), vec, count);
    return n;
}

bool peer_went_away(int error) noexcept {
    return error == ECONNRESET || error == EPIPE || error == ETIMEDOUT || error == EHOSTUNREACH ||
           error == ENETUNREACH || error == ECONNABORTED;
}

}  // namespace quiesce::detail
