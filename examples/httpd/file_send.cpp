// FileSend: a file reply's body, by sendfile from the page cache or by AIO
// reads (file_send.hpp).
#include "file_send.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <string_view>

#include <spdlog/spdlog.h>

namespace httpd {
namespace {

#ifdef SYS_cachestat
constexpr long kCachestat = SYS_cachestat;
#else
constexpr long kCachestat = 451;  // Debian 12's headers predate it; x86-64, arm64 and most others
#endif

enum class Cached { kYes, kNo, kUnknown };

/// Whether every page of [offset, offset + length) is in the page cache,
/// by cachestat(2) (Linux 6.5; glibc 2.36 has no wrapper). kUnknown where
/// the kernel lacks it, and where it refuses it for this file: recent
/// kernels answer only for a file the caller may write or owns (EPERM
/// otherwise), and seccomp filters may refuse it. The answer may be stale
/// by the time the pages are sent: a page evicted in between is read from
/// the disk by sendfile on the loop, as nginx's sendfile would.
Cached range_cached(int fd, std::uint64_t offset, std::uint64_t length) noexcept {
    // relaxed: a hint; a thread that tries once more only wastes a call.
    static std::atomic<bool> missing{false};
    if (length == 0 || missing.load(std::memory_order_relaxed)) return Cached::kUnknown;
    struct {
        std::uint64_t off, len;
    } range{offset, length};
    struct {
        std::uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
    } stat{};
    if (::syscall(kCachestat, fd, &range, &stat, 0) != 0) {
        if (errno == ENOSYS) missing.store(true, std::memory_order_relaxed);
        return Cached::kUnknown;
    }
    static const auto page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    const std::uint64_t pages = (offset + length - 1) / page - offset / page + 1;
    return stat.nr_cache >= pages ? Cached::kYes : Cached::kNo;
}

std::uint64_t largest(const std::vector<FilePart>& parts) noexcept {
    std::uint64_t most = 0;
    for (const FilePart& part : parts) most = std::max(most, part.length);
    return most;
}

}  // namespace

FileSend::FileSend(quiesce::http::Responder responder, int fd, std::vector<FilePart> parts,
                   std::string tail, std::size_t chunk, bool use_sendfile,
                   quiesce::pollers::AioPoller& aio)
    : responder_(std::move(responder)),
      fd_(fd),
      parts_(std::move(parts)),
      tail_(std::move(tail)),
      size_(static_cast<std::size_t>(
          std::min<std::uint64_t>(chunk, std::max<std::uint64_t>(largest(parts_), 1)))),
      sendfile_(use_sendfile),
      aio_(aio) {}

FileSend::~FileSend() {
    ::close(fd_);
}

void FileSend::step() {
    if (!responder_.open()) {
        responder_.finish();
        return;
    }
    while (next_ < parts_.size()) {
        FilePart& part = parts_[next_];
        if (!part.head.empty()) {
            responder_.write(part.head);
            part.head.clear();
        }
        if (part.length > 0) break;
        ++next_;
    }
    if (next_ == parts_.size()) {
        if (!tail_.empty()) responder_.write(tail_);
        // Before finish(): that may start the next pipelined request.
        spdlog::debug("httpd: {}: {} of {} pieces sent from the page cache with sendfile",
                      responder_.request().path(), sent_from_cache_, pieces_);
        responder_.finish();
        return;
    }
    FilePart& part = parts_[next_];
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(size_, part.length));
    ++pieces_;
    if (sendfile_) {
        const Cached cached = range_cached(fd_, part.offset, want);
        if (cached == Cached::kYes && responder_.write_file(fd_, part.offset, want)) {
            part.offset += want;
            part.length -= want;
            ++sent_from_cache_;
            responder_.when_drained([self = shared_from_this()] { self->step(); });
            return;
        }
        // Not cached: this piece's read starts readahead, and cachestat
        // counts pages still being read as cached, which sendfile would
        // wait for on the loop. Unknown: it will not answer for this file.
        sendfile_ = false;
    }
    read_piece(want);
}

void FileSend::read_piece(std::size_t want) {
    if (!buffer_) buffer_.reset(new char[size_]);
    FilePart& part = parts_[next_];
    aio_.read_at(responder_.group(), fd_, buffer_.get(), want, static_cast<off_t>(part.offset),
                 [self = shared_from_this()](quiesce::pollers::AioResult result) {
                     if (result.error || result.bytes == 0) {
                         if (result.error)
                             spdlog::warn("httpd: reading a file failed: {}",
                                          result.error.message());
                         self->responder_.finish();  // short: the connection is aborted
                         return;
                     }
                     FilePart& done = self->parts_[self->next_];
                     const auto got = std::min<std::uint64_t>(done.length, result.bytes);
                     done.offset += got;
                     done.length -= got;
                     self->responder_.write(std::string_view(self->buffer_.get(), got));
                     self->responder_.when_drained([self] { self->step(); });
                 });
}

}  // namespace httpd
