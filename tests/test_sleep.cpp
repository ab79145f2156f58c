// ctest-labels: serial
#include <coio/sleep.hpp>

#include "support/catch.hpp"
#include "support/counted.hpp"

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/task.hpp>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("sleep waits at least the requested time") {
    coio::run([]() -> coio::coro<void> {
        auto t0 = coio::clock::now();
        co_await coio::sleep(20ms);
        CHECK(coio::clock::now() - t0 >= 20ms);
        t0 = coio::clock::now();
        co_await coio::sleep(0.015);
        CHECK(coio::clock::now() - t0 >= 15ms);
    }());
}

TEST_CASE("sleep(0) yields exactly one loop iteration") {
    std::string trace;
    coio::run([](std::string& trace) -> coio::coro<void> {
        auto worker = [](std::string& trace, char c) -> coio::coro<void> {
            for (int i = 0; i < 3; ++i) {
                trace += c;
                co_await coio::sleep(0);
            }
        };
        co_await coio::gather(worker(trace, 'a'), worker(trace, 'b'));
    }(trace));
    CHECK(trace == "ababab");
}

TEST_CASE("cancelling a sleep removes its timer at once") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task([]() -> coio::coro<void> { co_await coio::sleep(1h); }());
        co_await coio::sleep(0);
        auto t0 = coio::clock::now();
        t.cancel();
        CHECK_THROWS_AS(co_await t, coio::cancelled_error);
        CHECK(coio::clock::now() - t0 < 1s);
        // sleep(0) is cancellable too
        auto y = coio::create_task([]() -> coio::coro<void> { for (;;) co_await coio::sleep(0); }());
        co_await coio::sleep(0);
        y.cancel();
        CHECK_THROWS_AS(co_await y, coio::cancelled_error);
    }());
}

TEST_CASE("sleep(delay, result) returns result after the delay (move-only too)") {
    coio::run([]() -> coio::coro<void> {
        auto t0 = coio::clock::now();
        std::string s = co_await coio::sleep(15ms, std::string("done"));
        CHECK(s == "done");
        CHECK(coio::clock::now() - t0 >= 15ms);
        int v = co_await coio::sleep(0.001, 42);
        CHECK(v == 42);
        auto p = co_await coio::sleep(0, std::make_unique<int>(7));
        REQUIRE(p);
        CHECK(*p == 7);
    }());
}

TEST_CASE("sleep(delay, result) cancelled: throws, and the value is destroyed once") {
    coio_test::counted::reset();
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task([]() -> coio::coro<int> {
            coio_test::counted c = co_await coio::sleep(1h, coio_test::counted(5));
            co_return c.value;
        }());
        co_await coio::sleep(0);
        auto t0 = coio::clock::now();
        t.cancel();
        CHECK_THROWS_AS(co_await t, coio::cancelled_error);
        CHECK(coio::clock::now() - t0 < 1s);
        coio_test::counted back = co_await coio::sleep(0, coio_test::counted(3));
        CHECK(back.value == 3);
    }());
    CHECK(coio_test::counted::alive == 0);
}

TEST_CASE("sleep outside a task is invalid_state_error") {
    // A coroutine resumed by hand, with no loop: the sleep cannot suspend any task.
    auto c = []() -> coio::coro<void> { co_await coio::sleep(1ms); }();
    auto h = c.release();
    h.resume();
    REQUIRE(h.done());
    CHECK_THROWS_AS(h.promise().result.take(), coio::invalid_state_error);
    h.destroy();
}

TEST_CASE("100,000 concurrent sleeps of 0-100 ms all finish, none early") {
    constexpr int n = 100'000;
    std::vector<std::chrono::milliseconds> delays(n);
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> dist(0, 100);
    for (auto& d : delays) d = std::chrono::milliseconds(dist(rng));
    int early = 0;
    int finished = 0;
    coio::run([](const std::vector<std::chrono::milliseconds>& delays, int& early, int& finished) -> coio::coro<void> {
        std::vector<coio::coro<void>> sleeps;
        sleeps.reserve(delays.size());
        for (auto d : delays)
            sleeps.push_back([](std::chrono::milliseconds d, int& early, int& finished) -> coio::coro<void> {
                auto t0 = coio::clock::now();
                co_await coio::sleep(d);
                if (coio::clock::now() - t0 < d) ++early;
                ++finished;
            }(d, early, finished));
        co_await coio::gather(std::move(sleeps));
    }(delays, early, finished));
    CHECK(finished == n);
    CHECK(early == 0);
}
