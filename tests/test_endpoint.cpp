// tests/test_endpoint.cpp - coio::endpoint: parsing, printing, sockaddr round trips.
#include <coio/endpoint.hpp>

#include "support/catch.hpp"

#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_set>

namespace {

std::string printed(const coio::endpoint& e) {
    std::ostringstream os;
    os << e;
    return os.str();
}

} // namespace

TEST_CASE("endpoint is a small regular value type") {
    STATIC_REQUIRE(std::is_nothrow_copy_constructible_v<coio::endpoint>);
    STATIC_REQUIRE(std::is_trivially_copyable_v<coio::endpoint>);
    STATIC_REQUIRE(sizeof(coio::endpoint) == sizeof(sockaddr_in6));
    coio::endpoint e;
    CHECK(e.empty());
    CHECK(e.family() == AF_UNSPEC);
    CHECK(e.size() == 0);
    CHECK(e.port() == 0);
    CHECK(e.host().empty());
    CHECK(e.to_string().empty());
    CHECK(e == coio::endpoint{});
}

TEST_CASE("endpoint from an IP and a port") {
    // Only parsing and printing: nothing here opens a socket, so non-loopback addresses such
    // as 1.2.3.4 and 10.0.0.1 are safe to use as text.
    coio::endpoint v4("1.2.3.4", 80);
    CHECK(v4.is_v4());
    CHECK(v4.family() == AF_INET);
    CHECK(v4.host() == "1.2.3.4");
    CHECK(v4.port() == 80);
    CHECK(v4.to_string() == "1.2.3.4:80");
    CHECK(printed(v4) == "1.2.3.4:80");
    CHECK(v4.size() == sizeof(sockaddr_in));

    coio::endpoint v6("::1", 80);
    CHECK(v6.is_v6());
    CHECK(v6.host() == "::1");
    CHECK(v6.to_string() == "[::1]:80");
    CHECK(v6.size() == sizeof(sockaddr_in6));
    CHECK(v6.is_loopback());
    CHECK(coio::endpoint("[2001:db8::5]", 443).to_string() == "[2001:db8::5]:443");
    CHECK(coio::endpoint("127.3.0.1", 1).is_loopback());
    CHECK_FALSE(coio::endpoint("10.0.0.1", 1).is_loopback());

    CHECK_THROWS_AS(coio::endpoint("localhost", 80), std::invalid_argument);
    CHECK_THROWS_AS(coio::endpoint("", 80), std::invalid_argument);
    CHECK_THROWS_AS(coio::endpoint("1.2.3", 80), std::invalid_argument);     // no inet_aton shorthands
    CHECK_THROWS_AS(coio::endpoint("256.1.1.1", 80), std::invalid_argument);
    CHECK_THROWS_AS(coio::endpoint("::1::2", 80), std::invalid_argument);
    CHECK_THROWS_WITH(coio::endpoint("example.org", 1), Catch::Contains("example.org"));
}

TEST_CASE("endpoint::parse accepts the printed forms and round-trips") {
    for (const char* text : {"1.2.3.4:80", "[::1]:80", "0.0.0.0:0", "[2001:db8::1]:65535", "[::ffff:1.2.3.4]:7"}) {
        INFO(text);
        auto e = coio::endpoint::parse(text);
        CHECK(e.to_string() == text);
        CHECK(coio::endpoint::parse(e.to_string()) == e);
    }
    CHECK(coio::endpoint::parse("1.2.3.4").port() == 0);
    CHECK(coio::endpoint::parse("1.2.3.4", 53).port() == 53);
    CHECK(coio::endpoint::parse("::1", 53).to_string() == "[::1]:53");
    CHECK(coio::endpoint::parse("[::1]", 53).to_string() == "[::1]:53");
    CHECK(coio::endpoint::parse("fe80::1%1").scope_id() == 1);
    CHECK(coio::endpoint::parse("[fe80::1%1]:5").port() == 5);

    for (const char* bad : {"", ":", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:8x", "[::1", "[::1]80",
                            "[1.2.3.4]:80", "localhost:80", "[::1]:", "fe80::1%", "1.2.3.4:123456"}) {
        INFO(bad);
        CHECK_FALSE(coio::endpoint::try_parse(bad).has_value());
        CHECK_THROWS_AS(coio::endpoint::parse(bad), std::invalid_argument);
    }
}

TEST_CASE("endpoint converts to and from sockaddr") {
    auto e = coio::endpoint::parse("10.1.2.3:4567");
    const auto* sin = reinterpret_cast<const sockaddr_in*>(e.data());
    CHECK(sin->sin_family == AF_INET);
    CHECK(ntohs(sin->sin_port) == 4567);
    CHECK(ntohl(sin->sin_addr.s_addr) == 0x0a010203u);
    CHECK(coio::endpoint(e.data(), e.size()) == e);
    CHECK(coio::endpoint(*sin) == e);

    sockaddr_storage ss{};
    auto v6 = coio::endpoint::parse("[2001:db8::7]:99");
    CHECK(v6.to_sockaddr(ss) == sizeof(sockaddr_in6));
    coio::endpoint back(reinterpret_cast<const sockaddr*>(&ss), sizeof ss);
    CHECK(back == v6);
    CHECK(coio::endpoint(*reinterpret_cast<const sockaddr_in6*>(&ss)) == v6);

    sockaddr_storage unix_addr{};
    unix_addr.ss_family = AF_UNIX;
    CHECK_THROWS_AS(coio::endpoint(reinterpret_cast<const sockaddr*>(&unix_addr), sizeof unix_addr),
                    std::invalid_argument);
    CHECK_THROWS_AS(coio::endpoint(e.data(), sizeof(sockaddr_in) - 1), std::invalid_argument);
    CHECK_THROWS_AS(coio::endpoint(nullptr, 0), std::invalid_argument);
}

TEST_CASE("endpoint any/loopback, ports, ordering and hashing") {
    CHECK(coio::endpoint::any(AF_INET, 8080).to_string() == "0.0.0.0:8080");
    CHECK(coio::endpoint::any(AF_INET6).to_string() == "[::]:0");
    CHECK(coio::endpoint::loopback(AF_INET, 1).to_string() == "127.0.0.1:1");
    CHECK(coio::endpoint::loopback(AF_INET6, 2).to_string() == "[::1]:2");
    CHECK_THROWS_AS(coio::endpoint::any(AF_UNIX), std::invalid_argument);

    auto e = coio::endpoint::parse("1.2.3.4:80");
    CHECK(e.with_port(443).to_string() == "1.2.3.4:443");
    CHECK(e.port() == 80);
    e.set_port(8);
    CHECK(e.port() == 8);

    auto a = coio::endpoint::parse("1.2.3.4:80");
    auto b = coio::endpoint::parse("1.2.3.4:81");
    auto c = coio::endpoint::parse("[::1]:1");
    CHECK(a < b);
    CHECK(a != b);
    CHECK(a < c);  // AF_INET sorts before AF_INET6
    std::map<coio::endpoint, int> m{{b, 2}, {a, 1}, {c, 3}};
    CHECK(m.begin()->first == a);
    std::unordered_set<coio::endpoint> s{a, b, c, coio::endpoint::parse("1.2.3.4:80")};
    CHECK(s.size() == 3);
}
