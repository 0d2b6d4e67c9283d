// Socket reads into a Buffer, and which socket errors are the peer's doing
// (private; connection.cpp and stream.cpp share them).
#pragma once

#include <sys/types.h>

#include <cstddef>

#include <quiesce/framework/buffer.hpp>

namespace quiesce::detail {

/// One readv() straight into `buffer`'s free space, at most `chunk` bytes:
/// the bytes read, 0 at EOF, -1 with errno set.
ssize_t read_into(Buffer& buffer, int fd, std::size_t chunk);

/// A reset, a broken pipe, a vanished route: the peer went away, which a
/// server logs at debug, not as a warning.
bool peer_went_away(int error) noexcept;

}  // namespace quiesce::detail
