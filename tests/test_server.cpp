// Tests of coio/server.hpp: start_server, start_unix_server, and server lifetime.
#include <coio/server.hpp>
#include "support/catch.hpp"
#include "support/virtual_clock.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/streams.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

template <class F>
void run_test(F body) {
    coio::run([](F b) -> coio::coro<void> { co_await coio::wait_for(b(), 30s); }(std::move(body)));
}

}  // namespace

TEST_CASE("server: sockets() gives the bound port - is_serving - serve_forever ends on close()") {
    run_test([]() -> coio::coro<void> {
        int handled = 0;
        auto srv = co_await coio::start_server(
            [&handled](coio::stream_reader r, coio::stream_writer w) -> coio::coro<void> {
                ++handled;
                std::string line = co_await r.readline();
                w.write("hello " + line);
                co_await w.drain();
            },
            "127.0.0.1", 0, {.limit = 1024, .backlog = 16, .reuse_address = true});
        REQUIRE(srv.sockets().size() == 1);
        const std::uint16_t port = srv.sockets().front().local_address().port();
        CHECK(port != 0);
        CHECK(srv.is_serving());
        auto forever = coio::create_task(srv.serve_forever());
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port);
        w.write("you\n");
        std::string reply = co_await r.readline();
        CHECK(reply == "hello you\n");
        CHECK(handled == 1);
        srv.close();
        co_await forever;  // returns once the server is closed
        co_await srv.wait_closed();
        CHECK_FALSE(srv.is_serving());
        CHECK(srv.sockets().empty());
        CHECK_THROWS_AS(co_await srv.serve_forever(), coio::invalid_state_error);
        // The port is free again: nothing listens.
        CHECK_THROWS_AS(co_await coio::open_connection("127.0.0.1", port), std::system_error);
    });
}

TEST_CASE("server: close() with clients connected cancels their handlers and closes their sockets") {
    run_test([]() -> coio::coro<void> {
        int cancelled = 0;
        int started = 0;
        auto srv = co_await coio::start_server(
            [&](coio::stream_reader r, coio::stream_writer) -> coio::coro<void> {
                ++started;
                try {
                    co_await r.read(10);  // the clients never send: blocks until cancelled
                } catch (const coio::cancelled_error&) {
                    ++cancelled;
                    throw;
                }
            },
            "127.0.0.1", 0);
        const auto port = srv.sockets().front().local_address().port();
        std::vector<std::pair<coio::stream_reader, coio::stream_writer>> clients;
        for (int i = 0; i < 5; ++i) clients.push_back(co_await coio::open_connection("127.0.0.1", port));
        for (int i = 0; i < 100 && started < 5; ++i) co_await coio::sleep(2ms);
        CHECK(started == 5);
        CHECK(srv.active_connections() == 5);
        srv.close();
        co_await srv.wait_closed();
        CHECK(cancelled == 5);
        CHECK(srv.active_connections() == 0);
        for (auto& [r, w] : clients) {
            std::string rest = co_await r.read();  // EOF: the server closed its side
            CHECK(rest.empty());
        }
    });
}

TEST_CASE("server: cancelling serve_forever closes the server") {
    run_test([]() -> coio::coro<void> {
        auto srv = co_await coio::start_server([](coio::stream_reader, coio::stream_writer) -> coio::coro<void> { co_return; },
                                               "127.0.0.1", 0);
        auto forever = coio::create_task(srv.serve_forever());
        co_await coio::sleep(5ms);
        forever.cancel();
        CHECK_THROWS_AS(co_await forever, coio::cancelled_error);
        CHECK_FALSE(srv.is_serving());
        CHECK(srv.sockets().empty());
    });
}

TEST_CASE("server: reuse_port lets two servers share a port, address in use otherwise") {
    run_test([]() -> coio::coro<void> {
        auto cb = [](coio::stream_reader, coio::stream_writer w) -> coio::coro<void> {
            w.write("hi");
            co_return;
        };
        auto a = co_await coio::start_server(cb, "127.0.0.1", 0, {.reuse_port = true});
        const auto port = a.sockets().front().local_address().port();
        auto b = co_await coio::start_server(cb, "127.0.0.1", port, {.reuse_port = true});
        CHECK(b.sockets().front().local_address().port() == port);
        try {
            auto c = co_await coio::start_server(cb, "127.0.0.1", port);
            FAIL("bound twice");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::address_in_use);
            CHECK_THAT(e.what(), Catch::Contains("127.0.0.1:" + std::to_string(port)));
        }
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port);
        std::string got = co_await r.read();
        CHECK(got == "hi");
    });
}

TEST_CASE("server: an exception escaping the handler goes to the loop's exception handler") {
    std::string seen;
    coio::run([&seen]() -> coio::coro<void> {
        coio::get_running_loop().set_exception_handler(
            [&seen](coio::event_loop&, const coio::exception_context& ctx) { seen = ctx.message; });
        auto srv = co_await coio::start_server(
            [](coio::stream_reader, coio::stream_writer) -> coio::coro<void> {
                throw std::runtime_error("boom");
                co_return;
            },
            "127.0.0.1", 0);
        auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.sockets().front().local_address().port());
        std::string rest = co_await coio::wait_for(r.read(), 10s);  // the server side closes
        CHECK(rest.empty());
    }());
    CHECK(seen == "Unhandled exception in client_connected_cb");
}

TEST_CASE("server: an empty host listens on all interfaces (reached on loopback)") {
    run_test([]() -> coio::coro<void> {
        auto srv = co_await coio::start_server([](coio::stream_reader, coio::stream_writer w) -> coio::coro<void> {
            w.write("any");
            co_return;
        }, "", 0, {.family = AF_INET});
        REQUIRE(srv.sockets().size() == 1);
        CHECK(srv.sockets().front().local_address().host() == "0.0.0.0");
        auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.sockets().front().local_address().port());
        std::string got = co_await r.read();
        CHECK(got == "any");
    });
}

TEST_CASE("server: start_unix_server replaces a stale socket file") {
    run_test([]() -> coio::coro<void> {
        const std::string path = "/tmp/coio-test-server-" + std::to_string(::getpid()) + ".sock";
        {
            coio::socket stale(AF_UNIX, SOCK_STREAM);
            stale.bind_unix(path);  // leaves a socket file behind when closed
        }
        auto srv = co_await coio::start_unix_server([](coio::stream_reader, coio::stream_writer w) -> coio::coro<void> {
            w.write("fresh");
            co_return;
        }, path);
        auto [r, w] = co_await coio::open_unix_connection(path);
        std::string got = co_await r.read();
        CHECK(got == "fresh");
        srv.close();
        co_await srv.wait_closed();
        CHECK(::access(path.c_str(), F_OK) != 0);
    });
}

namespace {

/// Uses up every descriptor: lowers RLIMIT_NOFILE to just above the lowest free descriptor
/// and fills the rest with /dev/null. The destructor closes them and restores the limit.
///
/// No Catch2 assertion may run while the descriptors are used up: UBSan's dynamic-type check
/// of a type it has not seen yet probes memory through a pipe, and without descriptors it
/// reports a false "invalid vptr" (Catch2's expression templates are polymorphic). So
/// results are recorded in that window and checked after restore().
class descriptors_exhausted {
public:
    descriptors_exhausted() {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &old_) == 0);
        const int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        REQUIRE(probe >= 0);
        ::close(probe);
        rlimit low = old_;
        low.rlim_cur = static_cast<rlim_t>(probe) + 4;
        REQUIRE(low.rlim_cur <= old_.rlim_cur);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
        limited_ = true;
        fillers_.reserve(64);
        for (int i = 0; i < 64; ++i) {  // bounded: at most 4 slots are free below the limit
            const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                reached_ = errno == EMFILE;
                return;
            }
            fillers_.push_back(fd);
        }
    }
    /// True when opening one more descriptor failed with EMFILE.
    [[nodiscard]] bool reached() const noexcept { return reached_; }
    descriptors_exhausted(const descriptors_exhausted&) = delete;
    descriptors_exhausted& operator=(const descriptors_exhausted&) = delete;
    ~descriptors_exhausted() { restore(); }
    void restore() noexcept {
        for (int fd : fillers_) ::close(fd);
        fillers_.clear();
        if (limited_) ::setrlimit(RLIMIT_NOFILE, &old_);
        limited_ = false;
    }

private:
    rlimit old_{};
    bool limited_ = false;
    bool reached_ = false;
    std::vector<int> fillers_;
};

}  // namespace

TEST_CASE("server: out of descriptors, accept backs off, logs once per episode, and accepts again") {
    std::vector<std::string> messages;
    double stalled_for = 0;
    coio::run([&]() -> coio::coro<void> {
        coio::event_loop& loop = coio::get_running_loop();
        loop.set_exception_handler([&messages](coio::event_loop&, const coio::exception_context& ctx) {
            messages.push_back(ctx.message);
        });
        auto srv = co_await coio::start_server([](coio::stream_reader, coio::stream_writer w) -> coio::coro<void> {
            w.write("hi");
            co_await w.drain();
        }, "127.0.0.1", 0);
        // A plain blocking client, made before the descriptors run out: connecting needs no
        // new descriptor, and the handshake completes in the listener's backlog.
        const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(client >= 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(srv.sockets().front().local_address().port());
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        std::size_t active_while_full = 0;
        std::vector<std::string> messages_while_full;
        bool reached = false;
        int connected = -1;
        {
            descriptors_exhausted full;
            reached = full.reached();
            connected = ::connect(client, reinterpret_cast<const sockaddr*>(&to), sizeof to);
            // The server's accept fails with EMFILE for 1.2 s: a flat 100 ms retry logged 12
            // lines; one episode is one line.
            for (int i = 0; i < 12; ++i) co_await coio::sleep(100ms);
            active_while_full = srv.active_connections();
            messages_while_full = messages;
            full.restore();
        }
        REQUIRE(reached);
        REQUIRE(connected == 0);
        CHECK(active_while_full == 0);
        REQUIRE(messages_while_full.size() == 1);
        CHECK_THAT(messages_while_full[0], Catch::Contains("Too many open files") && Catch::Contains("back-off"));
        // Descriptors are back: the next retry (at most max_retry_delay later) accepts.
        const double restored = loop.time();
        std::string got;
        for (int i = 0; i < 500 && got.size() < 2; ++i) {  // bounded: 5 s
            char buf[8];
            const ssize_t n = ::recv(client, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) got.append(buf, static_cast<std::size_t>(n));
            else co_await coio::sleep(10ms);
        }
        stalled_for = loop.time() - restored;
        ::close(client);
        CHECK(got == "hi");
    }(), coio_test::virtual_clock());  // the back-off's 1.2 s pass at once
    INFO("accepted " << stalled_for << " s after the limit was restored");
    CHECK(stalled_for < 3.0);  // the back-off is capped at 1 s (3 s: slack for a loaded CI host)
    REQUIRE(messages.size() == 2);
    CHECK_THAT(messages[1], Catch::Contains("works again after"));
    // Back-off, not a fixed period: 10, 20, 40, ... ms retries fail at most ~8 times in 1.2 s.
    const auto after = messages[1].find("after ");
    const int failures = std::atoi(messages[1].c_str() + after + 6);
    CHECK(failures >= 1);
    CHECK(failures <= 10);
    // The default handler prefixes "coio: "; a message must not bring its own.
    for (const std::string& m : messages) CHECK(m.rfind("coio:", 0) == std::string::npos);
}
