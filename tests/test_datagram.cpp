// Tests of coio/datagram.hpp: UDP and Unix datagram round trips.
#include <coio/datagram.hpp>
#include "support/catch.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <array>
#include <chrono>
#include <string>

using namespace std::chrono_literals;

namespace {
template <class F>
void run_test(F body) {
    coio::run([](F b) -> coio::coro<void> { co_await coio::wait_for(b(), 30s); }(std::move(body)));
}
}  // namespace

TEST_CASE("datagram_socket: UDP round trip over IPv4 and IPv6 loopback") {
    run_test([]() -> coio::coro<void> {
        for (const char* ip : {"127.0.0.1", "::1"}) {
            INFO(ip);
            const coio::endpoint any(ip, 0);
            coio::datagram_socket server(any.family()), client(any.family());
            server.bind(any);
            client.bind(any);
            const std::size_t sent = co_await client.sendto("ping", server.local_address());
            CHECK(sent == 4);
            auto [data, from] = co_await server.recvfrom();
            CHECK(data == "ping");
            CHECK(from == client.local_address());
            co_await server.sendto(data + "/pong", from);
            std::array<std::byte, 64> buf{};
            auto [n, from2] = co_await client.recvfrom_into(buf);
            CHECK(std::string(reinterpret_cast<const char*>(buf.data()), n) == "ping/pong");
            CHECK(from2 == server.local_address());
        }
    });
}

TEST_CASE("datagram_socket: connect then send and recv") {
    run_test([]() -> coio::coro<void> {
        coio::datagram_socket a(AF_INET), b(AF_INET);
        a.bind(coio::endpoint("127.0.0.1", 0));
        b.bind(coio::endpoint("127.0.0.1", 0));
        a.connect(b.local_address());
        b.connect(a.local_address());
        CHECK(a.peer_address() == b.local_address());
        co_await a.send("one");
        co_await a.send(std::as_bytes(std::span("two", 3)));
        std::string first = co_await b.recv();
        std::string second = co_await b.recv();
        CHECK(first == "one");  // datagram boundaries are kept
        CHECK(second == "two");
        CHECK(a.socket().type() == SOCK_DGRAM);
        co_await a.close();
        CHECK_FALSE(a.socket().is_open());
    });
}

TEST_CASE("datagram_socket: cancelling a blocked recvfrom leaves the buffer alone and loses nothing") {
    run_test([]() -> coio::coro<void> {
        coio::datagram_socket a(AF_INET), b(AF_INET);
        a.bind(coio::endpoint("127.0.0.1", 0));
        b.bind(coio::endpoint("127.0.0.1", 0));
        std::array<std::byte, 16> buf;
        buf.fill(std::byte{0x11});
        auto blocked = coio::create_task([](coio::datagram_socket& s, std::span<std::byte> bb) -> coio::coro<std::size_t> {
            auto [n, from] = co_await s.recvfrom_into(bb);
            co_return n;
        }(b, buf));
        co_await coio::sleep(10ms);
        blocked.cancel();
        CHECK_THROWS_AS(co_await blocked, coio::cancelled_error);
        co_await a.sendto("later", b.local_address());
        co_await coio::sleep(10ms);
        CHECK(buf[0] == std::byte{0x11});
        auto [data, from] = co_await b.recvfrom();
        CHECK(data == "later");
    });
}

TEST_CASE("datagram_socket: Unix datagram sockets and errors") {
    run_test([]() -> coio::coro<void> {
        const std::string pa = std::string("\0coio-dgram-a-", 14) + std::to_string(::getpid());
        const std::string pb = std::string("\0coio-dgram-b-", 14) + std::to_string(::getpid());
        coio::datagram_socket a(AF_UNIX), b(AF_UNIX);
        a.bind_unix(pa);
        b.bind_unix(pb);
        a.connect_unix(pb);
        co_await a.send("unix-dgram");
        std::string got = co_await b.recv();
        CHECK(got == "unix-dgram");
        coio::datagram_socket c(AF_INET);
        c.bind(coio::endpoint("127.0.0.1", 0));
        coio::datagram_socket d(AF_INET);
        CHECK_THROWS_AS(d.bind(c.local_address()), std::system_error);
        try {
            co_await d.send("nowhere");  // not connected
            FAIL("sent");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::destination_address_required);
        }
    });
}
