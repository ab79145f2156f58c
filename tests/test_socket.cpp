// Tests of coio/socket.hpp: coio::socket and its io_uring operations.
#include <coio/socket.hpp>
#include "support/catch.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <string>

using namespace std::chrono_literals;

namespace {

// Every test body runs under a generous deadline: a hang fails instead of blocking ctest.
template <class F>
void run_test(F body) {
    coio::run([](F b) -> coio::coro<void> { co_await coio::wait_for(b(), 30s); }(std::move(body)));
}

coio::socket listener_v4() {
    coio::socket l(AF_INET, SOCK_STREAM);
    l.set_reuse_address(true);
    l.bind(coio::endpoint("127.0.0.1", 0));
    l.listen();
    return l;
}

}  // namespace

TEST_CASE("socket: TCP connect - accept - send - recv - recv_into - sendall - shutdown - close") {
    run_test([]() -> coio::coro<void> {
        coio::socket l = listener_v4();
        const coio::endpoint where = l.local_address();
        CHECK(where.host() == "127.0.0.1");
        CHECK(where.port() != 0);
        CHECK(l.family() == AF_INET);
        CHECK(l.type() == SOCK_STREAM);

        coio::socket c(AF_INET, SOCK_STREAM);
        auto accepting = coio::create_task([](coio::socket& l) -> coio::coro<coio::accepted_connection> {
            co_return co_await l.accept();
        }(l));
        co_await c.connect(where);
        auto [conn, peer] = co_await accepting;
        CHECK(peer == c.local_address());
        CHECK(conn.peer_address() == c.local_address());
        CHECK(c.peer_address() == where);

        const std::size_t n = co_await c.send("hello");
        CHECK(n == 5);
        std::string got = co_await conn.recv(100);
        CHECK(got == "hello");

        co_await conn.sendall("world!");
        std::array<std::byte, 16> buf{};
        const std::size_t m = co_await c.recv_into(buf);
        CHECK(std::string(reinterpret_cast<const char*>(buf.data()), m) == "world!");

        // A big sendall is split by the kernel and resent until complete.
        std::string big(3 << 20, 'x');
        auto reader = coio::create_task([](coio::socket& s, std::size_t want) -> coio::coro<std::size_t> {
            std::size_t total = 0;
            while (total < want) {
                std::string part = co_await s.recv(1 << 16);
                if (part.empty()) break;
                total += part.size();
            }
            co_return total;
        }(conn, big.size()));
        co_await c.sendall(big);
        { auto got_ = co_await reader; CHECK(got_ == big.size()); }

        co_await c.shutdown(SHUT_WR);
        { auto got_ = co_await conn.recv(10); CHECK(got_.empty()); }  // EOF after the peer's FIN
        co_await conn.close();
        CHECK_FALSE(conn.is_open());
        co_await conn.close();  // closing twice does nothing
    });
}

TEST_CASE("socket: options") {
    coio::socket s(AF_INET, SOCK_STREAM);
    s.set_reuse_address(true);
    CHECK(s.getsockopt(SOL_SOCKET, SO_REUSEADDR) != 0);
    s.set_reuse_port(true);
    CHECK(s.getsockopt(SOL_SOCKET, SO_REUSEPORT) != 0);
    s.set_nodelay(true);
    CHECK(s.getsockopt(IPPROTO_TCP, TCP_NODELAY) != 0);
    s.set_keepalive(true);
    CHECK(s.getsockopt(SOL_SOCKET, SO_KEEPALIVE) != 0);
    s.set_receive_buffer_size(1 << 16);
    s.set_send_buffer_size(1 << 16);
    CHECK(s.getsockopt(SOL_SOCKET, SO_RCVBUF) >= (1 << 16));
    const int fd = s.release();
    CHECK_FALSE(s.is_open());
    coio::socket back = coio::socket::from_fd(fd);
    CHECK(back.family() == AF_INET);
    CHECK(back.type() == SOCK_STREAM);
    coio::socket v6(AF_INET6, SOCK_STREAM);
    v6.set_v6only(true);
    CHECK(v6.getsockopt(IPPROTO_IPV6, IPV6_V6ONLY) != 0);
    coio::socket bad;
    CHECK_THROWS_AS(bad.getsockopt(SOL_SOCKET, SO_TYPE), std::system_error);
}

TEST_CASE("socket: connecting to a closed port is connection refused - naming the address") {
    run_test([]() -> coio::coro<void> {
        // A port that was just free: bind, read the port, close.
        std::uint16_t port;
        {
            coio::socket probe = listener_v4();
            port = probe.local_address().port();
        }
        coio::socket c(AF_INET, SOCK_STREAM);
        try {
            co_await c.connect(coio::endpoint("127.0.0.1", port));
            FAIL("connect succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_refused);
            CHECK_THAT(e.what(), Catch::Contains("127.0.0.1:" + std::to_string(port)));
        }
    });
}

TEST_CASE("socket: bind to a used address is address in use") {
    coio::socket a = listener_v4();
    coio::socket b(AF_INET, SOCK_STREAM);
    try {
        b.bind(a.local_address());
        FAIL("bind succeeded");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::address_in_use);
        CHECK_THAT(e.what(), Catch::Contains(a.local_address().to_string()));
    }
}

TEST_CASE("socket: IPv6 loopback") {
    run_test([]() -> coio::coro<void> {
        coio::socket l(AF_INET6, SOCK_STREAM);
        l.bind(coio::endpoint("::1", 0));
        l.listen();
        coio::socket c(AF_INET6, SOCK_STREAM);
        auto acc = coio::create_task([](coio::socket& l) -> coio::coro<coio::accepted_connection> { co_return co_await l.accept(); }(l));
        co_await c.connect(l.local_address());
        auto [conn, peer] = co_await acc;
        CHECK(peer.is_v6());
        CHECK(c.peer_address().to_string() == "[::1]:" + std::to_string(l.local_address().port()));
        co_await conn.sendall("six");
        { auto got_ = co_await c.recv(10); CHECK(got_ == "six"); }
    });
}

TEST_CASE("socket: cancelling a task blocked in recv_into leaves the buffer alone") {
    run_test([]() -> coio::coro<void> {
        coio::socket l = listener_v4();
        coio::socket c(AF_INET, SOCK_STREAM);
        auto acc = coio::create_task([](coio::socket& l) -> coio::coro<coio::accepted_connection> { co_return co_await l.accept(); }(l));
        co_await c.connect(l.local_address());
        auto [conn, peer] = co_await acc;

        std::array<std::byte, 64> buf;
        buf.fill(std::byte{0xAB});
        auto blocked = coio::create_task([](coio::socket& s, std::span<std::byte> b) -> coio::coro<std::size_t> {
            co_return co_await s.recv_into(b);
        }(conn, buf));
        co_await coio::sleep(20ms);
        CHECK_FALSE(blocked.done());
        blocked.cancel();
        CHECK_THROWS_AS(co_await blocked, coio::cancelled_error);
        // The kernel operation is gone: data sent now must not land in `buf`.
        co_await c.sendall("late data");
        co_await coio::sleep(20ms);
        CHECK(std::all_of(buf.begin(), buf.end(), [](std::byte b) { return b == std::byte{0xAB}; }));
        { auto got_ = co_await conn.recv(64); CHECK(got_ == "late data"); }  // and it was not lost
    });
}

TEST_CASE("socket: cancelling a task blocked in accept") {
    run_test([]() -> coio::coro<void> {
        coio::socket l = listener_v4();
        auto acc = coio::create_task([](coio::socket& l) -> coio::coro<coio::accepted_connection> { co_return co_await l.accept(); }(l));
        co_await coio::sleep(10ms);
        acc.cancel();
        CHECK_THROWS_AS(co_await acc, coio::cancelled_error);
        // The listener still works afterwards.
        coio::socket c(AF_INET, SOCK_STREAM);
        auto acc2 = coio::create_task([](coio::socket& l) -> coio::coro<coio::accepted_connection> { co_return co_await l.accept(); }(l));
        co_await c.connect(l.local_address());
        auto a = co_await acc2;
        CHECK(a.socket.is_open());
    });
}

TEST_CASE("socket: sending to a peer that has gone is EPIPE or ECONNRESET - never SIGPIPE") {
    run_test([]() -> coio::coro<void> {
        coio::socket l = listener_v4();
        coio::socket c(AF_INET, SOCK_STREAM);
        auto acc = coio::create_task([](coio::socket& l) -> coio::coro<coio::accepted_connection> { co_return co_await l.accept(); }(l));
        co_await c.connect(l.local_address());
        {
            auto a = co_await acc;
            linger lg{1, 0};  // close with RST
            a.socket.setsockopt(SOL_SOCKET, SO_LINGER, lg);
        }
        co_await coio::sleep(10ms);
        std::string chunk(1 << 16, 'z');
        bool failed = false;
        // Bounded: the first send may still succeed (it only fills the local buffer).
        for (int i = 0; i < 100 && !failed; ++i) {
            try {
                co_await c.send(chunk);
            } catch (const std::system_error& e) {
                failed = true;
                CHECK((e.code() == std::errc::broken_pipe || e.code() == std::errc::connection_reset));
            }
        }
        CHECK(failed);  // and the process is still alive: no SIGPIPE
    });
}

TEST_CASE("socket: close() cancels operations of other tasks") {
    run_test([]() -> coio::coro<void> {
        coio::socket l = listener_v4();
        coio::socket c(AF_INET, SOCK_STREAM);
        co_await c.connect(l.local_address());
        auto reader = coio::create_task([](coio::socket& s) -> coio::coro<std::string> { co_return co_await s.recv(10); }(c));
        co_await coio::sleep(10ms);
        co_await c.close();
        try {
            co_await reader;
            FAIL("recv returned");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::operation_canceled);
        }
    });
}

TEST_CASE("socket: UDP sendto and recvfrom - recvfrom_into") {
    run_test([]() -> coio::coro<void> {
        coio::socket a(AF_INET, SOCK_DGRAM), b(AF_INET, SOCK_DGRAM);
        a.bind(coio::endpoint("127.0.0.1", 0));
        b.bind(coio::endpoint("127.0.0.1", 0));
        { auto got_ = co_await a.sendto("ping", b.local_address()); CHECK(got_ == 4); }
        auto [data, from] = co_await b.recvfrom();
        CHECK(data == "ping");
        CHECK(from == a.local_address());
        co_await b.sendto(std::as_bytes(std::span(data.data(), data.size())), from);
        std::array<std::byte, 2> small{};
        auto [n, from2] = co_await a.recvfrom_into(small);  // truncated to the buffer
        CHECK(n == 2);
        CHECK(from2 == b.local_address());
    });
}

TEST_CASE("socket: Unix-domain stream sockets - filesystem and abstract names") {
    run_test([]() -> coio::coro<void> {
        for (std::string path : {std::string("/tmp/coio-test-socket-") + std::to_string(::getpid()),
                                 std::string("\0coio-test-abstract-", 20) + std::to_string(::getpid())}) {
            ::unlink(path.c_str());
            coio::socket l(AF_UNIX, SOCK_STREAM);
            l.bind_unix(path);
            l.listen();
            CHECK(l.local_path() == path);
            coio::socket c(AF_UNIX, SOCK_STREAM);
            auto acc = coio::create_task([](coio::socket& l) -> coio::coro<coio::accepted_connection> { co_return co_await l.accept(); }(l));
            co_await c.connect_unix(path);
            auto [conn, peer] = co_await acc;
            CHECK(peer.empty());
            CHECK(c.peer_path() == path);
            CHECK_THROWS_AS(c.peer_address(), std::invalid_argument);
            co_await c.sendall("unix");
            { auto got_ = co_await conn.recv(10); CHECK(got_ == "unix"); }
            if (path[0] != '\0') ::unlink(path.c_str());
        }
        coio::socket bad(AF_UNIX, SOCK_STREAM);
        try {
            co_await bad.connect_unix("/tmp/coio-no-such-socket");
            FAIL("connected");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::no_such_file_or_directory);
            CHECK_THAT(e.what(), Catch::Contains("/tmp/coio-no-such-socket"));
        }
        CHECK_THROWS_AS(bad.connect_unix(std::string(200, 'p')), std::system_error);
    });
}
