// coio/impl/dns_record_parsers.hpp - c-ares replies into coio::dns records: the parse()
// overloads resolver::query runs on an answer. Not API.
//
// Contracts:
//  * Called from c-ares' callback with c-ares' buffer, so the records are built there, before
//    the buffer goes away; they may throw std::bad_alloc (query_op stores the exception and
//    the awaiting coroutine rethrows it).
//  * Each returns an ARES_* status: ARES_ENODATA when the reply holds no record of the type.
//  * Replies come from the network: every length comes from c-ares' parsers, never from the
//    packet directly (answer_count only sizes a buffer). tests/fuzz/fuzz_dns_reply.cpp feeds
//    them arbitrary bytes.
#pragma once

#include <coio/dns_records.hpp>
#include <coio/endpoint.hpp>

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

namespace coio::detail::dns {

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

} // namespace coio::detail::dns
