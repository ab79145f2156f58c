// coio/resolver_options.hpp - settings of a DNS resolver (aiodns' DNSResolver arguments).
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
/// A lookup that gets no answer fails after timeout x tries x (number of servers).
///
/// Cancellation: not applicable (plain settings).
///
/// Example:
/// @code
///   coio::resolver r({.servers = {"127.0.0.1:5353"}, .timeout = 500ms, .tries = 2});
/// @endcode
struct resolver_options {
    /// Name servers as "ip", "ip:port" or "[ipv6]:port" (port 53 when omitted); empty: the
    /// system's. A malformed entry makes coio::resolver's constructor (or the first lookup
    /// of the default resolver) throw std::invalid_argument.
    std::vector<std::string> servers{};
    /// Time to wait for an answer, per try; zero: the system's default (resolv.conf
    /// "options timeout:", else c-ares' 5 s).
    std::chrono::milliseconds timeout{0};
    /// Attempts per server; zero: the system's default (resolv.conf "options attempts:",
    /// else c-ares' 4).
    int tries = 0;
    /// Pick servers round-robin instead of always starting with the first.
    bool rotate = false;
    /// Dots a name needs to be tried as absolute first; negative: the system's default.
    int ndots = -1;
    /// Search domains; empty: the system's.
    std::vector<std::string> search{};
    /// Upper bound of lookups in flight on this resolver; the rest wait in a FIFO. A burst of
    /// thousands of lookups otherwise overflows socket buffers and waits for retries
    /// (measured on loopback: 2,000 at once lose most replies to the retry timeout).
    /// 0: no bound.
    std::size_t max_inflight = 100;
};

} // namespace coio
