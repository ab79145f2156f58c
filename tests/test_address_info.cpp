// Tests of coio/address_info.hpp: addrinfo_hints, address_info and name_info. (Lookups that
// produce them are tested in test_dns.cpp.)
//
// ctest-labels: dns
#include <coio/address_info.hpp>
#include "support/catch.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <sstream>
#include <string>

namespace {
std::string printed(const coio::address_info& a) {
    std::ostringstream os;
    os << a;
    return os.str();
}
} // namespace

TEST_CASE("addrinfo_hints default to any family, every socket type, no flags") {
    const coio::addrinfo_hints h;
    CHECK(h.family == AF_UNSPEC);
    CHECK(h.socktype == 0);
    CHECK(h.protocol == 0);
    CHECK(h.flags == 0);
    const coio::addrinfo_hints v6{.family = AF_INET6, .flags = AI_V4MAPPED | AI_ALL};
    CHECK(v6.family == AF_INET6);
    CHECK(v6.socktype == 0);
    CHECK(v6.flags == (AI_V4MAPPED | AI_ALL));
}

TEST_CASE("address_info prints as Python's getaddrinfo tuple") {
    const coio::address_info tcp{AF_INET, SOCK_STREAM, IPPROTO_TCP, "", coio::endpoint("192.0.2.1", 80)};
    CHECK(printed(tcp) == "(AF_INET, SOCK_STREAM, 6, '', 192.0.2.1:80)");
    const coio::address_info udp{AF_INET6, SOCK_DGRAM, IPPROTO_UDP, "www.test", coio::endpoint("::1", 53)};
    CHECK(printed(udp) == "(AF_INET6, SOCK_DGRAM, 17, 'www.test', [::1]:53)");
    const coio::address_info raw{AF_INET, SOCK_RAW, 0, "", coio::endpoint("192.0.2.1", 0)};
    CHECK(printed(raw) == "(AF_INET, SOCK_RAW, 0, '', 192.0.2.1:0)");
    const coio::address_info other{AF_UNSPEC, SOCK_SEQPACKET, 0, "", {}};
    CHECK(printed(other).rfind("(AF_UNSPEC, " + std::to_string(SOCK_SEQPACKET) + ", 0, '', ", 0) == 0);
}

TEST_CASE("address_info and name_info compare every member") {
    const coio::address_info a{AF_INET, SOCK_STREAM, IPPROTO_TCP, "", coio::endpoint("192.0.2.1", 80)};
    coio::address_info b = a;
    CHECK(a == b);
    b.address = coio::endpoint("192.0.2.1", 81);
    CHECK_FALSE(a == b);
    b = a;
    b.canonname = "x.test";
    CHECK_FALSE(a == b);
    const coio::name_info n{"localhost", "http"};
    CHECK(n == coio::name_info{"localhost", "http"});
    CHECK_FALSE(n == coio::name_info{"localhost", "80"});
}
