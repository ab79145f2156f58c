// Tests of coio/stream_writer.hpp: asyncio.StreamWriter semantics and flow control.
#include <coio/stream_writer.hpp>
#include "support/catch.hpp"
#include "support/stream_pair.hpp"

#include <coio/run.hpp>
#include <coio/server.hpp>
#include <coio/sleep.hpp>
#include <coio/socket.hpp>
#include <coio/streams.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <any>
#include <chrono>
#include <string>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using namespace stream_test;

TEST_CASE("stream_writer: write - writelines - drain - TCP_NODELAY by default - names") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair();
        CHECK(c.writer.socket().getsockopt(IPPROTO_TCP, TCP_NODELAY) != 0);
        CHECK(c.writer.peername() == c.peer.local_address());
        CHECK(c.writer.sockname() == c.peer.peer_address());
        c.writer.write("abc");
        c.writer.write(std::as_bytes(std::span("def", 3)));
        c.writer.writelines(std::vector<std::string>{"g", "hi", "\n"});
        co_await c.writer.drain();
        { auto got_ = co_await recv_exactly(c.peer, 10); CHECK(got_ == "abcdefghi\n"); }
        CHECK(c.writer.can_write_eof());
        CHECK_FALSE(c.writer.is_closing());
    });
}

TEST_CASE("stream_writer: drain blocks above the high-water mark until the peer reads") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({.write_high_water = 1 << 16});
        const std::string chunk(1 << 16, 'w');
        // Write until drain would block (the peer reads nothing): bounded loop.
        bool blocked = false;
        std::size_t written = 0;
        for (int i = 0; i < 1000 && !blocked; ++i) {
            c.writer.write(chunk);
            written += chunk.size();
            auto d = coio::create_task([](coio::stream_writer& w) -> coio::coro<void> { co_await w.drain(); }(c.writer));
            co_await coio::sleep(2ms);
            if (!d.done()) {
                blocked = true;
                CHECK(c.writer.write_buffer_size() > (1u << 16));
                // Let the peer read everything; drain then completes.
                auto r = coio::create_task(recv_exactly(c.peer, written));
                co_await d;
                CHECK(c.writer.write_buffer_size() <= (1u << 14));
                { auto got_ = co_await r; CHECK(got_.size() == written); }
            } else {
                co_await d;
            }
        }
        CHECK(blocked);
        c.writer.set_write_buffer_limits(1 << 20);
        c.writer.set_write_buffer_limits(1 << 20, 1 << 10);
    });
}

TEST_CASE("stream_writer: the send in flight is not buffered - drain waits only for what queues behind it") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({.write_high_water = 1 << 16});
        // An idle writer hands a write to the kernel at once (a send(2) on epoll, the send
        // operation on io_uring): even above the high-water mark, nothing counts as buffered
        // and drain() does not wait (it used to wait one loop iteration for the send's
        // completion, serialising streaming handlers).
        const std::string big((1 << 16) + 1, 'x');
        c.writer.write(big);
        CHECK(c.writer.write_buffer_size() == 0);
        // What is written behind a send in flight is buffered and counts for flow control:
        // "small" is, behind the big send on io_uring; on epoll the socket took the big write
        // at once, so "small" is the send in flight and the second big write queues behind it.
        c.writer.write("small");
        const std::size_t queued = c.writer.write_buffer_size();
        CHECK((queued == 0 || queued == 5));
        c.writer.write(big);
        CHECK(c.writer.write_buffer_size() == queued + big.size());
        co_await c.writer.drain();
        CHECK(c.writer.write_buffer_size() <= (1u << 14));
        { auto got_ = co_await recv_exactly(c.peer, 2 * big.size() + 5); CHECK(got_ == big + "small" + big); }
    });
}

TEST_CASE("stream_writer: write(std::string&&) takes a large string over - order with other writes holds") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({.write_high_water = 1 << 16});
        auto pattern = [](std::size_t n, int seed) {
            std::string s(n, '\0');
            for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + static_cast<std::size_t>(seed)) >> 1);
            return s;
        };
        const std::string big1 = pattern(100000, 1), big2 = pattern(3 << 20, 2), big3 = pattern(20000, 3);
        const std::size_t total = 3 * (4 + big1.size() + 3 + big2.size() + 4 + big3.size());
        auto receiver = coio::create_task(recv_exactly(c.peer, total));  // drain needs a reader
        std::string expected;
        for (int round = 0; round < 3; ++round) {
            c.writer.write("head");                   // small: buffered
            c.writer.write(std::string(big1));        // taken over (idle or behind a send)
            c.writer.write(std::string_view("mid"));  // small, behind a taken-over string
            std::string moved = big2;
            c.writer.write(std::move(moved));         // taken over
            c.writer.write(std::string("tiny"));      // an rvalue below the threshold: copied
            c.writer.write(big3);                     // an lvalue: copied
            expected += "head" + big1 + "mid" + big2 + "tiny" + big3;
            CHECK(c.writer.write_buffer_size() <= expected.size());
            co_await c.writer.drain();
        }
        auto got = co_await receiver;
        CHECK(got.size() == expected.size());
        CHECK(got == expected);
    });
}

TEST_CASE("stream_writer: large writes into a socket that fills up - the refused part follows once the peer reads, in order") {
    // The peer reads nothing until 8 MiB have been written in 256 KiB pieces without drain:
    // on epoll the first go straight to the socket until it takes only part of one, whose
    // rest then waits for room (not for another try first); the later ones queue behind it.
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({});
        std::string expected;
        for (int i = 0; i < 32; ++i) {
            std::string piece(256 * 1024, '\0');
            for (std::size_t k = 0; k < piece.size(); ++k) piece[k] = static_cast<char>('a' + (k / 4099 + static_cast<std::size_t>(i)) % 26);
            c.writer.write(piece);
            expected += piece;
        }
        CHECK(c.writer.write_buffer_size() > 0);  // the socket did not take 8 MiB at once
        co_await coio::sleep(10ms);                // the refused part waits; nothing is lost
        auto got = co_await recv_exactly(c.peer, expected.size());
        co_await c.writer.drain();
        CHECK(c.writer.write_buffer_size() == 0);
        CHECK(got.size() == expected.size());
        CHECK(got == expected);
    });
}

TEST_CASE("stream_writer: write_eof half-closes - the other direction still works") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair();
        c.writer.write("request");
        c.writer.write_eof();
        { auto got_ = co_await recv_exactly(c.peer, 100); CHECK(got_ == "request"); }  // then EOF
        co_await c.peer.sendall("reply");
        co_await c.peer.shutdown(SHUT_WR);
        { auto got_ = co_await c.reader.read(); CHECK(got_ == "reply"); }  // read() until EOF below
        CHECK_THROWS_AS(c.writer.write("more"), coio::invalid_state_error);
    });
}

TEST_CASE("stream_writer: close flushes - wait_closed - is_closing - write after close") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair();
        const std::string big(1 << 20, 'q');
        c.writer.write(big);
        c.writer.close();
        CHECK(c.writer.is_closing());
        c.writer.close();  // idempotent
        CHECK_THROWS_AS(c.writer.write("x"), coio::invalid_state_error);
        auto r = coio::create_task(recv_exactly(c.peer, big.size() + 1));
        co_await c.writer.wait_closed();
        { auto got_ = co_await r; CHECK(got_ == big); }  // everything was flushed before the close, then EOF
    });
}

TEST_CASE("stream_writer: writing to a peer that has gone fails in drain with EPIPE or ECONNRESET") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair();
        linger lg{1, 0};
        c.peer.setsockopt(SOL_SOCKET, SO_LINGER, lg);
        c.peer = coio::socket();
        co_await coio::sleep(10ms);
        const std::string chunk(1 << 16, 'e');
        bool failed = false;
        for (int i = 0; i < 200 && !failed; ++i) {
            c.writer.write(chunk);  // never throws for a lost connection, as in asyncio
            try {
                co_await c.writer.drain();
                co_await coio::sleep(1ms);
            } catch (const std::system_error& e) {
                failed = true;
                CHECK((e.code() == std::errc::broken_pipe || e.code() == std::errc::connection_reset));
                CHECK_THAT(e.what(), Catch::Contains("127.0.0.1:"));
            }
        }
        CHECK(failed);
        c.writer.close();
        co_await c.writer.wait_closed();
    });
}

TEST_CASE("stream_writer: dropping reader and writer closes the connection") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair();
        c.writer.write("bye");
        { auto r = std::move(c.reader); auto w = std::move(c.writer); }
        { auto got_ = co_await recv_exactly(c.peer, 10); CHECK(got_ == "bye"); }  // flushed, then EOF
        coio::stream_writer empty;
        CHECK_FALSE(empty);
        CHECK(empty.is_closing());
        CHECK_THROWS_AS(empty.write("x"), coio::invalid_state_error);
    });
}

TEST_CASE("stream_writer: get_extra_info as in asyncio - peername, sockname, socket, unknown names") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair();
        const std::any peer = c.writer.get_extra_info("peername");
        REQUIRE(std::any_cast<coio::endpoint>(&peer));
        CHECK(std::any_cast<coio::endpoint>(peer) == c.peer.local_address());
        CHECK(std::any_cast<coio::endpoint>(c.writer.get_extra_info("sockname")) == c.peer.peer_address());
        CHECK(std::any_cast<const coio::socket*>(c.writer.get_extra_info("socket")) == &c.writer.socket());
        CHECK_FALSE(c.writer.get_extra_info("sslcontext").has_value());          // asyncio: None
        CHECK(std::any_cast<int>(c.writer.get_extra_info("nonsense", 7)) == 7);  // the default
    });
    run_test([]() -> coio::coro<void> {
        const std::string path = "/tmp/coio-test-extra-info-" + std::to_string(::getpid()) + ".sock";
        auto srv = co_await coio::start_unix_server(
            [](coio::stream_reader, coio::stream_writer) -> coio::coro<void> { co_return; }, path);
        auto [r, w] = co_await coio::open_unix_connection(path);
        CHECK(std::any_cast<std::string>(w.get_extra_info("peername")) == path);
        CHECK(std::any_cast<std::string>(w.get_extra_info("sockname")).empty());  // an unbound client
        w.close();
        srv.close();
        co_await srv.wait_closed();
    });
    CHECK_THROWS_AS(coio::stream_writer().get_extra_info("peername"), coio::invalid_state_error);
}
