// Tests of coio/stream_chunk.hpp: zero-copy receive (stream_reader::read_chunk) and send
// (stream_writer::write(stream_chunk)), in both receive modes, over real loopback sockets.
#include <coio/stream_chunk.hpp>
#include "support/catch.hpp"
#include "support/co_check.hpp"
#include "support/stream_pair.hpp"

#include <coio/run.hpp>
#include <coio/server.hpp>
#include <coio/sleep.hpp>
#include <coio/socket.hpp>
#include <coio/streams.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <span>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using namespace stream_test;

namespace {

// Position-dependent bytes, with a newline now and then for readline.
std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = i % 97 == 96 ? '\n' : static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return s;
}

// CPU time (user + sys) of this thread.
std::chrono::microseconds thread_cpu() {
    rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    return std::chrono::seconds(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           std::chrono::microseconds(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}


constexpr std::size_t ring_bytes = std::size_t{coio::loop_options{}.receive_buffers} * coio::loop_options{}.receive_buffer_size;

}  // namespace

TEST_CASE("stream_chunk: empty by default - move - remove_prefix - reset") {
    coio::stream_chunk a;
    CHECK(a.empty());
    CHECK(a.size() == 0);
    CHECK(a.bytes().empty());
    auto b = coio::stream_chunk::from_vector(std::vector<std::byte>{std::byte{'x'}, std::byte{'y'}, std::byte{'z'}}, 1, 2);
    CHECK(b.view() == "yz");
    a = std::move(b);
    CHECK(b.empty());  // NOLINT(bugprone-use-after-move): moved-from chunks are empty by contract
    CHECK(a.view() == "yz");
    coio::stream_chunk c(std::move(a));
    c.remove_prefix(1);
    CHECK(c.view() == "z");
    CHECK(c.size() == 1);
    c.reset();
    CHECK(c.empty());
}

namespace {

// Echoes through read_chunk + write(chunk) until EOF, then half-closes; returns how many
// chunks went through.
coio::coro<std::size_t> echo_by_chunks(coio::stream_reader& r, coio::stream_writer& w) {
    std::size_t chunks = 0;
    for (;;) {
        coio::stream_chunk chunk = co_await r.read_chunk();
        if (chunk.empty()) break;
        ++chunks;
        w.write(std::move(chunk));
        co_await w.drain();
    }
    w.write_eof();
    co_return chunks;
}

// Sends `data` from the peer through the echo on `c`, and returns what came back before EOF.
coio::coro<std::string> echo_through(conn& c, const std::string& data, std::size_t& chunks) {
    auto echo = coio::create_task(echo_by_chunks(c.reader, c.writer));
    auto sender = coio::create_task([](coio::socket& s, const std::string& d) -> coio::coro<void> {
        co_await s.sendall(d);
        co_await s.shutdown(SHUT_WR);
    }(c.peer, data));
    std::string back = co_await recv_exactly(c.peer, data.size() + 1);  // +1: then EOF
    co_await sender;
    chunks = co_await echo;
    co_return back;
}

}  // namespace

TEST_CASE("stream_chunk: echo round trip through read_chunk and write(chunk) - 8 MiB byte-exact") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            const std::string data = pattern(8 << 20);
            std::size_t chunks = 0;
            std::string back = co_await echo_through(c, data, chunks);
            CHECK(chunks > 1);
            CHECK(back.size() == data.size());
            CHECK(back == data);
        });
    }
}

TEST_CASE("stream_chunk: request/response messages of every size come out whole, one chunk each") {
    // One message at a time (the peer waits for each echo), so each read_chunk finds exactly
    // one message: sizes on both sides of half a receive buffer (a chunk read in plain mode
    // copies a small message out and keeps the buffer, and hands a large one over) and a
    // full one.
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            const std::string data = pattern(200'000);
            std::size_t off = 0;
            for (std::size_t n : {1, 64, 100, 32'767, 32'768, 40'000, 5, 65'536, 3}) {
                INFO("message of " << n << " bytes");
                const std::string msg = data.substr(off, n);
                off += n;
                co_await c.peer.sendall(msg);
                std::string got;
                while (got.size() < n) {
                    coio::stream_chunk chunk = co_await c.reader.read_chunk();
                    REQUIRE_FALSE(chunk.empty());
                    got.append(chunk.view());
                }
                CHECK(got == msg);
                c.writer.write(coio::stream_chunk::from_vector(std::vector<std::byte>(n, std::byte{'e'}), 0, n));
                co_await c.writer.drain();
                const std::string echoed = co_await recv_exactly(c.peer, n);
                CHECK(echoed == std::string(n, 'e'));
            }
        });
    }
}

TEST_CASE("stream_chunk: the receive ring's size comes from loop_options") {
    // 4 buffers of 4 KiB: the ring runs dry all the time, and the echo still comes back
    // byte-exact; every buffer is back in the ring at the end.
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({});
        const std::string data = pattern(1 << 20);
        std::size_t chunks = 0;
        std::string back = co_await echo_through(c, data, chunks);
        CHECK(back == data);
        CHECK(chunks >= (1 << 20) / (64 * 1024));
        auto* ring = coio::get_running_loop().service<coio::detail::net_service>().buffers();
        REQUIRE(ring != nullptr);
        CHECK(ring->buffer_size() == 4096);
        CHECK(ring->available() == 4);
    }, {.receive_buffers = 4, .receive_buffer_size = 4096});

    CHECK_THROWS_AS(coio::event_loop({.receive_buffers = 3}), std::invalid_argument);
    CHECK_THROWS_AS(coio::event_loop({.receive_buffers = 0}), std::invalid_argument);
    CHECK_THROWS_AS(coio::event_loop({.receive_buffer_size = 0}), std::invalid_argument);
}

TEST_CASE("stream_chunk: a request/response stream reuses a few recently returned buffers") {
    // A buffer returned a moment ago is still in the CPU's cache; one returned a whole ring
    // ago is not. 512 requests of 64 KiB, each answered before the next is sent, through one
    // stream with the default ring (256 x 64 KiB), each chunk dropped once read: the receives
    // land in a handful of buffers instead of cycling through all 256 (as a ring that hands
    // the kernel every buffer, oldest first, did).
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({});
        auto* ring = coio::get_running_loop().service<coio::detail::net_service>().buffers();
        REQUIRE(ring != nullptr);
        const auto base = reinterpret_cast<std::uintptr_t>(ring->data(0));
        const std::size_t size = ring->buffer_size();
        const std::string data = pattern(64 * 1024);
        std::vector<std::size_t> seen;  // ids of the ring buffers the chunks came in
        std::size_t in_ring = 0;
        bool same = true;
        for (int round = 0; round < 512; ++round) {
            co_await c.peer.sendall(data);
            std::size_t got = 0;
            while (got < data.size()) {
                coio::stream_chunk chunk = co_await c.reader.read_chunk();
                REQUIRE_FALSE(chunk.empty());
                same = same && chunk.view() == std::string_view(data).substr(got, chunk.size());
                got += chunk.size();
                const auto at = reinterpret_cast<std::uintptr_t>(chunk.data());
                if (at < base || at >= base + 256 * size) continue;  // not a ring buffer
                ++in_ring;
                const std::size_t id = (at - base) / size;
                if (std::find(seen.begin(), seen.end(), id) == seen.end()) seen.push_back(id);
            }
            c.writer.write(std::string_view("k"));
            co_await c.writer.drain();
            const std::string ack = co_await recv_exactly(c.peer, 1);
            REQUIRE(ack == "k");
        }
        CHECK(same);
        CHECK(in_ring >= 500);  // the requests went through the ring, about twice around it
        INFO("distinct receive buffers: " << seen.size());
        CHECK(seen.size() <= 32);
        CHECK(ring->available() == 256);
    });
}

namespace {

// True when the io_uring backend switches between its two ways of receiving as designed
// (not forced by COIO_URING_STREAMING_RUN, which the suite's extra run sets to 0).
bool switching_as_designed() {
    const char* v = std::getenv("COIO_URING_STREAMING_RUN");
    return coio::get_running_loop().backend() == coio::backend::io_uring && (!v || !*v);
}

// `rounds` requests of 64 bytes from the peer, each read and answered through the stream.
coio::coro<void> small_requests(conn& c, int rounds) {
    for (int i = 0; i < rounds; ++i) {
        const std::string msg = pattern(64);
        co_await c.peer.sendall(msg);
        std::string got;
        while (got.size() < msg.size()) {
            coio::stream_chunk chunk = co_await c.reader.read_chunk();
            REQUIRE_FALSE(chunk.empty());
            got += chunk.view();
        }
        REQUIRE(got == msg);
        c.writer.write(std::string_view("k"));
        co_await c.writer.drain();
        const std::string ack = co_await recv_exactly(c.peer, 1);
        REQUIRE(ack == "k");
    }
}

} // namespace

TEST_CASE("stream_chunk: a bulk stream is received readiness-style, small requests by the kernel's multishot") {
    // The io_uring backend receives a stream's bulk data with recv(2) when the socket is
    // readable (faster for streaming on this kernel) and messages with the kernel's
    // multishot receive (fewer system calls). The switches must not change a byte.
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({.limit = 1 << 20});
        coio::event_loop& loop = coio::get_running_loop();
        const bool check = switching_as_designed();

        // Messages: after the first few, the kernel's multishot receives them.
        co_await small_requests(c, 20);
        const auto after_messages = loop.streaming_receives();
        co_await small_requests(c, 20);
        if (check) CHECK(loop.streaming_receives() == after_messages);

        // A bulk stream: 8 MiB, read in chunks while the peer sends.
        const std::string data = pattern(8 << 20);
        auto sender = coio::create_task([](coio::socket& s, const std::string& d) -> coio::coro<void> {
            co_await s.sendall(d);
        }(c.peer, data));
        std::size_t got = 0;
        bool same = true;
        while (got < data.size()) {
            coio::stream_chunk chunk = co_await c.reader.read_chunk();
            REQUIRE_FALSE(chunk.empty());
            same = same && chunk.view() == std::string_view(data).substr(got, chunk.size());
            got += chunk.size();
        }
        co_await sender;
        CHECK(same);
        CHECK(got == data.size());
        const auto after_stream = loop.streaming_receives();
        INFO("receives made readiness-style during the 8 MiB: " << after_stream - after_messages);
        if (check) CHECK(after_stream - after_messages >= 32);  // most of its 128+ receives

        // Messages again: back to the kernel's multishot after a few.
        co_await small_requests(c, 20);
        const auto settled = loop.streaming_receives();
        co_await small_requests(c, 20);
        if (check) CHECK(loop.streaming_receives() == settled);
        if (loop.backend() == coio::backend::epoll) CHECK(loop.streaming_receives() == 0);
        c.writer.close();
        co_await c.writer.wait_closed();
    });
}

TEST_CASE("stream_chunk: pausing and closing a stream received readiness-style loses nothing") {
    // A slow reader with a small limit makes the stream pause (cancel its receive) in the
    // middle of a readiness round, between two deliveries, and resume; then the stream is
    // closed while the peer still sends. Every byte arrives in order, and every buffer
    // goes back to the ring.
    run_test([]() -> coio::coro<void> {
        auto* ring = coio::get_running_loop().service<coio::detail::net_service>().buffers();
        REQUIRE(ring != nullptr);
        const unsigned total = ring->available();
        {
        auto c = co_await connect_pair({.limit = 64 * 1024});
        const std::string data = pattern(6 << 20);
        const std::string twice = data + data;  // what the peer sends (the last chunk read may reach into the second)
        auto sender = coio::create_task([](coio::socket& s, const std::string& d) -> coio::coro<void> {
            try {
                co_await s.sendall(d);
                co_await s.sendall(d);  // the stream closes during this one
            } catch (const std::system_error&) {
                // the stream closed: the peer's send fails (reset), which is the point
            }
        }(c.peer, data));
        std::size_t got = 0;
        bool same = true;
        int pauses = 0;
        while (got < data.size()) {
            coio::stream_chunk chunk = co_await c.reader.read_chunk();
            REQUIRE_FALSE(chunk.empty());
            same = same && chunk.view() == std::string_view(twice).substr(got, chunk.size());
            got += chunk.size();
            if (got % (512 * 1024) < chunk.size()) {
                ++pauses;
                co_await coio::sleep(2ms);  // let the receive run ahead and pause
            }
        }
        CHECK(same);
        CHECK(pauses >= 8);
        c.writer.close();
        co_await c.writer.wait_closed();
        co_await sender;
        }  // the stream and the peer are gone
        CHECK(ring->available() == total);
    });
}

TEST_CASE("stream_chunk: read and readline interleaved with read_chunk keep the byte order") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.limit = 1 << 20, .multishot_recv = ms});
            const std::string data = pattern(3 << 20);
            auto sender = coio::create_task([](coio::socket& s, const std::string& d) -> coio::coro<void> {
                co_await s.sendall(d);
                co_await s.shutdown(SHUT_WR);
            }(c.peer, data));
            std::string got;
            std::array<std::byte, 1000> buf{};
            for (int step = 0; step < 1'000'000; ++step) {
                std::string part;
                switch (step % 5) {
                case 0: part = co_await c.reader.readline(); break;
                case 1: {
                    coio::stream_chunk ch = co_await c.reader.read_chunk();
                    part = std::string(ch.view());
                    break;
                }
                case 2: part = co_await c.reader.read(777); break;
                case 3: {
                    const std::size_t n = co_await c.reader.read_into(buf);
                    part.assign(reinterpret_cast<const char*>(buf.data()), n);
                    break;
                }
                default: {
                    // two chunks in a row: the second comes from the queue of ring buffers
                    coio::stream_chunk a = co_await c.reader.read_chunk();
                    coio::stream_chunk b = co_await c.reader.read_chunk();
                    part = std::string(a.view()) + std::string(b.view());
                    break;
                }
                }
                if (part.empty()) break;
                got += part;
            }
            co_await sender;
            CHECK(c.reader.at_eof());
            CHECK(got.size() == data.size());
            CHECK(got == data);
        });
    }
}

TEST_CASE("stream_chunk: bytes buffered by readline come out first as a chunk of their own") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            co_await c.peer.sendall("head\nbody-1");
            { auto line = co_await c.reader.readline(); CHECK(line == "head\n"); }
            coio::stream_chunk first = co_await c.reader.read_chunk();
            CHECK(first.view() == "body-1");
            co_await c.peer.sendall("body-2");
            coio::stream_chunk second = co_await c.reader.read_chunk();
            CHECK(second.view() == "body-2");
            CHECK(c.reader.buffered() == 0);
        });
    }
}

TEST_CASE("stream_chunk: holding chunks until the ring is dry - no spin - no lost bytes") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({.multishot_recv = true});
        auto idle = co_await connect_pair({.multishot_recv = true});  // its receive is armed
        const std::string data = pattern(ring_bytes + (8 << 20));  // more than the ring holds
        auto sender = coio::create_task([](coio::socket& s, const std::string& d) -> coio::coro<void> {
            co_await s.sendall(d);
            co_await s.shutdown(SHUT_WR);
        }(c.peer, data));

        // Read and hold more than the whole ring: once every ring buffer is held, a waiting
        // reader still makes progress (plain recv into the stream's own buffer).
        std::vector<coio::stream_chunk> held;
        std::size_t held_bytes = 0;
        for (int i = 0; i < 1'000'000 && held_bytes < ring_bytes + (4 << 20); ++i) {
            coio::stream_chunk ch = co_await c.reader.read_chunk();
            REQUIRE_FALSE(ch.empty());
            held_bytes += ch.size();
            held.push_back(std::move(ch));
        }
        CHECK(held_bytes >= ring_bytes + (4 << 20));

        // Nobody reads now and the ring is dry. Data for the idle connection makes the
        // kernel end its multishot receive with -ENOBUFS: both streams must wait for a
        // buffer, not spin re-arming (which would burn this thread's CPU for the sleep).
        co_await idle.peer.sendall("ping");
        const std::size_t buffered_before = c.reader.buffered();
        const auto cpu0 = thread_cpu();
        co_await coio::sleep(200ms);
        const auto cpu = thread_cpu() - cpu0;
        CHECK(cpu < 100ms);
        CHECK(c.reader.buffered() <= buffered_before + 2 * 65536);
        CHECK(idle.reader.buffered() == 0);

        // Release the chunks (in order: verify them first): receiving resumes.
        std::string got;
        got.reserve(data.size());
        for (auto& ch : held) got.append(ch.view());
        held.clear();
        for (int i = 0; i < 1'000'000; ++i) {
            coio::stream_chunk ch = co_await c.reader.read_chunk();
            if (ch.empty()) break;
            got.append(ch.view());
        }
        co_await sender;
        CHECK(got.size() == data.size());
        CHECK(got == data);
        // The idle stream got a buffer back and its bytes.
        coio::stream_chunk ping = co_await idle.reader.read_chunk();
        CHECK(ping.view() == "ping");
    });
}

TEST_CASE("stream_chunk: a dry ring does not stall another connection's reader") {
    run_test([]() -> coio::coro<void> {
        auto hog = co_await connect_pair({.multishot_recv = true});
        auto other = co_await connect_pair({.multishot_recv = true});
        const std::string data = pattern(ring_bytes + (2 << 20));
        auto sender = coio::create_task([](coio::socket& s, const std::string& d) -> coio::coro<void> {
            co_await s.sendall(d);
        }(hog.peer, data));
        std::vector<coio::stream_chunk> held;
        std::size_t held_bytes = 0;
        for (int i = 0; i < 1'000'000 && held_bytes < data.size(); ++i) {
            coio::stream_chunk ch = co_await hog.reader.read_chunk();
            held_bytes += ch.size();
            held.push_back(std::move(ch));
        }
        // Every ring buffer may be held now; the other connection still receives.
        co_await other.peer.sendall("still here\n");
        {
            auto line = co_await coio::wait_for(other.reader.readline(), 5s);
            CHECK(line == "still here\n");
        }
        co_await other.peer.sendall("chunk too");
        {
            coio::stream_chunk ch = co_await coio::wait_for(other.reader.read_chunk(), 5s);
            CHECK(ch.view() == "chunk too");
        }
        co_await other.peer.sendall("into a span");  // the fallback recv writes into it directly
        {
            std::array<std::byte, 64> buf{};
            auto read_into = [](coio::stream_reader& r, std::span<std::byte> b) -> coio::coro<std::size_t> {
                co_return co_await r.read_into(b);
            };
            const std::size_t n = co_await coio::wait_for(read_into(other.reader, buf), 5s);
            CHECK(std::string_view(reinterpret_cast<const char*>(buf.data()), n) == "into a span");
        }
        co_await sender;
    });
}

TEST_CASE("stream_chunk: chunks outlive their stream, server and event loop") {
    std::vector<coio::stream_chunk> kept;
    const std::string data = pattern(1 << 20);
    coio::run([](std::vector<coio::stream_chunk>& kept, const std::string& data) -> coio::coro<void> {
        std::size_t kept_bytes = 0;
        auto srv = co_await coio::start_server(
            [&kept, &kept_bytes](coio::stream_reader r, coio::stream_writer w) -> coio::coro<void> {
                std::string line = co_await r.readline();  // leaves bytes in the stream's buffer
                w.write(line);
                for (;;) {
                    coio::stream_chunk ch = co_await r.read_chunk();
                    if (ch.empty()) break;
                    if (line == "keep\n") {
                        kept_bytes += ch.size();
                        kept.push_back(std::move(ch));
                    } else {
                        w.write(std::move(ch));  // to a client that never reads: stays queued
                    }
                }
            },
            "127.0.0.1", 0);
        const std::uint16_t port = srv.sockets().front().local_address().port();
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port);
        w.write("keep\n");
        w.write(data);
        w.write_eof();
        { auto line = co_await r.readline(); CHECK(line == "keep\n"); }
        auto [r2, w2] = co_await coio::open_connection("127.0.0.1", port);
        w2.write("echo\n");
        w2.write(data);
        for (int i = 0; i < 2000 && kept_bytes < data.size(); ++i) co_await coio::sleep(1ms);
        CHECK(kept_bytes == data.size());
        srv.close();  // cancels the echo handler; loop.close() aborts its queued sends
        co_await srv.wait_closed();
    }(kept, data));
    // The loop, its ring registration and every stream are gone; the chunks still read.
    std::string got;
    for (auto& ch : kept) got.append(ch.view());
    CHECK(got == data);
    kept.clear();  // frees the last buffers (and with them the ring's memory): ASan checks
}

TEST_CASE("stream_chunk: read_chunk while another task waits in readexactly is refused, and loses nothing") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            auto exact = coio::create_task([](coio::stream_reader& r) -> coio::coro<std::string> {
                co_return co_await r.readexactly(6);
            }(c.reader));
            co_await coio::sleep(5ms);  // `exact` waits for data now
            bool refused = false;
            try {
                (void)co_await c.reader.read_chunk();
            } catch (const coio::invalid_state_error&) {
                refused = true;
            }
            CHECK(refused);
            // Received afterwards: all of it must reach the copying read, in order.
            co_await c.peer.sendall("abc");
            co_await coio::sleep(5ms);
            co_await c.peer.sendall("def");
            std::string got = co_await exact;
            CHECK(got == "abcdef");
        });
    }
}

TEST_CASE("stream_chunk: cancelling a task waiting in read_chunk loses no bytes") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            auto blocked = coio::create_task([](coio::stream_reader& r) -> coio::coro<std::string> {
                coio::stream_chunk ch = co_await r.read_chunk();
                co_return std::string(ch.view());
            }(c.reader));
            co_await coio::sleep(10ms);
            blocked.cancel();
            CHECK_THROWS_AS(co_await blocked, coio::cancelled_error);
            co_await c.peer.sendall("after");
            coio::stream_chunk ch = co_await c.reader.read_chunk();
            CHECK(ch.view() == "after");

            // Data and cancellation in the same iteration: the bytes come out exactly once,
            // from the cancelled read or from the next one.
            auto racing = coio::create_task([](coio::stream_reader& r) -> coio::coro<std::string> {
                coio::stream_chunk ch = co_await r.read_chunk();
                co_return std::string(ch.view());
            }(c.reader));
            co_await coio::sleep(10ms);
            co_await c.peer.sendall("race");
            co_await coio::sleep(5ms);
            racing.cancel();
            std::string got;
            try {
                got = co_await racing;
            } catch (const coio::cancelled_error&) {
            }
            co_await c.peer.sendall("!");
            co_await c.peer.shutdown(SHUT_WR);
            for (int i = 0; i < 100; ++i) {
                coio::stream_chunk more = co_await c.reader.read_chunk();
                if (more.empty()) break;
                got.append(more.view());
            }
            CHECK(got == "race!");
        });
    }
}

TEST_CASE("stream_chunk: EOF gives an empty chunk - a reset gives connection_reset after the data") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            co_await c.peer.sendall("last");
            co_await c.peer.shutdown(SHUT_WR);
            std::string got;
            for (int i = 0; i < 10; ++i) {
                coio::stream_chunk ch = co_await c.reader.read_chunk();
                if (ch.empty()) break;
                got.append(ch.view());
            }
            CHECK(got == "last");
            CHECK(c.reader.at_eof());
            coio::stream_chunk again = co_await c.reader.read_chunk();
            CHECK(again.empty());

            auto d = co_await connect_pair({.multishot_recv = ms});
            co_await d.peer.sendall("data");
            co_await coio::sleep(10ms);
            linger lg{1, 0};
            d.peer.setsockopt(SOL_SOCKET, SO_LINGER, lg);
            d.peer = coio::socket();  // close with RST
            coio::stream_chunk first = co_await d.reader.read_chunk();
            CHECK(first.view() == "data");
            try {
                coio::stream_chunk none = co_await d.reader.read_chunk();
                FAIL("read_chunk returned " << none.size() << " bytes");
            } catch (const std::system_error& e) {
                CHECK(e.code() == std::errc::connection_reset);
            }
        });
    }
}

TEST_CASE("stream_chunk: write(chunk) keeps order with write(bytes) - drain counts chunks") {
    run_test([]() -> coio::coro<void> {
        auto src = co_await connect_pair({.multishot_recv = true});
        auto dst = co_await connect_pair({.write_high_water = 1 << 16});
        // Small kernel buffers, so the writer's own buffer fills after a few chunks.
        const int small = 1 << 16;
        ::setsockopt(dst.writer.socket().fileno(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        dst.peer.setsockopt(SOL_SOCKET, SO_RCVBUF, 1 << 16);
        co_await src.peer.sendall("BCD");
        coio::stream_chunk bcd = co_await src.reader.read_chunk();
        co_await src.peer.sendall("FG");
        coio::stream_chunk fg = co_await src.reader.read_chunk();
        REQUIRE(bcd.view() == "BCD");
        REQUIRE(fg.view() == "FG");
        dst.writer.write("A");
        dst.writer.write(std::move(bcd));
        dst.writer.write("E");
        dst.writer.write(std::move(fg));
        dst.writer.write("H");
        dst.writer.write(coio::stream_chunk());  // empty: ignored
        co_await dst.writer.drain();
        { auto got = co_await recv_exactly(dst.peer, 8); CHECK(got == "ABCDEFGH"); }

        // Chunks count for flow control: the peer reads nothing, so drain must block.
        const std::string big = pattern(4 << 20);
        auto sender = coio::create_task([](coio::socket& s, const std::string& d) -> coio::coro<void> { co_await s.sendall(d); }(src.peer, big));
        std::size_t queued = 0;
        bool blocked = false;
        for (int i = 0; i < 100000 && !blocked && queued < big.size(); ++i) {
            coio::stream_chunk ch = co_await src.reader.read_chunk();
            queued += ch.size();
            dst.writer.write(std::move(ch));
            auto d = coio::create_task([](coio::stream_writer& w) -> coio::coro<void> { co_await w.drain(); }(dst.writer));
            co_await coio::sleep(1ms);
            if (!d.done()) {
                blocked = true;
                CHECK(dst.writer.write_buffer_size() > (1u << 16));
                auto r = coio::create_task(recv_exactly(dst.peer, queued));
                co_await d;
                CHECK(dst.writer.write_buffer_size() <= (1u << 14));
                std::string got = co_await r;
                CHECK(got == big.substr(0, queued));
            } else {
                co_await d;
            }
        }
        CHECK(blocked);
        sender.cancel();
        try {
            co_await sender;
        } catch (const coio::cancelled_error&) {
        }
    });
}

TEST_CASE("stream_chunk: write(chunk) to a peer that reset fails in drain like write()") {
    run_test([]() -> coio::coro<void> {
        auto src = co_await connect_pair({.multishot_recv = true});
        auto by_bytes = co_await connect_pair({});
        auto by_chunk = co_await connect_pair({});
        for (auto* c : {&by_bytes, &by_chunk}) {
            linger lg{1, 0};
            c->peer.setsockopt(SOL_SOCKET, SO_LINGER, lg);
            c->peer = coio::socket();  // RST
        }
        co_await coio::sleep(10ms);
        const std::string block(1 << 16, 'z');
        std::error_code bytes_error, chunk_error;
        for (int i = 0; i < 100 && !bytes_error; ++i) {
            try {
                by_bytes.writer.write(block);
                co_await by_bytes.writer.drain();
            } catch (const std::system_error& e) {
                bytes_error = e.code();
            }
        }
        for (int i = 0; i < 100 && !chunk_error; ++i) {
            co_await src.peer.sendall(block);
            coio::stream_chunk ch = co_await src.reader.read_chunk();
            try {
                by_chunk.writer.write(std::move(ch));
                co_await by_chunk.writer.drain();
            } catch (const std::system_error& e) {
                chunk_error = e.code();
            }
        }
        CHECK(bytes_error);
        CHECK(chunk_error);
        CHECK((chunk_error == std::errc::connection_reset || chunk_error == std::errc::broken_pipe));
        CHECK(chunk_error.category() == bytes_error.category());
        by_chunk.writer.close();
        CHECK_THROWS_AS(by_chunk.writer.write(coio::stream_chunk()), coio::invalid_state_error);
    });
}
