// Stream: a fiber-backed connection (see stream.hpp).
//
// Threading: the fiber owns every field but those under control_mutex_,
// which the runtime's requests (any thread) and attach() share. The stop
// request reaches the fiber as an event of its group that cancels its
// FiberFd: the wait in progress returns kCancelled.
#include <quiesce/framework/stream.hpp>

#include <event2/buffer.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <system_error>

#include <quiesce/scheduler/fiber.hpp>

#include "log.hpp"
#include "runtime_internal.hpp"
#include "socket_io.hpp"

namespace quiesce::tcp {
namespace {

[[noreturn]] void throw_errno(int error) {
    throw std::system_error(error, std::generic_category());
}

std::chrono::nanoseconds or_forever(std::chrono::milliseconds timeout) {
    return timeout.count() > 0 ? std::chrono::nanoseconds(timeout) : std::chrono::nanoseconds(-1);
}

}  // namespace

Stream::Stream(Init&& init)
    : id_(init.id),
      fd_(init.fd),
      runtime_(init.runtime),
      loop_(init.loop),
      options_(std::move(init.options)),
      peer_(init.peer) {}

Stream::~Stream() {
    if (fd_ >= 0) ::close(fd_);  // never ran
}

void Stream::attach(sched::Group group) {
    bool post = false;
    {
        std::lock_guard lock(control_mutex_);
        group_ = group;
        post = stop_requested_ && !cancel_posted_;
        cancel_posted_ = cancel_posted_ || post;
    }
    if (post) post_cancel(group);
}

void Stream::request_shutdown() {
    sched::Group group;
    {
        std::lock_guard lock(control_mutex_);
        stop_requested_ = true;
        if (!group_ || cancel_posted_) return;  // attach() posts it, or it is posted
        cancel_posted_ = true;
        group = group_;
    }
    post_cancel(group);
}

void Stream::post_cancel(const sched::Group& group) {
    group.post([weak = weak_from_this()] {
        auto self = weak.lock();
        if (self && self->io_) self->io_->cancel();  // the fiber's wait returns kCancelled
    });
}

void Stream::request_abort() {
    sched::Group group;
    {
        std::lock_guard lock(control_mutex_);
        group = group_;
    }
    if (group) group.close();  // unwinds the fiber; closed_by_group() releases
}

bool Stream::stopping() const noexcept {
    std::lock_guard lock(control_mutex_);
    return stop_requested_;
}

void Stream::run(const StreamHandler& serve) {
    try {
        io_ = std::make_unique<pollers::FiberFd>(runtime_.fds(), fd_);
        serve(*this);
        close_gracefully();
    } catch (const std::system_error& e) {
        auto level = e.code().category() == std::generic_category() &&
                             detail::peer_went_away(e.code().value())
                         ? spdlog::level::debug
                         : spdlog::level::warn;
        detail::logger().log(level, "connection {} ({}): {}", id_, peer_.to_string(), e.what());
    } catch (const std::length_error& e) {
        detail::logger().debug("connection {} ({}): {}: closing", id_, peer_.to_string(), e.what());
        try {
            close_gracefully();
        } catch (const std::system_error&) {
            // the peer went: nothing more to send
        }
    }
    release();
}

void Stream::closed_by_group() noexcept {
    release();
}

void Stream::release() noexcept {
    sched::Group group;  // dropped outside the lock
    {
        std::lock_guard lock(control_mutex_);
        if (released_) return;
        released_ = true;
        // The fiber's closure holds this stream: the stream must not hold
        // the group in turn, or neither is ever freed.
        group = std::move(group_);
    }
    io_.reset();  // cancels the watch before the descriptor goes
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    input_.clear();
    output_.clear();
    runtime_.internal().release(id_, loop_);
}

bool Stream::wait(pollers::Ready what) {
    for (;;) {
        if (what == pollers::kRead && stopping()) return false;
        pollers::WaitResult result = what == pollers::kRead
                                         ? io_->wait_readable(or_forever(options_.idle_timeout))
                                         : io_->wait_writable(or_forever(options_.close_timeout));
        switch (result) {
            case pollers::WaitResult::kReady:
                return true;
            case pollers::WaitResult::kTimedOut:
                throw std::system_error(
                    std::make_error_code(std::errc::timed_out),
                    what == pollers::kRead ? "idle timeout" : "output did not drain");
            case pollers::WaitResult::kInterrupted:
                // post() queued output: send it (this is the fiber).
                if (!output_.empty()) flush();
                break;
            case pollers::WaitResult::kCancelled:
                // A graceful stop: reads end; writes (and the close) go on
                // with a new watch.
                io_.reset();
                io_ = std::make_unique<pollers::FiberFd>(runtime_.fds(), fd_);
                if (what == pollers::kRead) return false;
                break;
        }
    }
}

std::size_t Stream::read_some() {
    while (!eof_ && !stopping()) {
        if (!readable_) {
            // About to wait for the peer: it may be waiting for our replies.
            // The watch is edge-triggered: input that came before it was
            // registered, or since the read that found none, raised an edge,
            // so the wait returns at once if there is something to read.
            if (!output_.empty()) flush();
            if (!wait(pollers::kRead)) break;
            readable_ = true;
        }
        ssize_t n = detail::read_into(input_, fd_, options_.read_chunk);
        if (n > 0) {
            bytes_in_ += static_cast<std::uint64_t>(n);
            runtime_.internal().bytes_in.add(static_cast<std::uint64_t>(n));
            sched::this_fiber::yield_if_needed();
            return static_cast<std::size_t>(n);
        }
        int error = n < 0 ? errno : 0;
        if (n == 0) {
            eof_ = true;
            break;
        }
        if (error == EINTR) continue;
        if (error != EAGAIN && error != EWOULDBLOCK) throw_errno(error);
        readable_ = false;
    }
    return 0;
}

std::optional<std::string> Stream::read_until(std::string_view delim, std::size_t max) {
    std::size_t from = 0;
    for (;;) {
        if (auto at = input_.find(delim, from)) {
            std::string out = input_.take(*at);
            input_.drain(delim.size());
            return out;
        }
        if (input_.size() >= max)
            throw std::length_error("no delimiter within " + std::to_string(max) + " bytes");
        // The delimiter may straddle what is here and what comes next.
        from = input_.size() >= delim.size() ? input_.size() - delim.size() + 1 : 0;
        if (read_some() == 0) return std::nullopt;
    }
}

std::optional<std::string> Stream::read_exactly(std::size_t size) {
    while (input_.size() < size)
        if (read_some() == 0) return std::nullopt;
    return input_.take(size);
}

void Stream::check_output(std::size_t size) const {
    if (write_shut_)
        throw std::system_error(std::make_error_code(std::errc::broken_pipe),
                                "write after shutdown_write");
    if (output_.size() + size > options_.max_output)
        throw std::system_error(std::make_error_code(std::errc::no_buffer_space),
                                "output over max_output");
}

bool Stream::queue_from_event(std::size_t size) {
    if (write_shut_) return false;
    if (output_.size() + size <= options_.max_output) return true;
    detail::logger().debug(
        "connection {} ({}): more than {} bytes queued for a peer that does not read: aborting",
        id_, peer_.to_string(), options_.max_output);
    request_abort();
    return false;
}

void Stream::write(std::string_view data) {
    if (in_event_) {
        if (queue_from_event(data.size())) output_.append(data);
        return;
    }
    check_output(data.size());
    output_.append(data);
    if (output_.size() > options_.high_water) flush();
}

void Stream::write(Buffer& data) {
    if (in_event_) {
        if (queue_from_event(data.size())) output_.append(data);
        return;
    }
    check_output(data.size());
    output_.append(data);
    if (output_.size() > options_.high_water) flush();
}

bool Stream::post(std::function<void(Stream&)> fn) {
    sched::Group group;
    {
        std::lock_guard lock(control_mutex_);
        if (released_) return false;
        group = group_;
    }
    if (!group) return false;
    return group.post([weak = weak_from_this(), fn = std::move(fn)] {
        auto self = weak.lock();
        if (!self || self->fd_ < 0) return;
        self->in_event_ = true;
        try {
            fn(*self);
        } catch (...) {
            self->in_event_ = false;
            throw;
        }
        self->in_event_ = false;
        // The fiber sends it: its wait returns kInterrupted.
        if (!self->output_.empty() && self->io_) self->io_->interrupt();
    });
}

void Stream::flush() {
    while (!output_.empty()) {
        int n = evbuffer_write(output_.raw(), fd_);
        if (n > 0) {
            bytes_out_ += static_cast<std::uint64_t>(n);
            runtime_.internal().bytes_out.add(static_cast<std::uint64_t>(n));
            continue;
        }
        int error = n < 0 ? errno : EAGAIN;
        if (error == EINTR) continue;
        if (error != EAGAIN && error != EWOULDBLOCK) throw_errno(error);
        wait(pollers::kWrite);
    }
}

void Stream::shutdown_write() {
    if (write_shut_) return;
    flush();
    ::shutdown(fd_, SHUT_WR);
    write_shut_ = true;
}

void Stream::close_gracefully() {
    shutdown_write();
    // Linger: read and discard until the peer's FIN, or quiet for
    // linger_quiet, within close_timeout (see tcp.hpp).
    const auto deadline = std::chrono::steady_clock::now() + options_.close_timeout;
    char scratch[16384];
    while (!eof_) {
        ssize_t n = ::read(fd_, scratch, sizeof scratch);
        if (n > 0) continue;
        if (n == 0) break;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) break;
        auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        auto quiet_for = std::min<std::chrono::nanoseconds>(left, options_.linger_quiet);
        pollers::WaitResult result = io_->wait_readable(quiet_for);
        if (result == pollers::WaitResult::kTimedOut) break;
        if (result == pollers::WaitResult::kInterrupted) continue;
        if (result == pollers::WaitResult::kCancelled) {
            io_.reset();
            io_ = std::make_unique<pollers::FiberFd>(runtime_.fds(), fd_);
        }
    }
}

}  // namespace quiesce::tcp
