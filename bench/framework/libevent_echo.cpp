// The anchor of the echo benchmark: the echo server a libevent user writes.
// One event_base per thread, each with its own SO_REUSEPORT listener
// (evconnlistener), bufferevents that move input to output.
//
//     libevent_echo --threads N [--port P]     prints "listening on 127.0.0.1:PORT"
//
// Runs until SIGINT/SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

namespace {

void on_read(bufferevent* bev, void*) {
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

void on_event(bufferevent* bev, short what, void*) {
    if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0) bufferevent_free(bev);
}

void on_accept(evconnlistener* listener, evutil_socket_t fd, sockaddr*, int, void*) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    event_base* base = evconnlistener_get_base(listener);
    bufferevent* bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, on_read, nullptr, on_event, nullptr);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int bind_port(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        listen(fd, 4096) != 0) {
        std::perror("bind/listen");
        std::exit(1);
    }
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 1;
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--threads") == 0) threads = std::atoi(argv[i + 1]);
        if (std::strcmp(argv[i], "--port") == 0) port = std::atoi(argv[i + 1]);
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    // The first listener picks the port; the others share it (SO_REUSEPORT).
    std::vector<int> fds{bind_port(port)};
    sockaddr_in bound{};
    socklen_t length = sizeof bound;
    getsockname(fds[0], reinterpret_cast<sockaddr*>(&bound), &length);
    port = ntohs(bound.sin_port);
    for (int i = 1; i < threads; ++i) fds.push_back(bind_port(port));

    std::vector<event_base*> bases;
    std::vector<std::thread> workers;
    for (int i = 0; i < threads; ++i) {
        event_base* base = event_base_new();
        evconnlistener_new(base, on_accept, nullptr, LEV_OPT_CLOSE_ON_FREE, -1, fds[i]);
        bases.push_back(base);
    }
    std::printf("listening on 127.0.0.1:%d\n", port);
    std::fflush(stdout);
    for (event_base* base : bases)
        workers.emplace_back([base] { event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY); });
    int received = 0;
    sigwait(&stop_signals, &received);
    std::_Exit(0);  // a benchmark anchor: no orderly teardown needed
}
