// See socket_io.hpp.
#include "socket_io.hpp"

#include <event2/buffer.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <new>

namespace quiesce::detail {

ssize_t read_into(Buffer& buffer, int fd, std::size_t chunk) {
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
