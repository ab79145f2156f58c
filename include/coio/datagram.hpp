// coio/datagram.hpp - coio::datagram_socket: UDP (and Unix datagram) endpoints, asyncio's
// create_datagram_endpoint as a plain awaitable object.
//
//   coio::datagram_socket udp(AF_INET);
//   udp.bind(coio::endpoint("127.0.0.1", 0));
//   co_await udp.sendto("ping", peer);
//   auto [data, from] = co_await udp.recvfrom();
#pragma once

#include <coio/endpoint.hpp>
#include <coio/socket.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace coio {

/// A datagram socket (UDP over IPv4/IPv6, or AF_UNIX SOCK_DGRAM) whose sends and receives
/// are io_uring operations (asyncio's DatagramTransport + DatagramProtocol, as awaitables).
///
/// Each `recvfrom` receives exactly one datagram; each `sendto` sends one (MSG_NOSIGNAL).
/// `connect` fixes the peer (then `send`/`recv` work, and only that peer's datagrams are
/// received). Move-only; closes on destruction.
///
/// Throws: std::system_error with the errno and the address (e.g. std::errc::address_in_use
/// from bind, std::errc::connection_refused from recv on a connected socket after the peer
/// port answered ICMP unreachable).
///
/// Cancellation: every awaitable is cancellation-safe: the task resumes only after the kernel
/// is done with the buffer; a datagram received meanwhile is returned, not dropped.
///
/// Example:
/// @code
///   coio::datagram_socket server(AF_INET), client(AF_INET);
///   server.bind(coio::endpoint("127.0.0.1", 0));
///   co_await client.sendto("ping", server.local_address());
///   auto [msg, from] = co_await server.recvfrom();
///   co_await server.sendto(msg, from);
/// @endcode
class datagram_socket {
public:
    /// Creates a datagram socket of `family` (AF_INET, AF_INET6 or AF_UNIX).
    /// Throws: std::system_error.
    explicit datagram_socket(int family = AF_INET) : sock_(family, SOCK_DGRAM) {}
    /// Wraps an existing datagram socket.
    explicit datagram_socket(coio::socket s) noexcept : sock_(std::move(s)) {}

    /// Binds to a local address (port 0: any free port). Throws: std::system_error naming it.
    void bind(const endpoint& ep) { sock_.bind(ep); }
    /// Binds an AF_UNIX datagram socket to `path` ('\0' first: abstract).
    void bind_unix(std::string_view path) { sock_.bind_unix(path); }
    /// Sets the default peer (UDP connect sends nothing, so this does not suspend).
    /// Throws: std::system_error naming the address.
    void connect(const endpoint& ep) {
        if (::connect(sock_.fileno(), ep.data(), ep.size()) != 0) detail::throw_errno(errno, "connect to " + ep.to_string());
    }
    /// Sets the default peer of an AF_UNIX datagram socket.
    void connect_unix(std::string_view path) {
        sockaddr_un sa;
        const socklen_t len = detail::make_unix_address(path, sa);
        if (::connect(sock_.fileno(), reinterpret_cast<sockaddr*>(&sa), len) != 0)
            detail::throw_errno(errno, "connect to " + detail::printable_unix_path(path));
    }

    /// Sends one datagram to `to`. Returns: bytes sent. Throws: std::system_error.
    /// Cancellation: cancellation-safe. Example: `co_await udp.sendto("hi", peer);`
    [[nodiscard]] coio::socket::sendto_awaiter sendto(std::span<const std::byte> data, const endpoint& to) noexcept {
        return sock_.sendto(data, to);
    }
    /// See sendto(std::span<const std::byte>, const endpoint&).
    [[nodiscard]] coio::socket::sendto_awaiter sendto(std::string_view data, const endpoint& to) noexcept {
        return sock_.sendto(data, to);
    }
    /// Sends one datagram to the connected peer. Returns: bytes sent.
    /// Throws: std::system_error (EDESTADDRREQ when not connected). Cancellation: safe.
    [[nodiscard]] coio::socket::send_awaiter send(std::span<const std::byte> data) noexcept { return sock_.send(data); }
    /// See send(std::span<const std::byte>).
    [[nodiscard]] coio::socket::send_awaiter send(std::string_view data) noexcept { return sock_.send(data); }
    /// Receives one datagram (at most `max_bytes`, the rest is truncated).
    /// Returns: {data, sender}. Throws: std::system_error. Cancellation: safe.
    /// Example: `auto [data, from] = co_await udp.recvfrom();`
    [[nodiscard]] coio::socket::recvfrom_awaiter recvfrom(std::size_t max_bytes = 65536) { return sock_.recvfrom(max_bytes); }
    /// Receives one datagram into `buf`, with no copy. Returns: {byte count, sender}.
    /// Throws: std::system_error. Cancellation: safe.
    [[nodiscard]] coio::socket::recvfrom_into_awaiter recvfrom_into(std::span<std::byte> buf) noexcept {
        return sock_.recvfrom_into(buf);
    }
    /// Receives one datagram from the connected peer. Returns: its bytes.
    /// Throws: std::system_error (e.g. connection_refused after an ICMP port unreachable).
    [[nodiscard]] coio::socket::recv_awaiter recv(std::size_t max_bytes = 65536) { return sock_.recv(max_bytes); }

    /// The bound address. Throws: std::system_error.
    [[nodiscard]] endpoint local_address() const { return sock_.local_address(); }
    /// The connected peer. Throws: std::system_error (ENOTCONN).
    [[nodiscard]] endpoint peer_address() const { return sock_.peer_address(); }
    /// The underlying socket (for options such as SO_BROADCAST).
    [[nodiscard]] coio::socket& socket() noexcept { return sock_; }
    /// See socket().
    [[nodiscard]] const coio::socket& socket() const noexcept { return sock_; }
    /// Cancels operations in flight and closes. See socket::close().
    [[nodiscard]] coio::socket::close_awaiter close() noexcept { return sock_.close(); }

private:
    coio::socket sock_;
};

} // namespace coio
