// Listener: a listening socket whose readiness runs accept4() batches on the
// listener's group; each accepted socket becomes a Connection on the loop
// with the fewest connections (see tcp.hpp).
//
// Threading: everything but close() and the constructor runs on the
// listener's group; close() posts to it.
#include <quiesce/framework/tcp.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

#include <quiesce/framework/stream.hpp>
#include "log.hpp"
#include "runtime_internal.hpp"
#include "tcp_internal.hpp"

namespace quiesce::tcp {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{10};
constexpr std::chrono::milliseconds kMaxBackoff{1000};
constexpr std::chrono::seconds kWarningEvery{10};

[[noreturn]] void fail(int error, const std::string& what) {
    throw std::system_error(error, std::generic_category(), what);
}

/// The connection a group's close handler tears down, set once it exists.
struct ConnectionSlot {
    std::mutex mutex;
    std::weak_ptr<Connection> conn;  // mutex
};

}  // namespace

Listener::Listener(Runtime& runtime, const Address& address, HandlerFactory factory,
                   StreamHandler serve, ListenerOptions options)
    : runtime_(runtime),
      address_(address),
      factory_(std::move(factory)),
      serve_(std::move(serve)),
      options_(std::move(options)) {
    const std::string where = address.to_string();
    const unsigned loops = runtime.scheduler().loop_count();
    if (options_.loop < -1 ||
        (options_.loop >= 0 && static_cast<unsigned>(options_.loop) >= loops)) {
        throw std::invalid_argument("cannot listen on " + where + ": ListenerOptions::loop " +
                                    std::to_string(options_.loop) + ", but the runtime has " +
                                    std::to_string(loops) + " loop(s)");
    }
    fd_ = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) fail(errno, "cannot listen on " + where + ": socket()");
    int one = 1;
    try {
        if (!address.is_unix() &&
            ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
            fail(errno, "cannot listen on " + where + ": SO_REUSEADDR");
        if (options_.reuse_port &&
            ::setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            fail(errno, "cannot listen on " + where + ": SO_REUSEPORT");
        if (address.is_unix()) {
            // A socket file left by an earlier run would make bind() fail;
            // anything else at that path is not ours to remove.
            const auto* un = reinterpret_cast<const sockaddr_un*>(address.sockaddr_ptr());
            struct stat st {};
            if (::stat(un->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(un->sun_path);
        }
        if (::bind(fd_, address.sockaddr_ptr(), address.length()) != 0)
            fail(errno, "cannot listen on " + where);
        if (::listen(fd_, options_.backlog) != 0)
            fail(errno, "cannot listen on " + where + ": listen()");
        if (!address.is_unix()) {
            sockaddr_storage bound{};
            socklen_t length = sizeof bound;
            if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &length) == 0)
                address_ = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&bound), length);
        }
        // An exception escaping accept_batch() closes the group: the socket
        // closes with it, rather than leaving clients in its backlog.
        group_ =
            runtime_.scheduler().make_group({.name = options_.name + " " + address_.to_string(),
                                             .on_close = [this] { close_on_group(); }});
    } catch (...) {
        ::close(fd_);
        fd_ = -1;
        throw;
    }
}

Listener::~Listener() {
    watch_.cancel();  // before the number can be reused
    if (fd_ >= 0) {
        ::close(fd_);
        if (address_.is_unix())
            ::unlink(reinterpret_cast<const sockaddr_un*>(address_.sockaddr_ptr())->sun_path);
    }
}

void Listener::start(pollers::FdPoller& fds) {
    watch_ = fds.watch(fd_, group_, pollers::kRead, [this](pollers::Ready) { accept_batch(); },
                       {.persistent = true, .edge_triggered = true});
}

void Listener::accept_batch() {
    accept_posted_ = false;
    if (closed_.load(std::memory_order_relaxed) || paused_) return;  // relaxed: our own write
    for (unsigned i = 0; i < options_.accept_batch; ++i) {
        sockaddr_storage peer{};
        socklen_t length = sizeof peer;
        int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int error = errno;
            if (error == EAGAIN || error == EWOULDBLOCK) {
                backoff_ = std::chrono::milliseconds(0);
                return;
            }
            // The connection died in the backlog, or a signal: try the next.
            if (error == EINTR || error == ECONNABORTED || error == EPROTO || error == EPERM)
                continue;
            pause_accepting(error);
            return;
        }
        backoff_ = std::chrono::milliseconds(0);
        Address from = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&peer), length);
        if (from.family() == AF_UNSPEC || (address_.is_unix() && length <= sizeof(sa_family_t)))
            from = address_;  // an unnamed Unix-domain peer: name it by the listener
        if (!address_.is_unix() && options_.connection.nodelay) {
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        if (serve_) {
            open_stream(fd, from);
        } else {
            open_connection(fd, from);
        }
    }
    // A full batch: more may wait; take them in a later turn, after others.
    if (!accept_posted_) {
        accept_posted_ = true;
        group_.post([this] { accept_batch(); });
    }
}

void Listener::refuse(const Address& peer) {
    // Over the limit: closed at once (the client sees EOF and may try
    // elsewhere) rather than left in the backlog, where it would wait with no
    // answer and keep the listener's readiness raised.
    Runtime::Internal& in = runtime_.internal();
    in.refused.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    auto now = std::chrono::steady_clock::now();
    if (now - last_warning_ >= kWarningEvery) {
        detail::logger().warn(
            "{}: {} connections open (max_connections): refusing {} ({} more refused since the "
            "last warning)",
            address_.to_string(), in.open.load(std::memory_order_relaxed), peer.to_string(),
            suppressed_warnings_);
        last_warning_ = now;
        suppressed_warnings_ = 0;
    } else {
        ++suppressed_warnings_;
    }
}

void Listener::open_connection(int fd, const Address& peer) {
    Runtime::Internal& in = runtime_.internal();
    const std::uint64_t id = in.next_id();
    const unsigned loop =
        options_.loop >= 0 ? static_cast<unsigned>(options_.loop) : in.pick_loop();
    auto slot = std::make_shared<ConnectionSlot>();
    sched::Group group;
    try {
        group = runtime_.scheduler().make_group(
            {.name = options_.name + " conn " + std::to_string(id),
             .loop = static_cast<int>(loop),
             .on_close = [slot] {
                 std::shared_ptr<Connection> conn;
                 {
                     std::lock_guard lock(slot->mutex);
                     conn = slot->conn.lock();
                 }
                 // Closed by an escaping exception or by the scheduler's
                 // stop: the connection ends without its queued output.
                 if (conn) conn->teardown(std::make_error_code(std::errc::connection_aborted));
             }});
    } catch (const std::logic_error&) {
        ::close(fd);  // the scheduler is stopping
        return;
    }
    std::unique_ptr<Handler> handler;
    try {
        handler = factory_();
    } catch (const std::exception& e) {
        detail::logger().error("{}: the handler factory threw: {}", address_.to_string(), e.what());
    } catch (...) {
        detail::logger().error("{}: the handler factory threw", address_.to_string());
    }
    if (!handler) {
        ::close(fd);
        group.close();
        return;
    }
    auto conn = std::make_shared<Connection>(Connection::Init{
        .id = id,
        .fd = fd,
        .runtime = runtime_,
        .loop = loop,
        .options = options_.connection,
        .peer = peer,
        .handler = std::move(handler),
        .group = group,
    });
    if (!in.admit(conn, loop)) {
        refuse(peer);
        group.close();
        return;  // conn's destructor closes the socket
    }
    {
        std::lock_guard lock(slot->mutex);
        slot->conn = conn;
    }
    conn->start(runtime_.fds());
}

void Listener::open_stream(int fd, const Address& peer) {
    Runtime::Internal& in = runtime_.internal();
    const std::uint64_t id = in.next_id();
    const unsigned loop =
        options_.loop >= 0 ? static_cast<unsigned>(options_.loop) : in.pick_loop();
    auto stream = std::make_shared<Stream>(Stream::Init{
        .id = id,
        .fd = fd,
        .runtime = runtime_,
        .loop = loop,
        .options = options_.connection,
        .peer = peer,
    });
    if (!in.admit(stream, loop)) {
        refuse(peer);
        return;  // the stream's destructor closes the socket
    }
    sched::Group group;
    try {
        std::weak_ptr<Stream> weak = stream;
        group = runtime_.scheduler().spawn([stream, serve = serve_] { stream->run(serve); },
                                           {.name = options_.name + " conn " + std::to_string(id),
                                            .loop = static_cast<int>(loop),
                                            .on_close = [weak] {
                                                if (auto self = weak.lock())
                                                    self->closed_by_group();
                                            }});
    } catch (const std::exception& e) {
        detail::logger().warn("{}: cannot start a fiber for {}: {}", address_.to_string(),
                              peer.to_string(), e.what());
        stream->closed_by_group();  // closes the socket, leaves the registry
        return;
    }
    stream->attach(std::move(group));
}

void Listener::pause_accepting(int error) {
    paused_ = true;
    runtime_.internal().accept_pauses.fetch_add(1,
                                                std::memory_order_relaxed);  // relaxed: a statistic
    backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
    auto now = std::chrono::steady_clock::now();
    if (now - last_warning_ >= kWarningEvery) {
        detail::logger().warn(
            "{}: accept: {} (descriptor limit {}): pausing accepts for {} ms ({} more since the "
            "last warning)",
            address_.to_string(), std::generic_category().message(error),
            runtime_.descriptor_limit(), backoff_.count(), suppressed_warnings_);
        last_warning_ = now;
        suppressed_warnings_ = 0;
    } else {
        ++suppressed_warnings_;
    }
    retry_timer_ = group_.after(backoff_, [this] {
        paused_ = false;
        accept_batch();
    });
}

void Listener::close() {
    if (closed()) return;
    if (!group_.post([this] { close_on_group(); })) {
        // The group is closed: the scheduler stopped, nothing runs on it.
        close_on_group();
    }
}

void Listener::close_on_group() noexcept {
    // [L1] acq_rel: the first caller closes (close() may call this from
    // another thread once the group is closed); pairs with closed().
    if (closed_.exchange(true, std::memory_order_acq_rel)) return;
    watch_.cancel();
    retry_timer_.cancel();
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
        if (address_.is_unix())
            ::unlink(reinterpret_cast<const sockaddr_un*>(address_.sockaddr_ptr())->sun_path);
    }
    group_.close();
    detail::logger().info("stopped listening on {}", address_.to_string());
    {
        std::lock_guard lock(runtime_.internal().mutex);  // a waiter checks closed() under it
    }
    runtime_.internal().changed.notify_all();
}

}  // namespace quiesce::tcp
