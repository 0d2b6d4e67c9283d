// Blocking client sockets for the framework's tests, and a Runtime run on a
// thread of its own.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <quiesce/framework/runtime.hpp>

namespace quiesce::test {

/// A connected blocking socket; closes on destruction.
class Client {
public:
    explicit Client(const tcp::Address& address) {
        fd_ = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
        if (::connect(fd_, address.sockaddr_ptr(), address.length()) != 0) {
            int error = errno;
            ::close(fd_);
            throw std::system_error(error, std::generic_category(),
                                    "connect " + address.to_string());
        }
        timeval tv{20, 0};  // no test hangs on a read
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~Client() {
        if (fd_ >= 0) ::close(fd_);
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void send(std::string_view data) {
        while (!data.empty()) {
            ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw std::system_error(errno, std::generic_category(), "send");
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    /// Reads exactly `size` bytes (fewer at EOF).
    std::string receive(std::size_t size) {
        std::string out(size, '\0');
        // What receive_line() read past its line comes first.
        std::size_t got = std::min(size, pending_.size());
        pending_.copy(out.data(), got);
        pending_.erase(0, got);
        while (got < size) {
            ssize_t n = ::recv(fd_, out.data() + got, size - got, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += static_cast<std::size_t>(n);
        }
        out.resize(got);
        return out;
    }
    /// The next line without its "\n" (empty at EOF or on a timeout; see
    /// eof()). Buffers what comes after it for the next call.
    std::string receive_line() {
        for (;;) {
            auto end = pending_.find('\n');
            if (end != std::string::npos) {
                std::string line = pending_.substr(0, end);
                pending_.erase(0, end + 1);
                return line;
            }
            char chunk[4096];
            ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                eof_ = true;
                return {};
            }
            pending_.append(chunk, static_cast<std::size_t>(n));
        }
    }
    [[nodiscard]] bool eof() const noexcept { return eof_; }
    /// Reads until EOF (or an error, or the 20 s receive timeout).
    std::string receive_all() {
        std::string out = std::move(pending_);
        pending_.clear();
        char chunk[65536];
        for (;;) {
            ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return out;
            out.append(chunk, static_cast<std::size_t>(n));
        }
    }
    /// True if the peer closed (EOF or reset) within `ms`.
    bool closed_within(int ms) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0) return false;
        char c;
        ssize_t n = ::recv(fd_, &c, 1, MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN);
    }
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    /// Closes with a reset (SO_LINGER 0).
    void reset() {
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(fd_);
        fd_ = -1;
    }
    [[nodiscard]] int fd() const noexcept { return fd_; }

private:
    int fd_ = -1;
    std::string pending_;
    bool eof_ = false;
};

/// A Runtime whose run() runs on a thread; stop()s and joins on destruction.
class RunningRuntime {
public:
    explicit RunningRuntime(RuntimeOptions options) : runtime(patch(std::move(options))) {}
    void start() {
        thread_ = std::thread([this] { exit_code = runtime.run(); });
    }
    /// stop() and join; returns run()'s result.
    int stop() {
        runtime.stop();
        if (thread_.joinable()) thread_.join();
        return exit_code;
    }
    ~RunningRuntime() { stop(); }
    RunningRuntime(const RunningRuntime&) = delete;
    RunningRuntime& operator=(const RunningRuntime&) = delete;

    Runtime runtime;
    int exit_code = -1;

private:
    static RuntimeOptions patch(RuntimeOptions options) {
        options.handle_signals = false;  // the test process's signals stay its own
        if (options.threads == 0) options.threads = 2;
        options.log_level = "warn";
        return options;
    }
    std::thread thread_;
};

/// Sends `payload` from one thread and reads the echo on this one until EOF
/// (so a server that applies back-pressure never deadlocks the test).
inline std::string echo_through(const tcp::Address& address, const std::string& payload) {
    Client client(address);
    std::thread sender([&] {
        client.send(payload);
        client.shutdown_write();
    });
    std::string echoed = client.receive_all();
    sender.join();
    return echoed;
}

/// A byte pattern that differs per seed and position.
inline std::string pattern(std::size_t size, unsigned seed) {
    std::string out(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        out[i] = static_cast<char>((i * 131 + seed * 7 + i / 4093) & 0xff);
    return out;
}

inline void raise_descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

}  // namespace quiesce::test
