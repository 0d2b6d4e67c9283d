// A program written against the installed quiesce framework only, built out
// of tree with `pkg-config --cflags --libs quiesce` (tests/consumer/run.sh):
// a Runtime serving one echo connection, stopped from another thread.
#include <quiesce/framework/runtime.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

namespace {

struct Echo final : quiesce::tcp::Handler {
    void on_data(quiesce::tcp::Connection& conn, quiesce::Buffer& in) override { conn.write(in); }
};

}  // namespace

int main() {
    quiesce::Runtime runtime({.threads = 2, .log_level = "warn", .handle_signals = false});
    quiesce::tcp::Listener& listener =
        runtime.listen("127.0.0.1:0", [] { return std::make_unique<Echo>(); });
    int code = -1;
    std::thread server([&] { code = runtime.run(); });
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, listener.address().sockaddr_ptr(), listener.address().length()) != 0) return 1;
    char reply[5] = {};
    if (write(fd, "ping", 4) != 4) return 1;
    std::size_t got = 0;
    while (got < 4) {
        ssize_t n = read(fd, reply + got, 4 - got);
        if (n <= 0) return 1;
        got += static_cast<std::size_t>(n);
    }
    close(fd);
    runtime.stop();
    server.join();
    if (std::strcmp(reply, "ping") != 0 || code != 0) return 1;
    std::printf("framework: echoed \"%s\", run() returned %d\n", reply, code);
    return 0;
}
