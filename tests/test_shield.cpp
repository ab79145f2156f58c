#include <coio/shield.hpp>

#include "support/after.hpp"
#include "support/catch.hpp"
#include "support/co_check.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

using namespace std::chrono_literals;
using coio_test::after;

TEST_CASE("shield: cancelling the awaiter does not cancel the shielded task") {
    coio::run([]() -> coio::coro<void> {
        auto inner = coio::create_task(after(20ms, 8));
        auto outer = coio::create_task([](coio::task<int> inner) -> coio::coro<int> { co_return co_await coio::shield(inner); }(inner));
        co_await coio::sleep(1ms);
        outer.cancel();
        CHECK_THROWS_AS(co_await outer, coio::cancelled_error);
        CHECK_FALSE(inner.done());
        CO_CHECK(co_await inner == 8);
    }());
}

TEST_CASE("shield: results pass through and it works under wait_for") {
    coio::run([]() -> coio::coro<void> {
        CO_CHECK(co_await coio::shield(after(1ms, 3)) == 3);
        auto slow = coio::create_task(after(30ms, 4));
        CHECK_THROWS_AS(co_await coio::wait_for(coio::shield(slow), 5ms), coio::timeout_error);
        CO_CHECK(co_await slow == 4);
    }());
}
