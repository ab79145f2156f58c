// tests/test_resolver_options.cpp - what each coio::resolver_options member does to a
// resolver: server strings (accepted and refused), timeout x tries x servers as the lookup
// budget, the default first-try timeout and the system's settings, rotate, search and ndots.
//
// DNS traffic goes to 127.0.0.1 only (a private dnsmasq, or UDP sockets that never answer).
//
// ctest-labels: dns
#include <coio/resolver_options.hpp>

#include "support/catch.hpp"
#include "support/co_check.hpp"
#include "support/dnsmasq_catch.hpp"

#include <coio/dns.hpp>
#include <coio/loop.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// The c-ares channel behind `r` (created on first use; call inside the loop).
const coio::detail::dns::channel& channel_of(coio::resolver& r) { return coio::detail::dns::access::of(&r); }

/// Sets an environment variable for the scope (restoring the old value).
class scoped_env {
public:
    scoped_env(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        ::setenv(name, value, 1);
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;
    ~scoped_env() {
        if (old_) ::setenv(name_, old_->c_str(), 1); else ::unsetenv(name_);
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

} // namespace

TEST_CASE("resolver_options defaults keep the system configuration, with a bounded burst") {
    coio::resolver_options o;
    CHECK(o.servers.empty());
    CHECK(o.timeout == 0ms);
    CHECK(o.tries == 0);
    CHECK(o.ndots < 0);
    CHECK_FALSE(o.rotate);
    CHECK(o.search.empty());
    CHECK(o.max_inflight == 100);
    coio::resolver_options custom{.servers = {"127.0.0.1:5353"}, .timeout = 500ms, .tries = 2};
    coio::run_options run{.entries = 256, .resolver = custom};
    CHECK(run.resolver.tries == 2);
    CHECK(run.resolver.servers == std::vector<std::string>{"127.0.0.1:5353"});
}

TEST_CASE("servers: the forms accepted, and those refused when the resolver is built") {
    for (const char* ok : {"127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1", "[::1]", "10.0.0.1:53"}) {
        INFO(ok);
        CHECK_NOTHROW(coio::resolver({.servers = {ok}}));
    }
    for (const char* bad : {"", "localhost", "dns.example", "1.2.3", "256.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                            "127.0.0.1:0", "127.0.0.1:-1", "::1%1", "[fe80::1%lo]:53", "fe80::1%eth0", "[::1%1]:53"}) {
        INFO(bad);
        CHECK_THROWS_AS(coio::resolver({.servers = {"127.0.0.1", bad}}), std::invalid_argument);
    }
    // The message names the culprit.
    try {
        coio::resolver r({.servers = {"[fe80::1%lo]:53"}});
        FAIL("a scoped server was accepted");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("[fe80::1%lo]:53") != std::string::npos);
    }
}

TEST_CASE("servers: queries go to the port given, and only there") {
    coio_test::blackhole_udp hole, other;
    coio::resolver r({.servers = {hole.address()}, .timeout = 100ms, .tries = 1});
    coio::run([&]() -> coio::coro<void> {
        try {
            co_await r.getaddrinfo("x.test", 80, {.family = AF_INET});
            FAIL("a silent server answered");
        } catch (const coio::gaierror& e) {
            CHECK(e.dns_code() == coio::dns_errc::timeout);
        }
    }());
    CHECK(hole.drain() == 1);
    CHECK(other.drain() == 0);
}

TEST_CASE("timeout x tries x servers is a lookup's budget; the first try waits `timeout`") {
    coio_test::blackhole_udp a, b;
    coio::resolver one({.servers = {a.address()}, .timeout = 300ms, .tries = 3});
    coio::resolver two({.servers = {a.address(), b.address()}, .timeout = 300ms, .tries = 3});
    coio::resolver quick({.servers = {a.address(), b.address()}, .timeout = 60ms, .tries = 2});
    coio::run([&]() -> coio::coro<void> {
        CHECK(channel_of(one).first_try() == 300ms);
        CHECK(channel_of(one).budget() == 900ms);
        CHECK(channel_of(two).budget() == 1800ms);
        // Measured: a silent pair of servers ends the lookup after 60 ms x 2 x 2 = 240 ms,
        // and both servers were asked.
        const auto t0 = std::chrono::steady_clock::now();
        try {
            co_await quick.getaddrinfo("x.test", 80, {.family = AF_INET});
            FAIL("silent servers answered");
        } catch (const coio::gaierror& e) {
            CHECK(e.dns_code() == coio::dns_errc::timeout);
        }
        const auto took = std::chrono::steady_clock::now() - t0;
        CHECK(took >= 230ms);
        CHECK(took < 240ms + 400ms);  // slack for a loaded machine
    }());
    CHECK(a.drain() >= 1);
    CHECK(b.drain() >= 1);
}

TEST_CASE("timeout and tries 0: the system's settings ($RES_OPTIONS, resolv.conf), else 1 s instead of c-ares' 5 s") {
    using coio::detail::dns::read_system_settings;
    auto conf = read_system_settings("nameserver 10.0.0.1\noptions edns0 timeout:2 attempts:3\n", nullptr);
    CHECK(conf.timeout == std::chrono::milliseconds(2000));
    CHECK(conf.tries == 3);
    // $RES_OPTIONS overrides the file; c-ares 1.18's own spellings (retrans: in ms, retry:).
    conf = read_system_settings("options timeout:2 attempts:3\n", "retrans:700");
    CHECK(conf.timeout == std::chrono::milliseconds(700));
    CHECK(conf.tries == 3);
    conf = read_system_settings("options\tretry:5\n", "timeout:1");
    CHECK(conf.timeout == std::chrono::milliseconds(1000));
    CHECK(conf.tries == 5);
    // Not settings: comments, other keywords, unknown or malformed values.
    conf = read_system_settings("# options timeout:2\noptionstimeout:3\nsearch timeout:4\noptions timeout:x attempts:0 "
                                "rotate\n",
                                "timeout:-1");
    CHECK_FALSE(conf.timeout.has_value());
    CHECK_FALSE(conf.tries.has_value());

    coio_test::blackhole_udp hole;
    {
        scoped_env env("RES_OPTIONS", "timeout:3 attempts:2");
        coio::resolver r({.servers = {hole.address()}});
        coio::run([&]() -> coio::coro<void> {
            CHECK(channel_of(r).first_try() == 3000ms);
            CHECK(channel_of(r).budget() == 6000ms);
            co_return;
        }());
    }
    {
        // Only attempts set: the first try waits coio's 1 s (unless resolv.conf says otherwise).
        scoped_env env("RES_OPTIONS", "attempts:2");
        coio::resolver r({.servers = {hole.address()}});
        coio::run([&]() -> coio::coro<void> {
            if (coio::detail::dns::system_resolver_settings().timeout) {
                WARN("/etc/resolv.conf sets a timeout: coio's 1 s default is not used on this machine");
            } else {
                CHECK(channel_of(r).first_try() == 1000ms);
                CHECK(channel_of(r).budget() == 2000ms);
            }
            co_return;
        }());
    }
    {
        // Explicit options win over the system's.
        scoped_env env("RES_OPTIONS", "timeout:3 attempts:4");
        coio::resolver r({.servers = {hole.address()}, .timeout = 250ms, .tries = 1});
        coio::run([&]() -> coio::coro<void> {
            CHECK(channel_of(r).first_try() == 250ms);
            CHECK(channel_of(r).budget() == 250ms);
            co_return;
        }());
    }
}

TEST_CASE("rotate spreads first tries over the servers") {
    coio_test::blackhole_udp a, b;
    for (const bool rotate : {false, true}) {
        coio::resolver r({.servers = {a.address(), b.address()}, .timeout = 5000ms, .tries = 1, .rotate = rotate});
        coio::run([&]() -> coio::coro<void> {
            std::vector<coio::task<std::vector<coio::address_info>>> tasks;
            for (int i = 0; i < 6; ++i)
                tasks.push_back(coio::create_task(r.getaddrinfo("r" + std::to_string(i) + ".test", 80, {.family = AF_INET})));
            co_await coio::sleep(50ms);  // every first try is out; no retry yet (5 s)
            r.cancel();
            for (auto& t : tasks) {
                try {
                    co_await t;
                } catch (const coio::gaierror&) {
                }
            }
        }());
        const int at_a = a.drain();
        const int at_b = b.drain();
        INFO("rotate " << rotate << ": " << at_a << " queries at the first server, " << at_b << " at the second");
        CHECK(at_a + at_b == 6);
        if (rotate) {
            CHECK(at_a > 0);
            CHECK(at_b > 0);
        } else {
            CHECK(at_b == 0);
        }
    }
}

TEST_CASE("search and ndots decide which names are tried") {
    COIO_TEST_REQUIRE_DNSMASQ();
    coio_test::dnsmasq server({{"box.test", {"10.0.0.7"}}, {"box", {"10.0.0.8"}}});
    coio::resolver searching({.servers = {server.address()}, .ndots = 1, .search = {"test"}});
    coio::resolver absolute_first({.servers = {server.address()}, .ndots = 0, .search = {"test"}});
    coio::resolver elsewhere({.servers = {server.address()}, .search = {"nowhere"}});
    coio::run([&]() -> coio::coro<void> {
        // "box" has fewer dots than ndots: the search domain comes first.
        auto v = co_await searching.getaddrinfo("box", 80, {.family = AF_INET, .socktype = SOCK_STREAM});
        REQUIRE(v.size() == 1);
        CHECK(v[0].address.host() == "10.0.0.7");
        // ndots 0: the name as given first.
        v = co_await absolute_first.getaddrinfo("box", 80, {.family = AF_INET, .socktype = SOCK_STREAM});
        REQUIRE(v.size() == 1);
        CHECK(v[0].address.host() == "10.0.0.8");
        // A search domain that has no such name: the name itself is tried next.
        v = co_await elsewhere.getaddrinfo("box", 80, {.family = AF_INET, .socktype = SOCK_STREAM});
        REQUIRE(v.size() == 1);
        CHECK(v[0].address.host() == "10.0.0.8");
        // search only applies to names, never to an absolute one.
        try {
            co_await searching.getaddrinfo("nothing.", 80, {.family = AF_INET});
            FAIL("an unknown name resolved");
        } catch (const coio::gaierror& e) {
            CHECK(e.code() == coio::gai_errc::noname);
        }
    }());
}
