// What the FdPoller tests share: a non-blocking socket pair, draining a
// descriptor, and the placements every case runs in.
#pragma once

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <quiesce/pollers/fd_poller.hpp>

namespace quiesce::test {

// Every case runs with the poller on its own threads and on the loops.
inline pollers::FdPlacement placement_under_test() {
    const pollers::FdPlacement placement =
        GENERATE(pollers::FdPlacement::kThreads, pollers::FdPlacement::kLoops);
    return placement;
}

struct SocketPair {
    int fd[2] = {-1, -1};
    SocketPair() {
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd) == 0);
    }
    ~SocketPair() {
        close(fd[0]);
        close(fd[1]);
    }
    SocketPair(const SocketPair&) = delete;
    SocketPair& operator=(const SocketPair&) = delete;
    void send(int n = 1) const {
        for (int i = 0; i < n; ++i) REQUIRE(write(fd[1], "x", 1) == 1);
    }
};

// Reads until EAGAIN; returns the bytes read.
inline int drain(int fd) {
    char buf[4096];
    int total = 0;
    for (;;) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return total;
        total += static_cast<int>(n);
    }
}

}  // namespace quiesce::test
