// Tests of coio/stream_reader.hpp: asyncio.StreamReader semantics, in both receive modes
// (multishot into the provided-buffer ring, and plain recv).
#include <coio/stream_reader.hpp>
#include "support/catch.hpp"
#include "support/stream_pair.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/socket.hpp>
#include <coio/streams.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace stream_test;

TEST_CASE("stream_reader: read(n) - read(0) - read() until EOF - at_eof") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            CHECK(c.reader.limit() == 65536);
            { auto got_ = co_await c.reader.read(0); CHECK(got_.empty()); }
            co_await c.peer.sendall("abcdef");
            std::string a = co_await c.reader.read(3);
            CHECK(a == "abc");
            CHECK_FALSE(c.reader.at_eof());
            co_await c.peer.sendall("ghi");
            co_await c.peer.shutdown(SHUT_WR);
            std::string rest = co_await c.reader.read();
            CHECK(rest == "defghi");
            CHECK(c.reader.at_eof());
            { auto got_ = co_await c.reader.read(10); CHECK(got_.empty()); }
            { auto got_ = co_await c.reader.read(); CHECK(got_.empty()); }
        });
    }
}

TEST_CASE("stream_reader: readline - lines() and a partial last line") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            co_await c.peer.sendall("one\ntw");
            { auto got_ = co_await c.reader.readline(); CHECK(got_ == "one\n"); }
            co_await c.peer.sendall("o\nthree\nlast");
            co_await c.peer.shutdown(SHUT_WR);
            std::vector<std::string> got;
            auto gen = c.reader.lines();
            for (int i = 0; i < 10; ++i) {  // bounded
                auto l = co_await gen.next();
                if (!l) break;
                got.push_back(*l);
            }
            CHECK(got == std::vector<std::string>{"two\n", "three\n", "last"});
            { auto got_ = co_await c.reader.readline(); CHECK(got_ == ""); }
        });
    }
}

TEST_CASE("stream_reader: readexactly - and at EOF it keeps the partial bytes") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            co_await c.peer.sendall("0123456789");
            { auto got_ = co_await c.reader.readexactly(4); CHECK(got_ == "0123"); }
            { auto got_ = co_await c.reader.readexactly(0); CHECK(got_ == ""); }
            co_await c.peer.shutdown(SHUT_WR);
            try {
                co_await c.reader.readexactly(100);
                FAIL("readexactly returned");
            } catch (const coio::incomplete_read_error& e) {
                CHECK(e.partial == "456789");
                REQUIRE(e.expected.has_value());
                CHECK(*e.expected == 100);
                CHECK_THAT(e.what(), Catch::Contains("6 bytes read on a total of 100"));
            }
            CHECK(c.reader.at_eof());
        });
    }
}

TEST_CASE("stream_reader: readuntil - an overrun keeps the buffer - readline overrun discards the line") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.limit = 16, .multishot_recv = ms});
            co_await c.peer.sendall("key: value\r\n\r\nbody");
            { auto got_ = co_await c.reader.readuntil("\r\n\r\n"); CHECK(got_ == "key: value\r\n\r\n"); }
            CHECK_THROWS_AS(co_await c.reader.readuntil(""), std::invalid_argument);

            const std::string longer(40, 'x');
            co_await c.peer.sendall(longer + "\n");
            // Wait until everything has arrived so the overrun is deterministic.
            for (int i = 0; i < 200 && c.reader.buffered() < 4 + longer.size() + 1; ++i) co_await coio::sleep(1ms);
            try {
                co_await c.reader.readuntil("\n");
                FAIL("no overrun");
            } catch (const coio::limit_overrun_error& e) {
                CHECK(e.consumed > 0);
            }
            // Nothing was lost: the data is still there.
            CHECK(c.reader.buffered() == 4 + longer.size() + 1);
            { auto got_ = co_await c.reader.readexactly(4); CHECK(got_ == "body"); }
            // readline discards the overlong line (asyncio) and can go on.
            CHECK_THROWS_AS(co_await c.reader.readline(), coio::limit_overrun_error);
            co_await c.peer.sendall("ok\n");
            { auto got_ = co_await c.reader.readline(); CHECK(got_ == "ok\n"); }
            co_await c.peer.shutdown(SHUT_WR);
            try {
                co_await c.reader.readuntil("\n");
                FAIL("no incomplete read");
            } catch (const coio::incomplete_read_error& e) {
                CHECK(e.partial.empty());
                CHECK_FALSE(e.expected.has_value());
            }
        });
    }
}

TEST_CASE("stream_reader: read_into and readexactly_into") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            std::array<std::byte, 8> buf{};
            auto pending = coio::create_task([](coio::stream_reader& r, std::span<std::byte> b) -> coio::coro<std::size_t> {
                co_return co_await r.read_into(b);
            }(c.reader, buf));
            co_await coio::sleep(5ms);
            co_await c.peer.sendall("hello");
            { auto got_ = co_await pending; CHECK(got_ == 5); }
            CHECK(std::string(reinterpret_cast<const char*>(buf.data()), 5) == "hello");
            { auto got_ = co_await c.reader.read_into(std::span<std::byte>()); CHECK(got_ == 0); }

            co_await c.peer.sendall("0123456789ab");
            co_await c.reader.readexactly_into(buf);
            CHECK(std::string(reinterpret_cast<const char*>(buf.data()), 8) == "01234567");
            co_await c.peer.shutdown(SHUT_WR);
            try {
                co_await c.reader.readexactly_into(buf);
                FAIL("no incomplete read");
            } catch (const coio::incomplete_read_error& e) {
                CHECK(e.partial == "89ab");
            }
            { auto got_ = co_await c.reader.read_into(buf); CHECK(got_ == 0); }
        });
    }
}

TEST_CASE("stream_reader: read_into and read(n) copy straight from received buffers - mixed with other reads, order holds") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            std::string data(3 << 20, '\0');
            for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) >> 3);
            data[(2 << 20) + 100] = '\n';
            auto sender = coio::create_task([](coio::socket& s, const std::string& d) -> coio::coro<void> {
                co_await s.sendall(d);
            }(c.peer, data));
            std::string got;
            std::vector<std::byte> buf(7000);  // not a divisor of the ring's buffer size
            // read_into and read(n), alternating, while data arrives in bursts (queued ring
            // buffers, partly consumed)...
            for (int i = 0; got.size() < (1u << 20); ++i) {
                const std::size_t want = std::min(buf.size(), (1u << 20) - got.size());
                if (i % 2 == 0) {
                    const std::size_t n = co_await c.reader.read_into(std::span(buf).first(want));
                    REQUIRE(n > 0);
                    got.append(reinterpret_cast<const char*>(buf.data()), n);
                } else {
                    std::string part = co_await c.reader.read(static_cast<std::ptrdiff_t>(want));
                    REQUIRE(!part.empty());
                    REQUIRE(part.size() <= want);
                    got += part;
                }
                if (got.size() % 3 == 0) co_await coio::sleep(1ms);  // let several buffers queue up
            }
            // ...then copying reads (which flatten what is queued), a chunk, and read_into again.
            got += co_await c.reader.readexactly(300000);
            got += co_await c.reader.readline();
            CHECK(got.back() == '\n');
            coio::stream_chunk ch = co_await c.reader.read_chunk();
            got.append(ch.view());
            ch.reset();
            while (got.size() < data.size()) {
                const std::size_t n = co_await c.reader.read_into(buf);
                REQUIRE(n > 0);
                got.append(reinterpret_cast<const char*>(buf.data()), n);
            }
            co_await sender;
            CHECK(got.size() == data.size());
            CHECK(got == data);
        });
    }
}

TEST_CASE("stream_reader: large transfers and the 2 x limit pause") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.limit = 1024, .multishot_recv = ms});
            std::string block(48 << 20, '\0');
            for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 7);
            auto sender = coio::create_task([](coio::socket& s, const std::string& b) -> coio::coro<void> {
                co_await s.sendall(b);
            }(c.peer, block));
            co_await coio::sleep(50ms);
            // Nobody reads: receiving paused at 2 x limit. With a multishot receive, what the
            // kernel had already placed in provided buffers (at most the loop's ring, 16 MiB)
            // still arrives; in plain mode nothing is received without a reader.
            const std::size_t ring = std::size_t{coio::loop_options{}.receive_buffers} * coio::loop_options{}.receive_buffer_size;
            const std::size_t held = c.reader.buffered();
            CHECK(held <= 2 * 1024 + ring + 65536);
            co_await coio::sleep(20ms);
            CHECK(c.reader.buffered() == held);  // and it stays paused
            // A read larger than the limit resumes reading while it waits.
            std::string got = co_await c.reader.readexactly(block.size());
            CHECK(got.size() == block.size());
            CHECK(got == block);
            co_await sender;
        });
    }
}

TEST_CASE("stream_reader: a copying reader of a stream that outruns it receives on demand - and eagerly again once the stream runs dry") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({.limit = 4096});  // multishot
        std::string data(48 << 20, '\0');
        for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 13) >> 2);
        auto sender = coio::create_task([](coio::socket& s, const std::string& d) -> coio::coro<void> {
            co_await s.sendall(d);
        }(c.peer, data));
        std::string got = co_await c.reader.read(100);  // a copying consumer (read(n))
        co_await coio::sleep(50ms);
        // The data outran the reader: receiving paused at 2 x limit. Read what was buffered.
        while (c.reader.buffered() > 0) got += co_await c.reader.read(4096);
        // From now on this reader receives on demand, one recv per read that finds nothing
        // buffered (with a multishot receive re-armed, the buffer would fill up again now).
        co_await coio::sleep(20ms);
        CHECK(c.reader.buffered() == 0);
        got += co_await c.reader.read(4096);
        CHECK(c.reader.buffered() < (1u << 20));
        while (got.size() < data.size()) {
            std::string part = co_await c.reader.read(65536);
            REQUIRE(!part.empty());
            got += part;
        }
        co_await sender;
        CHECK(got.size() == data.size());
        CHECK(got == data);
        // The stream ran dry (the last recv came back short): it reads eagerly again, so a
        // message arriving while nobody reads is received and buffered.
        co_await c.peer.sendall("tail");
        for (int i = 0; i < 100 && c.reader.buffered() < 4; ++i) co_await coio::sleep(5ms);
        CHECK(c.reader.buffered() == 4);
        { auto t = co_await c.reader.read(4); CHECK(t == "tail"); }
    });
}

TEST_CASE("stream_reader: a chunk reader after a copying one on demand reads eagerly again") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({.limit = 4096});  // multishot
        std::string data(16 << 20, '\0');
        for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 11) >> 2);
        auto sender = coio::create_task([](coio::socket& s, const std::string& d) -> coio::coro<void> {
            co_await s.sendall(d);
        }(c.peer, data));
        std::string got = co_await c.reader.read(100);
        co_await coio::sleep(50ms);
        while (c.reader.buffered() > 0) got += co_await c.reader.read(4096);
        co_await coio::sleep(20ms);
        CHECK(c.reader.buffered() == 0);  // on demand: nothing without a reader
        // A chunk reader wants the ring's buffers: the multishot receive is armed again, and
        // data arrives while nobody reads.
        coio::stream_chunk ch = co_await c.reader.read_chunk();
        got.append(ch.view());
        ch.reset();
        for (int i = 0; i < 100 && c.reader.buffered() == 0; ++i) co_await coio::sleep(5ms);
        CHECK(c.reader.buffered() > 0);
        while (got.size() < data.size()) {
            coio::stream_chunk part = co_await c.reader.read_chunk();
            REQUIRE(!part.empty());
            got.append(part.view());
        }
        co_await sender;
        CHECK(got == data);
    });
}

TEST_CASE("stream_reader: an echo of read(n) and write(std::move) - strings received into and reused - data intact") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            // Multishot: the stream soon outruns the echo and receives on demand; plain: full recvs.
            auto c = co_await connect_pair({.limit = 4096, .multishot_recv = ms});
            std::string data(24 << 20, '\0');
            for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 29) >> 3);
            auto sender = coio::create_task([](coio::socket& s, const std::string& d) -> coio::coro<void> {
                co_await s.sendall(d);
                co_await s.shutdown(SHUT_WR);
            }(c.peer, data));
            auto receiver = coio::create_task(recv_exactly(c.peer, data.size()));
            std::size_t echoed = 0;
            for (int i = 0;; ++i) {
                std::string part = co_await c.reader.read(i % 7 == 0 ? 1000 : 65536);  // sizes vary
                if (part.empty()) break;
                REQUIRE(part.size() <= 65536);
                echoed += part.size();
                c.writer.write(std::move(part));
                co_await c.writer.drain();
            }
            CHECK(echoed == data.size());
            co_await sender;
            auto got = co_await receiver;
            CHECK(got.size() == data.size());
            CHECK(got == data);
        });
    }
}

namespace {

/// `n` bytes of a pattern with a newline every 97 bytes (so readline can read it too).
std::string lined_pattern(std::size_t n) {
    std::string d(n, '\0');
    for (std::size_t i = 0; i < n; ++i) d[i] = i % 97 == 96 ? '\n' : static_cast<char>('a' + (i * 7) % 26);
    return d;
}

/// Makes the peer socket blocking, for a plain thread to drive it.
void make_blocking(const coio::socket& s) {
    const int fd = s.fileno();
    REQUIRE(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0);
}

/// Sends all of `d` on a blocking socket, then half-closes it.
void send_all_blocking(int fd, const std::string& d) {
    for (std::size_t off = 0; off < d.size();) {
        const ssize_t r = ::send(fd, d.data() + off, d.size() - off, MSG_NOSIGNAL);
        if (r <= 0) return;  // the test's checks report the missing bytes
        off += static_cast<std::size_t>(r);
    }
    ::shutdown(fd, SHUT_WR);
}

/// Shuts the peer's socket down when the test leaves its scope (before the threads using it
/// are joined), so a failed check cannot leave them blocked in send or recv.
struct unblock_on_exit {
    int fd;
    ~unblock_on_exit() { ::shutdown(fd, SHUT_RDWR); }
};

/// Receives on a blocking socket until EOF (or `max` bytes).
void recv_all_blocking(int fd, std::string& out, std::size_t max) {
    std::string buf(1 << 20, '\0');
    while (out.size() < max) {
        const ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
        if (r <= 0) return;
        out.append(buf.data(), static_cast<std::size_t>(r));
    }
}

} // namespace

TEST_CASE("stream_reader: a read(n) echo that streams reads ahead into strings - several reads per loop iteration") {
    // The peer's threads keep the socket full, as a client streaming to an echo server does.
    // Once the stream outran the echo, each readable socket is received into several strings
    // (until 2 x limit), handed out by read(n) whole: more than one read per loop iteration,
    // where one recv per read made every read wait for an iteration of its own.
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({.limit = 256 << 10});  // multishot: up to 8 strings ahead
        coio::event_loop& loop = coio::get_running_loop();
        const std::string data = lined_pattern(48 << 20);
        make_blocking(c.peer);
        const int fd = c.peer.fileno();
        std::string echo;
        std::jthread sender([fd, &data] { send_all_blocking(fd, data); });
        std::jthread receiver([fd, &echo, &data] { recv_all_blocking(fd, echo, data.size()); });
        const unblock_on_exit unblock{fd};  // a failed check must not leave them blocked
        std::size_t echoed = 0, reads = 0, reads_at = 0;
        std::uint64_t enters_at = 0;
        for (;;) {
            std::string part = co_await c.reader.read(65536);
            if (part.empty()) break;
            REQUIRE(part.size() <= 65536);
            echoed += part.size();
            ++reads;
            if (enters_at == 0 && echoed >= (8u << 20)) {  // settled: count from here
                enters_at = loop.enter_calls();
                reads_at = reads;
            }
            c.writer.write(std::move(part));
            co_await c.writer.drain();
        }
        const std::uint64_t enters = loop.enter_calls() - enters_at;
        c.writer.close();
        co_await c.writer.wait_closed();
        sender.join();
        receiver.join();
        CHECK(echoed == data.size());
        CHECK(echo.size() == data.size());
        CHECK(echo == data);
        INFO("reads " << reads - reads_at << ", waiting system calls " << enters);
        CHECK(reads - reads_at >= enters * 5 / 4);  // 1.8 reading ahead, 1.0 with one recv per read
    });
}

TEST_CASE("stream_reader: strings read ahead are read in order by every kind of read") {
    // read(n) reads ahead into strings; readexactly, readline, read_into, read_chunk and a
    // shorter read(n) take from the same queue without losing or reordering a byte.
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.limit = 16384, .multishot_recv = ms});
            const std::string data = lined_pattern(24 << 20);
            make_blocking(c.peer);
            const int fd = c.peer.fileno();
            std::jthread sender([fd, &data] { send_all_blocking(fd, data); });
            const unblock_on_exit unblock{fd};
            std::string got;
            got.reserve(data.size());
            std::vector<std::byte> into(5000);
            for (unsigned i = 0; got.size() < data.size(); ++i) {
                const std::size_t before = got.size();
                switch (i % 8) {
                case 3: got += co_await c.reader.readexactly(std::min<std::size_t>(777, data.size() - got.size())); break;
                case 4: got += co_await c.reader.readline(); break;
                case 5: {
                    const std::size_t n = co_await c.reader.read_into(into);
                    got.append(reinterpret_cast<const char*>(into.data()), n);
                    break;
                }
                case 6: got += (co_await c.reader.read_chunk()).view(); break;
                case 2: {  // after read(65536)s: it may find a string read ahead at the front
                    std::string part = co_await c.reader.read(100);
                    REQUIRE(part.size() <= 100);
                    got += part;
                    break;
                }
                default: {
                    std::string part = co_await c.reader.read(65536);
                    REQUIRE(part.size() <= 65536);
                    got += part;
                    break;
                }
                }
                REQUIRE(got.size() > before);
                if (got.compare(before, got.size() - before, data, before, got.size() - before) != 0) {
                    FAIL("bytes out of order at offset " << before << ", read kind " << i % 8);
                }
            }
            { auto e = co_await c.reader.read(65536); CHECK(e.empty()); }
            CHECK(c.reader.at_eof());
            sender.join();
            CHECK(got == data);
        });
    }
}

TEST_CASE("stream_reader: a streaming read(n) cancelled while it waits for data loses nothing") {
    // read(n)s time out while the stream waits for the socket to become readable (between the
    // peer's bursts); the next read finds every byte of the next burst, and closing while
    // waiting ends cleanly.
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({.limit = 8192});
        const std::string data = lined_pattern(4 << 20);
        std::string got;
        std::size_t sent = 0;
        int timeouts = 0;
        while (got.size() < data.size()) {
            if (sent < data.size() && got.size() == sent) {
                const std::size_t n = std::min<std::size_t>(512 << 10, data.size() - sent);
                co_await c.peer.sendall(std::string_view(data).substr(sent, n));  // one burst
                sent += n;
            }
            try {
                // After a read(n) gave up waiting, a readline reads (a copying read that
                // starts while the stream still waits to read ahead for the read(n)).
                if (timeouts % 2 == 1) got += co_await coio::wait_for(c.reader.readline(), 5ms);
                else got += co_await coio::wait_for(c.reader.read(65536), 5ms);
            } catch (const coio::timeout_error&) {
                ++timeouts;
            }
        }
        CHECK(got == data);
        // Nothing is sent now: each read waits, and is cancelled.
        for (int i = 0; i < 3; ++i) CHECK_THROWS_AS(co_await coio::wait_for(c.reader.read(65536), 5ms), coio::timeout_error);
        co_await c.peer.sendall("end");
        { auto e = co_await c.reader.read(65536); CHECK(e == "end"); }
        auto blocked = coio::create_task([](coio::stream_reader& r) -> coio::coro<std::string> { co_return co_await r.read(65536); }(c.reader));
        co_await coio::sleep(5ms);
        c.writer.close();
        { auto e = co_await blocked; CHECK(e.empty()); }
        co_await c.writer.wait_closed();
        INFO("timeouts " << timeouts);
    });
}

TEST_CASE("stream_reader: a copying read after a read(n) that gave up waiting to read ahead - bytes in order") {
    // The stream outran its reader (paused, then on demand): a read(n) that finds nothing
    // waits for the socket to become readable, to read ahead into strings. It times out; a
    // readline starts while that wait is still in flight. The data that arrives must reach
    // the readline, in order, through the stream's buffer (a copying read looks there only).
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({.limit = 4096});  // multishot
        const std::string block = lined_pattern(60000);    // one loopback segment
        co_await c.peer.sendall(block);
        for (int i = 0; i < 200 && c.reader.buffered() < block.size(); ++i) co_await coio::sleep(1ms);
        REQUIRE(c.reader.buffered() == block.size());  // all of it: over 2 x limit, paused
        { auto got = co_await c.reader.read(65536); CHECK(got == block); }
        CHECK_THROWS_AS(co_await coio::wait_for(c.reader.read(65536), 20ms), coio::timeout_error);
        auto line = coio::create_task([](coio::stream_reader& r) -> coio::coro<std::string> {
            co_return co_await coio::wait_for(r.readline(), 5s);
        }(c.reader));
        co_await coio::sleep(1ms);
        co_await c.peer.sendall("line one\nline two\n");
        { auto l = co_await line; CHECK(l == "line one\n"); }
        { auto l = co_await coio::wait_for(c.reader.readline(), 5s); CHECK(l == "line two\n"); }
    });
}

TEST_CASE("stream_reader: peer reset mid-read is connection reset - after buffered data") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            co_await c.peer.sendall("first");
            { auto got_ = co_await c.reader.read(5); CHECK(got_ == "first"); }
            auto blocked = coio::create_task([](coio::stream_reader& r) -> coio::coro<std::string> { co_return co_await r.read(100); }(c.reader));
            co_await coio::sleep(10ms);
            linger lg{1, 0};
            c.peer.setsockopt(SOL_SOCKET, SO_LINGER, lg);
            c.peer = coio::socket();  // close with RST
            try {
                co_await blocked;
                FAIL("read returned");
            } catch (const std::system_error& e) {
                CHECK(e.code() == std::errc::connection_reset);
                CHECK_THAT(e.what(), Catch::Contains("127.0.0.1:"));
            }
            CHECK_THROWS_AS(co_await c.reader.read(1), std::system_error);
        });
    }
}

TEST_CASE("stream_reader: cancelling a blocked read loses nothing and leaves the span alone") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            std::array<std::byte, 32> buf;
            buf.fill(std::byte{0x5A});
            auto blocked = coio::create_task([](coio::stream_reader& r, std::span<std::byte> b) -> coio::coro<std::size_t> {
                co_return co_await r.read_into(b);
            }(c.reader, buf));
            co_await coio::sleep(10ms);
            blocked.cancel();
            CHECK_THROWS_AS(co_await blocked, coio::cancelled_error);
            co_await c.peer.sendall("after");
            co_await coio::sleep(10ms);
            CHECK(std::all_of(buf.begin(), buf.end(), [](std::byte b) { return b == std::byte{0x5A}; }));
            { auto got_ = co_await c.reader.read(100); CHECK(got_ == "after"); }

            // A cancelled readline keeps the partial line for the next one.
            auto line = coio::create_task([](coio::stream_reader& r) -> coio::coro<std::string> { co_return co_await r.readline(); }(c.reader));
            co_await c.peer.sendall("par");
            co_await coio::sleep(10ms);
            line.cancel();
            CHECK_THROWS_AS(co_await line, coio::cancelled_error);
            co_await c.peer.sendall("tial\n");
            { auto got_ = co_await c.reader.readline(); CHECK(got_ == "partial\n"); }
        });
    }
}

TEST_CASE("stream_reader: two tasks reading at once is an invalid state") {
    run_test([]() -> coio::coro<void> {
        auto c = co_await connect_pair({});
        auto first = coio::create_task([](coio::stream_reader& r) -> coio::coro<std::string> { co_return co_await r.read(10); }(c.reader));
        co_await coio::sleep(5ms);
        CHECK_THROWS_AS(co_await c.reader.read(10), coio::invalid_state_error);
        co_await c.peer.sendall("x");
        { auto got_ = co_await first; CHECK(got_ == "x"); }
        coio::stream_reader empty;
        CHECK_FALSE(empty);
        CHECK(empty.at_eof());
        CHECK_THROWS_AS(co_await empty.read(1), coio::invalid_state_error);
    });
}

TEST_CASE("stream_reader: closing the writer ends pending reads with EOF") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            auto blocked = coio::create_task([](coio::stream_reader& r) -> coio::coro<std::string> { co_return co_await r.read(10); }(c.reader));
            co_await coio::sleep(5ms);
            c.writer.close();
            { auto got_ = co_await blocked; CHECK(got_ == ""); }
            co_await c.writer.wait_closed();
            { auto got_ = co_await c.peer.recv(10); CHECK(got_.empty()); }  // the peer sees the close
        });
    }
}

// Every read variant, cancelled at several points while it waits for more data: what the
// cancelled read returned (if it had its data before the cancellation landed) plus what
// the next read gets is exactly what the peer sent, nothing lost, nothing duplicated.
TEST_CASE("stream_reader: a cancelled read of any kind leaves every received byte for the next read") {
    using reader_fn = coio::coro<std::string> (*)(coio::stream_reader&);
    struct variant {
        const char* name;
        reader_fn fn;
    };
    static const variant variants[] = {
        {"read() to EOF", [](coio::stream_reader& r) -> coio::coro<std::string> { co_return co_await r.read(); }},
        {"read(100)", [](coio::stream_reader& r) -> coio::coro<std::string> { co_return co_await r.read(100); }},
        {"readexactly(6)", [](coio::stream_reader& r) -> coio::coro<std::string> { co_return co_await r.readexactly(6); }},
        {"readuntil(\"\\n\")", [](coio::stream_reader& r) -> coio::coro<std::string> { co_return co_await r.readuntil("\n"); }},
        {"readline()", [](coio::stream_reader& r) -> coio::coro<std::string> { co_return co_await r.readline(); }},
        {"readexactly_into(6)", [](coio::stream_reader& r) -> coio::coro<std::string> {
             std::array<std::byte, 6> b{};
             co_await r.readexactly_into(b);
             co_return std::string(reinterpret_cast<const char*>(b.data()), b.size());
         }},
        {"read_into(100)", [](coio::stream_reader& r) -> coio::coro<std::string> {
             std::array<std::byte, 100> b{};
             const std::size_t n = co_await r.read_into(b);
             co_return std::string(reinterpret_cast<const char*>(b.data()), n);
         }},
        {"read_chunk()", [](coio::stream_reader& r) -> coio::coro<std::string> {
             coio::stream_chunk ch = co_await r.read_chunk();
             co_return std::string(ch.view());
         }},
    };
    for (bool ms : modes()) {
        for (const variant& v : variants) {
            for (int when = 0; when < 3; ++when) {  // cancel: at once, after one yield, after 5 ms
                INFO("multishot=" << ms << " read=" << v.name << " when=" << when);
                run_test([ms, &v, when]() -> coio::coro<void> {
                    auto c = co_await connect_pair({.limit = 16, .multishot_recv = ms});
                    // The read's result is kept as soon as it returns: a task whose coroutine
                    // returns while a cancellation is pending ends cancelled (as in asyncio),
                    // and its value would be gone, though the reader had handed the bytes out.
                    std::string got;
                    auto t = coio::create_task([](reader_fn fn, coio::stream_reader& r, std::string& out) -> coio::coro<void> {
                        out = co_await fn(r);
                    }(v.fn, c.reader, got));
                    co_await coio::sleep(2ms);  // the read is waiting for data
                    // A plain send(2): the bytes are in the reader's socket when it returns.
                    REQUIRE(::send(c.peer.fileno(), "abc", 3, MSG_NOSIGNAL) == 3);
                    if (when == 1) co_await coio::sleep(0);
                    if (when == 2) co_await coio::sleep(5ms);
                    t.cancel();
                    try {
                        co_await t;
                    } catch (const coio::cancelled_error&) {
                    }
                    co_await c.peer.sendall("def\n");
                    co_await c.peer.shutdown(SHUT_WR);
                    std::string rest = co_await c.reader.read();
                    CHECK(got + rest == "abcdef\n");
                });
            }
        }
    }
}

namespace {

// A stream on one end of a fresh Unix socket pair (the lowest free descriptor numbers), and
// the raw socket at the other end.
struct unix_pair {
    coio::stream_reader reader;
    coio::stream_writer writer;
    coio::socket peer;
};
unix_pair make_unix_pair(bool multishot) {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    auto [r, w] = coio::detail::make_stream(coio::socket::from_fd(sv[0]),
                                            coio::detail::make_stream_config(64 * 1024, 64 * 1024, {}, multishot), false);
    return {std::move(r), std::move(w), coio::socket::from_fd(sv[1])};
}

// read(100) that has to wait: the peer sends `msg` only once the read is waiting, so the
// data comes through a readiness event (not the read's first try).
coio::coro<std::string> read_after_peer_sends(coio::stream_reader& r, coio::socket& peer, std::string_view msg) {
    auto read = coio::create_task([](coio::stream_reader& r) -> coio::coro<std::string> { co_return co_await r.read(100); }(r));
    co_await coio::sleep(20ms);
    co_await peer.sendall(msg);
    co_return co_await read;
}

}  // namespace

// The epoll backend keeps a stream's input watched between one-shot receives (no epoll_ctl
// per message). These check the two ways that could go wrong.
TEST_CASE("stream_reader on epoll: a kept watch - data nobody reads, then a hang-up, do not make the loop spin") {
    for (bool ms : modes()) {
        INFO("multishot=" << ms);
        run_test([ms]() -> coio::coro<void> {
            auto c = co_await connect_pair({.multishot_recv = ms});
            const std::string first = co_await read_after_peer_sends(c.reader, c.peer, "ping");
            CHECK(first == "ping");
            // Nobody reads now: what arrives, and then the hang-up, must not be reported again
            // and again (level-triggered).
            co_await c.peer.sendall(std::string_view("more"));
            co_await c.peer.shutdown(SHUT_WR);
            auto& loop = coio::get_running_loop();
            const auto before = loop.enter_calls();
            co_await coio::sleep(100ms);
            const auto calls = loop.enter_calls() - before;
            CHECK(calls < 20);  // a spinning loop makes thousands
            const std::string rest = co_await c.reader.read(100);
            CHECK(rest == "more");
            const std::string eof = co_await c.reader.read(100);
            CHECK(eof.empty());
        }, {.backend = coio::backend::epoll});
    }
}

TEST_CASE("stream_reader on epoll: a descriptor number a closed stream used is watched afresh for the next stream") {
    run_test([]() -> coio::coro<void> {
        int old_fd = -1;
        {
            auto a = make_unix_pair(false);
            old_fd = a.writer.socket().fileno();
            const std::string got = co_await read_after_peer_sends(a.reader, a.peer, "one");
            CHECK(got == "one");  // served by an event: its input stays watched
            a.writer.close();
            co_await a.writer.wait_closed();
        }
        // The next pair takes the lowest free numbers: the closed stream's first. epoll forgot
        // the closed description; a watch believed kept would leave this reader hanging.
        auto b = make_unix_pair(false);
        REQUIRE(b.writer.socket().fileno() == old_fd);
        auto reader = coio::create_task([](coio::stream_reader& r) -> coio::coro<std::string> {
            co_return co_await r.read(100);
        }(b.reader));
        co_await coio::sleep(20ms);  // the read waits on the new description
        co_await b.peer.sendall(std::string_view("two"));
        const std::string got = co_await coio::wait_for(std::move(reader), 5s);
        CHECK(got == "two");
    }, {.backend = coio::backend::epoll});
}
