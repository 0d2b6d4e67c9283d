// Stream: a connection served by a fiber, in straight-line code.
//
//     runtime.listen_fibers("127.0.0.1:7001", [](tcp::Stream& stream) {
//         while (auto line = stream.read_until("\n", 4096)) {   // nullopt at EOF
//             stream.write(*line);
//             stream.write("\n");       // sent before the next read waits
//         }
//     });
//
// Each accepted connection gets a fiber-backed group (Scheduler::spawn) that
// runs the handler; when it returns, what is queued is sent and the
// connection closes as Connection::close() does (FIN, then lingering until
// the peer's FIN, bounded). Reads and writes that would block suspend the
// fiber (a quiescent state of its loop: hold no RCU reference across them);
// other groups run meanwhile.
//
// Errors come back as exceptions, which the framework catches around the
// handler: std::system_error for the socket (connection_reset, broken_pipe;
// timed_out when nothing arrives for `idle_timeout`, or output does not drain
// within `close_timeout`) ends the connection with a debug log;
// std::length_error from read_until() past its limit closes it with a debug
// log; anything else is logged as an error and aborts it. A handler that
// catches `...` must rethrow (closing the group unwinds the fiber).
//
// A graceful stop of the runtime makes the reads in progress and later ones
// return EOF (stopping() turns true): a handler that loops on reads ends
// there, and what it wrote is still sent.
//
// Threading: every member from the stream's fiber only, except post() (any
// thread) and write() inside a post()ed closure.
#pragma once

#include <quiesce/base/config.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <quiesce/framework/tcp.hpp>

namespace quiesce::tcp {

class Stream final : public Session, public std::enable_shared_from_this<Stream> {
public:
    /// Reads what the socket has (waiting for at least one byte) into in();
    /// returns how many bytes were added, 0 at EOF or once stopping(). A
    /// read that has to wait sends what is queued first (the peer may be
    /// waiting for it), so request/response code needs no flush().
    std::size_t read_some();
    /// The bytes before the next `delim` (both removed from in()), or nullopt
    /// at EOF before one. Throws std::length_error when `max` bytes arrive
    /// without `delim`.
    std::optional<std::string> read_until(std::string_view delim, std::size_t max);
    /// Exactly `size` bytes, or nullopt at EOF first.
    std::optional<std::string> read_exactly(std::size_t size);
    /// What was read and not consumed yet.
    [[nodiscard]] Buffer& in() noexcept { return input_; }

    /// Queues `data`; sends (waiting if needed) once more than `high_water`
    /// bytes are queued. Throws std::system_error(no_buffer_space) past
    /// `max_output`.
    void write(std::string_view data);
    void write(Buffer& data);
    /// Sends everything queued, waiting for the socket as needed.
    void flush();
    /// Flushes, then sends FIN; reading goes on.
    void shutdown_write();

    /// Runs `fn(stream)` as an event of the stream's group, between the
    /// fiber's steps (for other connections handing this one output: a chat
    /// message, a notification). What `fn` writes is queued, never waited
    /// for, and the fiber sends it (its wait in progress returns to do so).
    /// Past `max_output` queued (a peer that does not read) the connection
    /// is aborted. Returns false once the connection is closed. Thread: any.
    bool post(std::function<void(Stream&)> fn);

    /// True once the runtime asked for a graceful stop.
    [[nodiscard]] bool stopping() const noexcept;
    [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
    [[nodiscard]] const Address& peer() const noexcept { return peer_; }
    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] std::uint64_t bytes_in() const noexcept { return bytes_in_; }
    [[nodiscard]] std::uint64_t bytes_out() const noexcept { return bytes_out_; }

    /// Internal: made by a Listener.
    struct Init {
        std::uint64_t id;
        int fd;
        Runtime& runtime;
        unsigned loop;
        ConnectionOptions options;
        Address peer;
    };
    explicit Stream(Init&& init);
    ~Stream() override;
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    /// Internal: the fiber's body (runs `serve`, then closes).
    void run(const StreamHandler& serve);
    /// Internal: the group that runs the fiber (set once, by the listener).
    void attach(sched::Group group);
    /// Internal: the group closed (the fiber ended or was cancelled).
    void closed_by_group() noexcept;
    [[nodiscard]] std::uint64_t session_id() const noexcept override { return id_; }
    void request_shutdown() override;
    void request_abort() override;

private:
    /// Waits until the socket is readable (kReady), or stopping / timed out.
    bool wait(pollers::Ready what);
    void close_gracefully();
    void release() noexcept;
    void post_cancel(const sched::Group& group);
    void check_output(std::size_t size) const;
    bool queue_from_event(std::size_t size);

    const std::uint64_t id_;
    int fd_;
    Runtime& runtime_;
    unsigned loop_;
    const ConnectionOptions options_;
    const Address peer_;
    std::unique_ptr<pollers::FiberFd> io_;  // the fiber's watch; replaced after a stop cancels it
    Buffer input_;
    Buffer output_;
    std::uint64_t bytes_in_ = 0;
    std::uint64_t bytes_out_ = 0;
    bool eof_ = false;
    // False until the socket may hold input we have not read: at the start
    // and after a read found it empty (EAGAIN). The next read waits for the
    // watch's edge first instead of trying the socket: an idle connection
    // makes no read (and reserves no input buffer) until its peer sends.
    bool readable_ = false;
    bool in_event_ = false;  // a post()ed closure runs (not the fiber)
    bool write_shut_ = false;

    mutable std::mutex control_mutex_;  // the runtime's requests against attach()
    sched::Group group_;                // control_mutex_
    bool stop_requested_ = false;       // control_mutex_
    bool cancel_posted_ = false;        // control_mutex_
    bool released_ = false;             // control_mutex_
};

}  // namespace quiesce::tcp
