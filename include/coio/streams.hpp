// coio/streams.hpp - asyncio's stream functions: open_connection, open_unix_connection (and,
// through <coio/server.hpp>, start_server / start_unix_server).
//
//   auto [reader, writer] = co_await coio::open_connection("127.0.0.1", 8888);
//   writer.write("hello\n");
//   std::string echo = co_await reader.readline();
//
// The reader and writer types live in <coio/stream_reader.hpp> and <coio/stream_writer.hpp>.
#pragma once

#include <coio/coro.hpp>
#include <coio/impl/net_service.hpp>
#include <coio/impl/stream_state.hpp>
#include <coio/dns.hpp>
#include <coio/endpoint.hpp>
#include <coio/loop.hpp>
#include <coio/socket.hpp>
#include <coio/stream_reader.hpp>
#include <coio/stream_writer.hpp>


#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace coio {

/// Options of open_connection / open_unix_connection (keyword arguments in asyncio).
/// Example: `co_await coio::open_connection("127.0.0.1", 80, {.limit = 1 << 20});`
struct stream_options {
    /// Buffer limit of the reader (asyncio's `limit`, 64 KiB): readuntil/readline fail with
    /// limit_overrun_error past it, and receiving pauses at 2 x limit.
    std::size_t limit = 64 * 1024;
    /// Address family for host names: AF_UNSPEC (any), AF_INET or AF_INET6.
    int family = AF_UNSPEC;
    /// drain() waits while more than this many bytes are buffered for sending.
    std::size_t write_high_water = 64 * 1024;
    /// ... until the buffer is down to this; std::nullopt: high / 4 (asyncio's default).
    std::optional<std::size_t> write_low_water = std::nullopt;
    /// TCP_NODELAY (asyncio sets it on every TCP stream).
    bool nodelay = true;
    /// Receive with a multishot receive into the loop's provided-buffer ring (eager, one
    /// submission per connection instead of one per read). false: one plain recv per read,
    /// straight into the caller's span for read_into.
    bool multishot_recv = true;
};

namespace detail {

inline stream_config make_stream_config(std::size_t limit, std::size_t high, std::optional<std::size_t> low,
                                        bool multishot) {
    if (limit == 0) throw std::invalid_argument("coio: the stream limit must be positive");
    stream_config c;
    c.limit = limit;
    c.high_water = high;
    c.low_water = low ? *low : high / 4;
    c.multishot = multishot;
    return c;
}

/// Wraps a connected stream socket into a reader/writer pair on the running loop.
inline std::pair<stream_reader, stream_writer> make_stream(socket s, const stream_config& cfg, bool nodelay) {
    if (nodelay && (s.family() == AF_INET || s.family() == AF_INET6)) s.set_nodelay(true);
    auto& svc = get_running_loop().service<net_service>();
    auto* st = new stream_state(svc, std::move(s), cfg);
    st->add_ref();  // hold it while the handles are made (nothing can throw below, but be explicit)
    std::pair<stream_reader, stream_writer> p{stream_reader(st), stream_writer(st)};
    st->release();
    return p;
}

/// The addresses to connect to (or bind) for `host`: a numeric address without DNS, else
/// coio::getaddrinfo.
inline coro<std::vector<endpoint>> resolve_host(std::string host, std::uint16_t port, int family, bool passive) {
    std::vector<endpoint> out;
    if (host.empty() && passive) {
        if (family != AF_INET6) out.push_back(endpoint::any(AF_INET, port));
        if (family != AF_INET) out.push_back(endpoint::any(AF_INET6, port));
        co_return out;
    }
    try {
        endpoint ep(host, port);
        if (family == AF_UNSPEC || family == ep.family()) out.push_back(ep);
        co_return out;
    } catch (const std::invalid_argument&) {
        // not numeric: a name
    }
    // A name: the loop's resolver (c-ares; /etc/hosts first, then the configured servers).
    auto infos = co_await coio::getaddrinfo(host, port, {.family = family, .socktype = SOCK_STREAM,
                                                         .flags = passive ? AI_PASSIVE : 0});
    for (const auto& ai : infos)
        if (std::find(out.begin(), out.end(), ai.address) == out.end()) out.push_back(ai.address);
    co_return out;
}

} // namespace detail

/// Opens a TCP connection (asyncio.open_connection).
///
/// @param host     a numeric IPv4/IPv6 address ("127.0.0.1", "::1"), used without DNS, or a
///                 host name, resolved with coio::getaddrinfo; every address is tried in order.
/// @param port     the port.
/// @param options  `{.limit = ..., .family = ..., ...}`; see stream_options.
/// Returns: `std::pair<stream_reader, stream_writer>`: `auto [reader, writer] = co_await ...`.
/// Throws: std::system_error naming the address (std::errc::connection_refused, ...);
/// coio::gaierror when the name cannot be resolved.
/// Cancellation: the connect in progress is cancelled and its socket closed.
///
/// Example:
/// @code
///   auto [reader, writer] = co_await coio::open_connection("127.0.0.1", 8888);
///   writer.write("ping\n");
///   std::string pong = co_await reader.readline();
/// @endcode
[[nodiscard]] inline coro<std::pair<stream_reader, stream_writer>> open_connection(std::string host, std::uint16_t port,
                                                                                    stream_options options = {}) {
    const auto cfg = detail::make_stream_config(options.limit, options.write_high_water, options.write_low_water,
                                                options.multishot_recv);
    std::vector<endpoint> addrs = co_await detail::resolve_host(host, port, options.family, false);
    if (addrs.empty())
        throw std::system_error(std::make_error_code(std::errc::address_family_not_supported),
                                "coio: no address of the requested family for '" + host + "'");
    std::exception_ptr first;
    std::string messages;
    for (const endpoint& ep : addrs) {
        socket s(ep.family(), SOCK_STREAM);
        try {
            co_await s.connect(ep);
        } catch (const std::system_error& e) {
            if (!first) first = std::current_exception();
            if (!messages.empty()) messages += "; ";
            messages += e.what();
            continue;
        }
        co_return detail::make_stream(std::move(s), cfg, options.nodelay);
    }
    if (addrs.size() == 1) std::rethrow_exception(first);
    try {
        std::rethrow_exception(first);
    } catch (const std::system_error& e) {
        throw std::system_error(e.code(), "coio: connect to " + host + ":" + std::to_string(port) +
                                              ": every address failed: " + messages);
    }
}

/// Opens a Unix-domain stream connection (asyncio.open_unix_connection).
///
/// @param path     the socket path; a leading '\0' names an abstract socket (Linux).
/// @param options  see stream_options (`family` and `nodelay` do not apply).
/// Returns: `std::pair<stream_reader, stream_writer>`.
/// Throws: std::system_error naming the path (std::errc::no_such_file_or_directory,
/// connection_refused).
/// Cancellation: the connect is cancelled and the socket closed.
///
/// Example: `auto [r, w] = co_await coio::open_unix_connection("/tmp/app.sock");`
[[nodiscard]] inline coro<std::pair<stream_reader, stream_writer>> open_unix_connection(std::string path,
                                                                                         stream_options options = {}) {
    const auto cfg = detail::make_stream_config(options.limit, options.write_high_water, options.write_low_water,
                                                options.multishot_recv);
    socket s(AF_UNIX, SOCK_STREAM);
    co_await s.connect_unix(path);
    co_return detail::make_stream(std::move(s), cfg, false);
}

} // namespace coio
