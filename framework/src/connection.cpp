// Connection: a socket, its input and output buffers and its handler, all
// driven by events of the connection's own group (see tcp.hpp).
//
// Threading: every member but post() runs on the connection's group (the
// readiness handler, timers and posted closures are events of it), so the
// state below needs no lock. The group's close handler, which runs on the
// group too, tears the connection down when an exception closed the group.
#include <quiesce/framework/tcp.hpp>

#include <event2/buffer.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

#include <quiesce/scheduler/need_resched.hpp>

#include "log.hpp"
#include "runtime_internal.hpp"
#include "socket_io.hpp"
#include "tcp_internal.hpp"

namespace quiesce::tcp {

void Handler::on_open(Connection&) {}
void Handler::on_eof(Connection& conn) {
    conn.close();
}
void Handler::on_shutdown(Connection& conn) {
    conn.close();
}
void Handler::on_timeout(Connection& conn) {
    detail::logger().debug("connection {} ({}): idle timeout", conn.id(), conn.peer().to_string());
    conn.close();
}
void Handler::on_drain(Connection&) {}
void Handler::on_close(Connection&, std::error_code) {}

namespace {

/// Marks a handler call: what it writes is sent when the call returns.
class Dispatch {
public:
    explicit Dispatch(bool& flag) noexcept : flag_(flag), outer_(flag) { flag_ = true; }
    ~Dispatch() { flag_ = outer_; }
    Dispatch(const Dispatch&) = delete;
    Dispatch& operator=(const Dispatch&) = delete;

private:
    bool& flag_;
    bool outer_;
};

}  // namespace

Connection::Connection(Init&& init)
    : id_(init.id),
      fd_(init.fd),
      runtime_(init.runtime),
      loop_(init.loop),
      options_(std::move(init.options)),
      peer_(init.peer),
      handler_(std::move(init.handler)),
      group_(std::move(init.group)) {}

Connection::~Connection() {
    watch_.cancel();             // before the number can be reused
    if (fd_ >= 0) ::close(fd_);  // never started (refused), or torn down by the runtime's stop
}

std::int64_t Connection::now_ns() const noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void Connection::start(pollers::FdPoller& fds) {
    // Everything about the connection happens on its group, the watch too.
    group_.post([self = shared_from_this(), poller = &fds] {
        if (self->state_ == State::kClosed) return;
        Connection& c = *self;
        std::error_code error = poller->try_watch(
            c.fd_, c.group_, static_cast<pollers::Ready>(pollers::kReadWrite | pollers::kHangup),
            [conn = &c](pollers::Ready ready) { conn->on_ready(ready); },
            {.persistent = true, .edge_triggered = true}, c.watch_);
        if (error) {
            detail::logger().warn("connection {} ({}): cannot watch its socket: {}", c.id_,
                                  c.peer_.to_string(), error.message());
            c.teardown(error);
            return;
        }
        c.started_ = true;
        c.last_activity_ns_ = c.now_ns();
        if (c.options_.idle_timeout.count() > 0) c.arm_idle_timer(c.options_.idle_timeout);
        {
            Dispatch call(c.in_dispatch_);
            c.handler_->on_open(c);
        }
        c.after_dispatch();
    });
}

void Connection::on_ready(pollers::Ready ready) {
    if (state_ == State::kClosed) return;
    // The watch holds no reference: a teardown below (a reset, an abort()
    // from the handler) must not free the connection under this frame.
    std::shared_ptr<Connection> self = shared_from_this();
    if ((ready & pollers::kWrite) != 0) write_blocked_ = false;
    if ((ready & pollers::kRead) != 0) read_pending_ = true;
    if ((ready & pollers::kHangup) != 0) {
        read_pending_ = true;
        hangup_seen_ = true;  // read on to the EOF
    }
    {
        Dispatch call(in_dispatch_);
        read_input();
    }
    after_dispatch();
}

bool Connection::reading_allowed() const noexcept {
    if (state_ == State::kClosed || read_eof_) return false;
    if (state_ != State::kOpen) return true;  // closing: read and discard, to see the peer's FIN
    return !user_paused_ && !backpressured_ && input_.size() < options_.max_input;
}

void Connection::read_input() {
    bool first = true;
    while (read_pending_ && reading_allowed()) {
        if (!first && sched::need_resched()) {
            continue_reading();
            return;
        }
        first = false;
        ssize_t n = detail::read_into(input_, fd_, options_.read_chunk);
        if (n < 0) {
            int error = errno;
            if (error == EINTR) continue;
            read_pending_ = false;
            if (error == EAGAIN || error == EWOULDBLOCK) return;
            log_io_error("read", error);
            teardown(std::error_code(error, std::generic_category()));
            return;
        }
        if (n == 0) {
            read_pending_ = false;
            read_eof_ = true;
            if (state_ == State::kOpen) handler_->on_eof(*this);
            return;  // after_dispatch() finishes a close that waited for this FIN
        }
        bytes_in_ += static_cast<std::uint64_t>(n);
        runtime_.internal().bytes_in.add(static_cast<std::uint64_t>(n));
        last_activity_ns_ = now_ns();
        // A short read took all the kernel had. A FIN that came with these
        // bytes was reported as kHangup (then read on to the EOF); one that
        // comes later raises a new edge. Saves a readv() that would return
        // EAGAIN.
        if (static_cast<std::size_t>(n) < options_.read_chunk && !hangup_seen_)
            read_pending_ = false;
        if (state_ != State::kOpen) {
            input_.clear();
            continue;
        }
        handler_->on_data(*this, input_);
        if (state_ == State::kOpen && input_.size() >= options_.max_input) {
            detail::logger().debug(
                "connection {} ({}): {} bytes of input not consumed (max_input {}): closing", id_,
                peer_.to_string(), input_.size(), options_.max_input);
            close();
        }
        flush_output();
    }
}

void Connection::log_io_error(const char* operation, int error) const {
    // A peer that resets or goes away is ordinary: debug only.
    auto level = detail::peer_went_away(error) ? spdlog::level::debug : spdlog::level::warn;
    detail::logger().log(level, "connection {} ({}): {}: {}", id_, peer_.to_string(), operation,
                         std::generic_category().message(error));
}

void Connection::continue_reading() {
    if (read_posted_) return;
    read_posted_ = true;
    group_.post([self = shared_from_this()] {
        self->read_posted_ = false;
        if (self->state_ == State::kClosed) return;
        {
            Dispatch call(self->in_dispatch_);
            self->read_input();
        }
        self->after_dispatch();
    });
}

void Connection::flush_output() {
    // evbuffer_write() removes what it wrote: `pending` follows the size
    // without asking libevent again.
    std::size_t pending = output_.size();
    while (pending != 0 && !write_blocked_ && state_ != State::kClosed) {
        errno = 0;  // a 0 with errno unset: a file segment's file ended early
        int n = evbuffer_write(output_.raw(), fd_);
        if (n > 0) {
            pending -= std::min(pending, static_cast<std::size_t>(n));
            bytes_out_ += static_cast<std::uint64_t>(n);
            runtime_.internal().bytes_out.add(static_cast<std::uint64_t>(n));
            last_activity_ns_ = now_ns();
            continue;
        }
        // libevent returns 0 for a sendfile() that would block (errno
        // EAGAIN) and for one at the end of the file (errno untouched).
        int error = errno;
        if (error == EINTR) continue;
        if (error == EAGAIN || error == EWOULDBLOCK) {
            write_blocked_ = true;  // the next writable edge clears it
            break;
        }
        if (error == 0) {  // n <= 0 with no error: only a file segment's early end
            detail::logger().warn(
                "connection {} ({}): a file being sent is shorter than announced "
                "(truncated meanwhile?): aborting",
                id_, peer_.to_string());
            teardown(std::make_error_code(std::errc::io_error));
            return;
        }
        log_io_error("write", error);
        teardown(std::error_code(error, std::generic_category()));
        return;
    }
    if (state_ == State::kClosed) return;
    if (!backpressured_ && pending > options_.high_water) backpressured_ = true;
}

void Connection::after_dispatch() {
    if (state_ == State::kClosed) return;
    flush_output();
    if (state_ == State::kClosed) return;
    if (backpressured_ && output_.size() <= options_.low_water) {
        backpressured_ = false;
        if (state_ == State::kOpen) {
            {
                Dispatch call(in_dispatch_);
                handler_->on_drain(*this);
            }
            flush_output();
            if (state_ == State::kClosed) return;
        }
    }
    if (output_.empty() && !write_shut_ && (want_write_shut_ || state_ == State::kClosing)) {
        ::shutdown(fd_, SHUT_WR);
        write_shut_ = true;
    }
    if (state_ == State::kClosing && write_shut_) {
        state_ = State::kLingering;
        last_activity_ns_ = now_ns();
        arm_linger_timer(options_.linger_quiet);
    }
    if (state_ == State::kLingering && read_eof_) {
        teardown({});
        return;
    }
    if (read_pending_ && reading_allowed()) continue_reading();
}

bool Connection::accepts_output(std::size_t size) {
    if (state_ != State::kOpen || write_shut_ || want_write_shut_ || size == 0) return false;
    if (output_.size() + size <= options_.max_output) return true;
    detail::logger().debug(
        "connection {} ({}): more than {} bytes of output queued (peer not reading): aborting", id_,
        peer_.to_string(), options_.max_output);
    abort(std::make_error_code(std::errc::no_buffer_space));
    return false;
}

void Connection::write(std::string_view data) {
    if (!accepts_output(data.size())) return;
    output_.append(data);
    if (!in_dispatch_) after_dispatch();
}

void Connection::write(Buffer& data) {
    if (!accepts_output(data.size())) return;
    output_.append(data);
    if (!in_dispatch_) after_dispatch();
}

bool Connection::write_file(int fd, std::uint64_t offset, std::uint64_t length) {
    if (length == 0) return true;
    if (!accepts_output(static_cast<std::size_t>(length))) return false;
    // The segment owns a duplicate, closed when its bytes are sent or the
    // output is dropped: the caller's descriptor may be closed meanwhile.
    const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) {
        // Debug, not warn: the caller sends the bytes another way, and out
        // of descriptors this would come once per piece.
        const int error = errno;
        detail::logger().debug("connection {} ({}): cannot duplicate a file descriptor to send: {}",
                               id_, peer_.to_string(), std::generic_category().message(error));
        return false;
    }
    // Without EVBUF_FS_DISABLE_MMAP libevent would map the file; without
    // DRAINS_TO_FD on the output it would read the range into memory.
    evbuffer_file_segment* segment = evbuffer_file_segment_new(
        own, static_cast<ev_off_t>(offset), static_cast<ev_off_t>(length),
        EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_MMAP | EVBUF_FS_DISABLE_LOCKING);
    if (segment == nullptr) {
        ::close(own);
        return false;
    }
    evbuffer_set_flags(output_.raw(), EVBUFFER_FLAG_DRAINS_TO_FD);
    const int added =
        evbuffer_add_file_segment(output_.raw(), segment, 0, static_cast<ev_off_t>(length));
    evbuffer_file_segment_free(segment);  // the output's reference keeps it
    if (added != 0) return false;
    if (!in_dispatch_) after_dispatch();
    return true;
}

void Connection::close() {
    if (state_ != State::kOpen) return;
    state_ = State::kClosing;
    input_.clear();
    std::weak_ptr<Connection> weak = weak_from_this();
    close_timer_ = group_.after(options_.close_timeout, [weak] {
        auto self = weak.lock();
        if (!self || self->state_ == State::kClosed) return;
        detail::logger().debug("connection {} ({}): close timed out ({} bytes unsent)", self->id_,
                               self->peer_.to_string(), self->output_.size());
        self->teardown(std::make_error_code(std::errc::timed_out));
    });
    if (!in_dispatch_) after_dispatch();
}

void Connection::abort(std::error_code error) {
    teardown(error);
}

void Connection::shutdown_write() {
    if (state_ != State::kOpen) return;
    want_write_shut_ = true;
    if (!in_dispatch_) after_dispatch();
}

void Connection::pause_reading() {
    user_paused_ = true;
}

void Connection::resume_reading() {
    if (!user_paused_) return;
    user_paused_ = false;
    // Input read before the pause (a second pipelined request) gets its
    // on_data() call now: no new byte may come to trigger one.
    if (!input_.empty() && state_ == State::kOpen) {
        post([](Connection& conn) {
            if (!conn.input_.empty() && conn.state_ == State::kOpen && !conn.user_paused_)
                conn.handler_->on_data(conn, conn.input_);
        });
    }
    if (read_pending_ && reading_allowed()) continue_reading();
}

void Connection::touch() noexcept {
    last_activity_ns_ = now_ns();
}

void Connection::request_shutdown() {
    post([](Connection& conn) { conn.handler_->on_shutdown(conn); });
}

void Connection::request_abort() {
    post([](Connection& conn) { conn.abort(std::make_error_code(std::errc::timed_out)); });
}

bool Connection::post(std::function<void(Connection&)> fn) {
    return group_.post([self = shared_from_this(), fn = std::move(fn)] {
        if (self->state_ == State::kClosed) return;
        {
            Dispatch call(self->in_dispatch_);
            fn(*self);
        }
        self->after_dispatch();
    });
}

void Connection::arm_idle_timer(std::chrono::nanoseconds delay) {
    std::weak_ptr<Connection> weak = weak_from_this();
    idle_timer_ = group_.after(delay, [weak] {
        if (auto self = weak.lock()) self->on_idle_timer();
    });
}

void Connection::on_idle_timer() {
    if (state_ != State::kOpen) return;  // closing has its own timer
    const std::int64_t timeout = std::chrono::nanoseconds(options_.idle_timeout).count();
    const std::int64_t idle = now_ns() - last_activity_ns_;
    if (idle < timeout) {
        arm_idle_timer(std::chrono::nanoseconds(timeout - idle));
        return;
    }
    {
        Dispatch call(in_dispatch_);
        handler_->on_timeout(*this);
    }
    after_dispatch();
    if (state_ == State::kOpen) arm_idle_timer(options_.idle_timeout);
}

void Connection::arm_linger_timer(std::chrono::nanoseconds delay) {
    std::weak_ptr<Connection> weak = weak_from_this();
    linger_timer_ = group_.after(delay, [weak] {
        auto self = weak.lock();
        if (!self || self->state_ != State::kLingering) return;
        // Quiet since the last byte: closing now sends no reset.
        const std::int64_t quiet = std::chrono::nanoseconds(self->options_.linger_quiet).count();
        const std::int64_t since = self->now_ns() - self->last_activity_ns_;
        if (since >= quiet) {
            self->teardown({});
        } else {
            self->arm_linger_timer(std::chrono::nanoseconds(quiet - since));
        }
    });
}

void Connection::teardown(std::error_code error) noexcept {
    if (state_ == State::kClosed) return;
    std::shared_ptr<Connection> self = shared_from_this();  // the registry may hold the last one
    state_ = State::kClosed;
    watch_.cancel();
    idle_timer_.cancel();
    close_timer_.cancel();
    linger_timer_.cancel();
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    input_.clear();
    output_.clear();
    try {
        handler_->on_close(*this, error);
    } catch (const std::exception& e) {
        detail::logger().error("connection {} ({}): on_close threw: {}", id_, peer_.to_string(),
                               e.what());
    } catch (...) {
        detail::logger().error("connection {} ({}): on_close threw", id_, peer_.to_string());
    }
    group_.close();
    runtime_.internal().release(id_, loop_);
}

}  // namespace quiesce::tcp
