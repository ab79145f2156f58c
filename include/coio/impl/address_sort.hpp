// coio/impl/address_sort.hpp - RFC 6724 destination address ordering for getaddrinfo.
// Not API.
//
// Why coio sorts instead of c-ares: c-ares 1.18 sorts every ares_getaddrinfo result, and to
// find each destination's source address it opens, connects and closes a UDP socket per
// address — also for a result with a single address, where there is nothing to order. That
// is four system calls per lookup in the common case. coio asks c-ares for ARES_AI_NOSORT and
// orders results of two or more addresses itself, with the same rules (those of RFC 6724
// section 6 that need no kernel state beyond the route to each destination: 1, 2, 5, 6, 8,
// 9 for IPv6, and 10), as glibc's getaddrinfo does.
#pragma once

#include <coio/endpoint.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace coio::detail::dns {

/// `e`'s address as IPv6; IPv4 as ::ffff:a.b.c.d (RFC 6724 section 3.1).
inline in6_addr as_v6(const endpoint& e) noexcept {
    in6_addr a{};
    if (e.is_v6()) {
        a = reinterpret_cast<const sockaddr_in6*>(e.data())->sin6_addr;
    } else if (e.is_v4()) {
        a.s6_addr[10] = 0xff;
        a.s6_addr[11] = 0xff;
        std::memcpy(&a.s6_addr[12], &reinterpret_cast<const sockaddr_in*>(e.data())->sin_addr, 4);
    }
    return a;
}

inline bool in_prefix(const in6_addr& a, const std::uint8_t (&prefix)[16], int bits) noexcept {
    for (int i = 0; i < bits / 8; ++i)
        if (a.s6_addr[i] != prefix[i]) return false;
    if (bits % 8 == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - bits % 8));
    return (a.s6_addr[bits / 8] & mask) == (prefix[bits / 8] & mask);
}

/// RFC 6724 scope: 0x2 link-local (including loopback and IPv4 127/8, 169.254/16), 0x5
/// site-local, 0xe global; a multicast address carries its own.
inline int scope_of(const in6_addr& a) noexcept {
    if (a.s6_addr[0] == 0xff) return a.s6_addr[1] & 0x0f;
    if (IN6_IS_ADDR_LOOPBACK(&a) || IN6_IS_ADDR_LINKLOCAL(&a)) return 0x2;
    if (IN6_IS_ADDR_SITELOCAL(&a)) return 0x5;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
        if (a.s6_addr[12] == 127 || (a.s6_addr[12] == 169 && a.s6_addr[13] == 254)) return 0x2;
    }
    return 0xe;
}

/// Precedence and label from RFC 6724's default policy table (section 2.1).
struct policy {
    int precedence;
    int label;
};
inline policy policy_of(const in6_addr& a) noexcept {
    struct row {
        std::uint8_t prefix[16];
        int bits;
        policy p;
    };
    // Longest prefixes first: the first match is the longest one.
    static constexpr row table[] = {
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, {50, 0}},            // ::1
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, {35, 4}},                    // ::ffff:0:0/96
        {{0}, 96, {1, 3}},                                                            // ::/96
        {{0x20, 0x01, 0, 0}, 32, {5, 5}},                                             // 2001::/32
        {{0x20, 0x02}, 16, {30, 2}},                                                  // 2002::/16
        {{0x3f, 0xfe}, 16, {1, 12}},                                                  // 3ffe::/16
        {{0xfe, 0xc0}, 10, {1, 11}},                                                  // fec0::/10
        {{0xfc}, 7, {3, 13}},                                                         // fc00::/7
    };
    for (const auto& r : table)
        if (in_prefix(a, r.prefix, r.bits)) return r.p;
    return {40, 1};  // ::/0
}

/// Bits in common at the start of `a` and `b`.
inline int common_prefix(const in6_addr& a, const in6_addr& b) noexcept {
    int n = 0;
    for (int i = 0; i < 16; ++i) {
        const auto x = static_cast<std::uint8_t>(a.s6_addr[i] ^ b.s6_addr[i]);
        if (x == 0) {
            n += 8;
            continue;
        }
        for (int bit = 7; bit >= 0 && !(x & (1 << bit)); --bit) ++n;
        break;
    }
    return n;
}

/// The source address the kernel would use to reach `dest` (a UDP connect sends nothing).
/// False when there is no route: the destination is unusable (rule 1).
inline bool source_for(const endpoint& dest, endpoint& src) noexcept {
    const int fd = ::socket(dest.family(), SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0) return false;
    endpoint target = dest.port() == 0 ? dest.with_port(9) : dest;  // any port: nothing is sent
    bool ok = ::connect(fd, target.data(), target.size()) == 0;
    if (ok) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        ok = ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 &&
             (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
        if (ok) src = endpoint(reinterpret_cast<const sockaddr*>(&ss), len);
    }
    ::close(fd);
    return ok;
}

/// Orders `v` by RFC 6724 destination address selection; stable, no-op below two entries.
inline void sort_destinations(std::vector<endpoint>& v) {
    if (v.size() < 2) return;
    struct key {
        endpoint dest;
        in6_addr d{};
        in6_addr s{};
        bool usable = false;
        int d_scope = 0;
        int s_scope = 0;
        policy d_policy{};
        policy s_policy{};
        std::size_t index = 0;
    };
    std::vector<key> keys(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        key& k = keys[i];
        k.dest = v[i];
        k.index = i;
        k.d = as_v6(v[i]);
        k.d_scope = scope_of(k.d);
        k.d_policy = policy_of(k.d);
        endpoint src;
        k.usable = source_for(v[i], src);
        if (k.usable) {
            k.s = as_v6(src);
            k.s_scope = scope_of(k.s);
            k.s_policy = policy_of(k.s);
        }
    }
    std::sort(keys.begin(), keys.end(), [](const key& a, const key& b) {
        if (a.usable != b.usable) return a.usable;  // rule 1: avoid unusable destinations
        if (a.usable) {
            const bool a_scope = a.d_scope == a.s_scope, b_scope = b.d_scope == b.s_scope;
            if (a_scope != b_scope) return a_scope;  // rule 2: prefer matching scope
            const bool a_label = a.d_policy.label == a.s_policy.label, b_label = b.d_policy.label == b.s_policy.label;
            if (a_label != b_label) return a_label;  // rule 5: prefer matching label
        }
        if (a.d_policy.precedence != b.d_policy.precedence)
            return a.d_policy.precedence > b.d_policy.precedence;  // rule 6: higher precedence
        if (a.d_scope != b.d_scope) return a.d_scope < b.d_scope;  // rule 8: smaller scope
        if (a.usable && a.dest.is_v6() && b.dest.is_v6()) {    // rule 9: longest matching prefix
            const int pa = common_prefix(a.d, a.s), pb = common_prefix(b.d, b.s);
            if (pa != pb) return pa > pb;
        }
        return a.index < b.index;  // rule 10: keep the order otherwise
    });
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = keys[i].dest;
}

} // namespace coio::detail::dns
