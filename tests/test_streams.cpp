// Tests of coio/streams.hpp: open_connection and open_unix_connection, and many concurrent
// connections against a coio server.
// ctest-labels: serial
#include <coio/streams.hpp>
#include "support/catch.hpp"

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/server.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <sys/resource.h>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

template <class F>
void run_test(F body, coio::run_options opts = {}) {
    coio::run([](F b) -> coio::coro<void> { co_await coio::wait_for(b(), 60s); }(std::move(body)), opts);
}

coio::coro<void> echo(coio::stream_reader r, coio::stream_writer w) {
    for (int i = 0; i < 1'000'000; ++i) {  // bounded; ends at EOF long before
        std::string d = co_await r.read(4096);
        if (d.empty()) break;
        w.write(d);
        co_await w.drain();
    }
}

}  // namespace

TEST_CASE("open_connection: IPv4 and IPv6 numeric hosts without DNS") {
    run_test([]() -> coio::coro<void> {
        for (const char* host : {"127.0.0.1", "::1", "[::1]"}) {
            INFO(host);
            auto srv = co_await coio::start_server(echo, host, 0);
            const auto port = srv.sockets().front().local_address().port();
            auto [r, w] = co_await coio::open_connection(host, port, {.limit = 1024});
            CHECK(r.limit() == 1024);
            w.write("round trip\n");
            std::string line = co_await r.readline();
            CHECK(line == "round trip\n");
            CHECK(w.peername().port() == port);
            w.close();
            co_await w.wait_closed();
            srv.close();
            co_await srv.wait_closed();
        }
    });
}

TEST_CASE("open_connection and start_server: host names go through coio::getaddrinfo") {
    // localhost comes from /etc/hosts; the resolver points at a closed loopback port, so no
    // query can ever leave the machine.
    run_test(
        []() -> coio::coro<void> {
            auto srv = co_await coio::start_server(echo, "localhost", 0, {.family = AF_INET});
            const auto port = srv.sockets().front().local_address().port();
            CHECK(srv.sockets().front().local_address().host() == "127.0.0.1");
            auto [r, w] = co_await coio::open_connection("localhost", port, {.family = AF_INET});
            w.write("by name\n");
            std::string line = co_await r.readline();
            CHECK(line == "by name\n");
        },
        {.resolver = {.servers = {"127.0.0.1:9"}, .timeout = std::chrono::milliseconds(200), .tries = 1}});
}

TEST_CASE("open_connection: refused port and bad input") {
    run_test([]() -> coio::coro<void> {
        std::uint16_t port;
        {
            coio::socket probe(AF_INET, SOCK_STREAM);
            probe.bind(coio::endpoint("127.0.0.1", 0));
            port = probe.local_address().port();
        }
        try {
            co_await coio::open_connection("127.0.0.1", port);
            FAIL("connected");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_refused);
            CHECK_THAT(e.what(), Catch::Contains("127.0.0.1:" + std::to_string(port)));
        }
        CHECK_THROWS_AS(co_await coio::open_connection("127.0.0.1", port, {.limit = 0}), std::invalid_argument);
        // A family that does not match the numeric address.
        CHECK_THROWS_AS(co_await coio::open_connection("127.0.0.1", port, {.family = AF_INET6}), std::system_error);
    });
}

TEST_CASE("open_unix_connection: round trip on a path and on an abstract name") {
    run_test([]() -> coio::coro<void> {
        const std::string file = "/tmp/coio-test-streams-" + std::to_string(::getpid()) + ".sock";
        const std::string abstract = std::string("\0coio-test-streams-", 19) + std::to_string(::getpid());
        for (const std::string& path : {file, abstract}) {
            auto srv = co_await coio::start_unix_server(echo, path);
            CHECK(srv.sockets().front().local_path() == path);
            auto [r, w] = co_await coio::open_unix_connection(path);
            w.write("over unix\n");
            std::string line = co_await r.readline();
            CHECK(line == "over unix\n");
            w.close();
            srv.close();
            co_await srv.wait_closed();
        }
        CHECK(::access(file.c_str(), F_OK) != 0);  // the server removed its socket file
        try {
            co_await coio::open_unix_connection(file);
            FAIL("connected");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::no_such_file_or_directory);
        }
    });
}

TEST_CASE("streams: 1000 concurrent echo connections") {
    // Each connection needs two descriptors here (client and server side).
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 4096) {
        rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 4096);
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    REQUIRE(rl.rlim_cur >= 2100);
    for (bool ms : {true, false}) {
        INFO("multishot=" << ms);
        run_test(
            [ms]() -> coio::coro<void> {
                auto srv = co_await coio::start_server(echo, "127.0.0.1", 0, {.backlog = 1024, .multishot_recv = ms});
                const auto port = srv.sockets().front().local_address().port();
                std::vector<coio::coro<std::size_t>> clients;
                for (int i = 0; i < 1000; ++i) {
                    clients.push_back([](std::uint16_t p, int id, bool m) -> coio::coro<std::size_t> {
                        auto [r, w] = co_await coio::open_connection("127.0.0.1", p, {.multishot_recv = m});
                        std::size_t ok = 0;
                        for (int k = 0; k < 3; ++k) {
                            const std::string msg = "client " + std::to_string(id) + " message " + std::to_string(k) + "\n";
                            w.write(msg);
                            co_await w.drain();
                            if (co_await r.readline() == msg) ++ok;
                        }
                        w.close();
                        co_await w.wait_closed();
                        co_return ok;
                    }(port, i, ms));
                }
                std::vector<std::size_t> results = co_await coio::gather(std::move(clients));
                std::size_t total = 0;
                for (std::size_t v : results) total += v;
                CHECK(total == 3000);
                srv.close();
                co_await srv.wait_closed();
            },
            {.entries = 4096});
    }
}
