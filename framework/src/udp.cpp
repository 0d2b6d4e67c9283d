// UDP sockets: recvmmsg()/sendmmsg() batches on a group, and a fiber socket
// (see udp.hpp).
#include <quiesce/framework/udp.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <quiesce/framework/runtime.hpp>
#include <quiesce/scheduler/fiber.hpp>

#include "log.hpp"
#include "runtime_internal.hpp"

namespace quiesce::udp {
namespace {

/// A non-blocking datagram socket bound to `address`; fills in the port the
/// kernel picked. Throws std::system_error naming the address.
int bind_datagram(tcp::Address& address, bool reuse_port) {
    const std::string where = address.to_string();
    int fd = ::socket(address.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot bind udp " + where);
    int one = 1;
    if ((reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        ::bind(fd, address.sockaddr_ptr(), address.length()) != 0) {
        int error = errno;
        ::close(fd);
        throw std::system_error(error, std::generic_category(), "cannot bind udp " + where);
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    if (!address.is_unix() && ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0)
        address = tcp::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&bound), length);
    return fd;
}

}  // namespace

Socket::Socket(Runtime& runtime, const tcp::Address& address, Handler handler, Options options)
    : runtime_(runtime),
      address_(address),
      handler_(std::move(handler)),
      options_(std::move(options)) {
    if (options_.batch == 0 || options_.max_datagram == 0)
        throw std::invalid_argument("udp::Options: batch and max_datagram must be at least 1");
    fd_ = bind_datagram(address_, options_.reuse_port);
    buffers_.resize(options_.batch * options_.max_datagram);
    try {
        group_ =
            runtime_.scheduler().make_group({.name = options_.name + " " + address_.to_string(),
                                             .on_close = [this] { close_on_group(); }});
    } catch (...) {
        ::close(fd_);
        throw;
    }
}

Socket::~Socket() {
    watch_.cancel();
    if (fd_ >= 0) ::close(fd_);
}

void Socket::start(pollers::FdPoller& fds) {
    watch_ = fds.watch(fd_, group_, pollers::kRead, [this](pollers::Ready) { receive_batch(); },
                       {.persistent = true, .edge_triggered = true});
}

void Socket::receive_batch() {
    read_posted_ = false;
    if (closed_.load(std::memory_order_relaxed)) return;  // relaxed: our own write
    const unsigned batch = options_.batch;
    std::vector<mmsghdr> messages(batch);
    std::vector<iovec> vectors(batch);
    std::vector<sockaddr_storage> peers(batch);
    for (unsigned i = 0; i < batch; ++i) {
        vectors[i] = {buffers_.data() + i * options_.max_datagram, options_.max_datagram};
        messages[i].msg_hdr = {};
        messages[i].msg_hdr.msg_name = &peers[i];
        messages[i].msg_hdr.msg_namelen = sizeof peers[i];
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    int got = ::recvmmsg(fd_, messages.data(), batch, MSG_DONTWAIT, nullptr);
    if (got < 0) {
        if (errno == EINTR) {
            read_posted_ = true;
            group_.post([this] { receive_batch(); });
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            detail::logger().warn("{}: recvmmsg: {}", address_.to_string(), std::strerror(errno));
        }
        return;
    }
    receive_calls_.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    in_batch_ = true;
    for (int i = 0; i < got; ++i) {
        const msghdr& header = messages[i].msg_hdr;
        if ((header.msg_flags & MSG_TRUNC) != 0) {
            truncated_.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        received_.fetch_add(1, std::memory_order_relaxed);
        Datagram datagram{
            std::string(static_cast<const char*>(vectors[i].iov_base), messages[i].msg_len),
            tcp::Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&peers[i]),
                                        header.msg_namelen)};
        try {
            handler_(*this, datagram);
        } catch (...) {
            in_batch_ = false;
            flush();
            throw;  // the scheduler logs it and closes the group (and the socket)
        }
    }
    in_batch_ = false;
    flush();
    // A full batch: more may wait (an edge-triggered watch fires only for
    // new datagrams): go on in a later turn, after the other groups.
    if (static_cast<unsigned>(got) == batch && !read_posted_) {
        read_posted_ = true;
        group_.post([this] { receive_batch(); });
    }
}

void Socket::send_to(const tcp::Address& peer, std::string_view data) {
    if (fd_ < 0) return;
    outgoing_.emplace_back(peer, std::string(data));
    if (!in_batch_ || outgoing_.size() >= options_.batch) flush();
}

void Socket::flush() noexcept {
    std::size_t done = 0;
    while (done < outgoing_.size()) {
        const std::size_t count = std::min<std::size_t>(outgoing_.size() - done, options_.batch);
        std::vector<mmsghdr> messages(count);
        std::vector<iovec> vectors(count);
        for (std::size_t i = 0; i < count; ++i) {
            auto& [peer, data] = outgoing_[done + i];
            vectors[i] = {data.data(), data.size()};
            messages[i].msg_hdr = {};
            messages[i].msg_hdr.msg_name = const_cast<sockaddr*>(peer.sockaddr_ptr());
            messages[i].msg_hdr.msg_namelen = peer.length();
            messages[i].msg_hdr.msg_iov = &vectors[i];
            messages[i].msg_hdr.msg_iovlen = 1;
        }
        int sent = ::sendmmsg(fd_, messages.data(), static_cast<unsigned>(count), MSG_DONTWAIT);
        if (sent < 0 && errno == EINTR) continue;
        if (sent <= 0) {
            // The first of them was refused (a full buffer, an unreachable
            // peer): drop it and go on with the rest.
            send_dropped_.fetch_add(1, std::memory_order_relaxed);
            done += 1;
            continue;
        }
        sent_.fetch_add(static_cast<std::uint64_t>(sent), std::memory_order_relaxed);
        done += static_cast<std::size_t>(sent);
    }
    outgoing_.clear();
}

Stats Socket::stats() const noexcept {
    // relaxed: statistics, a snapshot
    return {received_.load(std::memory_order_relaxed), sent_.load(std::memory_order_relaxed),
            truncated_.load(std::memory_order_relaxed),
            send_dropped_.load(std::memory_order_relaxed),
            receive_calls_.load(std::memory_order_relaxed)};
}

void Socket::close() {
    if (closed_.load(std::memory_order_acquire)) return;
    if (!group_.post([this] { close_on_group(); }))
        close_on_group();  // the group is closed: nothing runs on it
}

void Socket::close_on_group() noexcept {
    // acq_rel: the first caller closes (close() may call this from another
    // thread once the group is closed).
    if (closed_.exchange(true, std::memory_order_acq_rel)) return;
    watch_.cancel();
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    group_.close();
}

FiberSocket::FiberSocket(Runtime& runtime, std::string_view address, std::size_t max_datagram)
    : address_(tcp::Address::parse(address)), max_datagram_(max_datagram) {
    if (!sched::this_fiber::active()) throw std::logic_error("udp::FiberSocket outside a fiber");
    fd_ = bind_datagram(address_, false);
    try {
        io_ = std::make_unique<pollers::FiberFd>(runtime.fds(), fd_);
    } catch (...) {
        ::close(fd_);
        throw;
    }
}

FiberSocket::~FiberSocket() {
    io_.reset();  // unwatched before the descriptor goes
    if (fd_ >= 0) ::close(fd_);
}

std::optional<Datagram> FiberSocket::recv_from(std::chrono::nanoseconds timeout) {
    std::string buffer(max_datagram_, '\0');
    for (;;) {
        sockaddr_storage peer{};
        iovec vector{buffer.data(), buffer.size()};
        msghdr header{};
        header.msg_name = &peer;
        header.msg_namelen = sizeof peer;
        header.msg_iov = &vector;
        header.msg_iovlen = 1;
        ssize_t n = ::recvmsg(fd_, &header, MSG_DONTWAIT);
        if (n >= 0) {
            if ((header.msg_flags & MSG_TRUNC) != 0) continue;  // larger than max_datagram: dropped
            buffer.resize(static_cast<std::size_t>(n));
            return Datagram{std::move(buffer),
                            tcp::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&peer),
                                                        header.msg_namelen)};
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            throw std::system_error(errno, std::generic_category(), "udp recvmsg");
        switch (io_->wait_readable(timeout)) {
            case pollers::WaitResult::kReady:
            case pollers::WaitResult::kInterrupted:
                break;
            case pollers::WaitResult::kTimedOut:
            case pollers::WaitResult::kCancelled:
                return std::nullopt;
        }
    }
}

bool FiberSocket::send_to(const tcp::Address& peer, std::string_view data) {
    for (;;) {
        ssize_t n = ::sendto(fd_, data.data(), data.size(), MSG_DONTWAIT, peer.sockaddr_ptr(),
                             peer.length());
        if (n >= 0) return true;
        if (errno != EINTR) return false;
    }
}

}  // namespace quiesce::udp
