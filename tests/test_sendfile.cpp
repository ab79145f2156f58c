// tests/test_sendfile.cpp - stream_writer::sendfile (asyncio's loop.sendfile) over real TCP
// connections and pipes: order with the writes around it, offset and count, write() refused
// meanwhile, a vanished peer, cancellation. Every case runs on both backends (io_uring:
// splice through a pipe; epoll: sendfile(2) on readiness).
#include <coio/file.hpp>

#include "support/both_backends.hpp"
#include "support/catch.hpp"
#include "support/co_check.hpp"
#include "support/stream_pair.hpp"

#include <coio/errors.hpp>
#include <coio/pipe.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

namespace {

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 13 + i / 509) & 0xff);
    return s;
}

/// A temporary file holding `data`, removed at the end of the scope.
struct temp_file {
    std::string path;
    explicit temp_file(const std::string& data) {
        char name[] = "/tmp/coio_sendfile_XXXXXX";
        const int fd = ::mkstemp(name);
        REQUIRE(fd >= 0);
        path = name;
        std::size_t done = 0;
        while (done < data.size()) {
            const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
            REQUIRE(n > 0);
            done += static_cast<std::size_t>(n);
        }
        ::close(fd);
    }
    ~temp_file() { ::unlink(path.c_str()); }
};

} // namespace

TEST_CASE("sendfile: a file between two writes over TCP, in order") {
    const std::string data = pattern((3u << 20) + 777);
    temp_file tf(data);
    on_both_backends([&]() -> coio::coro<void> {
        auto c = co_await stream_test::connect_pair();
        coio::file f = co_await coio::open_file(tf.path, "r");
        c.writer.write("head:");
        CO_CHECK(co_await c.writer.sendfile(f) == data.size());
        c.writer.write(":tail");
        co_await c.writer.drain();
        const std::string got = co_await stream_test::recv_exactly(c.peer, 5 + data.size() + 5);
        CHECK(got.size() == 5 + data.size() + 5);
        CHECK((got == "head:" + data + ":tail"));
    });
}

TEST_CASE("sendfile: offset and count; past the end it stops at the end") {
    const std::string data = pattern(100'000);
    temp_file tf(data);
    on_both_backends([&]() -> coio::coro<void> {
        auto c = co_await stream_test::connect_pair();
        coio::file f = co_await coio::open_file(tf.path, "r");
        CO_CHECK(co_await c.writer.sendfile(f, 1000, 5000) == 5000);
        CO_CHECK(co_await stream_test::recv_exactly(c.peer, 5000) == data.substr(1000, 5000));
        CO_CHECK(co_await c.writer.sendfile(f, 99'000, 1'000'000) == 1000);  // only 1000 left
        CO_CHECK(co_await stream_test::recv_exactly(c.peer, 1000) == data.substr(99'000));
        CO_CHECK(co_await c.writer.sendfile(f, 100'000) == 0);  // at the end
    });
}

TEST_CASE("sendfile: into a pipe stream") {
    const std::string data = pattern((1u << 20) + 3);
    temp_file tf(data);
    on_both_backends([&]() -> coio::coro<void> {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        coio::stream_reader r = coio::connect_read_pipe(fds[0]);
        coio::stream_writer w = coio::connect_write_pipe(fds[1]);
        coio::file f = co_await coio::open_file(tf.path, "r");
        auto reading = coio::create_task(r.read());
        CO_CHECK(co_await w.sendfile(f) == data.size());
        w.close();
        const std::string got = co_await reading;
        CHECK(got.size() == data.size());
        CHECK((got == data));
    });
}

TEST_CASE("sendfile: write() is refused while it runs; cancellation leaves the stream usable") {
    const std::string data = pattern(64u << 20);  // more than the socket buffers hold
    temp_file tf(data);
    on_both_backends([&]() -> coio::coro<void> {
        auto c = co_await stream_test::connect_pair();
        coio::file f = co_await coio::open_file(tf.path, "r");
        auto t = coio::create_task(c.writer.sendfile(f));
        co_await coio::sleep(50ms);  // the peer reads nothing: the sendfile waits for room
        CHECK_FALSE(t.done());
        CHECK_THROWS_AS(c.writer.write("x"), coio::invalid_state_error);
        t.cancel();
        CHECK_THROWS_AS(co_await t, coio::cancelled_error);
        // Usable again: write, then read everything the peer got up to the marker.
        c.writer.write("END");
        co_await c.writer.drain();
        std::string got;
        while (got.size() < 3 || got.compare(got.size() - 3, 3, "END") != 0) {
            std::string part = co_await c.peer.recv(1 << 20);
            REQUIRE_FALSE(part.empty());
            got += part;
        }
        const std::string sent = got.substr(0, got.size() - 3);
        CHECK(sent.size() < data.size());
        CHECK((sent == data.substr(0, sent.size())));  // a prefix, in order
    });
}

TEST_CASE("sendfile: a vanished peer is a std::system_error naming the file") {
    const std::string data = pattern(16u << 20);
    temp_file tf(data);
    on_both_backends([&]() -> coio::coro<void> {
        auto c = co_await stream_test::connect_pair();
        coio::file f = co_await coio::open_file(tf.path, "r");
        c.peer = coio::socket();  // closed: the next sends are reset
        try {
            co_await c.writer.sendfile(f);
            FAIL("sendfile to a closed peer succeeded");
        } catch (const std::system_error& e) {
            CHECK((e.code() == std::errc::broken_pipe || e.code() == std::errc::connection_reset));
            CHECK(std::string(e.what()).find(tf.path) != std::string::npos);
        }
        CHECK_THROWS_AS(co_await c.writer.drain(), std::system_error);  // the stream failed
    });
}
