// Tests of loop_options::clock = clock_kind::virtual_time (coio/detail/core.hpp documents the
// rule): time jumps to the next timer when the loop is idle, and flows in real time while
// I/O or a to_thread call is in flight.
#include <coio/loop.hpp>

#include "support/after.hpp"
#include "support/catch.hpp"
#include "support/co_check.hpp"
#include "support/dnsmasq.hpp"

#include <coio/dns.hpp>
#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/socket.hpp>
#include <coio/task.hpp>
#include <coio/thread.hpp>
#include <coio/timeout.hpp>

#include <sys/resource.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using coio_test::after;

namespace {

constexpr coio::run_options virtual_options(coio::backend b = coio::backend::automatic) {
    coio::run_options o;
    o.clock = coio::clock_kind::virtual_time;
    o.backend = b;
    return o;
}

// Virtual time elapsed since `t0`, in whole milliseconds (exact under a virtual clock while
// no real wait happened).
std::chrono::milliseconds since(coio::clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(coio::clock::now() - t0);
}

// socket::recv's awaiter cannot move into wait_for: a coro wraps it.
coio::coro<std::string> recv16(coio::socket& s) { co_return co_await s.recv(16); }

std::chrono::microseconds thread_cpu() {
    rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    return std::chrono::seconds(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           std::chrono::microseconds(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

double real_seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The two backends this kernel offers (io_uring may be refused, e.g. by seccomp).
std::vector<coio::backend> backends() {
    std::vector<coio::backend> out{coio::backend::epoll};
    try {
        coio::event_loop probe({.backend = coio::backend::io_uring});
        out.push_back(coio::backend::io_uring);
    } catch (const std::system_error& e) {
        WARN("io_uring refused, testing epoll only: " << e.what());
    }
    return out;
}

} // namespace

TEST_CASE("virtual clock: sleep of hours completes at once, and exactly on time") {
    const auto real0 = std::chrono::steady_clock::now();
    coio::run([]() -> coio::coro<void> {
        auto& loop = coio::get_running_loop();
        const double t0 = loop.time();
        const auto c0 = coio::clock::now();
        CHECK(loop.now() == c0);
        co_await coio::sleep(3600s);
        // Time stands still while tasks run, so the jump lands exactly on the deadline.
        CHECK(coio::clock::now() - c0 == 3600s);
        CHECK(loop.time() - t0 == Approx(3600.0));
        co_await coio::sleep(24h);
        CHECK(coio::clock::now() - c0 == 25h);
        co_await coio::sleep(0);  // a yield does not move the clock
        CHECK(coio::clock::now() - c0 == 25h);
    }(), virtual_options());
    CHECK(real_seconds_since(real0) < 5.0);
}

TEST_CASE("virtual clock: deadlines fire in order, each at its own time") {
    coio::run([]() -> coio::coro<void> {
        const auto t0 = coio::clock::now();
        std::vector<std::pair<int, std::chrono::milliseconds>> fired;
        auto sleeper = [&](std::chrono::milliseconds d, int id) -> coio::coro<void> {
            co_await coio::sleep(d);
            fired.emplace_back(id, since(t0));
        };
        auto& loop = coio::get_running_loop();
        loop.call_later(2500ms, [&] { fired.emplace_back(25, since(t0)); });
        auto a = coio::create_task(sleeper(3000ms, 3));
        auto b = coio::create_task(sleeper(1000ms, 1));
        auto c = coio::create_task(sleeper(2000ms, 2));
        auto d = coio::create_task(sleeper(1000ms, 11));  // same deadline: creation order
        co_await coio::gather(a, b, c, d);
        const std::vector<std::pair<int, std::chrono::milliseconds>> want{
            {1, 1000ms}, {11, 1000ms}, {2, 2000ms}, {25, 2500ms}, {3, 3000ms}};
        CHECK(fired == want);
    }(), virtual_options());
}

TEST_CASE("virtual clock: nested timeouts expire innermost first, at their deadlines") {
    coio::run([]() -> coio::coro<void> {
        const auto t0 = coio::clock::now();
        bool inner = false, outer = false;
        try {
            auto o = coio::timeout(10s);
            try {
                auto i = coio::timeout(5s);
                co_await coio::sleep(1h);
            } catch (const coio::timeout_error&) {
                inner = true;
                CHECK(since(t0) == 5s);
            }
            co_await coio::sleep(1h);
        } catch (const coio::timeout_error&) {
            outer = true;
            CHECK(since(t0) == 10s);
        }
        CHECK(inner);
        CHECK(outer);
        // reschedule() and timeout_at() read the same clock.
        try {
            auto t = coio::timeout(std::nullopt);
            t.reschedule(coio::clock::now() + 90min);
            co_await coio::sleep(2h);
        } catch (const coio::timeout_error&) {
            CHECK(since(t0) == 10s + 90min);
        }
    }(), virtual_options());
}

TEST_CASE("virtual clock: wait_for") {
    coio::run([]() -> coio::coro<void> {
        const auto t0 = coio::clock::now();
        CO_CHECK(co_await coio::wait_for(after(1000ms, 4), 2s) == 4);
        CHECK(since(t0) == 1s);
        CHECK_THROWS_AS(co_await coio::wait_for(after(std::chrono::hours(5), 1), 2s), coio::timeout_error);
        CHECK(since(t0) == 3s);
        auto t = coio::create_task(after(std::chrono::hours(1), 9));
        CHECK_THROWS_AS(co_await coio::wait_for(t, 30min), coio::timeout_error);
        CHECK(t.cancelled());
        CHECK(since(t0) == 3s + 30min);
    }(), virtual_options());
}

TEST_CASE("virtual clock: event_loop driven directly (call_later, time, run_until_complete)") {
    coio::event_loop loop({.clock = coio::clock_kind::virtual_time});
    const double t0 = loop.time();
    const auto n0 = loop.now();
    double fired_at = 0;
    loop.call_later(7200.0, [&] { fired_at = loop.time(); });
    // Outside run, coio::clock::now() is real time; the loop's own time is still virtual.
    CHECK(loop.now() == n0);
    const int v = loop.run_until_complete(after(std::chrono::hours(3), 5));
    CHECK(v == 5);
    CHECK(fired_at - t0 == Approx(7200.0));
    CHECK(loop.now() - n0 == 3h);
    CHECK(loop.time() - t0 == Approx(3 * 3600.0));
}

TEST_CASE("virtual clock: a real clock is unchanged (sleep takes real time)") {
    coio::run([]() -> coio::coro<void> {
        const auto real0 = std::chrono::steady_clock::now();
        co_await coio::sleep(20ms);
        CHECK(real_seconds_since(real0) >= 0.020);
    }());
}

TEST_CASE("virtual clock: a receive whose peer is outside the loop does not hold the clock") {
    for (const coio::backend b : backends()) {
        INFO("backend " << (b == coio::backend::epoll ? "epoll" : "io_uring"));
        const auto real0 = std::chrono::steady_clock::now();
        coio::run([]() -> coio::coro<void> {
            int sv[2];
            REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
            coio::socket a = coio::socket::from_fd(sv[0]);
            coio::socket peer = coio::socket::from_fd(sv[1]);  // nobody writes to it
            const auto t0 = coio::clock::now();
            CHECK_THROWS_AS(co_await coio::wait_for(recv16(a), 10min), coio::timeout_error);
            CHECK(since(t0) == 10min);
            // The socket still works afterwards, and data already there is no race.
            REQUIRE(::write(peer.fileno(), "late", 4) == 4);
            CO_CHECK(co_await coio::wait_for(recv16(a), 1s) == "late");
            CHECK(since(t0) == 10min);
        }(), virtual_options(b));
        CHECK(real_seconds_since(real0) < 5.0);
    }
}

TEST_CASE("virtual clock: work that holds the clock and never ends cannot hang: its timeout passes in real time") {
    for (const coio::backend b : backends()) {
        INFO("backend " << (b == coio::backend::epoll ? "epoll" : "io_uring"));
        const auto real0 = std::chrono::steady_clock::now();
        coio::run([]() -> coio::coro<void> {
            const auto t0 = coio::clock::now();
            CHECK_THROWS_AS(co_await coio::wait_for(coio::to_thread([] { std::this_thread::sleep_for(300ms); }), 100ms),
                            coio::timeout_error);
            CHECK(coio::clock::now() - t0 >= 100ms);  // it waited in real time...
            CHECK(coio::clock::now() - t0 < 300ms);   // ...until the timer, not for the thread
            // The abandoned call holds the clock no longer: sleeps jump again.
            const auto t1 = coio::clock::now();
            co_await coio::sleep(1h);
            CHECK(coio::clock::now() - t1 == 1h);
        }(), virtual_options(b));
        const double real = real_seconds_since(real0);
        CHECK(real >= 0.1);
        CHECK(real < 5.0);
    }
}

TEST_CASE("virtual clock: a to_thread call holds the clock until its result is back") {
    for (const coio::backend b : backends()) {
        INFO("backend " << (b == coio::backend::epoll ? "epoll" : "io_uring"));
        coio::run([]() -> coio::coro<void> {
            const auto t0 = coio::clock::now();
            std::vector<int> order;
            auto sleeper = coio::create_task([](std::vector<int>& o) -> coio::coro<void> {
                co_await coio::sleep(5s);
                o.push_back(2);
            }(order));
            const int v = co_await coio::wait_for(coio::to_thread([] {
                                                      std::this_thread::sleep_for(30ms);
                                                      return 7;
                                                  }),
                                                  1s);
            order.push_back(1);
            CHECK(v == 7);
            // The clock advances by the real time the loop waited, which starts a moment after
            // the thread began its 30 ms (time stands still while tasks run): seen 29.96 ms.
            CHECK(coio::clock::now() - t0 >= 25ms);
            CHECK(coio::clock::now() - t0 < 5s);
            co_await sleeper;
            CHECK(order == std::vector<int>{1, 2});
            CHECK(coio::clock::now() - t0 == 5s);
        }(), virtual_options(b));
    }
}

TEST_CASE("virtual clock: a loopback connection between two tasks of the loop") {
    for (const coio::backend b : backends()) {
        INFO("backend " << (b == coio::backend::epoll ? "epoll" : "io_uring"));
        coio::run([]() -> coio::coro<void> {
            coio::socket listener(AF_INET, SOCK_STREAM);
            listener.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
            listener.bind(coio::endpoint("127.0.0.1", 0));
            listener.listen(4);
            auto server = coio::create_task([](coio::socket& l) -> coio::coro<std::string> {
                auto [conn, peer] = co_await l.accept();
                co_await coio::sleep(2h);  // the reply comes two virtual hours later
                co_await conn.sendall("pong");
                co_return co_await conn.recv(16);
            }(listener));
            coio::socket c(AF_INET, SOCK_STREAM);
            co_await c.connect(listener.local_address());
            co_await c.sendall("ping");
            const std::string reply = co_await coio::wait_for(recv16(c), 3h);
            CHECK(reply == "pong");
            CO_CHECK(co_await server == "ping");
        }(), virtual_options(b));
    }
}

TEST_CASE("virtual clock: a DNS lookup holds the clock: its tries time out in real time, without spinning") {
    // A UDP socket that never answers is the server: c-ares times its try with the real
    // clock, so a jump of the virtual one could only make the loop spin until it caught up.
    coio_test::blackhole_udp hole;
    coio::resolver r({.servers = {hole.address()}, .timeout = 200ms, .tries = 1});
    coio::run([](coio::resolver& r) -> coio::coro<void> {
        const auto real0 = std::chrono::steady_clock::now();
        const auto cpu0 = thread_cpu();
        const auto t0 = coio::clock::now();
        bool failed = false;
        try {
            (void)co_await r.getaddrinfo("silent.test", 80);
        } catch (const coio::gaierror& e) {
            failed = true;
            CHECK(e.dns_code() == coio::dns_errc::timeout);
        }
        CHECK(failed);
        const double real = real_seconds_since(real0);
        CHECK(real >= 0.15);
        CHECK(coio::clock::now() - t0 >= 150ms);  // virtual time went along with real time
        const auto cpu = thread_cpu() - cpu0;
        INFO("CPU " << cpu.count() << " us over " << real << " s");
        CHECK(cpu < 100ms);  // it waited, it did not spin
        // Lookup over: sleeps jump again.
        const auto t1 = coio::clock::now();
        co_await coio::sleep(1h);
        CHECK(coio::clock::now() - t1 == 1h);
    }(r), virtual_options());
}
