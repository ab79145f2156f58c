// Tests of coio/dns_records.hpp: the record types resolver::query accepts and what each
// returns. (Queries themselves are tested in test_dns.cpp against dnsmasq.)
//
// ctest-labels: dns
#include <coio/dns_records.hpp>
#include "support/catch.hpp"

#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace dns = coio::dns;

TEST_CASE("each record type has its DNS type number and name") {
    STATIC_REQUIRE(dns::a_type::code == 1);
    STATIC_REQUIRE(dns::ns_type::code == 2);
    STATIC_REQUIRE(dns::cname_type::code == 5);
    STATIC_REQUIRE(dns::soa_type::code == 6);
    STATIC_REQUIRE(dns::ptr_type::code == 12);
    STATIC_REQUIRE(dns::mx_type::code == 15);
    STATIC_REQUIRE(dns::txt_type::code == 16);
    STATIC_REQUIRE(dns::aaaa_type::code == 28);
    STATIC_REQUIRE(dns::srv_type::code == 33);
    CHECK(std::strcmp(dns::a_type::name, "A") == 0);
    CHECK(std::strcmp(dns::aaaa_type::name, "AAAA") == 0);
    CHECK(std::strcmp(dns::srv_type::name, "SRV") == 0);
}

TEST_CASE("the type of each constant fixes what a query returns") {
    STATIC_REQUIRE(std::is_same_v<decltype(dns::mx)::result_type, std::vector<dns::mx_record>>);
    STATIC_REQUIRE(std::is_same_v<decltype(dns::a)::result_type, std::vector<dns::a_record>>);
    STATIC_REQUIRE(std::is_same_v<decltype(dns::cname)::result_type, dns::cname_record>);  // one target
    STATIC_REQUIRE(std::is_same_v<decltype(dns::soa)::result_type, dns::soa_record>);      // one record
    STATIC_REQUIRE(dns::record_type_tag<dns::txt_type>);
    STATIC_REQUIRE_FALSE(dns::record_type_tag<int>);
    // A record_type that resolver::query has no parser for is refused at compile time.
    struct unknown_type : dns::record_type<99, std::vector<std::string>> {};
    STATIC_REQUIRE_FALSE(dns::record_type_tag<unknown_type>);
}

TEST_CASE("records hold what the wire carries") {
    const dns::a_record a{coio::endpoint("192.0.2.1", 0), 300};
    CHECK(a.address.host() == "192.0.2.1");
    CHECK(a.ttl == 300);
    const dns::aaaa_record aaaa{coio::endpoint("2001:db8::1", 0), 60};
    CHECK(aaaa.address.is_v6());
    const dns::srv_record srv{"sip.test", 5060, 10, 20};
    CHECK(srv.port == 5060);
    CHECK(srv.priority == 10);
    CHECK(srv.weight == 20);
    // TXT: one record of several strings reads as their concatenation (how SPF and DKIM do).
    const dns::txt_record txt{{"v=spf1 ", "include:_spf.test ", "-all"}};
    CHECK(txt.strings.size() == 3);
    CHECK(txt.text() == "v=spf1 include:_spf.test -all");
    CHECK(dns::txt_record{}.text().empty());
    const dns::soa_record soa{};
    CHECK(soa.serial == 0);
    CHECK(soa.minttl == 0);
}
