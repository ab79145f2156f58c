#include <coio/coro.hpp>

#include "support/catch.hpp"
#include "support/co_check.hpp"
#include "support/counted.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>

#include <memory>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using coio_test::counted;

namespace {

coio::coro<int> value(int v) { co_return v; }
coio::coro<void> nothing(int& hits) { ++hits; co_return; }
coio::coro<int&> ref_to(int& x) { co_return x; }
coio::coro<int> thrower() {
    throw std::runtime_error("inner failure");
    co_return 0;
}
coio::coro<int> recurse(int n) {
    if (n == 0) co_return 0;
    co_return 1 + co_await recurse(n - 1);
}
coio::coro<std::unique_ptr<int>> make_unique_int(int v) { co_return std::make_unique<int>(v); }
coio::coro<int> sleepy(int v) {
    co_await coio::sleep(1ms);
    co_return v;
}

} // namespace

TEST_CASE("a coro is lazy: its body runs only when awaited") {
    int hits = 0;
    auto c = nothing(hits);
    CHECK(hits == 0);
    CHECK(c.valid());
    coio::run([](coio::coro<void> c, int& hits) -> coio::coro<void> {
        co_await std::move(c);
        CHECK(hits == 1);
    }(std::move(c), hits));
    CHECK(hits == 1);
}

TEST_CASE("coro returns values, void and references") {
    int x = 5;
    int result = coio::run([](int& x) -> coio::coro<int> {
        int a = co_await value(40);
        int& r = co_await ref_to(x);
        r = 2;
        co_return a + x;
    }(x));
    CHECK(result == 42);
    CHECK(x == 2);
}

TEST_CASE("coro exceptions reach the awaiter") {
    CHECK_THROWS_WITH(coio::run(thrower()), "inner failure");
    bool caught = coio::run([]() -> coio::coro<bool> {
        try {
            co_await thrower();
        } catch (const std::runtime_error&) {
            co_return true;
        }
        co_return false;
    }());
    CHECK(caught);
}

TEST_CASE("awaiting a coro twice or after a move is a typed error") {
    coio::run([]() -> coio::coro<void> {
        auto c = value(1);
        CO_CHECK(co_await c == 1);
        CHECK_FALSE(c.valid());
        CHECK_THROWS_AS(co_await c, coio::invalid_state_error);
        auto d = value(2);
        auto e = std::move(d);
        CHECK_THROWS_AS(co_await d, coio::invalid_state_error);  // NOLINT: use after move on purpose
        CO_CHECK(co_await e == 2);
        coio::coro<int> empty;
        CHECK_THROWS_AS(co_await empty, coio::invalid_state_error);
    }());
}

TEST_CASE("symmetric transfer: a million nested synchronous awaits use no stack") {
    CHECK(coio::run(recurse(1'000'000)) == 1'000'000);
}

TEST_CASE("symmetric transfer: a million sequential awaits of ready coros use no stack") {
    long sum = coio::run([]() -> coio::coro<long> {
        long s = 0;
        for (int i = 0; i < 1'000'000; ++i) s += co_await value(1);
        co_return s;
    }());
    CHECK(sum == 1'000'000);
}

TEST_CASE("move-only results move out") {
    auto p = coio::run(make_unique_int(7));
    REQUIRE(p);
    CHECK(*p == 7);
}

TEST_CASE("coro results and frames are destroyed exactly once") {
    counted::reset();
    {
        auto r = coio::run([]() -> coio::coro<counted> { co_return counted(3); }());
        CHECK(r.value == 3);
        CHECK(counted::alive == 1);
    }
    CHECK(counted::alive == 0);
    {
        // A coro destroyed without ever being awaited destroys its parameters.
        auto c = [](counted) -> coio::coro<void> { co_return; }(counted(1));
        CHECK(counted::alive == 1);
    }
    CHECK(counted::alive == 0);
}

TEST_CASE("a coro suspended in real I/O resumes its awaiter") {
    CHECK(coio::run([]() -> coio::coro<int> { co_return co_await sleepy(3) + co_await sleepy(4); }()) == 7);
}
