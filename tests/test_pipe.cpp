// tests/test_pipe.cpp - coio::connect_read_pipe / connect_write_pipe over real pipes and
// character devices: data in order, EOF, EPIPE without SIGPIPE, partial reads that keep
// their bytes, cancellation that keeps data and releases the descriptor. Every case runs on
// both backends (io_uring and epoll) in one process.
#include <coio/pipe.hpp>

#include "support/both_backends.hpp"
#include "support/catch.hpp"
#include "support/co_check.hpp"

#include <coio/errors.hpp>
#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>
#include <utility>

using namespace std::chrono_literals;

namespace {

struct fd_pair {
    int r = -1;
    int w = -1;
    fd_pair() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        r = fds[0];
        w = fds[1];
    }
};

/// A pattern that shows reordering or loss: byte i is (i * 7 + i / 251) mod 256.
std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
    return s;
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

/// SIGPIPE's disposition set to the default for the scope.
struct default_sigpipe {
    default_sigpipe() {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        ::sigaction(SIGPIPE, &dfl, &saved);
    }
    ~default_sigpipe() { ::sigaction(SIGPIPE, &saved, nullptr); }
    struct sigaction saved {};
};

} // namespace

TEST_CASE("pipe: lines and EOF from a raw writer") {
    on_both_backends([]() -> coio::coro<void> {
        fd_pair p;
        coio::stream_reader r = coio::connect_read_pipe(p.r);
        REQUIRE(::write(p.w, "one\ntwo\nthr", 11) == 11);
        CO_CHECK(co_await r.readline() == "one\n");
        CO_CHECK(co_await r.readline() == "two\n");
        auto late = coio::create_task([](int w) -> coio::coro<void> {
            co_await coio::sleep(20ms);
            REQUIRE(::write(w, "ee\n", 3) == 3);
            ::close(w);
        }(p.w));
        CO_CHECK(co_await r.readline() == "three\n");
        CO_CHECK(co_await r.read() == "");  // EOF: every writer closed
        CHECK(r.at_eof());
        co_await late;
    });
}

TEST_CASE("pipe: 8 MiB through a coio writer and a coio reader, in order") {
    on_both_backends([]() -> coio::coro<void> {
        fd_pair p;
        coio::stream_writer w = coio::connect_write_pipe(p.w);
        coio::stream_reader r = coio::connect_read_pipe(p.r);
        const std::string data = pattern(8 << 20);
        auto writer = coio::create_task([](coio::stream_writer w, const std::string& d) -> coio::coro<void> {
            for (std::size_t off = 0; off < d.size(); off += 100'003) {
                w.write(std::string_view(d).substr(off, 100'003));
                co_await w.drain();
            }
            w.write_eof();  // a pipe closes: the reader sees EOF
            co_await w.wait_closed();
        }(std::move(w), data));
        const std::string got = co_await r.read();
        co_await writer;
        CHECK(got.size() == data.size());
        CHECK(got == data);
    });
}

TEST_CASE("pipe: partial reads keep the rest; readexactly across writes") {
    on_both_backends([]() -> coio::coro<void> {
        fd_pair p;
        coio::stream_reader r = coio::connect_read_pipe(p.r);
        REQUIRE(::write(p.w, "abcdef", 6) == 6);
        CO_CHECK(co_await r.read(2) == "ab");
        CO_CHECK(co_await r.read(100) == "cdef");
        auto later = coio::create_task([](int w) -> coio::coro<void> {
            for (const char* s : {"12", "345", "6789"}) {
                co_await coio::sleep(5ms);
                REQUIRE(::write(w, s, std::char_traits<char>::length(s)) > 0);
            }
        }(p.w));
        CO_CHECK(co_await r.readexactly(7) == "1234567");
        co_await later;
        CO_CHECK(co_await r.read(100) == "89");
        ::close(p.w);
    });
}

TEST_CASE("pipe: a cancelled read keeps the data that comes later and what it had gathered") {
    on_both_backends([]() -> coio::coro<void> {
        fd_pair p;
        coio::stream_reader r = coio::connect_read_pipe(p.r);
        // Nothing to read: the wait is cancelled by the timeout.
        CHECK_THROWS_AS(co_await coio::wait_for(r.read(10), 20ms), coio::timeout_error);
        // readexactly gathered 3 of 5 bytes when it was cancelled: they stay buffered.
        REQUIRE(::write(p.w, "xyz", 3) == 3);
        CHECK_THROWS_AS(co_await coio::wait_for(r.readexactly(5), 50ms), coio::timeout_error);
        REQUIRE(::write(p.w, "uv", 2) == 2);
        CO_CHECK(co_await r.readexactly(5) == "xyzuv");
        ::close(p.w);
        CO_CHECK(co_await r.read() == "");
    });
}

TEST_CASE("pipe: dropping a reader with a read in flight closes the descriptor") {
    on_both_backends([]() -> coio::coro<void> {
        fd_pair p;
        {
            auto t = coio::create_task([](int fd) -> coio::coro<std::string> {
                coio::stream_reader r = coio::connect_read_pipe(fd);
                co_return co_await r.read(10);
            }(p.r));
            co_await coio::sleep(10ms);  // the read is in flight (io_uring) / waiting (epoll)
            t.cancel();
            CHECK_THROWS_AS(co_await t, coio::cancelled_error);
        }
        // The close goes on after the cancelled read's completion: a few iterations.
        for (int i = 0; i < 100 && fd_is_open(p.r); ++i) co_await coio::sleep(1ms);
        CHECK_FALSE(fd_is_open(p.r));
        // The read end is gone: a write fails with EPIPE (SIGPIPE is ignored by now).
        errno = 0;
        CHECK(::write(p.w, "x", 1) == -1);
        CHECK(errno == EPIPE);
        ::close(p.w);
    });
}

TEST_CASE("pipe: a vanished reader is EPIPE from drain(), never SIGPIPE") {
    default_sigpipe dfl;  // what a C++ program starts with: SIGPIPE would kill it
    on_both_backends([]() -> coio::coro<void> {
        fd_pair p;
        coio::stream_writer w = coio::connect_write_pipe(p.w);
        ::close(p.r);
        w.write(std::string(256 * 1024, 'z'));
        try {
            co_await w.drain();
            co_await coio::sleep(10ms);  // drain may return before the write completed
            w.write("more");
            co_await w.drain();
            FAIL("drain() did not report the broken pipe");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::broken_pipe);
            CHECK(std::string(e.what()).find("pipe (fd") != std::string::npos);
        }
    });
    struct sigaction now {};
    ::sigaction(SIGPIPE, nullptr, &now);
    CHECK(now.sa_handler == SIG_IGN);  // set by connect_write_pipe because it was the default
}

TEST_CASE("pipe: a SIGPIPE handler the program installed is kept") {
    struct sigaction mine {}, saved {};
    mine.sa_handler = [](int) {};
    sigemptyset(&mine.sa_mask);
    ::sigaction(SIGPIPE, &mine, &saved);
    coio::run([]() -> coio::coro<void> {
        fd_pair p;
        coio::stream_writer w = coio::connect_write_pipe(p.w);
        ::close(p.r);
        w.write("x");
        CHECK_THROWS_AS(co_await coio::wait_for([](coio::stream_writer& w) -> coio::coro<void> {
            for (;;) {
                co_await w.drain();
                co_await coio::sleep(1ms);
                w.write("x");
            }
        }(w), 5s), std::system_error);
    }());
    struct sigaction now {};
    ::sigaction(SIGPIPE, &saved, &now);
    CHECK(now.sa_handler == mine.sa_handler);
}

TEST_CASE("pipe: character devices (/dev/zero, /dev/null)") {
    on_both_backends([]() -> coio::coro<void> {
        const int z = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
        REQUIRE(z >= 0);
        coio::stream_reader r = coio::connect_read_pipe(z);
        CO_CHECK(co_await r.readexactly(100'000) == std::string(100'000, '\0'));
        const int n = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
        REQUIRE(n >= 0);
        coio::stream_writer w = coio::connect_write_pipe(n);
        w.write(std::string(1 << 20, 'q'));
        co_await w.drain();
        w.close();
        co_await w.wait_closed();
        CHECK_FALSE(fd_is_open(n));
    });
}

TEST_CASE("pipe: regular files and bad descriptors are refused, and not taken") {
    coio::run([]() -> coio::coro<void> {
        std::FILE* f = std::tmpfile();
        REQUIRE(f);
        const int fd = ::fileno(f);
        CHECK_THROWS_AS(coio::connect_read_pipe(fd), std::invalid_argument);
        CHECK(fd_is_open(fd));  // still the caller's
        std::fclose(f);
        CHECK_THROWS_AS(coio::connect_write_pipe(-1), std::invalid_argument);
        co_return;
    }());
}

TEST_CASE("pipe: get_extra_info(\"pipe\") and a socket pair through the pipe functions") {
    on_both_backends([]() -> coio::coro<void> {
        fd_pair p;
        coio::stream_writer w = coio::connect_write_pipe(p.w);
        CHECK(std::any_cast<int>(w.get_extra_info("pipe")) == p.w);
        CHECK_FALSE(w.get_extra_info("peername").has_value());
        ::close(p.r);
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        coio::stream_reader sr = coio::connect_read_pipe(sv[0]);
        coio::stream_writer sw = coio::connect_write_pipe(sv[1]);
        sw.write("over a socket\n");
        CO_CHECK(co_await sr.readline() == "over a socket\n");
    });
}
