// TCP (and Unix-domain stream) servers: a Listener accepts, each accepted
// socket becomes a Connection with its own event group, and a Handler the
// application writes reacts to its bytes.
//
//     struct Echo : tcp::Handler {
//         void on_data(tcp::Connection& conn, Buffer& in) override { conn.write(in); }
//     };
//     runtime.listen("127.0.0.1:7000", [] { return std::make_unique<Echo>(); });
//
// A connection's handler calls all run as events of the connection's group:
// never two at once, on whichever loop runs the group. Input is read with
// edge-triggered readiness straight into `in` (a libevent evbuffer); what the
// handler writes is queued and sent when the handler returns, in one writev.
//
// Limits that keep memory bounded (ConnectionOptions):
// - back-pressure: while more than `high_water` bytes wait to be sent, the
//   connection stops reading; it reads again below `low_water` (on_drain()).
// - `max_input`: a handler that leaves that many bytes unconsumed in `in`
//   (a request larger than it accepts) gets its connection closed.
// - `max_output`: a write that would queue more than that (a peer that does
//   not read what the server pushes to it) aborts the connection.
// - `idle_timeout`: no byte received or sent for that long calls on_timeout()
//   (default: close). Re-arming on each read costs one clock read and a
//   store; the timer itself is re-armed at most once per timeout period.
// - `close_timeout`: an orderly close() flushes what is queued, sends FIN and
//   reads (discarding) until the peer's FIN or until nothing has arrived for
//   `linger_quiet`, for at most `close_timeout` in all, then aborts. Closing
//   a socket with unread input makes the kernel send a reset, which can
//   destroy replies the peer has not read yet: lingering avoids it.
//
// Errors of the peer (reset, EPIPE) end the connection quietly (a debug log)
// with on_close(error). An exception escaping a handler call closes that
// connection (the scheduler logs it), never the process.
//
// Threading: Connection members from the connection's group only, except
// post(), id(), peer() and group(), which any thread may call.
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include <quiesce/framework/address.hpp>
#include <quiesce/framework/buffer.hpp>
#include <quiesce/pollers/fd_poller.hpp>
#include <quiesce/scheduler/group.hpp>
#include <quiesce/scheduler/timer.hpp>

namespace quiesce {
class Runtime;
}

namespace quiesce::tcp {

class Connection;

/// What the application writes: one handler object per connection.
class Handler {
public:
    virtual ~Handler() = default;
    /// The connection is set up; nothing was read yet.
    virtual void on_open(Connection& conn);
    /// Bytes arrived: `in` holds every byte not consumed yet. Consume (drain,
    /// take) what you used; the rest stays for the next call.
    virtual void on_data(Connection& conn, Buffer& in) = 0;
    /// The peer closed its sending side (FIN). Default: close() after what
    /// is queued is sent. A handler may keep writing first (half-close).
    virtual void on_eof(Connection& conn);
    /// The runtime is stopping gracefully. Default: close().
    virtual void on_shutdown(Connection& conn);
    /// Nothing received or sent for `idle_timeout`. Default: close().
    virtual void on_timeout(Connection& conn);
    /// Queued output fell below `low_water` after going above `high_water`.
    virtual void on_drain(Connection& conn);
    /// Last call. `error` is empty for an orderly close, else the reason
    /// (connection_reset, broken_pipe, timed_out, ...).
    virtual void on_close(Connection& conn, std::error_code error);
};

struct ConnectionOptions {
    /// 0: none.
    std::chrono::milliseconds idle_timeout{0};
    std::chrono::milliseconds close_timeout{5000};
    std::chrono::milliseconds linger_quiet{500};
    /// Bytes read per read() call; also the most one on_data() call adds.
    std::size_t read_chunk = 64 * 1024;
    std::size_t max_input = 1024 * 1024;
    std::size_t high_water = 1024 * 1024;
    std::size_t low_water = 256 * 1024;
    std::size_t max_output = 64 * 1024 * 1024;
    /// TCP_NODELAY (TCP only): replies go out at once, not after 40 ms.
    bool nodelay = true;
};

struct ListenerOptions {
    ConnectionOptions connection{};
    /// SO_REUSEPORT: several processes (or listeners) share the port.
    bool reuse_port = false;
    int backlog = 4096;
    /// Connections accepted per turn of the listener's group.
    unsigned accept_batch = 64;
    /// The loop every new connection starts on; -1 = the loop with the
    /// fewest open connections. Either way the scheduler moves connections
    /// from a busier loop to an idler one (scheduler/README.md, "Moving
    /// groups"). A loop the runtime does not have: listen() throws
    /// std::invalid_argument.
    int loop = -1;
    /// Logs and group names ("NAME 127.0.0.1:7000", "NAME conn 17").
    std::string name = "tcp";
    /// Logs "listening on ADDR" once bound (the line scripts look for to
    /// learn a port 0 listener's port). The admin endpoint says its own.
    bool announce = true;
};

using HandlerFactory = std::function<std::unique_ptr<Handler>()>;

class Stream;
/// Serves one fiber-backed connection in straight-line code (stream.hpp).
using StreamHandler = std::function<void(Stream&)>;

/// Internal: what the runtime keeps of an open connection, stackless or
/// fiber-backed.
class Session {
public:
    virtual ~Session() = default;
    [[nodiscard]] virtual std::uint64_t session_id() const noexcept = 0;
    /// The runtime is stopping gracefully. Thread: any.
    virtual void request_shutdown() = 0;
    /// The grace period is over: end now. Thread: any.
    virtual void request_abort() = 0;
};

class Connection final : public Session, public std::enable_shared_from_this<Connection> {
public:
    /// Queues `data` for sending (sent when the current handler call returns,
    /// or at once from a post()). Aborts the connection if more than
    /// `max_output` would be queued; does nothing once closing.
    void write(std::string_view data);
    /// Moves all of `data` to the output (no copy).
    void write(Buffer& data);
    /// Queues `length` bytes of the file `fd` from `offset`, sent from the
    /// page cache with sendfile(2) when their turn comes: no copy through
    /// user space. The connection holds a duplicate of `fd` until they are
    /// sent, so the caller may close its own at once. sendfile reads the
    /// file on the loop: queue only what is in the page cache (cachestat(2)),
    /// or a loop may block on the disk. A file that turns out shorter than
    /// `length` aborts the connection (the client sees a short body).
    /// The range counts against `max_output` as written bytes do. Returns
    /// false, with nothing queued, if the descriptor cannot be duplicated
    /// (send the bytes another way), once the connection is closing, or
    /// when write() would refuse the bytes (past `max_output` that aborts
    /// the connection, as write() does).
    [[nodiscard]] bool write_file(int fd, std::uint64_t offset, std::uint64_t length);
    /// Orderly close: flush, FIN, wait for the peer's FIN (bounded), close.
    /// on_data() is not called again.
    void close();
    /// Closes now, dropping queued output; on_close(error).
    void abort(std::error_code error = std::make_error_code(std::errc::connection_aborted));
    /// Sends FIN once queued output is sent; reading goes on (half-close).
    void shutdown_write();
    /// Stops reading (the kernel's buffer, then TCP's window, push back on
    /// the peer) until resume_reading().
    void pause_reading();
    void resume_reading();
    /// Re-arms the idle timeout (reads and writes do this already).
    void touch() noexcept;

    /// Runs `fn(conn)` as an event of this connection's group, then sends
    /// what it wrote. Returns false (running nothing) once the connection is
    /// closed. Thread: any.
    bool post(std::function<void(Connection&)> fn);

    [[nodiscard]] std::size_t input_size() const noexcept { return input_.size(); }
    [[nodiscard]] std::size_t output_size() const noexcept { return output_.size(); }
    [[nodiscard]] bool closing() const noexcept { return state_ != State::kOpen; }
    [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
    [[nodiscard]] const Address& peer() const noexcept { return peer_; }
    [[nodiscard]] const sched::Group& group() const noexcept { return group_; }
    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] Handler& handler() noexcept { return *handler_; }
    [[nodiscard]] std::uint64_t bytes_in() const noexcept { return bytes_in_; }
    [[nodiscard]] std::uint64_t bytes_out() const noexcept { return bytes_out_; }

    /// Internal: made by a Listener (or Runtime::adopt()).
    struct Init;
    explicit Connection(Init&& init);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    /// Internal: watches the socket and calls on_open() on its group.
    void start(pollers::FdPoller& fds);
    [[nodiscard]] std::uint64_t session_id() const noexcept override { return id_; }
    void request_shutdown() override;
    void request_abort() override;

private:
    friend class Listener;
    enum class State : std::uint8_t { kOpen, kClosing, kLingering, kClosed };

    void on_ready(pollers::Ready ready);
    void read_input();
    void flush_output();
    void after_dispatch();
    bool accepts_output(std::size_t size);
    void log_io_error(const char* operation, int error) const;
    void continue_reading();
    bool reading_allowed() const noexcept;
    void arm_idle_timer(std::chrono::nanoseconds delay);
    void on_idle_timer();
    void arm_linger_timer(std::chrono::nanoseconds delay);
    void teardown(std::error_code error) noexcept;
    [[nodiscard]] std::int64_t now_ns() const noexcept;

    const std::uint64_t id_;
    int fd_;
    Runtime& runtime_;
    unsigned loop_;  // where it was placed (the runtime's per-loop count)
    const ConnectionOptions options_;
    const Address peer_;
    std::unique_ptr<Handler> handler_;
    sched::Group group_;
    pollers::FdWatch watch_;
    Buffer input_;
    Buffer output_;
    sched::Timer idle_timer_;
    sched::Timer close_timer_;
    sched::Timer linger_timer_;
    std::int64_t last_activity_ns_ = 0;
    std::uint64_t bytes_in_ = 0;
    std::uint64_t bytes_out_ = 0;
    State state_ = State::kOpen;
    bool started_ = false;
    bool read_eof_ = false;
    bool hangup_seen_ = false;  // the peer's FIN was reported: read to the EOF
    bool write_shut_ = false;
    bool want_write_shut_ = false;
    bool write_blocked_ = false;
    bool user_paused_ = false;
    bool backpressured_ = false;
    bool read_pending_ = false;  // input may wait in the kernel: read when allowed
    bool read_posted_ = false;   // a continue_reading() is queued
    bool in_dispatch_ = false;
};

/// A listening socket. Made by Runtime::listen(); the runtime owns it.
class Listener {
public:
    /// The address it is bound to (the port the kernel picked for port 0).
    [[nodiscard]] const Address& address() const noexcept { return address_; }
    [[nodiscard]] const ListenerOptions& options() const noexcept { return options_; }
    /// The listening socket's descriptor, for listings such as memcached's
    /// "stats conns". Thread: any, until close() (then the number may be
    /// reused).
    [[nodiscard]] int fd() const noexcept { return fd_; }
    /// Stops accepting and closes the socket (connections stay). Thread: any.
    void close();
    [[nodiscard]] bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

    /// Internal.
    Listener(Runtime& runtime, const Address& address, HandlerFactory factory, StreamHandler serve,
             ListenerOptions options);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    void start(pollers::FdPoller& fds);

private:
    void accept_batch();
    void open_connection(int fd, const Address& peer);
    void open_stream(int fd, const Address& peer);
    void refuse(const Address& peer);
    void pause_accepting(int error);
    void close_on_group() noexcept;

    Runtime& runtime_;
    Address address_;
    HandlerFactory factory_;  // stackless connections, or
    StreamHandler serve_;     // fiber-backed ones
    const ListenerOptions options_;
    int fd_ = -1;
    sched::Group group_;
    pollers::FdWatch watch_;
    sched::Timer retry_timer_;
    std::chrono::milliseconds backoff_{0};
    std::chrono::steady_clock::time_point last_warning_{};
    std::uint64_t suppressed_warnings_ = 0;
    bool paused_ = false;
    bool accept_posted_ = false;
    std::atomic<bool> closed_{false};  // [L1] claimed in close_on_group(), acquire in closed()
};

}  // namespace quiesce::tcp
