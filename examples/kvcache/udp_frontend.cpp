// memcached's UDP framing around a Session (udp_frontend.hpp).
#include "udp_frontend.hpp"

#include <memory>

namespace kvcache {

namespace {
constexpr std::size_t kHeader = 8;
constexpr std::size_t kMaxDatagram = 1400;  // memcached's UDP_MAX_PAYLOAD_SIZE

void put16(std::string& out, std::uint16_t v) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xff));
}
std::uint16_t get16(const std::string& in, std::size_t at) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(in[at]) << 8) |
                                      static_cast<unsigned char>(in[at + 1]));
}
}  // namespace

std::vector<std::string> frame_udp_reply(std::uint16_t request_id, std::string_view reply) {
    constexpr std::size_t kPayload = kMaxDatagram - kHeader;
    const std::size_t count = std::max<std::size_t>(1, (reply.size() + kPayload - 1) / kPayload);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < count; ++i) {
        std::string d;
        put16(d, request_id);
        put16(d, static_cast<std::uint16_t>(i));
        put16(d, static_cast<std::uint16_t>(count));
        put16(d, 0);
        d.append(reply.substr(i * kPayload, kPayload));
        out.push_back(std::move(d));
    }
    return out;
}

void serve_udp(quiesce::Runtime& runtime, Server& server, const std::string& listen, int port) {
    std::string host = listen.substr(0, listen.find(','));
    if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
    auto session = std::make_shared<Session>(server);
    auto& socket =
        runtime.bind_udp(host + ":" + std::to_string(port),
                         [session](quiesce::udp::Socket& socket, const quiesce::udp::Datagram& d) {
                             if (d.data.size() < kHeader) return;  // not a memcached frame
                             const std::uint16_t id = get16(d.data, 0);
                             std::string reply;
                             if (get16(d.data, 2) != 0 || get16(d.data, 4) != 1) {
                                 reply = "SERVER_ERROR multi-packet request not supported\r\n";
                             } else {
                                 quiesce::Buffer in, out;
                                 in.append(std::string_view(d.data).substr(kHeader));
                                 session->process(in, out);
                                 session->reset();  // a datagram is a whole request
                                 reply = out.take(out.size());
                             }
                             if (reply.empty()) return;
                             for (const auto& datagram : frame_udp_reply(id, reply))
                                 socket.send_to(d.peer, datagram);
                         },
                         // memcached reads a request datagram into 64 KiB.
                         {.max_datagram = 65536, .name = "kvcache udp"});
    server.conns.add_listener(socket.fd(), socket.address(), true, server.store.current_time());
}

}  // namespace kvcache
