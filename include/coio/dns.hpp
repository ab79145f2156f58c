// coio/dns.hpp - non-blocking DNS on the event loop: getaddrinfo, getnameinfo, coio::resolver.
//
// asyncio's loop.getaddrinfo runs the blocking libc call in a thread pool. coio resolves with
// c-ares instead, on the loop's own io_uring ring: no thread per lookup, thousands of lookups
// in flight from one thread.
//
//   co_await coio::getaddrinfo("example.org", 443)        // loop.getaddrinfo(host, port)
//   co_await coio::getnameinfo(ep)                        // loop.getnameinfo(sockaddr)
//   coio::resolver r({.servers = {"127.0.0.1:5353"}});     // aiodns.DNSResolver(nameservers=...)
//   co_await r.query("example.org", coio::dns::mx)        // typed records
//
// The free functions use the running loop's default resolver, configured by
// `coio::run(main(), {.resolver = {...}})` (loop_options::resolver); by default it reads
// /etc/resolv.conf. /etc/hosts, numeric addresses and "localhost" are answered without any
// network traffic.
//
// What the lookups take and give has headers of its own, all included here:
//   coio/address_info.hpp      addrinfo_hints, address_info, name_info
//   coio/dns_records.hpp       coio::dns::a, mx, ... and their records, for resolver::query
//   coio/dns_errors.hpp        gaierror (getaddrinfo, getnameinfo; Python's socket.gaierror)
//                              and dns_error (query; aiodns' DNSError)
//   coio/resolver_options.hpp  the settings of a resolver
// Invalid names (empty, a NUL byte, a label over 63 bytes, a name over 253) and bad ports or
// service names are refused before anything is sent. Names are sent as given: there is no
// IDNA conversion (Python encodes str host names with the idna codec; pass "xn--..." forms).
#pragma once

#include <coio/address_info.hpp>
#include <coio/coro.hpp>
#include <coio/dns_errors.hpp>
#include <coio/dns_records.hpp>
#include <coio/endpoint.hpp>
#include <coio/errors.hpp>
#include <coio/impl/dns_channel.hpp>
#include <coio/impl/dns_getaddrinfo.hpp>
#include <coio/impl/dns_lookups.hpp>
#include <coio/impl/dns_record_parsers.hpp>
#include <coio/impl/dns_service.hpp>
#include <coio/loop.hpp>
#include <coio/resolver_options.hpp>
#include <coio/task.hpp>

#include <ares.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace coio {

namespace detail::dns {
struct access;
} // namespace detail::dns

/// A DNS resolver with its own settings and c-ares channel (aiodns' DNSResolver).
///
/// Built from resolver_options; every lookup runs on the event loop that runs the awaiting
/// task, with c-ares' sockets polled through the loop's io_uring ring and its timeouts as
/// loop timers. The channel is created on first use and bound to that loop; it is destroyed
/// with the resolver, or when the loop closes (the resolver then starts afresh on the next
/// loop that uses it).
///
/// At most `options.max_inflight` queries are in flight at once (an AF_UNSPEC getaddrinfo
/// counts two: A and AAAA); further lookups wait in a FIFO, so a burst of thousands of
/// lookups gets every answer instead of overflowing socket buffers. Each lookup gives up
/// (timeout / dns_errc::timeout) at the latest timeout x tries x (number of servers) after it
/// was started, time spent waiting in the FIFO included.
///
/// Threading: use a resolver from one loop (thread) at a time, and destroy it on that thread.
/// Lifetime: the coroutines returned by its members refer to it; keep it alive, and do not
/// move it, until they have finished. Destroying it ends the lookups still running with
/// gai_errc::canceled / dns_errc::destruction.
///
/// Throws (constructor): std::invalid_argument for a malformed server address.
///
/// Cancellation: see each member; a cancelled lookup is abandoned at once and gives its
/// slot to the next queued lookup at once (c-ares cannot cancel one query: it keeps the
/// query until an answer or its own timeout, or until no live lookup is left, and drops
/// the answer).
///
/// Example:
/// @code
///   coio::resolver r({.servers = {"127.0.0.1:5353"}, .timeout = 500ms, .tries = 2});
///   auto addrs = co_await r.getaddrinfo("www.test", 443, {.socktype = SOCK_STREAM});
///   auto mx = co_await r.query("test", coio::dns::mx);
/// @endcode
class resolver {
public:
    /// A resolver with `options` (empty/zero members: the system's configuration).
    /// Throws: std::invalid_argument if a server is not "ip", "ip:port" or "[ipv6]:port",
    /// or is a scoped IPv6 address ("fe80::1%eth0", "[fe80::1%eth0]:53": not supported).
    explicit resolver(resolver_options options = {});
    /// Not copyable: it owns a c-ares channel.
    resolver(const resolver&) = delete;
    /// Not copyable: it owns a c-ares channel.
    resolver& operator=(const resolver&) = delete;
    /// Takes over `other`'s channel (lookups in progress continue); `other` becomes unbound.
    resolver(resolver&& other) noexcept;
    /// Destroys this resolver's channel (see the destructor), then takes over `other`'s.
    resolver& operator=(resolver&& other) noexcept;
    /// Destroys the channel: lookups still running end with gai_errc::canceled or
    /// dns_errc::destruction; no memory is freed before the ring is done with it.
    ~resolver();

    /// Resolves `host` and `port` to socket addresses (Python's getaddrinfo).
    ///
    /// @param host   a DNS name, a numeric IPv4/IPv6 address, or a name from /etc/hosts.
    /// @param port   0..65535 (0: no port).
    /// @param hints  family, socket type, protocol and AI_* flags (see addrinfo_hints).
    /// Returns: the addresses in the order to try them (RFC 6724 destination address
    /// selection, as glibc orders them: reachable first, IPv6 before IPv4 when both are
    /// usable, ...), each repeated per socket type (see address_info).
    /// Throws: gaierror — noname (NXDOMAIN, invalid name, AI_NUMERICHOST with a name),
    /// nodata (no address of that family), again (timeout, SERVFAIL, REFUSED, unreachable
    /// server), addrfamily (a numeric address of the other family), fail,
    /// service (port out of range), family, socktype, badflags, canceled;
    /// invalid_state_error outside a task.
    ///
    /// Cancellation: the lookup is abandoned at once (the query stays with c-ares, which
    /// drops its answer) and cancelled_error is thrown.
    ///
    /// Example: `auto v = co_await r.getaddrinfo("a.test", 80, {.family = AF_INET});`
    [[nodiscard]] coro<std::vector<address_info>> getaddrinfo(std::string host, int port = 0, addrinfo_hints hints = {});
    /// Like getaddrinfo(host, port, hints) with a service name ("http") or a port number
    /// as text ("8080"); an unknown service throws gaierror(gai_errc::service).
    ///
    /// Cancellation: as above.
    ///
    /// Example: `auto v = co_await r.getaddrinfo("a.test", "https");`
    [[nodiscard]] coro<std::vector<address_info>> getaddrinfo(std::string host, std::string service,
                                                              addrinfo_hints hints = {});
    /// Finds the host and service names of `address` (Python's getnameinfo).
    ///
    /// @param address  an IPv4 or IPv6 endpoint.
    /// @param flags    NI_NUMERICHOST, NI_NUMERICSERV, NI_NAMEREQD, NI_NOFQDN, NI_DGRAM.
    /// Returns: the host name (from /etc/hosts, else a PTR lookup; the numeric address when
    /// none is found, unless NI_NAMEREQD) and the service name (from /etc/services, else the
    /// port number).
    /// Throws: gaierror — noname (NI_NAMEREQD and no name), again (timeout), family (empty
    /// endpoint), badflags; invalid_state_error outside a task.
    ///
    /// Cancellation: as getaddrinfo.
    ///
    /// Example: `auto [host, service] = co_await r.getnameinfo(coio::endpoint("127.0.0.1", 80));`
    [[nodiscard]] coro<name_info> getnameinfo(endpoint address, int flags = 0);
    /// Queries one DNS record type for `name` (aiodns' query; no /etc/hosts, no search list).
    ///
    /// @param name  the name, e.g. "example.org", or "4.3.2.1.in-addr.arpa" for PTR.
    /// @param type  dns::a, aaaa, cname, mx, ns, ptr, srv, txt or soa.
    /// Returns: Type::result_type: a std::vector of typed records, or one record for cname
    /// and soa.
    /// Throws: dns_error — nxdomain, nodata, timeout, refused, servfail, badname (invalid
    /// name, refused before sending), badresp, destruction, cancelled; invalid_state_error
    /// outside a task.
    ///
    /// Cancellation: as getaddrinfo.
    ///
    /// Example: `auto txt = co_await r.query("t.test", coio::dns::txt);`
    template <dns::record_type_tag Type>
    [[nodiscard]] coro<typename Type::result_type> query(std::string name, Type type);

    /// Ends every lookup of this resolver now, with gai_errc::canceled / dns_errc::cancelled
    /// (aiodns' cancel()). Lookups started afterwards run normally.
    void cancel() noexcept;

    /// The options given to the constructor.
    [[nodiscard]] const resolver_options& options() const noexcept { return options_; }
    /// Queries in flight for lookups that still wait for them: the number max_inflight bounds
    /// (an AF_UNSPEC getaddrinfo counts two). Cancelled and expired lookups no longer count.
    /// For monitoring and tests.
    [[nodiscard]] std::size_t in_flight() const noexcept { return ch_ ? ch_->in_flight() : 0; }
    /// Lookups waiting for a free slot. For monitoring and tests.
    [[nodiscard]] std::size_t queued() const noexcept { return ch_ ? ch_->queued() : 0; }

private:
    friend struct detail::dns::access;
    detail::dns::channel& acquire();

    resolver_options options_;
    std::string servers_csv_;
    detail::dns::channel* ch_ = nullptr;
};

/// Resolves `host` and `port` with the running loop's default resolver (asyncio's
/// `loop.getaddrinfo(host, port)`). Everything else is as `resolver::getaddrinfo`.
///
/// The default resolver uses `loop_options::resolver` (`coio::run(main(), {.resolver =
/// {.servers = {"127.0.0.1:5353"}}})`), by default /etc/resolv.conf.
///
/// Cancellation: the lookup is abandoned at once and cancelled_error is thrown.
///
/// Example:
/// @code
///   for (const auto& ai : co_await coio::getaddrinfo("localhost", 80, {.socktype = SOCK_STREAM}))
///       std::cout << ai.address << '\n';   // 127.0.0.1:80
/// @endcode
[[nodiscard]] coro<std::vector<address_info>> getaddrinfo(std::string host, int port = 0, addrinfo_hints hints = {});
/// getaddrinfo with a service name ("http") or a port as text; see resolver::getaddrinfo.
///
/// Cancellation: as above.
///
/// Example: `auto v = co_await coio::getaddrinfo("localhost", "http");`
[[nodiscard]] coro<std::vector<address_info>> getaddrinfo(std::string host, std::string service, addrinfo_hints hints = {});
/// Host and service names of `address` with the running loop's default resolver (asyncio's
/// `loop.getnameinfo(sockaddr, flags)`); see resolver::getnameinfo.
///
/// Cancellation: as getaddrinfo.
///
/// Example: `auto ni = co_await coio::getnameinfo(coio::endpoint("127.0.0.1", 80));  // {"localhost", "http"}`
[[nodiscard]] coro<name_info> getnameinfo(endpoint address, int flags = 0);

// =========================================================================================
// Implementation
// =========================================================================================

namespace detail::dns {

/// Friend of resolver: the coroutines below reach its channel through this.
struct access {
    static channel& of(resolver* r) {
        if (r) return r->acquire();
        event_loop& loop = get_running_loop();
        dns_service& svc = loop.service<dns_service>();
        if (channel* ch = svc.default_channel()) return *ch;
        int status = ARES_SUCCESS;
        channel* ch = svc.open_default(servers_csv(loop.options().resolver.servers), status);
        if (!ch) throw dns_error(static_cast<dns_errc>(status), "cannot create the default resolver");
        return *ch;
    }

    /// "ip:port,[v6]:port" for ares_set_servers_ports_csv; "" for the system's servers.
    /// Throws: std::invalid_argument naming a malformed entry.
    static std::string servers_csv(const std::vector<std::string>& servers) {
        std::string csv;
        for (const auto& s : servers) {
            // A scoped IPv6 address ("fe80::1%eth0") would pass endpoint's parser, but c-ares
            // 1.18's server list has no zone: it rejects the whole list at the first lookup
            // ("Misformatted string"). Refused here, where the mistake is made.
            if (s.find('%') != std::string::npos)
                throw std::invalid_argument("coio::resolver: scoped IPv6 server address '" + s +
                                            "' is not supported (c-ares has no zone index for servers)");
            auto ep = endpoint::try_parse(s, 53);
            if (!ep || ep->port() == 0)
                throw std::invalid_argument("coio::resolver: bad server address '" + s +
                                            "' (expected \"ip\", \"ip:port\" or \"[ipv6]:port\")");
            if (!csv.empty()) csv += ',';
            csv += ep->to_string();
        }
        return csv;
    }
};

/// The answer when no DNS server is needed — a numeric address, an /etc/hosts name,
/// localhost — or nullopt with `*ch` set to the channel to ask. Throws gaierror for an
/// invalid name.
inline std::optional<std::vector<address_info>> answer_locally(resolver* r, const std::string& host, const service_port& sp,
                                                               const addrinfo_hints& hints, channel*& ch) {
    if (auto numeric = answer_numeric(host, sp, hints)) return numeric;
    ch = &access::of(r);
    return answer_from_hosts(ch->service().hosts(), host, sp, hints);
}

/// The body of every getaddrinfo. Checks run when the coroutine is awaited, so a bad
/// argument fails the await (or the task gather made of it), as in asyncio. The work is in
/// plain functions: what stays in this frame is what must live across the suspension, which
/// keeps it small (coio's frame pool recycles frames up to 512 bytes, and every byte of a
/// burst of thousands of lookups is fresh memory the kernel has to fault in).
inline coro<std::vector<address_info>> getaddrinfo(resolver* r, std::string host, int port, addrinfo_hints hints) {
    check_hints(hints);
    if (port < 0 || port > 65535) throw gaierror(gai_errc::service, "port " + std::to_string(port) + " out of range 0..65535");
    const service_port sp{port, true, true, false};
    channel* ch = nullptr;
    std::optional<std::vector<address_info>> local = answer_locally(r, host, sp, hints, ch);
    if (local) co_return std::move(*local);
    addrinfo_op op(*ch, host.c_str(), to_ares(hints));
    co_await op;
    co_return answer_from_dns(op.status, op.result, host, sp, hints);
}

/// getaddrinfo with a service name (or a port as text): resolved first (/etc/services),
/// then as above.
inline coro<std::vector<address_info>> getaddrinfo(resolver* r, std::string host, std::string service, addrinfo_hints hints) {
    check_hints(hints);
    const service_port sp = resolve_service(service, hints);
    channel* ch = nullptr;
    std::optional<std::vector<address_info>> local = answer_locally(r, host, sp, hints, ch);
    if (local) co_return std::move(*local);
    addrinfo_op op(*ch, host.c_str(), to_ares(hints));
    co_await op;
    co_return answer_from_dns(op.status, op.result, host, sp, hints);
}

inline coro<name_info> getnameinfo(resolver* r, endpoint address, int flags) {
    constexpr int known = NI_NUMERICHOST | NI_NUMERICSERV | NI_NOFQDN | NI_NAMEREQD | NI_DGRAM;
    if (flags & ~known) throw gaierror(gai_errc::badflags, "unknown NI_* flags");
    if (address.empty()) throw gaierror(gai_errc::family, "empty endpoint");
    name_info out;
    out.service = (flags & NI_NUMERICSERV) ? std::to_string(address.port())
                                           : service_by_port(address.port(), (flags & NI_DGRAM) ? "udp" : "tcp");
    if (flags & NI_NUMERICHOST) {
        if (flags & NI_NAMEREQD) throw gaierror(gai_errc::noname, "NI_NAMEREQD with NI_NUMERICHOST");
        out.host = address.host();
        co_return out;
    }
    channel& ch = access::of(r);
    if (const std::string* name = ch.service().hosts().find_name(address)) {
        out.host = (flags & NI_NOFQDN) ? without_local_domain(*name) : *name;
        co_return out;
    }
    int ares_flags = ARES_NI_LOOKUPHOST;
    if (flags & NI_NAMEREQD) ares_flags |= ARES_NI_NAMEREQD;
    if (flags & NI_NOFQDN) ares_flags |= ARES_NI_NOFQDN;
    nameinfo_op op(ch, address, ares_flags);
    co_await op;
    if (op.status != ARES_SUCCESS) throw_lookup_failure(op.status, address.host());
    out.host = op.host;
    co_return out;
}

template <class Type>
coro<typename Type::result_type> query(resolver* r, std::string name) {
    if (const char* why = name_problem(name, true)) throw dns_error(dns_errc::badname, std::string(Type::name) + ": " + why);
    channel& ch = access::of(r);
    typename Type::result_type result{};
    query_op op(ch, name.c_str(), Type::code, &parse_erased<Type>, &result);
    co_await op;
    if (op.error) std::rethrow_exception(op.error);
    if (op.status != ARES_SUCCESS) throw dns_error(static_cast<dns_errc>(op.status), std::string(Type::name) + " " + name);
    co_return result;
}

} // namespace detail::dns

inline resolver::resolver(resolver_options options)
    : options_(std::move(options)), servers_csv_(detail::dns::access::servers_csv(options_.servers)) {}

inline resolver::resolver(resolver&& other) noexcept
    : options_(std::move(other.options_)), servers_csv_(std::move(other.servers_csv_)), ch_(std::exchange(other.ch_, nullptr)) {
    if (ch_) ch_->owner = &ch_;
}

inline resolver& resolver::operator=(resolver&& other) noexcept {
    if (this == &other) return *this;
    if (ch_) ch_->service().release(std::exchange(ch_, nullptr));
    options_ = std::move(other.options_);
    servers_csv_ = std::move(other.servers_csv_);
    ch_ = std::exchange(other.ch_, nullptr);
    if (ch_) ch_->owner = &ch_;
    return *this;
}

inline resolver::~resolver() {
    if (ch_) ch_->service().release(ch_);
}

inline detail::dns::channel& resolver::acquire() {
    event_loop& loop = get_running_loop();
    if (ch_ && &ch_->loop() != &loop)
        throw invalid_state_error("coio::resolver: already in use on another event loop (use one resolver per loop)");
    if (!ch_) {
        int status = ARES_SUCCESS;
        ch_ = loop.service<detail::dns::dns_service>().open(options_, servers_csv_, &ch_, status);
        if (!ch_) throw dns_error(static_cast<dns_errc>(status), "cannot create the resolver's c-ares channel");
    }
    return *ch_;
}

inline void resolver::cancel() noexcept {
    if (ch_) ch_->cancel_all();
}

inline coro<std::vector<address_info>> resolver::getaddrinfo(std::string host, int port, addrinfo_hints hints) {
    return detail::dns::getaddrinfo(this, std::move(host), port, hints);
}

inline coro<std::vector<address_info>> resolver::getaddrinfo(std::string host, std::string service, addrinfo_hints hints) {
    return detail::dns::getaddrinfo(this, std::move(host), std::move(service), hints);
}

inline coro<name_info> resolver::getnameinfo(endpoint address, int flags) {
    return detail::dns::getnameinfo(this, address, flags);
}

template <dns::record_type_tag Type>
coro<typename Type::result_type> resolver::query(std::string name, Type) {
    return detail::dns::query<Type>(this, std::move(name));
}

inline coro<std::vector<address_info>> getaddrinfo(std::string host, int port, addrinfo_hints hints) {
    return detail::dns::getaddrinfo(nullptr, std::move(host), port, hints);
}

inline coro<std::vector<address_info>> getaddrinfo(std::string host, std::string service, addrinfo_hints hints) {
    return detail::dns::getaddrinfo(nullptr, std::move(host), std::move(service), hints);
}

inline coro<name_info> getnameinfo(endpoint address, int flags) {
    return detail::dns::getnameinfo(nullptr, address, flags);
}

} // namespace coio
