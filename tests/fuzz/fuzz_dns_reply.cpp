// tests/fuzz/fuzz_dns_reply.cpp - libFuzzer target: DNS replies as coio::resolver::query
// converts them. Every reply goes through c-ares' ares_parse_*_reply and then coio's
// conversion into typed records (coio::detail::dns::parse, the functions query() calls from
// c-ares' callback). The input is taken as the reply of a query of each type in turn; the
// conversion must never crash, leak or throw anything but std::bad_alloc, and what it
// returns must match what c-ares parsed (no address dropped, invented or reordered).
//
// Run: build with -DCOIO_BUILD_FUZZERS=ON (clang), then
//   build/tests/fuzz/fuzz_dns_reply tests/fuzz/corpus/fuzz_dns_reply -max_total_time=30
#include <coio/dns.hpp>

#include <ares.h>
#include <arpa/inet.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

namespace d = coio::detail::dns;
namespace t = coio::dns;

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "fuzz_dns_reply: %s\n", what);
    std::abort();
}

/// The addresses of the reply's hostent (c-ares' other A/AAAA interface), in order.
std::vector<std::vector<unsigned char>> hostent_addresses(const unsigned char* abuf, int alen, int family) {
    std::vector<std::vector<unsigned char>> out;
    hostent* h = nullptr;
    const int rc = family == AF_INET ? ares_parse_a_reply(abuf, alen, &h, nullptr, nullptr)
                                     : ares_parse_aaaa_reply(abuf, alen, &h, nullptr, nullptr);
    if (rc == ARES_SUCCESS && h) {
        for (char** a = h->h_addr_list; a && *a; ++a)
            out.emplace_back(reinterpret_cast<unsigned char*>(*a), reinterpret_cast<unsigned char*>(*a) + h->h_length);
    }
    if (h) ares_free_hostent(h);
    return out;
}

template <class Record>
void check_addresses(const std::vector<Record>& got, const unsigned char* abuf, int alen, int family) {
    const auto want = hostent_addresses(abuf, alen, family);
    if (got.size() != want.size()) finding("the address records differ from c-ares' hostent");
    for (std::size_t i = 0; i < got.size(); ++i) {
        const coio::endpoint& e = got[i].address;
        if (e.family() != family) finding("an address record of the wrong family");
        const void* a = family == AF_INET ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(e.data())->sin_addr)
                                          : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(e.data())->sin6_addr);
        if (std::memcmp(a, want[i].data(), want[i].size()) != 0) finding("an address record differs from c-ares' hostent");
    }
}

/// A list query succeeds with at least one record (an empty answer is ENODATA).
template <class Vec>
void check_list(int rc, const Vec& v) {
    if (rc == ARES_SUCCESS && v.empty()) finding("success with no record");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 65535) return 0;  // a DNS message (even over TCP) is at most 64 KiB
    const auto* abuf = reinterpret_cast<const unsigned char*>(data);
    const int alen = static_cast<int>(size);
    const int count = d::answer_count(abuf, alen);
    if (count < 0 || count > 65535) finding("answer_count out of range");
    {
        std::vector<t::a_record> v;
        const int rc = d::parse(t::a_type{}, abuf, alen, v);
        check_list(rc, v);
        if (rc == ARES_SUCCESS) check_addresses(v, abuf, alen, AF_INET);
        else if (!v.empty()) finding("A: records returned with an error");
    }
    {
        std::vector<t::aaaa_record> v;
        const int rc = d::parse(t::aaaa_type{}, abuf, alen, v);
        check_list(rc, v);
        if (rc == ARES_SUCCESS) check_addresses(v, abuf, alen, AF_INET6);
        else if (!v.empty()) finding("AAAA: records returned with an error");
    }
    {
        t::cname_record r;
        (void)d::parse(t::cname_type{}, abuf, alen, r);
    }
    {
        std::vector<t::ns_record> v;
        check_list(d::parse(t::ns_type{}, abuf, alen, v), v);
    }
    {
        std::vector<t::ptr_record> v;
        const int rc = d::parse(t::ptr_type{}, abuf, alen, v);
        check_list(rc, v);
        for (std::size_t i = 0; i < v.size(); ++i)
            for (std::size_t j = i + 1; j < v.size(); ++j)
                if (v[i].name == v[j].name) finding("PTR: a duplicate name");
    }
    {
        std::vector<t::mx_record> v;
        check_list(d::parse(t::mx_type{}, abuf, alen, v), v);
    }
    {
        std::vector<t::srv_record> v;
        check_list(d::parse(t::srv_type{}, abuf, alen, v), v);
    }
    {
        std::vector<t::txt_record> v;
        const int rc = d::parse(t::txt_type{}, abuf, alen, v);
        check_list(rc, v);
        for (const auto& rec : v)
            if (rec.strings.empty()) finding("TXT: a record without strings");
    }
    {
        t::soa_record r;
        (void)d::parse(t::soa_type{}, abuf, alen, r);
    }
    return 0;
}
