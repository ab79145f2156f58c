// coio/resolver_options.hpp - settings of a DNS resolver (aiodns' DNSResolver arguments).
//
// Plain data, no c-ares: loop_options carries one for the loop's default resolver, so that
// `coio::run(main(), {.entries = 256, .resolver = {...}})` stays one flat initializer. The
// loop only stores it; the DNS service (impl/dns_service.hpp) reads it on the first lookup.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace coio {

/// Settings of a `coio::resolver`, and of the loop's default resolver through
/// `coio::run(main(), {.resolver = {...}})`. Members are in the order that reads naturally
/// with designated initializers.
///
/// Empty / zero members keep the system's configuration (/etc/resolv.conf). /etc/hosts,
/// numeric addresses and "localhost" are always answered locally, whatever the servers.
/// A lookup that gets no answer fails at the latest timeout x tries x (number of servers)
/// after it was started, time spent queued behind max_inflight included. Within that budget
/// c-ares doubles the timeout on each round over the servers (1 s, 2 s, 4 s, ... with the
/// defaults), so the last round may be cut short by the budget.
///
/// Cancellation: not applicable (plain settings).
///
/// Example:
/// @code
///   coio::resolver r({.servers = {"127.0.0.1:5353"}, .timeout = 500ms, .tries = 2});
/// @endcode
struct resolver_options {
    /// Name servers as "ip", "ip:port" or "[ipv6]:port" (port 53 when omitted); empty: the
    /// system's. A malformed entry, or a scoped IPv6 address ("fe80::1%eth0", not supported
    /// by c-ares), makes coio::resolver's constructor (or the first lookup of the default
    /// resolver) throw std::invalid_argument.
    std::vector<std::string> servers{};
    /// Time to wait for an answer to a first try (c-ares doubles it on each later round);
    /// zero: the system's setting ("timeout:n" in /etc/resolv.conf's options or in
    /// $RES_OPTIONS, which overrides the file), else 1 s. (c-ares' own default, 5 s, makes
    /// one lost datagram cost 5 s before the retry.)
    std::chrono::milliseconds timeout{0};
    /// Attempts per server; zero: the system's setting ("attempts:n", as for timeout), else
    /// c-ares' 4.
    int tries = 0;
    /// Pick servers round-robin instead of always starting with the first.
    bool rotate = false;
    /// Dots a name needs to be tried as absolute first; negative: the system's default.
    int ndots = -1;
    /// Search domains; empty: the system's.
    std::vector<std::string> search{};
    /// Upper bound of DNS queries in flight on this resolver: an AF_UNSPEC getaddrinfo counts
    /// two (A and AAAA go out together), every other lookup one; lookups that do not fit wait
    /// in a FIFO. A burst of thousands of queries otherwise overflows the server's receive
    /// buffer and waits for retries (measured on loopback against dnsmasq: 2,000 at once lose
    /// most replies; a cap of 100 lookups, i.e. 200 queries, still lost a few per burst and
    /// cost a whole retry timeout each time). Queries go out at most 64 per loop iteration.
    /// One lookup always runs, even if it needs more than the cap. 0: no bound.
    std::size_t max_inflight = 100;
};

} // namespace coio
