// memcached's UDP protocol (-U): each datagram carries an 8-byte frame
// header (request id, sequence number, datagram count, reserved; big-endian)
// and one request; the reply goes back in datagrams of at most 1400 bytes,
// each with the request id, its sequence number and the count.
//
// Threading: the socket's group runs every datagram; one Session serves them.
#pragma once

#include <string>

#include <quiesce/framework/runtime.hpp>

#include "protocol.hpp"

namespace kvcache {

/// Binds UDP `port` on the first interface of `listen` and serves it.
/// Throws as Runtime::bind_udp().
void serve_udp(quiesce::Runtime& runtime, Server& server, const std::string& listen, int port);

/// Splits `reply` into framed datagrams for request `request_id`.
std::vector<std::string> frame_udp_reply(std::uint16_t request_id, std::string_view reply);

}  // namespace kvcache
