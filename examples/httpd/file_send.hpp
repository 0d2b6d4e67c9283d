// A file reply's body, sent piece by piece: from the page cache with
// sendfile(2) where it holds a piece whole, else through an AIO read and a
// write (README.md, "Files").
//
// Threading: a FileSend lives on its connection's group; every call runs
// there (its AIO completions are events of that group).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <quiesce/framework/http.hpp>
#include <quiesce/pollers/aio_poller.hpp>

namespace httpd {

/// What a file reply sends, in order: for each part, `head` (a multipart
/// header; empty for a plain reply), then `length` bytes of the file from
/// `offset`; then the tail (the closing boundary).
struct FilePart {
    std::string head;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

/// Sends the parts of a file, a piece of `chunk` bytes once the connection's
/// queued output has drained: a slow client costs one piece. A piece the
/// page cache holds whole goes out with sendfile (when `use_sendfile`, and
/// the kernel answers cachestat(2) for the file); the others are read
/// through the AIO poller and written, and so is every piece after the
/// first one read, whose readahead may still be in flight.
class FileSend : public std::enable_shared_from_this<FileSend> {
public:
    /// Takes `fd` (closed with the FileSend) and the started `responder`.
    FileSend(quiesce::http::Responder responder, int fd, std::vector<FilePart> parts,
             std::string tail, std::size_t chunk, bool use_sendfile,
             quiesce::pollers::AioPoller& aio);
    ~FileSend();
    FileSend(const FileSend&) = delete;
    FileSend& operator=(const FileSend&) = delete;

    /// Queues the next piece (or ends the reply); runs again once it drained.
    void step();

private:
    void read_piece(std::size_t want);

    quiesce::http::Responder responder_;
    int fd_;
    std::vector<FilePart> parts_;
    std::string tail_;
    std::size_t next_ = 0;               // the part being sent
    std::size_t size_;                   // of a piece, and of the buffer: one AIO read
    std::unique_ptr<char[]> buffer_;     // allocated for the first piece read through AIO
    bool sendfile_;                      // still trying sendfile for this reply
    std::uint64_t pieces_ = 0;           // queued so far
    std::uint64_t sent_from_cache_ = 0;  // of them with sendfile
    quiesce::pollers::AioPoller& aio_;
};

}  // namespace httpd
