// tests/support/dnsmasq_selfcheck.cpp - checks the dnsmasq fixture itself, against a real
// dnsmasq. A plain program (no Catch2, no coio): tests/CMakeLists.txt builds it as
// dnsmasq_selfcheck with the project's warnings and sanitizers and runs it as the ctest
// test "support/dnsmasq_selfcheck" (label dns):
//
//   cmake --build build --target dnsmasq_selfcheck && ctest --test-dir build -R dnsmasq_selfcheck
//
// Exit status 0 when every check passed, 1 otherwise; 77 (the automake "skipped" code) when
// dnsmasq is not installed and $CI is unset.
#include "support/dnsmasq.hpp"

#include <sys/ioctl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {

int failures = 0;
int checks = 0;

void check(bool ok, const std::string& what) {
    ++checks;
    if (!ok) {
        ++failures;
        std::cerr << "FAIL: " << what << '\n';
    }
}

/// The answers of one type, as text, in wire order.
std::vector<std::string> data_of(const std::optional<coio_test::dns_reply>& r, std::uint16_t type) {
    std::vector<std::string> out;
    if (!r) return out;
    for (const auto& a : r->answers)
        if (a.type == type) out.push_back(a.data);
    return out;
}

using strings = std::vector<std::string>;
namespace t = coio_test::dns_type;
namespace rc = coio_test::dns_rcode;

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

/// DNS over TCP (2-byte length prefix), to check dnsmasq's TCP listener and to fetch what
/// UDP truncated.
std::optional<coio_test::dns_reply> tcp_query(std::uint16_t port, const std::string& name,
                                              std::uint16_t type) {
    using namespace coio_test::detail_dnsmasq;
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const auto sa = loopback(port);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) return std::nullopt;
    timeval tv{2, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const auto q = build_query(0x4242, name, type);
    std::vector<std::uint8_t> msg;
    append_u16(msg, static_cast<std::uint16_t>(q.size()));
    msg.insert(msg.end(), q.begin(), q.end());
    if (::send(fd.get(), msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size()))
        return std::nullopt;
    auto read_exact = [&](std::uint8_t* p, std::size_t n) {
        while (n > 0) {
            const auto got = ::recv(fd.get(), p, n, 0);
            if (got <= 0) return false;
            p += got;
            n -= static_cast<std::size_t>(got);
        }
        return true;
    };
    std::uint8_t len[2];
    if (!read_exact(len, 2)) return std::nullopt;
    std::vector<std::uint8_t> body(static_cast<std::size_t>((len[0] << 8) | len[1]));
    if (!read_exact(body.data(), body.size())) return std::nullopt;
    return parse_reply(body.data(), body.size(), 0x4242);
}

void check_records() {
    const std::string long_a(250, 'a'), long_b(250, 'b'), long_c(250, 'c');
    const auto t0 = std::chrono::steady_clock::now();
    coio_test::dnsmasq server({
        .hosts = {{"a.test", {"10.0.0.1", "fd00::1"}},
                  {"multi.test", {"10.0.0.2", "10.0.0.3", "10.0.0.4"}},
                  {"six.test", {"fd00::6"}},
                  {"four.test", {"10.0.0.4"}},
                  {"other.example", {"192.0.2.1"}}},
        .cnames = {{"www.test", "a.test"}},
        .mx = {{"test", "mail.test", 10}, {"test", "backup.test", 20}},
        .srv = {{"_http._tcp.test", "a.test", 8080, 1, 5}},
        .txt = {{"t.test", {"v=spf1 -all", "comma, \"quote\" and \\ backslash"}},
                {"big.test", {long_a, long_b, long_c}}},
        .ptr = {{"9.9.9.10.in-addr.arpa", "nine.test"}},
        .ns = {{"test", "ns1.test"}, {"test", "ns2.test"}},
        .soa = {{.zone = "test", .mname = "ns1.test", .rname = "hostmaster.test", .serial = 2024}},
        .caa = {{"test", 0, "issue", "ca.test; account=1,2"}},
        .raw = {{"raw.test", 65280, {0xde, 0xad, 0xbe, 0xef}}},
        .ttl = 42,
    });
    const auto startup = std::chrono::steady_clock::now() - t0;
    std::cout << "started dnsmasq pid " << server.pid() << " at " << server.address() << " in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(startup).count() << " ms\n";
    const auto pid = server.pid();
    const auto dir = server.directory();
    const auto port = server.port();
    check(process_exists(pid), "dnsmasq process exists while the fixture lives");
    check(server.address() == "127.0.0.1:" + std::to_string(port), "address() format");

    auto q = [&](const std::string& name, std::uint16_t type) {
        return coio_test::dns_query(port, name, type);
    };

    auto a = q("a.test", t::a);
    check(a && a->rcode == rc::noerror, "a.test A: NOERROR");
    check(data_of(a, t::a) == strings{"10.0.0.1"}, "a.test A = 10.0.0.1");
    check(a && !a->answers.empty() && a->answers[0].ttl == 42 && a->answers[0].name == "a.test",
          "a.test A: owner name and TTL 42");
    check(data_of(q("a.test", t::aaaa), t::aaaa) == strings{"fd00::1"}, "a.test AAAA = fd00::1");
    // --no-round-robin: the order is the hosts-file order, on every query.
    for (int i = 0; i < 3; ++i)
        check(data_of(q("multi.test", t::a), t::a) == strings{"10.0.0.2", "10.0.0.3", "10.0.0.4"},
              "multi.test A in hosts-file order");

    auto six_a = q("six.test", t::a);
    check(six_a && six_a->rcode == rc::noerror && six_a->answers.empty(),
          "AAAA-only six.test: A query is NODATA (NOERROR, no answers)");
    check(data_of(q("six.test", t::aaaa), t::aaaa) == strings{"fd00::6"}, "six.test AAAA");
    auto four_aaaa = q("four.test", t::aaaa);
    check(four_aaaa && four_aaaa->rcode == rc::noerror && four_aaaa->answers.empty(),
          "A-only four.test: AAAA query is NODATA");
    check(data_of(q("other.example", t::a), t::a) == strings{"192.0.2.1"},
          "names outside .test are served too");

    auto nx = q("unknown.test", t::a);
    check(nx && nx->rcode == rc::nxdomain && nx->answers.empty(), "unknown.test: NXDOMAIN");
    auto nx2 = q("nowhere.example.com", t::aaaa);
    check(nx2 && nx2->rcode == rc::nxdomain, "unknown name in another domain: NXDOMAIN, not forwarded");
    auto nx3 = q("localhost", t::a);
    check(nx3 && nx3->rcode == rc::nxdomain, "localhost: NXDOMAIN (/etc/hosts not read)");

    auto www = q("www.test", t::a);
    check(data_of(www, t::cname) == strings{"a.test"} && data_of(www, t::a) == strings{"10.0.0.1"},
          "www.test A: CNAME a.test + A 10.0.0.1");
    check(data_of(q("www.test", t::cname), t::cname) == strings{"a.test"}, "www.test CNAME");

    auto mx = data_of(q("test", t::mx), t::mx);
    std::sort(mx.begin(), mx.end());
    check(mx == strings{"10 mail.test", "20 backup.test"}, "test MX (two records)");
    check(data_of(q("_http._tcp.test", t::srv), t::srv) == strings{"1 5 8080 a.test"},
          "SRV priority weight port target");
    check(data_of(q("t.test", t::txt), t::txt) ==
              strings{"\"v=spf1 -all\" \"comma, \"quote\" and \\ backslash\""},
          "TXT with comma, quotes and backslash, two strings");
    check(data_of(q("9.9.9.10.in-addr.arpa", t::ptr), t::ptr) == strings{"nine.test"},
          "explicit PTR record");
    check(data_of(q("1.0.0.10.in-addr.arpa", t::ptr), t::ptr) == strings{"a.test"},
          "automatic IPv4 PTR from the hosts file");
    check(data_of(q("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", t::ptr),
                  t::ptr) == strings{"a.test"},
          "automatic IPv6 PTR from the hosts file");
    auto nxptr = q("77.0.0.10.in-addr.arpa", t::ptr);
    check(nxptr && nxptr->rcode == rc::nxdomain, "unknown address: PTR NXDOMAIN");

    auto ns = data_of(q("test", t::ns), t::ns);
    std::sort(ns.begin(), ns.end());
    check(ns == strings{"ns1.test", "ns2.test"}, "test NS (raw records)");
    check(data_of(q("test", t::soa), t::soa) ==
              strings{"ns1.test hostmaster.test 2024 3600 600 86400 60"},
          "test SOA (raw record)");
    check(data_of(q("test", t::caa), t::caa) == strings{"0 issue ca.test; account=1,2"}, "test CAA");
    check(data_of(q("raw.test", 65280), 65280) == strings{"deadbeef"}, "raw private-use type 65280");

    // 3 x 251 bytes of TXT do not fit the 512-byte UDP limit of a query without EDNS:
    // dnsmasq sets TC, and the full answer comes over TCP. (Resolver TCP-fallback tests.)
    auto big = q("big.test", t::txt);
    check(big && big->truncated, "big TXT over UDP without EDNS: TC bit set");
    auto big_tcp = tcp_query(port, "big.test", t::txt);
    check(big_tcp && !big_tcp->truncated &&
              data_of(big_tcp, t::txt) ==
                  strings{"\"" + long_a + "\" \"" + long_b + "\" \"" + long_c + "\""},
          "big TXT over TCP: complete");
    check(data_of(tcp_query(port, "a.test", t::aaaa), t::aaaa) == strings{"fd00::1"},
          "TCP listener answers on the same port");

    check(server.log().find("started, version") != std::string::npos, "log() has dnsmasq's log");

    // A second server at the same time gets its own port and directory.
    {
        coio_test::dnsmasq second({{"b.test", {"10.1.1.1"}}});
        check(second.port() != port && second.directory() != dir, "two servers: distinct ports");
        check(data_of(coio_test::dns_query(second.port(), "b.test", t::a), t::a) == strings{"10.1.1.1"},
              "second server serves its own record");
        check(q("b.test", t::a)->rcode == rc::nxdomain, "first server does not see it");
    }

    // stop(): the port goes away, the process is reaped, and stop() again is harmless.
    server.stop();
    check(server.pid() == -1 && !process_exists(pid), "stop(): process gone");
    check(!coio_test::dns_query(port, "a.test", t::a, std::chrono::milliseconds(200)),
          "stop(): no more answers");
    server.stop();
    check(std::filesystem::exists(dir), "directory kept until destruction");
}

void check_destructor_and_no_hosts() {
    pid_t pid = -1;
    std::filesystem::path dir;
    {
        // No hosts at all: startup probe accepts any reply.
        coio_test::dnsmasq server(coio_test::dnsmasq::options{.mx = {{"m.test", "x.test", 1}}});
        pid = server.pid();
        dir = server.directory();
        check(process_exists(pid), "no-hosts server is running");
        check(data_of(coio_test::dns_query(server.port(), "m.test", t::mx), t::mx) ==
                  strings{"1 x.test"},
              "no-hosts server serves MX");
    }
    check(::kill(pid, 0) != 0 && errno == ESRCH, "destructor: kill(pid, 0) fails with ESRCH");
    check(!std::filesystem::exists(dir), "destructor: temp dir removed");
}

void check_generated_hosts() {
    // The vector constructor, as a benchmark or stress test would use it.
    std::vector<coio_test::dnsmasq::host> hosts;
    for (int i = 0; i < 500; ++i)
        hosts.push_back({"gen" + std::to_string(i) + ".test", {"10.9." + std::to_string(i / 256) + "." +
                                                               std::to_string(i % 256)}});
    coio_test::dnsmasq server(std::move(hosts));
    check(data_of(coio_test::dns_query(server.port(), "gen499.test", t::a), t::a) == strings{"10.9.1.243"},
          "vector<host> constructor: 500 generated names served");
}

void check_errors() {
    auto throws_invalid = [](coio_test::dnsmasq::options o) {
        try {
            coio_test::dnsmasq s(std::move(o));
        } catch (const std::invalid_argument&) {
            return true;
        } catch (const std::exception& e) {
            std::cerr << "unexpected exception: " << e.what() << '\n';
        }
        return false;
    };
    check(throws_invalid({.hosts = {{"bad.test", {"10.0.0.300"}}}}), "bad IPv4 -> invalid_argument");
    check(throws_invalid({.hosts = {{"bad name.test", {"10.0.0.1"}}}}), "space in name -> invalid_argument");
    check(throws_invalid({.hosts = {{"x.test", {}}}}), "host without address -> invalid_argument");
    check(throws_invalid({.cnames = {{"a,b.test", "x.test"}}}), "comma in name -> invalid_argument");
    check(throws_invalid({.ns = {{"test", "a..test"}}}), "empty label -> invalid_argument");
    // Nothing may be left behind by a failed construction.
    int status = 0;
    check(::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD, "no child process left over");

    // A bad extra argument makes dnsmasq exit with a config error: runtime_error with reason.
    try {
        coio_test::dnsmasq s({.hosts = {{"a.test", {"10.0.0.1"}}}, .extra_args = {"--no-such-option"}});
        check(false, "bad dnsmasq option must throw");
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        check(msg.find("exited during startup") != std::string::npos &&
                  msg.find("bad command line options") != std::string::npos &&
                  msg.find("command: ") != std::string::npos && msg.find("--no-such-option") != std::string::npos,
              "startup failure message carries dnsmasq's stderr: " + msg);
    }
}

void check_blackhole() {
    coio_test::blackhole_udp hole;
    check(hole.port() != 0 && hole.address() == "127.0.0.1:" + std::to_string(hole.port()),
          "blackhole address");
    const auto t0 = std::chrono::steady_clock::now();
    auto r = coio_test::dns_query(hole.port(), "a.test", t::a, std::chrono::milliseconds(200));
    const auto waited = std::chrono::steady_clock::now() - t0;
    check(!r, "blackhole: no reply");
    check(waited >= std::chrono::milliseconds(190), "blackhole: the query waited for its timeout");
    int queued = 0;
    ::ioctl(hole.fd(), FIONREAD, &queued);
    check(queued > 0, "blackhole: the query datagram is queued, unread");
    check(hole.drain() == 1, "drain(): one datagram was queued");
    check(hole.drain() == 0, "drain(): nothing left");

    // udp_drops: a receive buffer too small for what arrives counts drops.
    const auto before = coio_test::udp_drops(hole.port());
    check(before.has_value(), "udp_drops finds the blackhole's socket");
    const int small = 1;  // the kernel rounds it up to its minimum (a few datagrams)
    ::setsockopt(hole.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    for (int i = 0; i < 200; ++i) (void)coio_test::dns_query(hole.port(), "a.test", t::a, std::chrono::milliseconds(0));
    const auto after = coio_test::udp_drops(hole.port());
    check(before && after && *after > *before, "udp_drops counts the datagrams a full buffer dropped");
    check(!coio_test::udp_drops(1).has_value(), "udp_drops: no socket on port 1");
}

void check_availability() {
    check(coio_test::dnsmasq::available(), "dnsmasq is available on this machine");
    ::setenv("COIO_DNSMASQ", "/nonexistent/dnsmasq", 1);
    ::unsetenv("CI");
    std::ostringstream out;
    check(!coio_test::dnsmasq::available(), "COIO_DNSMASQ pointing nowhere: unavailable");
    check(!coio_test::dnsmasq::require_or_skip(out), "require_or_skip: false without CI");
    check(out.str().find("SKIP: COIO_DNSMASQ=/nonexistent/dnsmasq") == 0,
          "require_or_skip prints the SKIP reason: " + out.str());
    ::setenv("CI", "true", 1);
    bool threw = false;
    try {
        (void)coio_test::dnsmasq::require_or_skip(out);
    } catch (const std::runtime_error& e) {
        threw = std::string(e.what()).find("required on CI") != std::string::npos;
    }
    check(threw, "require_or_skip throws when $CI is set");
    ::setenv("CI", "false", 1);
    check(!coio_test::dnsmasq::require_or_skip(out), "CI=false counts as not CI");
    try {
        coio_test::dnsmasq s({{"a.test", {"10.0.0.1"}}});
        check(false, "constructing without dnsmasq must throw");
    } catch (const std::runtime_error& e) {
        check(std::string(e.what()).find("COIO_DNSMASQ") != std::string::npos,
              "constructor names the reason");
    }
    ::unsetenv("COIO_DNSMASQ");
    ::unsetenv("CI");
    check(coio_test::dnsmasq::require_or_skip(out), "require_or_skip: true with dnsmasq");
}

}  // namespace

int main() {
    if (!coio_test::dnsmasq::require_or_skip()) return 77;
    try {
        check_records();
        check_destructor_and_no_hosts();
        check_generated_hosts();
        check_errors();
        check_blackhole();
        check_availability();
    } catch (const std::exception& e) {
        std::cerr << "FAIL: unexpected exception: " << e.what() << '\n';
        ++failures;
    }
    std::cout << (checks - failures) << "/" << checks << " checks passed\n";
    return failures == 0 ? 0 : 1;
}
