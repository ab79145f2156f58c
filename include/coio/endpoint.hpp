// coio/endpoint.hpp - coio::endpoint: an IPv4 or IPv6 address with a port (a socket address).
//
// The value type shared by DNS (getaddrinfo results, getnameinfo input) and sockets (connect,
// bind, sendto/recvfrom peers). It is what Python passes around as a `(host, port)` tuple,
// but typed: it holds a `sockaddr_in` or `sockaddr_in6` inline (28 bytes, no allocation), so
// it converts to a `const sockaddr*` for system calls and io_uring SQEs without copying.
//
// Textual forms (parse, to_string, operator<<), as Python and URLs write them:
//     1.2.3.4:80      IPv4 with port
//     [::1]:80        IPv6 with port (brackets are mandatory when a port follows)
//     [fe80::1%eth0]:80 / [fe80::1%2]:80   IPv6 with a scope (zone) id
//     1.2.3.4  ::1  [::1]                   no port: port 0 (or the default passed to parse)
// Only numeric addresses are accepted: names are resolved with coio::getaddrinfo.
#pragma once

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace coio {

/// An IPv4 or IPv6 socket address: IP address, port and (IPv6) flow info and scope id.
///
/// A small regular value type (copyable, comparable, hashable, printable) holding the
/// `sockaddr_in`/`sockaddr_in6` itself, so `data()`/`size()` can be handed straight to
/// `connect`, `bind`, `sendto` or an `io_uring_prep_*` call. A default-constructed endpoint
/// is empty (`family() == AF_UNSPEC`, `empty()`), prints as "" and has `size() == 0`.
///
/// Construction never resolves names: use `coio::getaddrinfo` for that. Unix-domain socket
/// paths are not endpoints (they have no host or port).
///
/// Throws: the parsing constructors throw std::invalid_argument naming the bad text; the
/// sockaddr constructor throws std::invalid_argument for a family other than AF_INET/AF_INET6
/// or a too-short length.
///
/// Cancellation: not applicable (a plain value; nothing here suspends).
///
/// Example:
/// @code
///   coio::endpoint a("127.0.0.1", 8080);             // from an IP and a port
///   auto b = coio::endpoint::parse("[::1]:53");      // from text
///   std::cout << a << ' ' << b.host() << ' ' << b.port() << '\n';  // 127.0.0.1:8080 ::1 53
///   ::connect(fd, b.data(), b.size());
/// @endcode
class endpoint {
public:
    /// The largest `size()` of any endpoint: pass a buffer of this size (or a
    /// `sockaddr_storage`) to recvfrom/accept, then build an endpoint from what they wrote.
    static constexpr socklen_t capacity = sizeof(sockaddr_in6);

    /// An empty endpoint (AF_UNSPEC, size() == 0).
    endpoint() noexcept { std::memset(&addr_, 0, sizeof addr_); }

    /// The endpoint `ip`:`port`, where `ip` is a numeric IPv4 ("10.0.0.1") or IPv6 ("::1",
    /// "fe80::1%eth0", brackets allowed) address.
    /// Throws: std::invalid_argument if `ip` is not a numeric address.
    endpoint(std::string_view ip, std::uint16_t port) : endpoint() {
        if (!assign_ip(ip, port))
            throw std::invalid_argument("coio::endpoint: not a numeric IPv4 or IPv6 address: '" + std::string(ip) + "'");
    }

    /// A copy of the socket address `sa` of `len` bytes (as filled in by accept, recvfrom,
    /// getpeername or getaddrinfo).
    /// Throws: std::invalid_argument if the family is not AF_INET/AF_INET6 or `len` is too
    /// short for it.
    endpoint(const sockaddr* sa, socklen_t len) : endpoint() {
        if (!sa) throw std::invalid_argument("coio::endpoint: null sockaddr");
        if (len >= static_cast<socklen_t>(sizeof(sa_family_t)) && sa->sa_family == AF_INET &&
            len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
            std::memcpy(&addr_.v4, sa, sizeof(sockaddr_in));
        } else if (len >= static_cast<socklen_t>(sizeof(sa_family_t)) && sa->sa_family == AF_INET6 &&
                   len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
            std::memcpy(&addr_.v6, sa, sizeof(sockaddr_in6));
        } else {
            throw std::invalid_argument("coio::endpoint: not an AF_INET/AF_INET6 socket address of a valid length");
        }
    }
    /// From an IPv4 socket address.
    explicit endpoint(const sockaddr_in& sa) noexcept : endpoint() {
        addr_.v4 = sa;
        addr_.v4.sin_family = AF_INET;
    }
    /// From an IPv6 socket address.
    explicit endpoint(const sockaddr_in6& sa) noexcept : endpoint() {
        addr_.v6 = sa;
        addr_.v6.sin6_family = AF_INET6;
    }

    /// Parses "1.2.3.4:80", "[::1]:80", "[fe80::1%eth0]:80", or an address without a port
    /// ("1.2.3.4", "::1", "[::1]"), which gets `default_port`.
    /// Throws: std::invalid_argument naming the text when it is not of that form (names such
    /// as "localhost:80" are not accepted: resolve them with getaddrinfo).
    [[nodiscard]] static endpoint parse(std::string_view text, std::uint16_t default_port = 0) {
        if (auto e = try_parse(text, default_port)) return *e;
        throw std::invalid_argument("coio::endpoint: cannot parse '" + std::string(text) +
                                    "' (expected 1.2.3.4:80, [::1]:80 or a numeric address)");
    }
    /// Like parse(), but returns std::nullopt instead of throwing.
    [[nodiscard]] static std::optional<endpoint> try_parse(std::string_view text, std::uint16_t default_port = 0) noexcept {
        endpoint e;
        std::string_view ip = text;
        std::uint16_t port = default_port;
        if (!text.empty() && text.front() == '[') {
            const auto close = text.find(']');
            if (close == std::string_view::npos) return std::nullopt;
            ip = text.substr(1, close - 1);
            const auto rest = text.substr(close + 1);
            if (!rest.empty()) {
                if (rest.front() != ':' || !parse_port(rest.substr(1), port)) return std::nullopt;
            }
            if (ip.find(':') == std::string_view::npos) return std::nullopt;  // "[1.2.3.4]" is not a thing
        } else if (const auto colon = text.find(':'); colon != std::string_view::npos &&
                                                        text.find(':', colon + 1) == std::string_view::npos) {
            // Exactly one colon: IPv4 with a port. Two or more: a bare IPv6 address.
            ip = text.substr(0, colon);
            if (!parse_port(text.substr(colon + 1), port)) return std::nullopt;
        }
        if (!e.assign_ip(ip, port)) return std::nullopt;
        return e;
    }

    /// The wildcard address of `family` (0.0.0.0 or ::) with `port`, for bind.
    /// Throws: std::invalid_argument for a family other than AF_INET/AF_INET6.
    [[nodiscard]] static endpoint any(int family, std::uint16_t port = 0) {
        return endpoint(family_check(family) == AF_INET ? "0.0.0.0" : "::", port);
    }
    /// The loopback address of `family` (127.0.0.1 or ::1) with `port`.
    /// Throws: std::invalid_argument for a family other than AF_INET/AF_INET6.
    [[nodiscard]] static endpoint loopback(int family, std::uint16_t port = 0) {
        return endpoint(family_check(family) == AF_INET ? "127.0.0.1" : "::1", port);
    }

    /// AF_INET, AF_INET6, or AF_UNSPEC when empty.
    [[nodiscard]] int family() const noexcept { return addr_.sa.sa_family; }
    /// True for a default-constructed endpoint.
    [[nodiscard]] bool empty() const noexcept { return family() == AF_UNSPEC; }
    /// True for an IPv4 endpoint.
    [[nodiscard]] bool is_v4() const noexcept { return family() == AF_INET; }
    /// True for an IPv6 endpoint (including IPv4-mapped ones, ::ffff:1.2.3.4).
    [[nodiscard]] bool is_v6() const noexcept { return family() == AF_INET6; }
    /// True for 127.0.0.0/8 and ::1.
    [[nodiscard]] bool is_loopback() const noexcept {
        if (is_v4()) return (ntohl(addr_.v4.sin_addr.s_addr) >> 24) == 127;
        return is_v6() && IN6_IS_ADDR_LOOPBACK(&addr_.v6.sin6_addr);
    }

    /// The numeric address: "1.2.3.4", "::1", "fe80::1%eth0" (a scope id is shown by
    /// interface name when one exists, else by number). Empty for an empty endpoint.
    [[nodiscard]] std::string host() const {
        char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
        if (is_v4()) {
            ::inet_ntop(AF_INET, &addr_.v4.sin_addr, buf, sizeof buf);
            return buf;
        }
        if (!is_v6()) return {};
        ::inet_ntop(AF_INET6, &addr_.v6.sin6_addr, buf, sizeof buf);
        std::string s = buf;
        if (addr_.v6.sin6_scope_id != 0) {
            char name[IF_NAMESIZE] = {};
            s += '%';
            if (::if_indextoname(addr_.v6.sin6_scope_id, name)) s += name;
            else s += std::to_string(addr_.v6.sin6_scope_id);
        }
        return s;
    }
    /// The port in host byte order (0 for an empty endpoint).
    [[nodiscard]] std::uint16_t port() const noexcept {
        if (is_v4()) return ntohs(addr_.v4.sin_port);
        if (is_v6()) return ntohs(addr_.v6.sin6_port);
        return 0;
    }
    /// Sets the port (no effect on an empty endpoint).
    void set_port(std::uint16_t port) noexcept {
        if (is_v4()) addr_.v4.sin_port = htons(port);
        else if (is_v6()) addr_.v6.sin6_port = htons(port);
    }
    /// A copy with another port: `ep.with_port(443)`.
    [[nodiscard]] endpoint with_port(std::uint16_t port) const noexcept {
        endpoint e = *this;
        e.set_port(port);
        return e;
    }
    /// The IPv6 scope id (interface index of a link-local address); 0 for IPv4.
    [[nodiscard]] std::uint32_t scope_id() const noexcept { return is_v6() ? addr_.v6.sin6_scope_id : 0; }

    /// "1.2.3.4:80" or "[::1]:80"; "" for an empty endpoint. Round-trips through parse().
    [[nodiscard]] std::string to_string() const {
        if (is_v4()) return host() + ':' + std::to_string(port());
        if (is_v6()) return '[' + host() + "]:" + std::to_string(port());
        return {};
    }

    /// The socket address, for connect/bind/sendto and io_uring_prep_* calls.
    [[nodiscard]] const sockaddr* data() const noexcept { return &addr_.sa; }
    /// Writable socket address (rarely needed; keep the family consistent).
    [[nodiscard]] sockaddr* data() noexcept { return &addr_.sa; }
    /// Length of the socket address: sizeof(sockaddr_in) or sizeof(sockaddr_in6); 0 if empty.
    [[nodiscard]] socklen_t size() const noexcept {
        if (is_v4()) return sizeof(sockaddr_in);
        if (is_v6()) return sizeof(sockaddr_in6);
        return 0;
    }
    /// Copies the socket address into `out` (e.g. for an API that wants sockaddr_storage).
    /// Returns: size().
    socklen_t to_sockaddr(sockaddr_storage& out) const noexcept {
        std::memset(&out, 0, sizeof out);
        std::memcpy(&out, &addr_, size());
        return size();
    }

    /// Equality of family, address, port, and (IPv6) scope id. Flow info is ignored.
    friend bool operator==(const endpoint& a, const endpoint& b) noexcept { return a.compare(b) == 0; }
    /// Ordering: by family, then address bytes, then port, then scope id (for std::map/set).
    friend std::strong_ordering operator<=>(const endpoint& a, const endpoint& b) noexcept {
        return a.compare(b) <=> 0;
    }
    /// Writes to_string().
    friend std::ostream& operator<<(std::ostream& os, const endpoint& e) { return os << e.to_string(); }

private:
    union storage {
        sockaddr sa;
        sockaddr_in v4;
        sockaddr_in6 v6;
    } addr_;

    static int family_check(int family) {
        if (family != AF_INET && family != AF_INET6)
            throw std::invalid_argument("coio::endpoint: family must be AF_INET or AF_INET6");
        return family;
    }

    static bool parse_port(std::string_view s, std::uint16_t& port) noexcept {
        if (s.empty() || s.size() > 5) return false;
        unsigned v = 0;
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc{} || p != s.data() + s.size() || v > 65535) return false;
        port = static_cast<std::uint16_t>(v);
        return true;
    }

    bool assign_ip(std::string_view ip, std::uint16_t port) noexcept {
        if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
        char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
        if (ip.empty() || ip.size() >= sizeof buf || ip.find('\0') != std::string_view::npos) return false;
        std::memcpy(buf, ip.data(), ip.size());
        buf[ip.size()] = '\0';
        std::memset(&addr_, 0, sizeof addr_);
        if (ip.find(':') == std::string_view::npos) {
            // inet_pton accepts only dotted quads (unlike inet_aton's "127.1"), as Python's
            // ipaddress module does.
            if (::inet_pton(AF_INET, buf, &addr_.v4.sin_addr) != 1) return false;
            addr_.v4.sin_family = AF_INET;
            addr_.v4.sin_port = htons(port);
            return true;
        }
        std::uint32_t scope = 0;
        if (char* pct = std::strchr(buf, '%')) {
            *pct = '\0';
            const std::string_view zone(pct + 1);
            if (zone.empty()) return false;
            const auto [p, ec] = std::from_chars(zone.data(), zone.data() + zone.size(), scope);
            if (ec != std::errc{} || p != zone.data() + zone.size()) {
                scope = ::if_nametoindex(pct + 1);
                if (scope == 0) return false;
            }
        }
        if (::inet_pton(AF_INET6, buf, &addr_.v6.sin6_addr) != 1) {
            std::memset(&addr_, 0, sizeof addr_);
            return false;
        }
        addr_.v6.sin6_family = AF_INET6;
        addr_.v6.sin6_port = htons(port);
        addr_.v6.sin6_scope_id = scope;
        return true;
    }

    int compare(const endpoint& o) const noexcept {
        if (family() != o.family()) return family() < o.family() ? -1 : 1;
        int c = 0;
        if (is_v4()) c = std::memcmp(&addr_.v4.sin_addr, &o.addr_.v4.sin_addr, sizeof(in_addr));
        else if (is_v6()) c = std::memcmp(&addr_.v6.sin6_addr, &o.addr_.v6.sin6_addr, sizeof(in6_addr));
        if (c != 0) return c < 0 ? -1 : 1;
        if (port() != o.port()) return port() < o.port() ? -1 : 1;
        if (scope_id() != o.scope_id()) return scope_id() < o.scope_id() ? -1 : 1;
        return 0;
    }

    friend struct std::hash<endpoint>;
};

} // namespace coio

/// @cond STD_SPECIALIZATIONS
// (Doxygen cannot place a specialization of a std template it does not see.)
/// Hash of an endpoint (family, address, port, scope id), for unordered containers.
template <>
struct std::hash<coio::endpoint> {
    std::size_t operator()(const coio::endpoint& e) const noexcept {
        std::size_t h = std::hash<int>{}(e.family());
        auto mix = [&h](const void* p, std::size_t n) {
            // FNV-1a over the bytes that take part in equality.
            const auto* b = static_cast<const unsigned char*>(p);
            for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
        };
        if (e.is_v4()) mix(&e.addr_.v4.sin_addr, sizeof(in_addr));
        if (e.is_v6()) mix(&e.addr_.v6.sin6_addr, sizeof(in6_addr));
        const std::uint16_t port = e.port();
        const std::uint32_t scope = e.scope_id();
        mix(&port, sizeof port);
        mix(&scope, sizeof scope);
        return h;
    }
};
/// @endcond
