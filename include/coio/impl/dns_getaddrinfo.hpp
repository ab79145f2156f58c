// coio/impl/dns_getaddrinfo.hpp - what getaddrinfo and getnameinfo answer, apart from the
// network: name checks, numeric hosts, localhost, /etc/hosts answers, services
// (/etc/services), socket types, family filtering and the translation of c-ares results
// and errors into glibc's. Not API.
//
// Contracts:
//  * Follows glibc's getaddrinfo wherever Python programs can see the difference: the
//    socket types each address is repeated with, AI_V4MAPPED/AI_ALL, the EAI_* code for
//    each failure, RFC 6724 order (address_sort.hpp).
//  * Bad input (a name that cannot be a DNS name, a bad port or service, unknown flags) is
//    refused with gaierror before anything is sent.
//  * Numeric addresses, "localhost" (RFC 6761) and /etc/hosts names never reach a DNS
//    server.
//  * Plain functions, no state: the coroutines in coio/dns.hpp keep only what must live
//    across their one suspension.
#pragma once

#include <coio/address_info.hpp>
#include <coio/dns_errors.hpp>
#include <coio/endpoint.hpp>
#include <coio/impl/address_sort.hpp>
#include <coio/impl/dns_hosts_file.hpp>

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coio::detail::dns {

// ---------------------------------------------------------------------------------------
// Names

/// Why `name` cannot be a DNS name, or null when it can: empty, an embedded NUL, longer
/// than 253 bytes (a trailing dot aside), an empty label, or a label over 63 bytes.
/// `allow_root`: "." alone is valid (query of the root zone).
inline const char* name_problem(std::string_view name, bool allow_root) noexcept {
    if (name.empty()) return "empty host name";
    if (name == ".") return allow_root ? nullptr : "empty host name";
    if (name.back() == '.') name.remove_suffix(1);
    if (name.size() > 253) return "host name longer than 253 bytes";
    // This runs for every lookup: memchr/find are vectorised, a loop over the bytes is not.
    if (name.find('\0') != std::string_view::npos) return "host name contains a NUL byte";
    while (true) {
        const auto dot = name.find('.');
        const auto label = dot == std::string_view::npos ? name.size() : dot;
        if (label == 0) return "empty label in host name";
        if (label > 63) return "label longer than 63 bytes in host name";
        if (dot == std::string_view::npos) return nullptr;
        name.remove_prefix(dot + 1);
    }
}

/// A numeric IPv4/IPv6 address (with an optional %scope), as getaddrinfo's host argument
/// accepts it: no brackets, no port.
inline std::optional<endpoint> numeric_host(std::string_view host) noexcept {
    // A cheap scan first, since most hosts are names: an address has only hex digits, dots
    // and colons before its optional %scope, and an IPv4 one no letters and no colon. "[v6]"
    // and "a:80" are not accepted.
    std::size_t colons = 0;
    bool letters = false;
    for (char c : host) {
        if (c == '%') break;
        if (c == ':') {
            ++colons;
        } else if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
            letters = true;
        } else if ((c < '0' || c > '9') && c != '.') {
            return std::nullopt;  // 'n' of "bench.test": a name
        }
    }
    if (host.empty() || colons == 1 || (colons == 0 && letters)) return std::nullopt;
    return endpoint::try_parse(host);
}

/// True for "localhost" and names under ".localhost", in any case, with or without a
/// trailing dot (RFC 6761: always the loopback address, never sent to a DNS server).
inline bool is_localhost(std::string_view name) noexcept {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    constexpr std::string_view lh = "localhost";
    if (name.size() < lh.size()) return false;
    const auto tail = name.substr(name.size() - lh.size());
    for (std::size_t i = 0; i < lh.size(); ++i) {
        const char c = tail[i];
        if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != lh[i]) return false;
    }
    return name.size() == lh.size() || name[name.size() - lh.size() - 1] == '.';
}

// ---------------------------------------------------------------------------------------
// Errors

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
    case ARES_EREFUSED: return gai_errc::again;  // glibc: TRY_AGAIN, "Temporary failure in name resolution"
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


// ---------------------------------------------------------------------------------------
// Services, socket types, families

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

// ---------------------------------------------------------------------------------------
// Answers

/// The answer for a numeric host, or nullopt for a name. Throws gaierror for the wrong
/// family, for a name with AI_NUMERICHOST, and for a name that cannot be a DNS name.
inline std::optional<std::vector<address_info>> answer_numeric(const std::string& host, const service_port& sp,
                                                               const addrinfo_hints& hints) {
    if (auto ep = numeric_host(host)) {
        std::vector<endpoint> addrs{*ep};
        filter_family(addrs, hints);
        if (addrs.empty()) throw gaierror(gai_errc::addrfamily, "'" + host + "' is not an address of the requested family");
        const gai_setup setup(hints, sp);
        return make_entries(addrs, setup.types, setup.port, hints, host);
    }
    if (hints.flags & AI_NUMERICHOST) throw gaierror(gai_errc::noname, "'" + host + "' is not a numeric address (AI_NUMERICHOST)");
    if (const char* why = name_problem(host, false)) throw gaierror(gai_errc::noname, why);
    return std::nullopt;
}

/// The answer for a name of `hosts`, or for localhost; nullopt when a DNS server must be
/// asked.
inline std::optional<std::vector<address_info>> answer_from_hosts(hosts_file& hosts, const std::string& host,
                                                                  const service_port& sp, const addrinfo_hints& hints) {
    // /etc/hosts, then localhost (RFC 6761: the loopback address, never a DNS query).
    std::vector<endpoint> found;
    std::string canonical;
    if (const auto* entries = hosts.find(host)) {
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

/// The entries of a finished ares_getaddrinfo that ended with `status` and `result`.
/// Throws gaierror when it failed.
inline std::vector<address_info> answer_from_dns(int status, const ares_addrinfo* result, const std::string& host,
                                                 const service_port& sp, const addrinfo_hints& hints) {
    if (status != ARES_SUCCESS) throw_lookup_failure(status, host);
    const gai_setup setup(hints, sp);
    std::string canonical;
    if (hints.flags & AI_CANONNAME) {
        canonical = host;
        if (result && result->name) canonical = result->name;
        for (const ares_addrinfo_cname* c = result ? result->cnames : nullptr; c; c = c->next)
            if (c->name) canonical = c->name;  // the last target of the chain
    }
    const ares_addrinfo_node* nodes = result ? result->nodes : nullptr;
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

} // namespace coio::detail::dns
