// ConnectionHandler and the server's wiring (connection.hpp).
#include "connection.hpp"

#include <sys/socket.h>

#include <chrono>
#include <utility>

namespace kvcache {

void ConnectionHandler::on_open(quiesce::tcp::Connection& conn) {
    sockaddr_storage local{};
    socklen_t length = sizeof local;
    quiesce::tcp::Address here;
    if (::getsockname(conn.fd(), reinterpret_cast<sockaddr*>(&local), &length) == 0)
        here = quiesce::tcp::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local), length);
    entry_ = server_.conns.add_client(conn.fd(), conn.peer(), here, server_.store.current_time());
    session_.set_conn_entry(entry_);
}

void ConnectionHandler::on_close(quiesce::tcp::Connection&, std::error_code) {
    session_.set_conn_entry(nullptr);
    server_.conns.remove(std::exchange(entry_, nullptr));
}

void ConnectionHandler::on_data(quiesce::tcp::Connection& conn, quiesce::Buffer& in) {
    // Stop parsing once this much output waits: a client that pipelines
    // gets without reading is held back by TCP, not by our memory.
    const std::size_t queued = conn.output_size();
    const std::size_t budget = queued >= high_water_ ? 0 : high_water_ - queued;
    const auto status = session_.process(in, out_, budget);
    conn.write(out_);
    if (status == Session::Status::kClose) return conn.close();
    if (session_.stopped_early()) {
        paused_ = true;
        conn.pause_reading();
        // Under the high-water mark already? Go on after this write; else
        // on_drain() does once the peer has read.
        conn.post([this](quiesce::tcp::Connection& c) {
            if (paused_ && c.output_size() <= high_water_) resume(c);
        });
    }
}

void ConnectionHandler::on_drain(quiesce::tcp::Connection& conn) {
    if (paused_) resume(conn);
}

void ConnectionHandler::resume(quiesce::tcp::Connection& conn) {
    paused_ = false;
    if (session_.dumping()) {
        // A metadump goes on with no new input; it pauses again if it fills
        // the output, and the input waiting behind it runs once it is done.
        quiesce::Buffer none;
        on_data(conn, none);
        if (paused_ || session_.dumping()) return;
    }
    conn.resume_reading();  // calls on_data() for the input left
}

quiesce::tcp::ListenerOptions listener_options(std::size_t item_max) {
    quiesce::tcp::ListenerOptions options{.name = "kvcache"};
    options.connection.max_input = item_max + 64 * 1024;
    options.connection.high_water = 1024 * 1024;
    options.connection.low_water = 256 * 1024;
    return options;
}

quiesce::tcp::Listener& listen(quiesce::Runtime& runtime, Server& server,
                               const std::string& address) {
    const auto options = listener_options(server.store.options().item_max);
    const std::size_t high_water = options.connection.high_water;
    auto& listener = runtime.listen(
        address,
        [&server, high_water] { return std::make_unique<ConnectionHandler>(server, high_water); },
        options);
    server.conns.add_listener(listener.fd(), listener.address(), false,
                              server.store.current_time());
    return listener;
}

quiesce::sched::Timer start_crawler(quiesce::Runtime& runtime, Store& store) {
    using namespace std::chrono_literals;
    auto crawler = runtime.scheduler().make_group({.name = "kvcache crawler"});
    return crawler.every(100ms, [&store] { store.crawl(4096); });
}

}  // namespace kvcache
