// Buffer: a byte queue for connection input and output, a thin owner of a
// libevent evbuffer (chains of blocks: appending never copies what is queued,
// moving a buffer into another moves the blocks, reading a socket fills
// blocks in place).
//
//     void on_data(tcp::Connection& conn, Buffer& in) {
//         while (auto line = in.find("\r\n")) {     // offset of the delimiter
//             std::string request = in.take(*line); // the line, removed
//             in.drain(2);                          // the delimiter
//             conn.write(reply(request));
//         }
//     }
//
// Threading: none; a buffer belongs to one group (its connection's).
#pragma once

#include <quiesce/base/config.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

struct evbuffer;

namespace quiesce {

class Buffer {
public:
    Buffer();
    ~Buffer();
    Buffer(Buffer&& other) noexcept;
    Buffer& operator=(Buffer&& other) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    [[nodiscard]] std::size_t size() const noexcept;
    [[nodiscard]] bool empty() const noexcept { return size() == 0; }

    /// Appends a copy of `data`. Throws std::bad_alloc.
    void append(std::string_view data);
    void append(const void* data, std::size_t size) {
        append(std::string_view(static_cast<const char*>(data), size));
    }
    /// Moves every byte of `other` to the end of this buffer (no copy of the
    /// data; `other` is left empty).
    void append(Buffer& other);

    /// The offset of the first `needle` at or after `from`, if any.
    [[nodiscard]] std::optional<std::size_t> find(std::string_view needle,
                                                  std::size_t from = 0) const;
    /// Copies up to `size` bytes from the front without removing them.
    [[nodiscard]] std::string peek(std::size_t size) const;
    /// Copies up to `size` bytes from `offset` into `out`; returns how many.
    std::size_t copy_out(std::size_t offset, void* out, std::size_t size) const;
    /// Removes up to `size` bytes from the front and returns them.
    std::string take(std::size_t size);
    /// Removes up to `size` bytes from the front.
    void drain(std::size_t size) noexcept;
    void clear() noexcept { drain(size()); }

    /// The first `size` bytes as one contiguous view (it may move them into
    /// one block); valid until the buffer next changes. `size` is clamped to
    /// size().
    [[nodiscard]] std::string_view contiguous(std::size_t size);

    /// The libevent buffer, for code that speaks evbuffer directly.
    [[nodiscard]] evbuffer* raw() const noexcept { return buffer_; }

private:
    evbuffer* buffer_;
};

}  // namespace quiesce
