#include <coio/uring.hpp>

#include "support/catch.hpp"
#include "support/co_check.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

using namespace std::chrono_literals;

namespace {
// uring_op exists only on io_uring: these tests ask for it even when the suite runs with
// COIO_BACKEND=epoll (an explicit choice wins over the environment).
const coio::run_options uring_only{.backend = coio::backend::io_uring};

struct pipe_fds {
    int r = -1, w = -1;
    pipe_fds() { int p[2]; REQUIRE(::pipe(p) == 0); r = p[0]; w = p[1]; }
    ~pipe_fds() { ::close(r); ::close(w); }
};
} // namespace

TEST_CASE("uring_op: NOP completes with 0") {
    coio::run([]() -> coio::coro<void> {
        CO_CHECK(co_await coio::uring_op([](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); }) == 0);
    }(), uring_only);
}

TEST_CASE("uring_op: a kernel timeout completes with -ETIME") {
    coio::run([]() -> coio::coro<void> {
        __kernel_timespec ts{0, 5'000'000};
        auto t0 = coio::clock::now();
        int r = co_await coio::uring_op([&](io_uring_sqe* sqe) { io_uring_prep_timeout(sqe, &ts, 0, 0); });
        CHECK(r == -ETIME);
        CHECK(coio::clock::now() - t0 >= 5ms);
    }(), uring_only);
}

TEST_CASE("uring_op: a read that never gets data is cancelled, resuming only after its CQE") {
    pipe_fds p;
    coio::run([](pipe_fds& p) -> coio::coro<void> {
        std::array<char, 16> buf{};
        bool cancelled = false;
        auto reader = coio::create_task([](int fd, std::array<char, 16>& buf, bool& cancelled) -> coio::coro<void> {
            try {
                co_await coio::uring_op([&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buf.data(), buf.size(), 0); });
            } catch (const coio::cancelled_error&) {
                cancelled = true;
                throw;
            }
        }(p.r, buf, cancelled));
        co_await coio::sleep(5ms);
        reader.cancel();
        CHECK_THROWS_AS(co_await reader, coio::cancelled_error);
        CHECK(cancelled);
        // The cancelled read is gone from the kernel: data written now is not consumed by it.
        REQUIRE(::write(p.w, "hello", 5) == 5);
        std::array<char, 16> again{};
        int n = co_await coio::uring_op([&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, p.r, again.data(), again.size(), 0); });
        CHECK(n == 5);
        CHECK(std::memcmp(again.data(), "hello", 5) == 0);
        CHECK(buf[0] == 0);  // the cancelled buffer was never written
    }(p), uring_only);
}

TEST_CASE("uring_op: wait_for on a read gives timeout_error") {
    pipe_fds p;
    coio::run([](pipe_fds& p) -> coio::coro<void> {
        char buf[8];
        auto read_it = [](int fd, char* buf) -> coio::coro<int> {
            co_return co_await coio::uring_op([=](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buf, 8, 0); });
        };
        CHECK_THROWS_AS(co_await coio::wait_for(read_it(p.r, buf), 10ms), coio::timeout_error);
    }(p), uring_only);
}

TEST_CASE("uring_op: a cancel racing with data loses no bytes") {
    // Data and cancellation arrive in the same loop iteration. Either the read completed first
    // (its bytes are returned and the cancellation is delivered at the next await) or the
    // kernel cancelled it before it copied anything (the bytes are still in the pipe).
    pipe_fds p;
    coio::run([](pipe_fds& p) -> coio::coro<void> {
        char buf[8] = {};
        int got = -1;
        bool read_cancelled = false;
        bool cancelled_later = false;
        auto reader = coio::create_task([](int fd, char* buf, int& got, bool& read_cancelled, bool& later) -> coio::coro<void> {
            try {
                got = co_await coio::uring_op([=](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buf, 8, 0); });
            } catch (const coio::cancelled_error&) {
                read_cancelled = true;
                co_return;
            }
            try {
                co_await coio::sleep(1s);
            } catch (const coio::cancelled_error&) {
                later = true;
            }
        }(p.r, buf, got, read_cancelled, cancelled_later));
        co_await coio::sleep(5ms);
        REQUIRE(::write(p.w, "abc", 3) == 3);
        co_await coio::uring_op([](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
        reader.cancel();
        co_await reader;
        if (got >= 0) {
            INFO("the read won the race");
            CHECK(got == 3);
            CHECK(std::memcmp(buf, "abc", 3) == 0);
            CHECK(cancelled_later);
        } else {
            INFO("the cancel won the race");
            CHECK(read_cancelled);
            char rest[8] = {};
            int n = co_await coio::uring_op([&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, p.r, rest, 8, 0); });
            CHECK(n == 3);
            CHECK(std::memcmp(rest, "abc", 3) == 0);
        }
    }(p), uring_only);
}
