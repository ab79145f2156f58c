// coio built with COIO_SEPARATE_COMPILATION: this file sees only declarations of the loop's
// bodies (they are compiled once, in src.cpp). Every public header is included, so a body
// that a header needs but src.hpp does not provide fails to link, and the program exercises
// the loop, timers, tasks, gather, a TCP stream pair on loopback and run_main end to end.
#include <coio/coio.hpp>

#include "../support/catch.hpp"

#include <chrono>
#include <string>

using namespace std::chrono_literals;

#if !defined(COIO_SEPARATE_COMPILATION)
#error "this test must be compiled with COIO_SEPARATE_COMPILATION"
#endif

namespace {

coio::coro<int> twice(int x) {
    co_await coio::sleep(1ms);
    co_return 2 * x;
}

coio::coro<std::string> echo_once() {
    std::string got;
    auto srv = co_await coio::start_server(
        [](coio::stream_reader r, coio::stream_writer w) -> coio::coro<void> {
            std::string line = co_await r.readline();
            w.write(line);
            co_await w.drain();
        },
        "127.0.0.1", 0);
    const auto port = srv.sockets().at(0).local_address().port();
    auto [reader, writer] = co_await coio::open_connection("127.0.0.1", port);
    writer.write("ping\n");
    got = co_await reader.readline();
    srv.close();
    co_await srv.wait_closed();
    co_return got;
}

} // namespace

TEST_CASE("separate compilation: the loop's bodies come from one source file") {
    const int sum = coio::run([]() -> coio::coro<int> {
        auto [a, b] = co_await coio::gather(twice(1), twice(20));
        auto t = coio::create_task(twice(100), "hundred");
        co_return a + b + co_await t;
    }());
    CHECK(sum == 242);
    CHECK(coio::run(echo_once()) == "ping\n");
    CHECK(coio::run_main([]() -> coio::coro<int> { co_return 7; }()) == 7);
    CHECK_THROWS_AS(coio::run([]() -> coio::coro<void> {
                        co_await coio::wait_for(coio::sleep(1h), 1ms);
                    }()),
                    coio::timeout_error);
}
