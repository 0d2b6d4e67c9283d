// Buffer over libevent's evbuffer (see buffer.hpp).
#include <quiesce/framework/buffer.hpp>

#include <event2/buffer.h>

#include <algorithm>
#include <new>
#include <utility>

namespace quiesce {

Buffer::Buffer() : buffer_(evbuffer_new()) {
    if (buffer_ == nullptr) throw std::bad_alloc();
}

Buffer::~Buffer() {
    if (buffer_ != nullptr) evbuffer_free(buffer_);
}

Buffer::Buffer(Buffer&& other) noexcept : buffer_(std::exchange(other.buffer_, nullptr)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
    std::swap(buffer_, other.buffer_);
    return *this;
}

std::size_t Buffer::size() const noexcept {
    return buffer_ == nullptr ? 0 : evbuffer_get_length(buffer_);
}

void Buffer::append(std::string_view data) {
    if (data.empty()) return;
    if (evbuffer_add(buffer_, data.data(), data.size()) != 0) throw std::bad_alloc();
}

void Buffer::append(Buffer& other) {
    if (&other == this || other.empty()) return;
    if (evbuffer_add_buffer(buffer_, other.buffer_) != 0) throw std::bad_alloc();
}

std::optional<std::size_t> Buffer::find(std::string_view needle, std::size_t from) const {
    if (needle.empty() || from >= size()) return std::nullopt;
    // Most searches (a protocol line in what one read brought) end in the
    // first block: search it in place. A match that starts there but runs
    // into the next block, or none there, is left to evbuffer_search().
    evbuffer_iovec first;
    if (evbuffer_peek(buffer_, -1, nullptr, &first, 1) >= 1 && from < first.iov_len) {
        const std::string_view block(static_cast<const char*>(first.iov_base), first.iov_len);
        const std::size_t at = block.find(needle, from);
        if (at != std::string_view::npos) return at;
    }
    evbuffer_ptr start;
    if (evbuffer_ptr_set(buffer_, &start, from, EVBUFFER_PTR_SET) != 0) return std::nullopt;
    evbuffer_ptr at = evbuffer_search(buffer_, needle.data(), needle.size(), &start);
    if (at.pos < 0) return std::nullopt;
    return static_cast<std::size_t>(at.pos);
}

std::size_t Buffer::copy_out(std::size_t offset, void* out, std::size_t count) const {
    std::size_t length = size();
    if (offset >= length || count == 0) return 0;
    count = std::min(count, length - offset);
    evbuffer_ptr start;
    if (evbuffer_ptr_set(buffer_, &start, offset, EVBUFFER_PTR_SET) != 0) return 0;
    ev_ssize_t copied = evbuffer_copyout_from(buffer_, &start, out, count);
    return copied < 0 ? 0 : static_cast<std::size_t>(copied);
}

std::string Buffer::peek(std::size_t count) const {
    std::string out(std::min(count, size()), '\0');
    out.resize(copy_out(0, out.data(), out.size()));
    return out;
}

std::string Buffer::take(std::size_t count) {
    std::string out(std::min(count, size()), '\0');
    if (!out.empty()) {
        int removed = evbuffer_remove(buffer_, out.data(), out.size());
        out.resize(removed < 0 ? 0 : static_cast<std::size_t>(removed));
    }
    return out;
}

void Buffer::drain(std::size_t count) noexcept {
    if (buffer_ != nullptr && count > 0) evbuffer_drain(buffer_, count);
}

std::string_view Buffer::contiguous(std::size_t count) {
    count = std::min(count, size());
    if (count == 0) return {};
    unsigned char* data = evbuffer_pullup(buffer_, static_cast<ev_ssize_t>(count));
    if (data == nullptr) throw std::bad_alloc();
    return {reinterpret_cast<const char*>(data), count};
}

}  // namespace quiesce
