// coio/address_info.hpp - what getaddrinfo and getnameinfo take and give: addrinfo_hints
// (Python's family/type/proto/flags arguments), address_info (one (family, type, proto,
// canonname, sockaddr) tuple) and name_info (the (host, port) pair).
//
//   for (const coio::address_info& ai : co_await coio::getaddrinfo("localhost", 80))
//       std::cout << ai << '\n';   // e.g. (AF_INET, SOCK_STREAM, 6, '', 127.0.0.1:80)
//
// Plain data: this header needs neither c-ares nor an event loop. The lookups are in
// coio/dns.hpp.
#pragma once

#include <coio/endpoint.hpp>

#include <netdb.h>
#include <sys/socket.h>

#include <ostream>
#include <string>

namespace coio {

/// What getaddrinfo should return, in the order of Python's getaddrinfo arguments. All zero
/// means: any family, every socket type, no flags.
///
/// flags are the <netdb.h> AI_* flags: AI_CANONNAME (fill canonname of the first entry),
/// AI_NUMERICHOST (the host must be a numeric address), AI_NUMERICSERV (the service must be a
/// number), AI_V4MAPPED and AI_ALL (IPv4 answers as ::ffff:a.b.c.d for AF_INET6), AI_PASSIVE
/// and AI_ADDRCONFIG (accepted; they change nothing for a non-empty host).
///
/// Example: `co_await coio::getaddrinfo("example.org", 443, {.family = AF_INET, .socktype = SOCK_STREAM});`
struct addrinfo_hints {
    /// AF_UNSPEC (0), AF_INET or AF_INET6.
    int family = AF_UNSPEC;
    /// 0 (every type), SOCK_STREAM, SOCK_DGRAM or SOCK_RAW.
    int socktype = 0;
    /// 0 (the socket type's default), IPPROTO_TCP, IPPROTO_UDP, ...
    int protocol = 0;
    /// AI_* flags, see the struct comment.
    int flags = 0;
};

/// One getaddrinfo result: Python's (family, type, proto, canonname, sockaddr) tuple.
///
/// Like glibc's getaddrinfo, a lookup without a socket type gives each address three times
/// (SOCK_STREAM/IPPROTO_TCP, SOCK_DGRAM/IPPROTO_UDP, SOCK_RAW/0); a service name gives only
/// the types it is defined for.
struct address_info {
    /// AF_INET or AF_INET6.
    int family = AF_UNSPEC;
    /// SOCK_STREAM, SOCK_DGRAM or SOCK_RAW.
    int socktype = 0;
    /// IPPROTO_TCP, IPPROTO_UDP or 0.
    int protocol = 0;
    /// The canonical name: set on the first entry only, and only with AI_CANONNAME.
    std::string canonname;
    /// The address with the port: ready for connect/bind, prints as 1.2.3.4:80 or [::1]:80.
    endpoint address;

    /// Equality of every member.
    friend bool operator==(const address_info&, const address_info&) = default;
    /// Prints "(AF_INET, SOCK_STREAM, 6, '', 1.2.3.4:80)".
    friend std::ostream& operator<<(std::ostream& os, const address_info& a) {
        auto family = [](int f) -> const char* { return f == AF_INET ? "AF_INET" : f == AF_INET6 ? "AF_INET6" : "AF_UNSPEC"; };
        auto type = [](int t) -> std::string {
            if (t == SOCK_STREAM) return "SOCK_STREAM";
            if (t == SOCK_DGRAM) return "SOCK_DGRAM";
            if (t == SOCK_RAW) return "SOCK_RAW";
            return std::to_string(t);
        };
        return os << '(' << family(a.family) << ", " << type(a.socktype) << ", " << a.protocol << ", '" << a.canonname
                  << "', " << a.address << ')';
    }
};

/// The result of getnameinfo: Python's (host, port) pair, both strings.
struct name_info {
    /// The host name ("localhost"), or the numeric address with NI_NUMERICHOST or when no
    /// name is known (unless NI_NAMEREQD).
    std::string host;
    /// The service name ("http"), or the port number as text with NI_NUMERICSERV or when
    /// the port has no name.
    std::string service;

    /// Equality of both members.
    friend bool operator==(const name_info&, const name_info&) = default;
};

} // namespace coio
