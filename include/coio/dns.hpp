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
// Errors: coio::gaierror (getaddrinfo, getnameinfo; Python's socket.gaierror) and
// coio::dns_error (query; aiodns' DNSError), both std::system_error with their own category.
// Invalid names (empty, a NUL byte, a label over 63 bytes, a name over 253) and bad ports or
// service names are refused before anything is sent. Names are sent as given: there is no
// IDNA conversion (Python encodes str host names with the idna codec; pass "xn--..." forms).
#pragma once

#include <coio/coro.hpp>
#include <coio/impl/address_sort.hpp>
#include <coio/impl/dns_channel.hpp>
#include <coio/endpoint.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/resolver_options.hpp>
#include <coio/task.hpp>

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace coio {

// =========================================================================================
// Errors
// =========================================================================================

/// getaddrinfo/getnameinfo error codes (the EAI_* constants of <netdb.h>), for comparing
/// `gaierror::code()`: `e.code() == coio::gai_errc::noname`.
enum class gai_errc : int {
    badflags = EAI_BADFLAGS,  ///< invalid flags
    noname = EAI_NONAME,      ///< name or service not known (NXDOMAIN, invalid name)
    again = EAI_AGAIN,        ///< temporary failure: timeout, server failure, unreachable
    fail = EAI_FAIL,          ///< non-recoverable failure (refused, malformed reply)
    family = EAI_FAMILY,      ///< address family not supported
    socktype = EAI_SOCKTYPE,  ///< socket type not supported
    service = EAI_SERVICE,    ///< bad port or unknown service name
    memory = EAI_MEMORY,      ///< out of memory
    system = EAI_SYSTEM,      ///< system error
    overflow = EAI_OVERFLOW,  ///< argument buffer overflow
#ifdef EAI_NODATA
    nodata = EAI_NODATA,          ///< the name exists but has no address (of that family)
    addrfamily = EAI_ADDRFAMILY,  ///< the host has no address in the requested family
    canceled = EAI_CANCELED,      ///< the request was cancelled (resolver destroyed or cancel())
#else
    nodata = EAI_NONAME,
    addrfamily = EAI_FAMILY,
    canceled = EAI_AGAIN,
#endif
};

/// The error category of gai_errc: name "getaddrinfo", messages from gai_strerror
/// ("Name or service not known").
[[nodiscard]] const std::error_category& gai_category() noexcept;
/// Makes `gai_errc` usable as a std::error_code.
[[nodiscard]] inline std::error_code make_error_code(gai_errc e) noexcept { return {static_cast<int>(e), gai_category()}; }

/// DNS error codes: the c-ares status values (ARES_ENOTFOUND, ...), for `dns_error::code()`
/// and `gaierror::dns_code()`: `e.code() == coio::dns_errc::nxdomain`.
enum class dns_errc : int {
    nodata = ARES_ENODATA,            ///< the name exists but has no record of that type (NODATA)
    formerr = ARES_EFORMERR,          ///< the server says the query was malformed
    servfail = ARES_ESERVFAIL,        ///< the server failed (SERVFAIL)
    nxdomain = ARES_ENOTFOUND,        ///< the name does not exist (NXDOMAIN)
    notimp = ARES_ENOTIMP,            ///< the server does not implement the query
    refused = ARES_EREFUSED,          ///< the server refused the query (REFUSED)
    badquery = ARES_EBADQUERY,        ///< the query is malformed
    badname = ARES_EBADNAME,          ///< the name is not a valid DNS name
    badfamily = ARES_EBADFAMILY,      ///< unsupported address family
    badresp = ARES_EBADRESP,          ///< malformed reply
    connrefused = ARES_ECONNREFUSED,  ///< no server could be contacted
    timeout = ARES_ETIMEOUT,          ///< no answer within timeout x tries
    eof = ARES_EOF,                   ///< end of file
    file = ARES_EFILE,                ///< a configuration file could not be read
    nomem = ARES_ENOMEM,              ///< out of memory
    destruction = ARES_EDESTRUCTION,  ///< the resolver was destroyed during the lookup
    badstr = ARES_EBADSTR,            ///< malformed string
    badflags = ARES_EBADFLAGS,        ///< invalid flags
    noname = ARES_ENONAME,            ///< the name is not numeric (numeric-only lookup)
    badhints = ARES_EBADHINTS,        ///< invalid hints
    cancelled = ARES_ECANCELLED,      ///< resolver::cancel() was called
    service = ARES_ESERVICE,          ///< unknown service
};

/// The error category of dns_errc: name "dns", messages from ares_strerror ("Domain name
/// not found"). timeout, connrefused, nomem and cancelled are equivalent to the matching
/// std::errc values.
[[nodiscard]] const std::error_category& dns_category() noexcept;
/// Makes `dns_errc` usable as a std::error_code.
[[nodiscard]] inline std::error_code make_error_code(dns_errc e) noexcept { return {static_cast<int>(e), dns_category()}; }

/// A getaddrinfo or getnameinfo failure (Python's socket.gaierror): a std::system_error whose
/// code() is in gai_category().
///
/// what() reads like Python's message, "[Errno -2] Name or service not known", followed by
/// the details coio knows, e.g. " (no-lang.invalid: Domain name not found)".
/// dns_code() tells what c-ares reported (dns_errc::nxdomain, ::timeout, ...) when the error
/// came from a DNS lookup; it is empty for bad input refused before any lookup.
///
/// Cancellation: not applicable (an exception type).
///
/// Example:
/// @code
///   try { co_await coio::getaddrinfo("no-lang.invalid", 80); }
///   catch (const coio::gaierror& e) {
///       if (e.code() == coio::gai_errc::noname) std::puts(e.what());
///   }
/// @endcode
class gaierror : public std::system_error {
public:
    /// @param code    an EAI_* value.
    /// @param detail  appended to the message in parentheses (empty: nothing appended).
    /// @param dns     what c-ares reported, if anything.
    explicit gaierror(gai_errc code, const std::string& detail = {}, std::error_code dns = {})
        : std::system_error(make_error_code(code)), dns_(dns) {
        std::string m = "[Errno " + std::to_string(static_cast<int>(code)) + "] " + this->code().message();
        if (!detail.empty()) m += " (" + detail + ")";
        what_ = std::make_shared<const std::string>(std::move(m));
    }
    /// "[Errno -2] Name or service not known (details)".
    [[nodiscard]] const char* what() const noexcept override { return what_->c_str(); }
    /// The c-ares status behind the error (dns_category()), or an empty code.
    [[nodiscard]] std::error_code dns_code() const noexcept { return dns_; }

private:
    std::shared_ptr<const std::string> what_;  // shared: copying an exception must not throw
    std::error_code dns_;
};

/// A failed `resolver::query` (aiodns' DNSError): a std::system_error whose code() is in
/// dns_category(), e.g. dns_errc::nxdomain, ::nodata, ::timeout, ::refused, ::badname.
///
/// what() is "[Errno 4] Domain name not found (MX nx.test)": the c-ares status number and
/// text, then the record type and name.
///
/// Cancellation: not applicable (an exception type).
///
/// Example:
/// @code
///   try { co_await r.query("nx.test", coio::dns::a); }
///   catch (const coio::dns_error& e) { if (e.code() == coio::dns_errc::nxdomain) ...; }
/// @endcode
class dns_error : public std::system_error {
public:
    /// @param code    what went wrong.
    /// @param detail  appended to the message in parentheses (empty: nothing appended).
    explicit dns_error(dns_errc code, const std::string& detail = {}) : std::system_error(make_error_code(code)) {
        std::string m = "[Errno " + std::to_string(static_cast<int>(code)) + "] " + this->code().message();
        if (!detail.empty()) m += " (" + detail + ")";
        what_ = std::make_shared<const std::string>(std::move(m));
    }
    /// "[Errno 4] Domain name not found (details)".
    [[nodiscard]] const char* what() const noexcept override { return what_->c_str(); }

private:
    std::shared_ptr<const std::string> what_;
};

} // namespace coio

/// gai_errc and dns_errc convert to std::error_code implicitly.
template <> struct std::is_error_code_enum<coio::gai_errc> : std::true_type {};
/// See above.
template <> struct std::is_error_code_enum<coio::dns_errc> : std::true_type {};

namespace coio {

// =========================================================================================
// getaddrinfo / getnameinfo
// =========================================================================================

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

// =========================================================================================
// Typed DNS records for resolver::query
// =========================================================================================

/// Record types and typed records for `resolver::query(name, type)`.
///
/// Each type is a constant (`coio::dns::a`, `aaaa`, `cname`, `mx`, `ns`, `ptr`, `srv`, `txt`,
/// `soa`) whose type fixes what the query returns: `std::vector<mx_record>` for `dns::mx`,
/// one `soa_record` for `dns::soa`, and so on (see each `result_type`).
///
/// Example:
/// @code
///   coio::resolver r({.servers = {"127.0.0.1:5353"}});
///   for (const auto& mx : co_await r.query("example.test", coio::dns::mx))
///       std::cout << mx.priority << ' ' << mx.host << '\n';
/// @endcode
namespace dns {

/// An A record: an IPv4 address (port 0) and its TTL in seconds.
struct a_record {
    endpoint address;  ///< the address; `address.host()` is "1.2.3.4"
    int ttl = 0;       ///< time to live, seconds
};
/// An AAAA record: an IPv6 address (port 0) and its TTL in seconds.
struct aaaa_record {
    endpoint address;  ///< the address; `address.host()` is "2001:db8::1"
    int ttl = 0;       ///< time to live, seconds
};
/// The target of a CNAME record (the canonical name the alias points to).
struct cname_record {
    std::string name;  ///< the canonical name, without trailing dot
};
/// An MX record.
struct mx_record {
    std::string host;           ///< the mail exchanger
    std::uint16_t priority = 0;  ///< lower is preferred
};
/// An NS record.
struct ns_record {
    std::string host;  ///< the name server
};
/// A PTR record (reverse lookup: query "4.3.2.1.in-addr.arpa").
struct ptr_record {
    std::string name;  ///< the name the address points to
};
/// An SRV record.
struct srv_record {
    std::string host;            ///< the target host
    std::uint16_t port = 0;      ///< the port of the service
    std::uint16_t priority = 0;  ///< lower is preferred
    std::uint16_t weight = 0;    ///< relative weight among equal priorities
};
/// A TXT record: its character strings (each at most 255 bytes on the wire).
struct txt_record {
    std::vector<std::string> strings;  ///< the strings in wire order
    /// The strings concatenated (how SPF and DKIM read a record).
    [[nodiscard]] std::string text() const {
        std::string s;
        for (const auto& p : strings) s += p;
        return s;
    }
};
/// An SOA record.
struct soa_record {
    std::string nsname;          ///< the primary name server
    std::string hostmaster;      ///< the responsible mailbox, as a name
    std::uint32_t serial = 0;    ///< zone serial number
    std::uint32_t refresh = 0;   ///< seconds
    std::uint32_t retry = 0;     ///< seconds
    std::uint32_t expire = 0;    ///< seconds
    std::uint32_t minttl = 0;    ///< negative-caching TTL, seconds
};

/// A record type: its number, its name, and what a query for it returns.
template <int Code, class Result>
struct record_type {
    /// The DNS type number (1 for A, ...).
    static constexpr int code = Code;
    /// What `resolver::query` returns for this type.
    using result_type = Result;
};
/// Type of `dns::a`.
struct a_type : record_type<1, std::vector<a_record>> { static constexpr const char* name = "A"; };
/// Type of `dns::ns`.
struct ns_type : record_type<2, std::vector<ns_record>> { static constexpr const char* name = "NS"; };
/// Type of `dns::cname`.
struct cname_type : record_type<5, cname_record> { static constexpr const char* name = "CNAME"; };
/// Type of `dns::soa`.
struct soa_type : record_type<6, soa_record> { static constexpr const char* name = "SOA"; };
/// Type of `dns::ptr`.
struct ptr_type : record_type<12, std::vector<ptr_record>> { static constexpr const char* name = "PTR"; };
/// Type of `dns::mx`.
struct mx_type : record_type<15, std::vector<mx_record>> { static constexpr const char* name = "MX"; };
/// Type of `dns::txt`.
struct txt_type : record_type<16, std::vector<txt_record>> { static constexpr const char* name = "TXT"; };
/// Type of `dns::aaaa`.
struct aaaa_type : record_type<28, std::vector<aaaa_record>> { static constexpr const char* name = "AAAA"; };
/// Type of `dns::srv`.
struct srv_type : record_type<33, std::vector<srv_record>> { static constexpr const char* name = "SRV"; };

inline constexpr a_type a{};          ///< A records: std::vector<a_record>
inline constexpr aaaa_type aaaa{};    ///< AAAA records: std::vector<aaaa_record>
inline constexpr cname_type cname{};  ///< the CNAME target: cname_record
inline constexpr mx_type mx{};        ///< MX records: std::vector<mx_record>
inline constexpr ns_type ns{};        ///< NS records: std::vector<ns_record>
inline constexpr ptr_type ptr{};      ///< PTR records: std::vector<ptr_record>
inline constexpr srv_type srv{};      ///< SRV records: std::vector<srv_record>
inline constexpr txt_type txt{};      ///< TXT records: std::vector<txt_record>
inline constexpr soa_type soa{};      ///< the SOA record: soa_record

/// The record types `resolver::query` accepts.
template <class T>
concept record_type_tag = std::is_same_v<T, a_type> || std::is_same_v<T, aaaa_type> || std::is_same_v<T, cname_type> ||
                          std::is_same_v<T, mx_type> || std::is_same_v<T, ns_type> || std::is_same_v<T, ptr_type> ||
                          std::is_same_v<T, srv_type> || std::is_same_v<T, txt_type> || std::is_same_v<T, soa_type>;

} // namespace dns

// =========================================================================================
// coio::resolver
// =========================================================================================

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

class gai_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "getaddrinfo"; }
    std::string message(int ev) const override { return ::gai_strerror(ev); }
    std::error_condition default_error_condition(int ev) const noexcept override {
        if (ev == EAI_MEMORY) return std::errc::not_enough_memory;
        return {ev, *this};
    }
};

class dns_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "dns"; }
    std::string message(int ev) const override { return ::ares_strerror(ev); }
    std::error_condition default_error_condition(int ev) const noexcept override {
        switch (ev) {
        case ARES_ETIMEOUT: return std::errc::timed_out;
        case ARES_ECONNREFUSED: return std::errc::connection_refused;
        case ARES_ENOMEM: return std::errc::not_enough_memory;
        case ARES_ECANCELLED: return std::errc::operation_canceled;
        default: return {ev, *this};
        }
    }
};

/// The EAI_* code for a c-ares status, as glibc would report the same situation.
inline gai_errc to_gai(int status) noexcept {
    switch (status) {
    case ARES_ENOTFOUND:
    case ARES_EBADNAME:
    case ARES_ENONAME: return gai_errc::noname;
    case ARES_ENODATA: return gai_errc::nodata;
    case ARES_ETIMEOUT:
    case ARES_ECONNREFUSED:
    case ARES_ESERVFAIL:
    case ARES_EREFUSED: return gai_errc::again;  // glibc: TRY_AGAIN, "Temporary failure
    case ARES_EBADFAMILY: return gai_errc::family;
    case ARES_EBADFLAGS:
    case ARES_EBADHINTS: return gai_errc::badflags;
    case ARES_ENOMEM: return gai_errc::memory;
    case ARES_ESERVICE: return gai_errc::service;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: return gai_errc::canceled;
    default: return gai_errc::fail;  // FORMERR, NOTIMP, BADRESP, EOF, ...
    }
}

[[noreturn]] inline void throw_lookup_failure(int status, const std::string& what) {
    throw gaierror(to_gai(status), what + ": " + ::ares_strerror(status), make_error_code(static_cast<dns_errc>(status)));
}

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

/// A resolved port and the socket types it exists for.
struct service_port {
    int port = 0;
    bool tcp = true;
    bool udp = true;
    bool named = false;  // a service name: only the types it is defined for
};

inline bool all_digits(std::string_view s) noexcept {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

/// Port of `name` for protocol "tcp"/"udp" from /etc/services, or -1.
inline int service_by_name(const std::string& name, const char* proto) {
    servent se{};
    servent* res = nullptr;
    char buf[1024];
    if (::getservbyname_r(name.c_str(), proto, &se, buf, sizeof buf, &res) != 0 || !res) return -1;
    return ntohs(static_cast<std::uint16_t>(res->s_port));
}

/// The service name of `port` for "tcp"/"udp", or the number as text.
inline std::string service_by_port(int port, const char* proto) {
    servent se{};
    servent* res = nullptr;
    char buf[1024];
    if (::getservbyport_r(htons(static_cast<std::uint16_t>(port)), proto, &se, buf, sizeof buf, &res) == 0 && res)
        return res->s_name;
    return std::to_string(port);
}

inline service_port resolve_service(const std::string& service, const addrinfo_hints& h) {
    service_port sp;
    if (service.find('\0') != std::string::npos) throw gaierror(gai_errc::service, "service contains a NUL byte");
    if (all_digits(service)) {
        if (service.size() > 5 || std::stoi(service) > 65535)
            throw gaierror(gai_errc::service, "port " + service + " out of range 0..65535");
        sp.port = std::stoi(service);
        return sp;
    }
    if (service.empty()) return sp;
    if (h.flags & AI_NUMERICSERV) throw gaierror(gai_errc::noname, "service '" + service + "' is not a number (AI_NUMERICSERV)");
    sp.named = true;
    const bool want_tcp = h.socktype == 0 || h.socktype == SOCK_STREAM;
    const bool want_udp = h.socktype == 0 || h.socktype == SOCK_DGRAM;
    const int tcp = want_tcp ? service_by_name(service, "tcp") : -1;
    const int udp = want_udp ? service_by_name(service, "udp") : -1;
    sp.tcp = tcp >= 0;
    sp.udp = udp >= 0;
    if (!sp.tcp && !sp.udp) throw gaierror(gai_errc::service, "unknown service '" + service + "'");
    sp.port = sp.tcp ? tcp : udp;
    return sp;
}

struct socktype_spec {
    int socktype;
    int protocol;
};

/// Up to three (socktype, protocol) pairs, without allocating.
struct socktype_list {
    std::array<socktype_spec, 3> items{};
    std::size_t n = 0;
    void push_back(socktype_spec s) noexcept { items[n++] = s; }
    [[nodiscard]] const socktype_spec* begin() const noexcept { return items.data(); }
    [[nodiscard]] const socktype_spec* end() const noexcept { return items.data() + n; }
    [[nodiscard]] std::size_t size() const noexcept { return n; }
};

/// The (socktype, protocol) pairs each address is returned with (glibc's rules).
inline socktype_list socktypes_for(const addrinfo_hints& h, const service_port& sp) {
    socktype_list out;
    auto proto_of = [&](int socktype) {
        if (h.protocol) return h.protocol;
        return socktype == SOCK_STREAM ? int{IPPROTO_TCP} : socktype == SOCK_DGRAM ? int{IPPROTO_UDP} : 0;
    };
    if (h.socktype != 0) {
        out.push_back({h.socktype, proto_of(h.socktype)});
    } else if (h.protocol == IPPROTO_TCP) {
        out.push_back({SOCK_STREAM, IPPROTO_TCP});
    } else if (h.protocol == IPPROTO_UDP) {
        out.push_back({SOCK_DGRAM, IPPROTO_UDP});
    } else {
        if (sp.tcp) out.push_back({SOCK_STREAM, proto_of(SOCK_STREAM)});
        if (sp.udp) out.push_back({SOCK_DGRAM, proto_of(SOCK_DGRAM)});
        if (!sp.named) out.push_back({SOCK_RAW, h.protocol});
    }
    return out;
}

inline void check_hints(const addrinfo_hints& h) {
    constexpr int known = AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_NUMERICSERV | AI_V4MAPPED | AI_ALL | AI_ADDRCONFIG;
    if (h.flags & ~known) throw gaierror(gai_errc::badflags, "unknown AI_* flags");
    if (h.family != AF_UNSPEC && h.family != AF_INET && h.family != AF_INET6)
        throw gaierror(gai_errc::family, "family must be AF_UNSPEC, AF_INET or AF_INET6");
    if (h.socktype != 0 && h.socktype != SOCK_STREAM && h.socktype != SOCK_DGRAM && h.socktype != SOCK_RAW)
        throw gaierror(gai_errc::socktype, "socket type must be 0, SOCK_STREAM, SOCK_DGRAM or SOCK_RAW");
}

/// ::ffff:a.b.c.d for an IPv4 endpoint.
inline endpoint v4_mapped(const endpoint& v4) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(v4.port());
    sa.sin6_addr.s6_addr[10] = 0xff;
    sa.sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&sa.sin6_addr.s6_addr[12], &reinterpret_cast<const sockaddr_in*>(v4.data())->sin_addr, 4);
    return endpoint(sa);
}

/// Keeps the addresses `h.family` accepts, in place; for AF_INET6 + AI_V4MAPPED, IPv4 ones
/// become ::ffff:a.b.c.d (only when there is no IPv6 address, unless AI_ALL), as glibc does.
inline void filter_family(std::vector<endpoint>& v, const addrinfo_hints& h) {
    if (h.family == AF_UNSPEC) return;
    if (h.family != AF_INET6 || !(h.flags & AI_V4MAPPED)) {
        std::erase_if(v, [&](const endpoint& e) { return e.family() != h.family; });
        return;
    }
    const bool have_v6 = std::any_of(v.begin(), v.end(), [](const endpoint& e) { return e.is_v6(); });
    if (have_v6 && !(h.flags & AI_ALL)) {
        std::erase_if(v, [](const endpoint& e) { return !e.is_v6(); });
        return;
    }
    // IPv6 addresses first, then the mapped IPv4 ones.
    std::stable_partition(v.begin(), v.end(), [](const endpoint& e) { return e.is_v6(); });
    for (auto& e : v)
        if (e.is_v4()) e = v4_mapped(e);
}

inline std::vector<address_info> make_entries(const std::vector<endpoint>& addresses, const socktype_list& types,
                                              int port, const addrinfo_hints& h, const std::string& canonical) {
    std::vector<address_info> out;
    out.reserve(addresses.size() * types.size());
    for (const auto& a : addresses)
        for (const auto& t : types)
            out.push_back(address_info{a.family(), t.socktype, t.protocol, {}, a.with_port(static_cast<std::uint16_t>(port))});
    if ((h.flags & AI_CANONNAME) && !out.empty()) out.front().canonname = canonical;
    return out;
}

inline ares_addrinfo_hints to_ares(const addrinfo_hints& h) noexcept {
    ares_addrinfo_hints a{};
    // AF_INET6 + AI_V4MAPPED asks for both families and maps afterwards (filter_family):
    // c-ares 1.18 sends only the AAAA query and reports NODATA for an IPv4-only name.
    a.ai_family = (h.family == AF_INET6 && (h.flags & AI_V4MAPPED)) ? AF_UNSPEC : h.family;
    a.ai_socktype = 0;  // coio expands socket types itself
    a.ai_protocol = 0;
    a.ai_flags = ARES_AI_NOSORT;  // coio sorts, and only when there is something to sort
    if (h.flags & AI_CANONNAME) a.ai_flags |= ARES_AI_CANONNAME;
    return a;
}

/// NI_NOFQDN as glibc and c-ares apply it: the domain is dropped only when it is this
/// host's own domain (the part of gethostname() after the first dot).
inline std::string without_local_domain(std::string name) {
    char self[256] = {};
    if (::gethostname(self, sizeof self - 1) != 0) return name;
    const std::string_view domain = std::strchr(self, '.') ? std::string_view(std::strchr(self, '.')) : std::string_view{};
    if (domain.empty() || name.size() <= domain.size()) return name;
    const std::string tail = hosts_file::lower(std::string_view(name).substr(name.size() - domain.size()));
    if (tail == hosts_file::lower(domain)) name.resize(name.size() - domain.size());
    return name;
}

/// What getaddrinfo works out before looking anything up: the port and the socket types.
struct gai_setup {
    socktype_list types;
    int port = 0;
    gai_setup(const addrinfo_hints& h, const service_port& sp) : types(socktypes_for(h, sp)), port(sp.port) {}
};

/// The answer when no DNS server is needed — a numeric address, an /etc/hosts name,
/// localhost — or nullopt with `*ch` set to the channel to ask. Throws gaierror for an
/// invalid name.
inline std::optional<std::vector<address_info>> answer_locally(resolver* r, const std::string& host, const service_port& sp,
                                                               const addrinfo_hints& hints, channel*& ch) {
    if (auto ep = numeric_host(host)) {
        std::vector<endpoint> addrs{*ep};
        filter_family(addrs, hints);
        if (addrs.empty()) throw gaierror(gai_errc::addrfamily, "'" + host + "' is not an address of the requested family");
        const gai_setup setup(hints, sp);
        return make_entries(addrs, setup.types, setup.port, hints, host);
    }
    if (hints.flags & AI_NUMERICHOST) throw gaierror(gai_errc::noname, "'" + host + "' is not a numeric address (AI_NUMERICHOST)");
    if (const char* why = name_problem(host, false)) throw gaierror(gai_errc::noname, why);

    ch = &access::of(r);
    // /etc/hosts, then localhost (RFC 6761: the loopback address, never a DNS query).
    std::vector<endpoint> found;
    std::string canonical;
    if (const auto* entries = ch->service().hosts().find(host)) {
        for (const auto& e : *entries) found.push_back(e.address);
        canonical = entries->front().canonical;
        filter_family(found, hints);
    }
    if (found.empty() && is_localhost(host)) {
        found = {endpoint::loopback(AF_INET6), endpoint::loopback(AF_INET)};
        filter_family(found, hints);
        canonical = hosts_file::lower(host);
    }
    if (found.empty()) return std::nullopt;
    sort_destinations(found);  // as glibc sorts /etc/hosts answers
    const gai_setup setup(hints, sp);
    return make_entries(found, setup.types, setup.port, hints, canonical);
}

/// The entries of a finished c-ares lookup. Throws gaierror when it failed.
inline std::vector<address_info> answer_from_dns(const addrinfo_op& op, const std::string& host, const service_port& sp,
                                                 const addrinfo_hints& hints) {
    if (op.status != ARES_SUCCESS) throw_lookup_failure(op.status, host);
    const gai_setup setup(hints, sp);
    std::string canonical;
    if (hints.flags & AI_CANONNAME) {
        canonical = host;
        if (op.result && op.result->name) canonical = op.result->name;
        for (const ares_addrinfo_cname* c = op.result ? op.result->cnames : nullptr; c; c = c->next)
            if (c->name) canonical = c->name;  // the last target of the chain
    }
    const ares_addrinfo_node* nodes = op.result ? op.result->nodes : nullptr;
    auto usable = [](const ares_addrinfo_node* n) { return n->ai_family == AF_INET || n->ai_family == AF_INET6; };
    std::size_t count = 0;
    const ares_addrinfo_node* first = nullptr;
    for (auto* n = nodes; n; n = n->ai_next)
        if (usable(n)) {
            if (!first) first = n;
            ++count;
        }
    if (count == 1 && !(hints.family == AF_INET6 && (hints.flags & AI_V4MAPPED))) {
        // The common case, a single address: nothing to map, nothing to sort.
        std::vector<address_info> out;
        out.reserve(setup.types.size());
        const endpoint a = endpoint(first->ai_addr, static_cast<socklen_t>(first->ai_addrlen)).with_port(static_cast<std::uint16_t>(setup.port));
        for (const auto& t : setup.types) out.push_back(address_info{a.family(), t.socktype, t.protocol, {}, a});
        if (hints.flags & AI_CANONNAME) out.front().canonname = std::move(canonical);
        return out;
    }
    std::vector<endpoint> found;
    found.reserve(count);
    for (auto* n = nodes; n; n = n->ai_next)
        if (usable(n)) found.emplace_back(n->ai_addr, static_cast<socklen_t>(n->ai_addrlen));
    filter_family(found, hints);  // maps IPv4 for AF_INET6 + AI_V4MAPPED (both were asked for)
    if (found.empty()) throw_lookup_failure(ARES_ENODATA, host);
    sort_destinations(found);
    return make_entries(found, setup.types, setup.port, hints, canonical);
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
    co_return answer_from_dns(op, host, sp, hints);
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
    co_return answer_from_dns(op, host, sp, hints);
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

// ---- answer parsers for query (called in c-ares' callback; may throw std::bad_alloc) ----

/// The answer count of a reply: the most records of one type it can hold.
inline int answer_count(const unsigned char* abuf, int alen) noexcept {
    if (alen < 12) return 0;
    return (abuf[6] << 8) | abuf[7];
}

struct hostent_ptr {
    hostent* h = nullptr;
    ~hostent_ptr() { if (h) ares_free_hostent(h); }
};
template <class T>
struct ares_data_ptr {
    T* p = nullptr;
    ~ares_data_ptr() { if (p) ares_free_data(p); }
};

inline int parse(coio::dns::a_type, const unsigned char* abuf, int alen, std::vector<coio::dns::a_record>& out) {
    int n = std::max(answer_count(abuf, alen), 1);
    std::vector<ares_addrttl> ttls(static_cast<std::size_t>(n));
    const int rc = ares_parse_a_reply(abuf, alen, nullptr, ttls.data(), &n);
    if (rc != ARES_SUCCESS) return rc;
    for (int i = 0; i < n; ++i) {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr = ttls[static_cast<std::size_t>(i)].ipaddr;
        out.push_back({endpoint(sa), ttls[static_cast<std::size_t>(i)].ttl});
    }
    return out.empty() ? ARES_ENODATA : ARES_SUCCESS;
}

inline int parse(coio::dns::aaaa_type, const unsigned char* abuf, int alen, std::vector<coio::dns::aaaa_record>& out) {
    int n = std::max(answer_count(abuf, alen), 1);
    std::vector<ares_addr6ttl> ttls(static_cast<std::size_t>(n));
    const int rc = ares_parse_aaaa_reply(abuf, alen, nullptr, ttls.data(), &n);
    if (rc != ARES_SUCCESS) return rc;
    for (int i = 0; i < n; ++i) {
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        std::memcpy(&sa.sin6_addr, &ttls[static_cast<std::size_t>(i)].ip6addr, sizeof sa.sin6_addr);
        out.push_back({endpoint(sa), ttls[static_cast<std::size_t>(i)].ttl});
    }
    return out.empty() ? ARES_ENODATA : ARES_SUCCESS;
}

inline int parse(coio::dns::cname_type, const unsigned char* abuf, int alen, coio::dns::cname_record& out) {
    // c-ares 1.18 has no CNAME parser; its A parser follows CNAME chains and reports the
    // final target as h_name and the names it came through as aliases (what aiodns uses).
    hostent_ptr h;
    const int rc = ares_parse_a_reply(abuf, alen, &h.h, nullptr, nullptr);
    if (rc != ARES_SUCCESS) return rc;
    if (!h.h || !h.h->h_name || !h.h->h_aliases || !h.h->h_aliases[0]) return ARES_ENODATA;
    out.name = h.h->h_name;
    return ARES_SUCCESS;
}

inline int parse(coio::dns::ns_type, const unsigned char* abuf, int alen, std::vector<coio::dns::ns_record>& out) {
    hostent_ptr h;
    const int rc = ares_parse_ns_reply(abuf, alen, &h.h);
    if (rc != ARES_SUCCESS) return rc;
    for (char** a = h.h ? h.h->h_aliases : nullptr; a && *a; ++a) out.push_back({*a});
    return out.empty() ? ARES_ENODATA : ARES_SUCCESS;
}

inline int parse(coio::dns::ptr_type, const unsigned char* abuf, int alen, std::vector<coio::dns::ptr_record>& out) {
    // The address argument only fills h_addr_list, which is not used here.
    in_addr unused{};
    hostent_ptr h;
    const int rc = ares_parse_ptr_reply(abuf, alen, &unused, sizeof unused, AF_INET, &h.h);
    if (rc != ARES_SUCCESS) return rc;
    if (!h.h) return ARES_ENODATA;
    auto add = [&out](const char* n) {
        if (!n) return;
        for (const auto& p : out)
            if (p.name == n) return;
        out.push_back({n});
    };
    add(h.h->h_name);
    for (char** a = h.h->h_aliases; a && *a; ++a) add(*a);
    return out.empty() ? ARES_ENODATA : ARES_SUCCESS;
}

inline int parse(coio::dns::mx_type, const unsigned char* abuf, int alen, std::vector<coio::dns::mx_record>& out) {
    ares_data_ptr<ares_mx_reply> r;
    const int rc = ares_parse_mx_reply(abuf, alen, &r.p);
    if (rc != ARES_SUCCESS) return rc;
    for (auto* m = r.p; m; m = m->next) out.push_back({m->host, m->priority});
    return out.empty() ? ARES_ENODATA : ARES_SUCCESS;
}

inline int parse(coio::dns::srv_type, const unsigned char* abuf, int alen, std::vector<coio::dns::srv_record>& out) {
    ares_data_ptr<ares_srv_reply> r;
    const int rc = ares_parse_srv_reply(abuf, alen, &r.p);
    if (rc != ARES_SUCCESS) return rc;
    for (auto* s = r.p; s; s = s->next) out.push_back({s->host, s->port, s->priority, s->weight});
    return out.empty() ? ARES_ENODATA : ARES_SUCCESS;
}

inline int parse(coio::dns::txt_type, const unsigned char* abuf, int alen, std::vector<coio::dns::txt_record>& out) {
    ares_data_ptr<ares_txt_ext> r;
    const int rc = ares_parse_txt_reply_ext(abuf, alen, &r.p);
    if (rc != ARES_SUCCESS) return rc;
    for (auto* t = r.p; t; t = t->next) {
        // record_start marks the first string of each record.
        if (t->record_start || out.empty()) out.emplace_back();
        out.back().strings.emplace_back(reinterpret_cast<const char*>(t->txt), t->length);
    }
    return out.empty() ? ARES_ENODATA : ARES_SUCCESS;
}

inline int parse(coio::dns::soa_type, const unsigned char* abuf, int alen, coio::dns::soa_record& out) {
    ares_data_ptr<ares_soa_reply> r;
    const int rc = ares_parse_soa_reply(abuf, alen, &r.p);
    if (rc != ARES_SUCCESS) return rc;
    out = {r.p->nsname, r.p->hostmaster, r.p->serial, r.p->refresh, r.p->retry, r.p->expire, r.p->minttl};
    return ARES_SUCCESS;
}

template <class Type>
int parse_erased(const unsigned char* abuf, int alen, void* out) {
    return parse(Type{}, abuf, alen, *static_cast<typename Type::result_type*>(out));
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

inline const std::error_category& gai_category() noexcept {
    static const detail::dns::gai_category_impl c;
    return c;
}

inline const std::error_category& dns_category() noexcept {
    static const detail::dns::dns_category_impl c;
    return c;
}

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
