// tests/test_dns.cpp - coio::getaddrinfo, getnameinfo, resolver, gaierror, dns_error, and the
// probe / multi_probe examples.
//
// DNS traffic goes to 127.0.0.1 only: a private dnsmasq (tests/support/dnsmasq.hpp), a UDP
// socket that never answers (blackhole_udp), or a UDP socket this file answers by hand
// (fake_server). No test uses the system resolver: every lookup that could reach a server
// goes through a resolver or run_options pointing at one of those, or resolves a numeric
// address, /etc/hosts name or localhost (checked to send nothing).
//
// ctest-labels: dns
#include <coio/dns.hpp>

#include "support/catch.hpp"
#include "support/co_check.hpp"
#include "support/dnsmasq_catch.hpp"

#include <coio/as_completed.hpp>
#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

/// True if anything was sent to `fd` (a blackhole): proves a lookup caused no traffic.
bool received_anything(int fd) {
    char b;
    return ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0;
}

/// The addresses (as text, with port) of getaddrinfo entries, deduplicated across socket types.
std::set<std::string> addresses(const std::vector<coio::address_info>& v) {
    std::set<std::string> out;
    for (const auto& a : v) out.insert(a.address.to_string());
    return out;
}

/// A UDP "server" on 127.0.0.1 that answers only when the test says so (late answers,
/// REFUSED, ...). Queries are read without blocking, from inside the test's coroutine.
class fake_server {
public:
    struct query {
        std::vector<std::uint8_t> bytes;
        sockaddr_in from{};
    };

    std::string address() const { return hole_.address(); }
    int fd() const { return hole_.fd(); }

    /// Waits (sleeping on the loop) for the next query, at most `limit`.
    coio::coro<std::optional<query>> next(std::chrono::milliseconds limit) {
        const auto deadline = clock_type::now() + limit;
        while (clock_type::now() < deadline) {
            query q;
            q.bytes.resize(1500);
            socklen_t len = sizeof q.from;
            const auto n = ::recvfrom(hole_.fd(), q.bytes.data(), q.bytes.size(), MSG_DONTWAIT,
                                      reinterpret_cast<sockaddr*>(&q.from), &len);
            if (n > 0) {
                q.bytes.resize(static_cast<std::size_t>(n));
                co_return q;
            }
            co_await coio::sleep(1ms);
        }
        co_return std::nullopt;
    }

    /// Answers `q` with `rcode` and, if given, one A record (for A queries).
    void reply(const query& q, int rcode, std::optional<std::uint32_t> a_host_order = std::nullopt) {
        // Header + question only (drop anything after the question, e.g. an OPT record).
        std::size_t pos = 12;
        while (pos < q.bytes.size() && q.bytes[pos] != 0) pos += q.bytes[pos] + 1u;
        pos += 1 + 4;
        REQUIRE(pos <= q.bytes.size());
        std::vector<std::uint8_t> r(q.bytes.begin(), q.bytes.begin() + static_cast<std::ptrdiff_t>(pos));
        r[2] = static_cast<std::uint8_t>(0x80 | (q.bytes[2] & 0x79));  // QR, opcode, RD
        r[3] = static_cast<std::uint8_t>(0x80 | (rcode & 0x0f));       // RA, rcode
        r[6] = 0;
        r[7] = a_host_order ? 1 : 0;  // ANCOUNT
        r[8] = r[9] = r[10] = r[11] = 0;
        if (a_host_order) {
            const std::uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4,
                                       static_cast<std::uint8_t>(*a_host_order >> 24),
                                       static_cast<std::uint8_t>(*a_host_order >> 16),
                                       static_cast<std::uint8_t>(*a_host_order >> 8),
                                       static_cast<std::uint8_t>(*a_host_order)};
            r.insert(r.end(), std::begin(rr), std::end(rr));
        }
        REQUIRE(::sendto(hole_.fd(), r.data(), r.size(), 0, reinterpret_cast<const sockaddr*>(&q.from), sizeof q.from) ==
                static_cast<ssize_t>(r.size()));
    }

private:
    coio_test::blackhole_udp hole_;
};

/// prefix + number + suffix. (Not `"literal" + std::to_string(n)`: g++ 12 at -O3 reports a
/// bogus -Wrestrict inside std::string for that expression.)
std::string numbered(const char* prefix, int n, const char* suffix = "") {
    std::string s = prefix;
    s += std::to_string(n);
    s += suffix;
    return s;
}

/// The address the 1,000-lookup test serves for h<i>.test: 10.1.<i/256>.<i%256>.
std::string address_of(int i) {
    std::string s = numbered("10.1.", i / 256, ".");
    s += std::to_string(i % 256);
    return s;
}

/// This host's domain as NI_NOFQDN uses it: ".example.org", or "" without one.
std::string local_domain() {
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    const char* dot = std::strchr(name, '.');
    return dot ? dot : "";
}

/// The c-ares channel behind `r` (created on first use; call inside the loop).
const coio::detail::dns::channel& channel_of(coio::resolver& r) { return coio::detail::dns::access::of(&r); }

/// Waits on the loop until `done()` or `limit` passed; returns done().
template <class F>
coio::coro<bool> eventually(F done, std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = clock_type::now() + limit;
    while (!done() && clock_type::now() < deadline) co_await coio::sleep(1ms);
    co_return done();
}

} // namespace

// =========================================================================================
// Errors
// =========================================================================================

TEST_CASE("gaierror reads like Python's socket.gaierror") {
    const coio::gaierror e(coio::gai_errc::noname);
    CHECK(std::string(e.what()) == "[Errno -2] Name or service not known");
    CHECK(e.code() == coio::gai_errc::noname);
    CHECK(e.code().value() == EAI_NONAME);
    CHECK(std::string(e.code().category().name()) == "getaddrinfo");
    CHECK_FALSE(e.dns_code());

    const coio::gaierror d(coio::gai_errc::again, "a.test: Timeout", coio::dns_errc::timeout);
    CHECK(std::string(d.what()) == "[Errno -3] Temporary failure in name resolution (a.test: Timeout)");
    CHECK(d.dns_code() == coio::dns_errc::timeout);
    CHECK(d.dns_code() == std::errc::timed_out);

    const std::system_error& base = d;  // catchable as std::system_error
    CHECK(base.code() == coio::gai_errc::again);
    coio::gaierror copy = d;  // copies share the message
    CHECK(std::string(copy.what()) == d.what());
}

TEST_CASE("dns_error carries the c-ares status in its own category") {
    const coio::dns_error e(coio::dns_errc::nxdomain, "A nx.test");
    CHECK(std::string(e.what()) == "[Errno 4] Domain name not found (A nx.test)");
    CHECK(e.code() == coio::dns_errc::nxdomain);
    CHECK(std::string(e.code().category().name()) == "dns");
    CHECK(coio::make_error_code(coio::dns_errc::cancelled) == std::errc::operation_canceled);
    CHECK(coio::make_error_code(coio::dns_errc::refused).message() == "DNS server refused query");
}

// =========================================================================================
// No traffic: numeric hosts, localhost, /etc/hosts, invalid input
// =========================================================================================

TEST_CASE("numeric hosts resolve without any lookup") {
    coio_test::blackhole_udp hole;
    coio::resolver r({.servers = {hole.address()}, .timeout = 100ms, .tries = 1});
    coio::run([&]() -> coio::coro<void> {
        auto v4 = co_await r.getaddrinfo("10.1.2.3", 80);
        REQUIRE(v4.size() == 3);  // SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, as glibc
        CHECK(v4[0].family == AF_INET);
        CHECK(v4[0].socktype == SOCK_STREAM);
        CHECK(v4[0].protocol == IPPROTO_TCP);
        CHECK(v4[1].socktype == SOCK_DGRAM);
        CHECK(v4[1].protocol == IPPROTO_UDP);
        CHECK(v4[2].socktype == SOCK_RAW);
        CHECK(v4[0].address.to_string() == "10.1.2.3:80");
        CHECK(v4[0].canonname.empty());

        auto v6 = co_await r.getaddrinfo("::1", 443, {.socktype = SOCK_STREAM, .flags = AI_CANONNAME});
        REQUIRE(v6.size() == 1);
        CHECK(v6[0].address.to_string() == "[::1]:443");
        CHECK(v6[0].canonname == "::1");

        auto scoped = co_await r.getaddrinfo("fe80::1%1", 7, {.socktype = SOCK_DGRAM});
        REQUIRE(scoped.size() == 1);
        CHECK(scoped[0].address.scope_id() == 1);

        auto mapped = co_await r.getaddrinfo("1.2.3.4", 9, {.family = AF_INET6, .socktype = SOCK_STREAM, .flags = AI_V4MAPPED});
        REQUIRE(mapped.size() == 1);
        CHECK(mapped[0].address.to_string() == "[::ffff:1.2.3.4]:9");

        try {
            co_await r.getaddrinfo("1.2.3.4", 9, {.family = AF_INET6});
            FAIL("an IPv4 address cannot be returned for AF_INET6");
        } catch (const coio::gaierror& e) {
            CHECK(e.code() == coio::gai_errc::addrfamily);
        }
        // The free function with the default resolver: no lookup either.
        auto free_v4 = co_await coio::getaddrinfo("127.0.0.1", 22, {.socktype = SOCK_STREAM});
        REQUIRE(free_v4.size() == 1);
        CHECK(free_v4[0].address.to_string() == "127.0.0.1:22");
        CHECK(r.in_flight() == 0);
    }(), {.resolver = {.servers = {hole.address()}, .timeout = 100ms, .tries = 1}});
    CHECK_FALSE(received_anything(hole.fd()));
}

TEST_CASE("localhost and /etc/hosts names resolve without the server") {
    coio_test::blackhole_udp hole;
    // A lookup sent to the silent server would take its 5 s timeout.
    coio::resolver r({.servers = {hole.address()}, .timeout = 5000ms, .tries = 1});
    coio::run([&]() -> coio::coro<void> {
        const auto t0 = clock_type::now();
        auto v4 = co_await r.getaddrinfo("localhost", 80, {.family = AF_INET, .socktype = SOCK_STREAM});
        REQUIRE(v4.size() == 1);
        CHECK(v4[0].address.to_string() == "127.0.0.1:80");

        // Case and a trailing dot do not matter; AF_INET6 gets ::1 even when /etc/hosts has
        // only 127.0.0.1 (RFC 6761: localhost is always the loopback address).
        auto v6 = co_await r.getaddrinfo("LocalHost.", 80, {.family = AF_INET6, .socktype = SOCK_STREAM});
        REQUIRE(v6.size() == 1);
        CHECK(v6[0].address.to_string() == "[::1]:80");

        auto any = co_await r.getaddrinfo("localhost", "http", {.socktype = SOCK_STREAM, .flags = AI_CANONNAME});
        REQUIRE_FALSE(any.empty());
        CHECK(any[0].address.port() == 80);
        CHECK(any[0].canonname == "localhost");
        for (const auto& a : any) CHECK(a.address.is_loopback());

        auto sub = co_await r.getaddrinfo("app.localhost", 1, {.family = AF_INET, .socktype = SOCK_STREAM});
        REQUIRE(sub.size() == 1);
        CHECK(sub[0].address.host() == "127.0.0.1");

        auto ni = co_await r.getnameinfo(coio::endpoint("127.0.0.1", 80));
        CHECK(ni.host == "localhost");  // from /etc/hosts, no PTR query
        CHECK(ni.service == "http");
        auto numeric = co_await r.getnameinfo(coio::endpoint("127.0.0.1", 80), NI_NUMERICHOST | NI_NUMERICSERV);
        CHECK(numeric == coio::name_info{"127.0.0.1", "80"});

        // The free functions with the default resolver.
        auto free_lh = co_await coio::getaddrinfo("localhost", 8080, {.family = AF_INET, .socktype = SOCK_STREAM});
        REQUIRE(free_lh.size() == 1);
        CHECK(free_lh[0].address.to_string() == "127.0.0.1:8080");
        auto free_ni = co_await coio::getnameinfo(coio::endpoint("127.0.0.1", 53), NI_DGRAM);
        CHECK(free_ni.host == "localhost");
        CHECK(free_ni.service == "domain");
        CHECK(clock_type::now() - t0 < 2500ms);  // never waited for the (silent) server
    }(), {.resolver = {.servers = {hole.address()}, .timeout = 5000ms, .tries = 1}});
    CHECK_FALSE(received_anything(hole.fd()));
}

TEST_CASE("invalid names, ports, services and hints are refused before any traffic") {
    coio_test::blackhole_udp hole;
    coio::resolver r({.servers = {hole.address()}, .timeout = 100ms, .tries = 1});
    coio::run([&]() -> coio::coro<void> {
        struct bad_host {
            std::string host;
            const char* why;
        };
        const std::vector<bad_host> hosts = {
            {"", "empty host name"},
            {std::string("a\0b.test", 8), "NUL"},
            {std::string(64, 'a') + ".test", "label longer than 63"},
            {std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(63, 'd'),
             "longer than 253"},
            {"a..test", "empty label"},
            {".test", "empty label"},
            {".", "empty host name"},
        };
        for (const auto& b : hosts) {
            INFO("host of " << b.host.size() << " bytes");
            for (int round = 0; round < 2; ++round) {  // resolver member, then free function
                try {
                    if (round == 0) co_await r.getaddrinfo(b.host, 80);
                    else co_await coio::getaddrinfo(b.host, 80);
                    FAIL("accepted an invalid host name");
                } catch (const coio::gaierror& e) {
                    CHECK(e.code() == coio::gai_errc::noname);
                    CHECK(std::string(e.what()).rfind("[Errno -2] Name or service not known", 0) == 0);
                    CHECK(std::string(e.what()).find(b.why) != std::string::npos);
                    CHECK_FALSE(e.dns_code());
                }
            }
            if (b.host == ".") continue;  // a valid name for query: the root zone
            try {
                co_await r.query(b.host, coio::dns::a);
                FAIL("query accepted an invalid name");
            } catch (const coio::dns_error& e) {
                CHECK(e.code() == coio::dns_errc::badname);
            }
        }
        // A name of exactly 253 bytes (and 254 with the trailing dot) is valid; it is only
        // not found, and that would need the server: check the limit without a lookup by
        // making it numeric-only.
        const std::string n253 = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                                 std::string(61, 'd');
        REQUIRE(n253.size() == 253);
        try {
            co_await r.getaddrinfo(n253 + ".", 80, {.flags = AI_NUMERICHOST});
            FAIL("AI_NUMERICHOST accepted a name");
        } catch (const coio::gaierror& e) {
            CHECK(e.code() == coio::gai_errc::noname);
            CHECK(std::string(e.what()).find("AI_NUMERICHOST") != std::string::npos);
        }

        auto expect = [&](coio::coro<std::vector<coio::address_info>> c, coio::gai_errc code) -> coio::coro<void> {
            try {
                co_await std::move(c);
                FAIL("accepted bad input");
            } catch (const coio::gaierror& e) {
                CHECK(e.code() == code);
            }
        };
        co_await expect(r.getaddrinfo("a.test", -1), coio::gai_errc::service);
        co_await expect(r.getaddrinfo("a.test", 65536), coio::gai_errc::service);
        co_await expect(coio::getaddrinfo("a.test", 70000), coio::gai_errc::service);
        co_await expect(r.getaddrinfo("a.test", "65536"), coio::gai_errc::service);
        co_await expect(r.getaddrinfo("a.test", "no-such-service"), coio::gai_errc::service);
        co_await expect(r.getaddrinfo("a.test", std::string("ht\0tp", 5)), coio::gai_errc::service);
        co_await expect(r.getaddrinfo("a.test", "http", {.flags = AI_NUMERICSERV}), coio::gai_errc::noname);
        co_await expect(r.getaddrinfo("a.test", 80, {.family = AF_UNIX}), coio::gai_errc::family);
        co_await expect(r.getaddrinfo("a.test", 80, {.socktype = 12345}), coio::gai_errc::socktype);
        co_await expect(r.getaddrinfo("a.test", 80, {.flags = 0x40000000}), coio::gai_errc::badflags);
        try {
            co_await r.getnameinfo(coio::endpoint{});
            FAIL("getnameinfo accepted an empty endpoint");
        } catch (const coio::gaierror& e) {
            CHECK(e.code() == coio::gai_errc::family);
        }
        CHECK(r.in_flight() == 0);
    }(), {.resolver = {.servers = {hole.address()}, .timeout = 100ms, .tries = 1}});
    CHECK_FALSE(received_anything(hole.fd()));
}

TEST_CASE("bad server addresses are refused when the resolver is built") {
    CHECK_THROWS_AS(coio::resolver({.servers = {"not-an-ip"}}), std::invalid_argument);
    CHECK_THROWS_AS(coio::resolver({.servers = {"127.0.0.1:99999"}}), std::invalid_argument);
    CHECK_THROWS_AS(coio::resolver({.servers = {"127.0.0.1:0"}}), std::invalid_argument);
    CHECK_NOTHROW(coio::resolver({.servers = {"127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1"}}));
    // Scoped IPv6 addresses: c-ares 1.18 has no zone for a server and would refuse the whole
    // list at the first lookup ("Misformatted string"); refused here instead.
    for (const char* scoped : {"::1%1", "[fe80::1%lo]:53", "[::1%1]:53", "fe80::1%lo"}) {
        INFO(scoped);
        CHECK_THROWS_AS(coio::resolver({.servers = {"127.0.0.1", scoped}}), std::invalid_argument);
    }
    // The same check for the default resolver, when a lookup first needs it.
    CHECK_THROWS_AS(coio::run([]() -> coio::coro<void> { co_await coio::getaddrinfo("a.test", 80); }(),
                              {.resolver = {.servers = {"bogus"}}}),
                    std::invalid_argument);
}

TEST_CASE("lookup coroutines are lazy: created before the loop, run by it") {
    auto lookup = coio::getaddrinfo("127.0.0.1", 80, {.socktype = SOCK_STREAM});  // no loop yet: nothing runs
    CHECK(lookup.valid());
    auto v = coio::run(std::move(lookup));
    REQUIRE(v.size() == 1);
    CHECK(v[0].address.to_string() == "127.0.0.1:80");
}

// =========================================================================================
// Against dnsmasq
// =========================================================================================

TEST_CASE("getaddrinfo resolves A and AAAA records through a private dnsmasq") {
    COIO_TEST_REQUIRE_DNSMASQ();
    coio_test::dnsmasq server({
        .hosts = {{"a.test", {"10.0.0.1", "fd00::1"}}, {"v4.test", {"10.0.0.4"}}, {"v6.test", {"fd00::6"}},
                  {"multi.test", {"10.0.0.7", "10.0.0.8"}}},
        .cnames = {{"www.test", "a.test"}},
    });
    coio::resolver r({.servers = {server.address()}, .timeout = 1000ms, .tries = 2});
    coio::run([&]() -> coio::coro<void> {
        auto both = co_await r.getaddrinfo("a.test", 80, {.socktype = SOCK_STREAM});
        CHECK(addresses(both) == std::set<std::string>{"10.0.0.1:80", "[fd00::1]:80"});
        for (const auto& a : both) {
            CHECK(a.socktype == SOCK_STREAM);
            CHECK(a.protocol == IPPROTO_TCP);
            CHECK(a.family == a.address.family());
        }

        auto v4 = co_await r.getaddrinfo("a.test", 80, {.family = AF_INET});
        CHECK(addresses(v4) == std::set<std::string>{"10.0.0.1:80"});
        CHECK(v4.size() == 3);  // one per socket type

        auto v6 = co_await r.getaddrinfo("v6.test", "https", {.family = AF_INET6, .socktype = SOCK_STREAM});
        REQUIRE(v6.size() == 1);
        CHECK(v6[0].address.to_string() == "[fd00::6]:443");

        auto multi = co_await r.getaddrinfo("multi.test", 0, {.family = AF_INET, .socktype = SOCK_DGRAM});
        CHECK(addresses(multi) == std::set<std::string>{"10.0.0.7:0", "10.0.0.8:0"});

        auto canon = co_await r.getaddrinfo("www.test", 80, {.family = AF_INET, .socktype = SOCK_STREAM, .flags = AI_CANONNAME});
        REQUIRE(canon.size() == 1);
        CHECK(canon[0].address.host() == "10.0.0.1");
        CHECK(canon[0].canonname == "a.test");

        auto mapped = co_await r.getaddrinfo("v4.test", 1, {.family = AF_INET6, .socktype = SOCK_STREAM, .flags = AI_V4MAPPED});
        REQUIRE(mapped.size() == 1);
        CHECK(mapped[0].address.host() == "::ffff:10.0.0.4");

        try {
            co_await r.getaddrinfo("v6.test", 80, {.family = AF_INET});
            FAIL("an IPv6-only name has no IPv4 address");
        } catch (const coio::gaierror& e) {
            CHECK(e.code() == coio::gai_errc::nodata);
            CHECK(e.dns_code() == coio::dns_errc::nodata);
        }
        CHECK(r.in_flight() == 0);
    }());
}

TEST_CASE("addresses come in RFC 6724 order") {
    COIO_TEST_REQUIRE_DNSMASQ();
    coio_test::dnsmasq server({{"lo.test", {"127.0.0.1", "::1"}}, {"mixed.test", {"fd00::5", "10.0.0.5"}},
                               {"pair.test", {"10.0.0.2", "10.0.0.1"}}});
    coio::resolver r({.servers = {server.address()}, .timeout = 1000ms, .tries = 2});
    coio::endpoint src;
    const bool v6_loopback = coio::detail::dns::source_for(coio::endpoint("::1", 9), src);
    coio::run([&]() -> coio::coro<void> {
        auto lo = co_await r.getaddrinfo("lo.test", 80, {.socktype = SOCK_STREAM});
        REQUIRE(lo.size() == 2);
        // ::1 has the higher precedence (50 vs 35 for IPv4), when IPv6 works at all.
        CHECK(lo[0].address.host() == (v6_loopback ? "::1" : "127.0.0.1"));
        // A unique-local IPv6 address has precedence 3: global IPv4 goes first (and an
        // unreachable one would go last anyway).
        auto mixed = co_await r.getaddrinfo("mixed.test", 80, {.socktype = SOCK_STREAM});
        REQUIRE(mixed.size() == 2);
        CHECK(mixed[0].address.host() == "10.0.0.5");
        // Equal addresses keep the server's order.
        auto pair = co_await r.getaddrinfo("pair.test", 80, {.socktype = SOCK_STREAM});
        REQUIRE(pair.size() == 2);
        CHECK(pair[0].address.host() == "10.0.0.2");
        CHECK(pair[1].address.host() == "10.0.0.1");
    }());
}

TEST_CASE("an unknown name is NXDOMAIN: gai_errc::noname") {
    COIO_TEST_REQUIRE_DNSMASQ();
    coio_test::dnsmasq server({{"a.test", {"10.0.0.1"}}});
    // Through the default resolver, configured by run_options.
    coio::run([&]() -> coio::coro<void> {
        try {
            co_await coio::getaddrinfo("nx.test", 80);
            FAIL("nx.test resolved");
        } catch (const coio::gaierror& e) {
            CHECK(e.code() == coio::gai_errc::noname);
            CHECK(e.dns_code() == coio::dns_errc::nxdomain);
            const std::string what = e.what();
            CHECK(what.rfind("[Errno -2] Name or service not known", 0) == 0);
            CHECK(what.find("nx.test") != std::string::npos);
        }
        auto ok = co_await coio::getaddrinfo("a.test", 80, {.family = AF_INET, .socktype = SOCK_STREAM});
        REQUIRE(ok.size() == 1);
        CHECK(ok[0].address.to_string() == "10.0.0.1:80");
    }(), {.resolver = {.servers = {server.address()}, .timeout = 1000ms, .tries = 2}});
}

TEST_CASE("getnameinfo finds names through PTR records") {
    COIO_TEST_REQUIRE_DNSMASQ();
    coio_test::dnsmasq server(coio_test::dnsmasq::options{
        .hosts = {{"five.test", {"10.0.0.5"}}, {"six.test", {"fd00::6"}}},
    });
    coio::resolver r({.servers = {server.address()}, .timeout = 1000ms, .tries = 2});
    coio::run([&]() -> coio::coro<void> {
        auto v4 = co_await r.getnameinfo(coio::endpoint("10.0.0.5", 443));
        CHECK(v4 == coio::name_info{"five.test", "https"});
        auto v6 = co_await r.getnameinfo(coio::endpoint("fd00::6", 53), NI_DGRAM | NI_NUMERICSERV);
        CHECK(v6 == coio::name_info{"six.test", "53"});
        // NI_NOFQDN shortens names of this host's own domain only (glibc's rule).
        auto short_name = co_await r.getnameinfo(coio::endpoint("10.0.0.5", 1), NI_NOFQDN | NI_NUMERICSERV);
        CHECK(short_name.host == (local_domain() == ".test" ? "five" : "five.test"));
        // No PTR record: the numeric address, or an error with NI_NAMEREQD.
        auto unknown = co_await r.getnameinfo(coio::endpoint("10.9.9.9", 80), NI_NUMERICSERV);
        CHECK(unknown == coio::name_info{"10.9.9.9", "80"});
        try {
            co_await r.getnameinfo(coio::endpoint("10.9.9.9", 80), NI_NAMEREQD);
            FAIL("NI_NAMEREQD without a name");
        } catch (const coio::gaierror& e) {
            CHECK(e.code() == coio::gai_errc::noname);
        }
    }());
}

TEST_CASE("query returns typed records of every type dnsmasq serves") {
    COIO_TEST_REQUIRE_DNSMASQ();
    coio_test::dnsmasq server({
        .hosts = {{"a.test", {"10.0.0.1", "10.0.0.2", "fd00::1"}}, {"v6.test", {"fd00::6"}}, {"mail.test", {"10.0.0.25"}}},
        .cnames = {{"www.test", "a.test"}},
        .mx = {{"test", "mail.test", 10}, {"test", "backup.test", 20}},
        .srv = {{"_http._tcp.test", "a.test", 8080, 1, 5}},
        .txt = {{"t.test", {"v=spf1 -all", "second string"}}},
        .ptr = {{"9.9.9.10.in-addr.arpa", "nine.test"}},
        .ns = {{"test", "ns1.test"}},
        .soa = {{.zone = "test", .mname = "ns1.test", .rname = "hostmaster.test", .serial = 42}},
        .ttl = 300,
    });
    coio::resolver r({.servers = {server.address()}, .timeout = 1000ms, .tries = 2});
    coio::run([&]() -> coio::coro<void> {
        auto a = co_await r.query("a.test", coio::dns::a);
        REQUIRE(a.size() == 2);
        CHECK(a[0].address.host() == "10.0.0.1");
        CHECK(a[1].address.host() == "10.0.0.2");
        CHECK(a[0].ttl == 300);

        auto aaaa = co_await r.query("a.test", coio::dns::aaaa);
        REQUIRE(aaaa.size() == 1);
        CHECK(aaaa[0].address.host() == "fd00::1");

        coio::dns::cname_record cname = co_await r.query("www.test", coio::dns::cname);
        CHECK(cname.name == "a.test");

        auto mx = co_await r.query("test", coio::dns::mx);
        REQUIRE(mx.size() == 2);
        std::sort(mx.begin(), mx.end(), [](const auto& x, const auto& y) { return x.priority < y.priority; });
        CHECK(mx[0].host == "mail.test");
        CHECK(mx[0].priority == 10);
        CHECK(mx[1].host == "backup.test");

        auto srv = co_await r.query("_http._tcp.test", coio::dns::srv);
        REQUIRE(srv.size() == 1);
        CHECK(srv[0].host == "a.test");
        CHECK(srv[0].port == 8080);
        CHECK(srv[0].priority == 1);
        CHECK(srv[0].weight == 5);

        auto txt = co_await r.query("t.test", coio::dns::txt);
        REQUIRE(txt.size() == 1);
        CHECK(txt[0].strings == std::vector<std::string>{"v=spf1 -all", "second string"});
        CHECK(txt[0].text() == "v=spf1 -allsecond string");

        auto ptr = co_await r.query("9.9.9.10.in-addr.arpa", coio::dns::ptr);
        REQUIRE(ptr.size() == 1);
        CHECK(ptr[0].name == "nine.test");
        auto auto_ptr = co_await r.query("25.0.0.10.in-addr.arpa", coio::dns::ptr);  // from the hosts file
        REQUIRE(auto_ptr.size() == 1);
        CHECK(auto_ptr[0].name == "mail.test");

        auto ns = co_await r.query("test", coio::dns::ns);
        REQUIRE(ns.size() == 1);
        CHECK(ns[0].host == "ns1.test");

        coio::dns::soa_record soa = co_await r.query("test", coio::dns::soa);
        CHECK(soa.nsname == "ns1.test");
        CHECK(soa.hostmaster == "hostmaster.test");
        CHECK(soa.serial == 42);
        CHECK(soa.refresh == 3600);
        CHECK(soa.retry == 600);
        CHECK(soa.expire == 86400);
        CHECK(soa.minttl == 60);

        try {
            co_await r.query("nx.test", coio::dns::a);
            FAIL("nx.test has records");
        } catch (const coio::dns_error& e) {
            CHECK(e.code() == coio::dns_errc::nxdomain);
            CHECK(std::string(e.what()).find("A nx.test") != std::string::npos);
        }
        try {
            co_await r.query("v6.test", coio::dns::a);  // the name exists, with AAAA only
            FAIL("v6.test has A records");
        } catch (const coio::dns_error& e) {
            CHECK(e.code() == coio::dns_errc::nodata);
        }
        try {
            co_await r.query("a.test", coio::dns::cname);  // not an alias
            FAIL("a.test is not an alias");
        } catch (const coio::dns_error& e) {
            CHECK(e.code() == coio::dns_errc::nodata);
        }
    }());
}

TEST_CASE("1,000 concurrent lookups all succeed, at most max_inflight at a time") {
    COIO_TEST_REQUIRE_DNSMASQ();
    constexpr int n = 1000;
    std::vector<coio_test::dnsmasq::host> hosts;
    for (int i = 0; i < n; ++i)
        hosts.push_back({numbered("h", i, ".test"), {address_of(i)}});
    coio_test::dnsmasq server(std::move(hosts));
    coio::resolver r({.servers = {server.address()}, .timeout = 2000ms, .tries = 2, .max_inflight = 50});
    coio::run([&]() -> coio::coro<void> {
        std::size_t max_in_flight = 0;
        std::size_t max_queued = 0;
        bool done = false;
        // (A lambda coroutine must not capture: the closure dies before the task ends.
        // Everything it uses is a parameter, copied into the coroutine frame.)
        auto monitor = coio::create_task([](const coio::resolver& res, const bool& stop, std::size_t& most_in_flight,
                                            std::size_t& most_queued) -> coio::coro<void> {
            while (!stop) {
                most_in_flight = std::max(most_in_flight, res.in_flight());
                most_queued = std::max(most_queued, res.queued());
                co_await coio::sleep(0);
            }
        }(r, done, max_in_flight, max_queued));
        std::vector<coio::coro<std::vector<coio::address_info>>> lookups;
        for (int i = 0; i < n; ++i)
            lookups.push_back(r.getaddrinfo(numbered("h", i, ".test"), 80, {.family = AF_INET, .socktype = SOCK_STREAM}));
        const auto t0 = clock_type::now();
        auto results = co_await coio::gather(std::move(lookups));
        const auto elapsed = clock_type::now() - t0;
        done = true;
        co_await monitor;
        REQUIRE(results.size() == static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            REQUIRE(results[static_cast<std::size_t>(i)].size() == 1);
            CHECK(results[static_cast<std::size_t>(i)][0].address.to_string() == address_of(i) + ":80");
        }
        CHECK(max_in_flight <= 50);
        CHECK(max_in_flight > 1);
        CHECK(max_queued > 0);
        CHECK(r.in_flight() == 0);
        CHECK(r.queued() == 0);
        // No retransmission waits: far below the 2 s timeout (generous for a loaded machine).
        CHECK(elapsed < 1900ms);
    }());
}

TEST_CASE("max_inflight counts queries: an AF_UNSPEC lookup sends two") {
    coio_test::blackhole_udp hole;
    coio::resolver r({.servers = {hole.address()}, .timeout = 5000ms, .tries = 1, .max_inflight = 4});
    coio::run([&]() -> coio::coro<void> {
        std::vector<coio::task<std::vector<coio::address_info>>> tasks;
        for (int i = 0; i < 4; ++i) tasks.push_back(coio::create_task(r.getaddrinfo(numbered("u", i, ".test"), 80)));
        co_await coio::sleep(50ms);
        // Two AF_UNSPEC lookups (A + AAAA each) fill a cap of 4 queries; two wait.
        CHECK(r.in_flight() == 4);
        CHECK(r.queued() == 2);
        CHECK(hole.drain() == 4);  // what the server received: never more than the cap
        // An AF_INET lookup is one query: it waits as well (FIFO order is kept).
        auto one = coio::create_task(r.getaddrinfo("v4.test", 80, {.family = AF_INET}));
        co_await coio::sleep(10ms);
        CHECK(r.queued() == 3);
        r.cancel();
        for (auto& t : tasks) {
            try {
                co_await t;
            } catch (const coio::gaierror&) {
            }
        }
        try {
            co_await one;
        } catch (const coio::gaierror&) {
        }
    }());

    // A cap below 2 still runs one AF_UNSPEC lookup at a time (never starves it).
    coio::resolver tiny({.servers = {hole.address()}, .timeout = 5000ms, .tries = 1, .max_inflight = 1});
    coio::run([&]() -> coio::coro<void> {
        auto a = coio::create_task(tiny.getaddrinfo("t1.test", 80));
        auto b = coio::create_task(tiny.getaddrinfo("t2.test", 80));
        co_await coio::sleep(50ms);
        CHECK(tiny.in_flight() == 2);
        CHECK(tiny.queued() == 1);
        CHECK(hole.drain() == 2);
        tiny.cancel();
        try {
            co_await a;
        } catch (const coio::gaierror&) {
        }
        try {
            co_await b;
        } catch (const coio::gaierror&) {
        }
    }());
}

TEST_CASE("refills are paced: a large cap does not go out as one burst") {
    coio_test::blackhole_udp hole;
    constexpr std::size_t pace = coio::detail::dns::channel::admit_per_pump;
    coio::resolver r({.servers = {hole.address()}, .timeout = 5000ms, .tries = 1, .max_inflight = 0});  // no cap
    coio::run([&]() -> coio::coro<void> {
        (void)channel_of(r);  // created before the burst
        std::vector<coio::task<std::vector<coio::address_info>>> tasks;
        for (int i = 0; i < 200; ++i)
            tasks.push_back(coio::create_task(r.getaddrinfo(numbered("p", i, ".test"), 80, {.family = AF_INET})));
        // The 200 tasks run in the next iteration, before this one resumes: the first `pace`
        // queries go out, the rest wait for the next iteration.
        co_await coio::sleep(0);
        CHECK(r.in_flight() == pace);
        CHECK(r.queued() == 200 - pace);
        co_await coio::sleep(0);
        CHECK(r.in_flight() <= 2 * pace);
        CHECK(r.in_flight() > pace);
        CO_CHECK(co_await eventually([&] { return r.queued() == 0; }, 1000ms));
        CHECK(r.in_flight() == 200);
        const int got = hole.drain();
        CHECK(got == 200);
        r.cancel();
        for (auto& t : tasks) {
            try {
                co_await t;
            } catch (const coio::gaierror&) {
            }
        }
    }());
}

TEST_CASE("2,000 AF_UNSPEC lookups, repeated: no burst waits for a retry, the server drops nothing") {
    COIO_TEST_REQUIRE_DNSMASQ();
    constexpr int n = 2000;
    constexpr int reps = 5;
    std::vector<coio_test::dnsmasq::host> hosts;
    for (int i = 0; i < n; ++i) hosts.push_back({numbered("h", i, ".test"), {address_of(i)}});
    coio_test::dnsmasq server(std::move(hosts));
    const auto drops_before = coio_test::udp_drops(server.port());
    REQUIRE(drops_before.has_value());
    // Default options but the server: the default cap, timeout and tries are what is tested.
    coio::resolver r({.servers = {server.address()}});
    coio::run([&]() -> coio::coro<void> {
        (void)channel_of(r);
        for (int rep = 0; rep < reps; ++rep) {
            std::vector<coio::coro<std::vector<coio::address_info>>> lookups;
            for (int i = 0; i < n; ++i) lookups.push_back(r.getaddrinfo(numbered("h", i, ".test"), 80, {.socktype = SOCK_STREAM}));
            const auto t0 = clock_type::now();
            auto results = co_await coio::gather(std::move(lookups));
            const auto elapsed = clock_type::now() - t0;
            INFO("repetition " << rep << " took "
                               << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
            // A lost query would cost a whole retry timeout (1 s by default); a burst takes
            // tens of milliseconds.
            CHECK(elapsed < 900ms);
            int right = 0;
            for (int i = 0; i < n; ++i) {
                const auto& v = results[static_cast<std::size_t>(i)];
                right += v.size() == 1 && v[0].address.host() == address_of(i);
            }
            CHECK(right == n);
        }
        CHECK(r.in_flight() == 0);
    }());
    const auto drops_after = coio_test::udp_drops(server.port());
    REQUIRE(drops_after.has_value());
    CHECK(*drops_after - *drops_before == 0);
}

// =========================================================================================
// Timeouts, cancellation, shutdown
// =========================================================================================

TEST_CASE("queued lookups against a dead server end within their budget, counted from their start") {
    coio_test::blackhole_udp hole;
    // Budget: 100 ms x 2 tries x 1 server = 200 ms per lookup, whether it ran or waited for
    // one of the 2 slots. (c-ares alone would spend 100 + 200 ms on each before giving up,
    // and the queued ones would start only then.)
    coio::resolver r({.servers = {hole.address()}, .timeout = 100ms, .tries = 2, .max_inflight = 2});
    coio::run([&]() -> coio::coro<void> {
        CHECK(channel_of(r).budget() == 200ms);
        constexpr int n = 12;
        std::vector<coio::task<std::chrono::milliseconds>> tasks;
        for (int i = 0; i < n; ++i) {
            tasks.push_back(coio::create_task([](coio::resolver& res, int k) -> coio::coro<std::chrono::milliseconds> {
                const auto t0 = clock_type::now();
                try {
                    // Half AF_INET (one query), half AF_UNSPEC (two).
                    co_await res.getaddrinfo(numbered("dead", k, ".test"), 80, {.family = k % 2 ? AF_INET : AF_UNSPEC});
                    FAIL("a dead server answered");
                } catch (const coio::gaierror& e) {
                    CHECK(e.dns_code() == coio::dns_errc::timeout);
                }
                co_return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
            }(r, i)));
        }
        for (int i = 0; i < n; ++i) {
            const auto took = co_await tasks[static_cast<std::size_t>(i)];
            INFO("lookup " << i << " failed after " << took.count() << " ms");
            CHECK(took >= 190ms);
            // Budget + slack for a loaded machine. (Before: c-ares held each slot for
            // 100 + 200 ms, so the last pair failed after 1.7 s.)
            CHECK(took < 200ms + 400ms);
        }
        CHECK(r.in_flight() == 0);
        CHECK(r.queued() == 0);
        CO_CHECK(co_await eventually([&] { return channel_of(r).orphans() == 0; }, 100ms));
    }());
}

TEST_CASE("a cancelled or expired running lookup gives its slot to the next one at once") {
    fake_server srv;
    coio::resolver r({.servers = {srv.address()}, .timeout = 5000ms, .tries = 1, .max_inflight = 1});
    coio::run([&]() -> coio::coro<void> {
        auto first = coio::create_task(r.getaddrinfo("first.test", 80, {.family = AF_INET}));
        auto q1 = co_await srv.next(2000ms);
        REQUIRE(q1.has_value());
        auto second = coio::create_task(r.getaddrinfo("second.test", 80, {.family = AF_INET, .socktype = SOCK_STREAM}));
        co_await coio::sleep(10ms);
        CHECK(r.queued() == 1);
        first.cancel();
        // The second query goes out now, not when c-ares gives up on the first (5 s).
        const auto t0 = clock_type::now();
        auto q2 = co_await srv.next(1000ms);
        REQUIRE(q2.has_value());
        CHECK(clock_type::now() - t0 < 500ms);
        bool cancelled = false;
        try {
            co_await first;
        } catch (const coio::cancelled_error&) {
            cancelled = true;
        }
        CHECK(cancelled);
        CHECK(r.in_flight() == 1);
        srv.reply(*q2, 0, 0x0a000002);
        auto v = co_await second;
        REQUIRE(v.size() == 1);
        CHECK(v[0].address.host() == "10.0.0.2");

        // The same for a lookup that wait_for gives up on.
        auto third = coio::create_task(coio::wait_for(r.getaddrinfo("third.test", 80, {.family = AF_INET}), 100ms));
        auto q3 = co_await srv.next(1000ms);
        REQUIRE(q3.has_value());
        auto fourth = coio::create_task(r.getaddrinfo("fourth.test", 80, {.family = AF_INET}));
        auto q4 = co_await srv.next(1000ms);  // sent once `third` timed out
        REQUIRE(q4.has_value());
        bool timed_out = false;
        try {
            co_await third;
        } catch (const coio::timeout_error&) {
            timed_out = true;
        }
        CHECK(timed_out);
        srv.reply(*q4, 0, 0x0a000004);
        CHECK((co_await fourth).size() >= 1);
    }());
}

TEST_CASE("a server that never answers gives an error within timeout x tries") {
    coio_test::blackhole_udp hole;
    coio::resolver r({.servers = {hole.address()}, .timeout = 150ms, .tries = 2});
    coio::run([&]() -> coio::coro<void> {
        auto t0 = clock_type::now();
        try {
            co_await r.getaddrinfo("slow.test", 80);
            FAIL("a silent server answered");
        } catch (const coio::gaierror& e) {
            CHECK(e.code() == coio::gai_errc::again);
            CHECK(e.dns_code() == coio::dns_errc::timeout);
            CHECK(std::string(e.what()).rfind("[Errno -3] Temporary failure in name resolution", 0) == 0);
        }
        auto elapsed = clock_type::now() - t0;
        CHECK(elapsed >= 140ms);   // it did wait for the server...
        CHECK(elapsed < 1500ms);   // ...about 150 ms x 2 tries (generous bound: noisy machine)

        t0 = clock_type::now();
        try {
            co_await r.query("slow.test", coio::dns::mx);
            FAIL("a silent server answered");
        } catch (const coio::dns_error& e) {
            CHECK(e.code() == coio::dns_errc::timeout);
        }
        elapsed = clock_type::now() - t0;
        CHECK(elapsed < 1500ms);
        // An expired lookup gives its slot back at once, and with no live lookup left its
        // queries are dropped from c-ares too (which would otherwise retry them for
        // 150 + 300 ms per lookup).
        CHECK(r.in_flight() == 0);
        CO_CHECK(co_await eventually([&] { return channel_of(r).orphans() == 0; }, 100ms));
    }());
    CHECK(received_anything(hole.fd()));
}

TEST_CASE("a cancelled lookup is abandoned at once and its late answer ignored") {
    fake_server srv;
    coio::resolver r({.servers = {srv.address()}, .timeout = 5000ms, .tries = 1});
    coio::run([&]() -> coio::coro<void> {
        // task.cancel() while c-ares waits for the answer.
        auto t = coio::create_task(r.getaddrinfo("late.test", 80, {.family = AF_INET, .socktype = SOCK_STREAM}));
        auto q = co_await srv.next(2000ms);
        REQUIRE(q.has_value());
        CHECK(r.in_flight() == 1);
        t.cancel();
        bool cancelled = false;
        const auto t0 = clock_type::now();
        try {
            co_await t;
        } catch (const coio::cancelled_error&) {
            cancelled = true;
        }
        CHECK(cancelled);
        CHECK(clock_type::now() - t0 < 1000ms);  // did not wait for the 5 s timeout
        CHECK(r.in_flight() == 0);                // its slot is free at once...
        // ...and with no live lookup left, c-ares drops the query.
        CO_CHECK(co_await eventually([&] { return channel_of(r).orphans() == 0; }, 100ms));
        srv.reply(*q, 0, 0x0a090909);             // the late answer: nobody waits for it
        co_await coio::sleep(10ms);

        // wait_for: the timeout cancels the lookup the same way.
        bool timed_out = false;
        try {
            co_await coio::wait_for(r.getaddrinfo("late2.test", 80, {.family = AF_INET}), 50ms);
        } catch (const coio::timeout_error&) {
            timed_out = true;
        }
        CHECK(timed_out);
        auto q2 = co_await srv.next(2000ms);
        REQUIRE(q2.has_value());
        srv.reply(*q2, 0, 0x0a090909);
        CO_CHECK(co_await eventually([&] { return r.in_flight() == 0 && channel_of(r).orphans() == 0; }));

        // A cancelled lookup while another one is live: its query stays with c-ares as an
        // orphan (c-ares cannot cancel one query), and its late answer just ends the orphan.
        auto gone = coio::create_task(r.getaddrinfo("gone.test", 80, {.family = AF_INET, .socktype = SOCK_STREAM}));
        auto q_gone = co_await srv.next(2000ms);
        REQUIRE(q_gone.has_value());
        auto live = coio::create_task(r.getaddrinfo("live.test", 80, {.family = AF_INET, .socktype = SOCK_STREAM}));
        auto q_live = co_await srv.next(2000ms);
        REQUIRE(q_live.has_value());
        gone.cancel();
        bool gone_cancelled = false;
        try {
            co_await gone;
        } catch (const coio::cancelled_error&) {
            gone_cancelled = true;
        }
        CHECK(gone_cancelled);
        CHECK(r.in_flight() == 1);
        CHECK(channel_of(r).orphans() == 1);
        srv.reply(*q_gone, 0, 0x0a090909);
        CO_CHECK(co_await eventually([&] { return channel_of(r).orphans() == 0; }));
        srv.reply(*q_live, 0, 0x0a010204);
        auto lv = co_await live;
        REQUIRE(lv.size() == 1);
        CHECK(lv[0].address.to_string() == "10.1.2.4:80");

        // The resolver still works: a lookup answered in time.
        auto ok = coio::create_task(r.getaddrinfo("fine.test", 80, {.family = AF_INET, .socktype = SOCK_STREAM}));
        auto q3 = co_await srv.next(2000ms);
        REQUIRE(q3.has_value());
        srv.reply(*q3, 0, 0x0a010203);
        auto v = co_await ok;
        REQUIRE(v.size() == 1);
        CHECK(v[0].address.to_string() == "10.1.2.3:80");

        // A REFUSED answer.
        auto refused = coio::create_task(r.query("refused.test", coio::dns::a));
        auto q4 = co_await srv.next(2000ms);
        REQUIRE(q4.has_value());
        srv.reply(*q4, 5);
        try {
            co_await refused;
            FAIL("REFUSED gave records");
        } catch (const coio::dns_error& e) {
            CHECK(e.code() == coio::dns_errc::refused);
        }
    }());
}

TEST_CASE("a lookup cancelled while queued never reaches c-ares") {
    fake_server srv;
    coio::resolver r({.servers = {srv.address()}, .timeout = 5000ms, .tries = 1, .max_inflight = 1});
    coio::run([&]() -> coio::coro<void> {
        auto first = coio::create_task(r.getaddrinfo("one.test", 80, {.family = AF_INET, .socktype = SOCK_STREAM}));
        auto second = coio::create_task(r.getaddrinfo("two.test", 80, {.family = AF_INET, .socktype = SOCK_STREAM}));
        auto q1 = co_await srv.next(2000ms);
        REQUIRE(q1.has_value());
        CHECK(r.in_flight() == 1);
        CHECK(r.queued() == 1);
        second.cancel();
        bool cancelled = false;
        try {
            co_await second;
        } catch (const coio::cancelled_error&) {
            cancelled = true;
        }
        CHECK(cancelled);
        CHECK(r.queued() == 0);
        srv.reply(*q1, 0, 0x0a000001);
        auto v = co_await first;
        REQUIRE(v.size() == 1);
        CHECK(v[0].address.host() == "10.0.0.1");
        // Only one query was ever sent.
        auto extra = co_await srv.next(100ms);
        CHECK_FALSE(extra.has_value());
    }());
}

TEST_CASE("resolver::cancel ends every lookup") {
    coio_test::blackhole_udp hole;
    coio::resolver r({.servers = {hole.address()}, .timeout = 5000ms, .tries = 1, .max_inflight = 2});
    coio::run([&]() -> coio::coro<void> {
        std::vector<coio::task<std::vector<coio::address_info>>> tasks;
        for (int i = 0; i < 4; ++i) tasks.push_back(coio::create_task(r.getaddrinfo(numbered("c", i, ".test"), 80)));
        co_await coio::sleep(20ms);
        CHECK(r.in_flight() == 2);  // one AF_UNSPEC lookup: two queries fill the cap
        CHECK(r.queued() == 3);
        r.cancel();
        for (auto& t : tasks) {
            try {
                co_await t;
                FAIL("a cancelled lookup succeeded");
            } catch (const coio::gaierror& e) {
                CHECK(e.code() == coio::gai_errc::canceled);
                CHECK(e.dns_code() == coio::dns_errc::cancelled);
            }
        }
        CHECK(r.in_flight() == 0);
        CHECK(r.queued() == 0);
    }());
}

TEST_CASE("loop shutdown with lookups in flight frees everything") {
    coio_test::blackhole_udp hole;
    // Tasks still waiting on the default resolver (in c-ares and in the FIFO) when main
    // returns: run() cancels them, then closes the channel and the ring. LeakSanitizer (in
    // the sanitizer build) checks that nothing is left behind.
    int started = 0;
    coio::run([&]() -> coio::coro<void> {
        for (int i = 0; i < 8; ++i) {
            coio::create_task([](int k, int& count) -> coio::coro<void> {
                ++count;
                co_await coio::getaddrinfo(numbered("pending", k, ".test"), 80);
            }(i, started));
        }
        co_await coio::sleep(30ms);
    }(), {.resolver = {.servers = {hole.address()}, .timeout = 5000ms, .tries = 1, .max_inflight = 3}});
    CHECK(started == 8);

    // A resolver that dies while another task still waits on it: that lookup ends with
    // gai_errc::canceled, and the loop then shuts down normally.
    bool saw_canceled = false;
    coio::run([&]() -> coio::coro<void> {
        coio::task<void> waiter;
        {
            coio::resolver r({.servers = {hole.address()}, .timeout = 5000ms, .tries = 1});
            waiter = coio::create_task([](coio::resolver& res, bool& canceled) -> coio::coro<void> {
                try {
                    co_await res.getaddrinfo("orphan.test", 80);
                } catch (const coio::gaierror& e) {
                    canceled = e.code() == coio::gai_errc::canceled;
                }
            }(r, saw_canceled));
            co_await coio::sleep(20ms);
            CHECK(r.in_flight() == 2);  // AF_UNSPEC: A and AAAA
        }  // ~resolver with the lookup in flight
        co_await waiter;
    }());
    CHECK(saw_canceled);

    // A resolver that outlives the loops it is used on: each loop's shutdown unbinds it.
    coio::resolver outer({.servers = {hole.address()}, .timeout = 5000ms, .tries = 1});
    for (int round = 0; round < 2; ++round) {
        coio::run([&]() -> coio::coro<void> {
            coio::create_task(outer.getaddrinfo("pending.test", 80));
            auto v = co_await outer.getaddrinfo("127.0.0.1", 80, {.socktype = SOCK_STREAM});
            CHECK(v.size() == 1);
            co_await coio::sleep(10ms);
            CHECK(outer.in_flight() == 2);
        }());
        CHECK(outer.in_flight() == 0);  // unbound: the loop's shutdown destroyed its channel
    }
}

TEST_CASE("a destroyed resolver's poll is cancelled and its memory freed after the CQE") {
    coio_test::blackhole_udp hole;
    coio::run([&]() -> coio::coro<void> {
        auto& svc = coio::get_running_loop().service<coio::detail::dns::dns_service>();
        {
            coio::resolver r({.servers = {hole.address()}, .timeout = 5000ms, .tries = 1});
            auto t = coio::create_task(r.getaddrinfo("x.test", 80));
            co_await coio::sleep(10ms);  // the query is out, its socket polled on the ring
            CHECK(svc.channels() == 1);
            t.cancel();
            try {
                co_await t;
            } catch (const coio::cancelled_error&) {
            }
        }  // ~resolver: c-ares closes the socket, coio cancels the poll still in flight...
        CHECK(svc.channels() == 1);  // ...and keeps the channel until the poll's CQE arrives
        CO_CHECK(co_await eventually([&] { return svc.channels() == 0; }));
    }());
}

// =========================================================================================
// The examples, run against dnsmasq
// =========================================================================================

// Compiled only when the build has the examples (tests/CMakeLists.txt builds them first and
// passes their paths), so this test case can never pass without running them.
#if defined(COIO_TEST_PROBE) && defined(COIO_TEST_MULTI_PROBE)

namespace {

/// Runs `exe args...`, returns (exit status, stdout). Kills it (by PID) after `limit`.
std::pair<int, std::string> run_program(const std::string& exe, const std::vector<std::string>& args,
                                        std::chrono::milliseconds limit) {
    int out[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    std::vector<std::string> all = {exe};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    ::posix_spawn_file_actions_init(&fa);
    ::posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    REQUIRE(rc == 0);
    std::string text;
    const auto deadline = clock_type::now() + limit;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
        if (left <= 0) {
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        char buf[4096];
        const auto n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

} // namespace

TEST_CASE("examples: probe and multi_probe against dnsmasq") {
    COIO_TEST_REQUIRE_DNSMASQ();
    const std::string probe = COIO_TEST_PROBE;
    const std::string multi_probe = COIO_TEST_MULTI_PROBE;
    REQUIRE(std::filesystem::exists(probe));  // built before this test by CMake
    REQUIRE(std::filesystem::exists(multi_probe));
    coio_test::dnsmasq server({
        {"and.dev", {"10.0.0.1"}}, {"def.dev", {"10.0.0.2"}}, {"try.dev", {"fd00::3"}},
        {"python.org", {"10.0.1.1"}}, {"rust-lang.org", {"10.0.1.2"}}, {"golang.org", {"fd00::1:3"}},
    });
    const std::vector<std::string> args = {"--nameserver", server.address(), "--timeout", "1"};

    auto [probe_status, probe_out] = run_program(probe, args, 20000ms);
    CHECK(probe_status == 0);
    auto probe_lines = lines_of(probe_out);
    std::sort(probe_lines.begin(), probe_lines.end());
    std::vector<std::string> expected;
    for (const char* kw : {"none", "true", "and", "as", "def", "del", "elif", "else", "for", "from", "if", "in", "is",
                           "not", "or", "pass", "try", "with"}) {
        const std::string d = std::string(kw) + ".dev";
        const bool found = d == "and.dev" || d == "def.dev" || d == "try.dev";
        expected.push_back((found ? "+ " : "  ") + d);
    }
    std::sort(expected.begin(), expected.end());
    CHECK(probe_lines == expected);

    auto [multi_status, multi_out] = run_program(multi_probe, args, 20000ms);
    CHECK(multi_status == 0);
    auto multi_lines = lines_of(multi_out);
    std::sort(multi_lines.begin(), multi_lines.end());
    CHECK(multi_lines == std::vector<std::string>{"golang.org\tTrue", "no-lang.invalid\tFalse", "python.org\tTrue",
                                                  "rust-lang.org\tTrue"});
}

#endif // COIO_TEST_PROBE && COIO_TEST_MULTI_PROBE
