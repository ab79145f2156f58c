#include <coio/timeout.hpp>

#include "support/after.hpp"
#include "support/catch.hpp"
#include "support/virtual_clock.hpp"
#include "support/co_check.hpp"

#include <coio/run.hpp>
#include <coio/shield.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <optional>

using namespace std::chrono_literals;
using coio_test::after;

TEST_CASE("timeout: expiry raises timeout_error in the guarded code") {
    coio::run([]() -> coio::coro<void> {
        bool inner_saw = false;
        try {
            auto t = coio::timeout(10ms);
            try {
                co_await coio::sleep(10s);
            } catch (const coio::timeout_error&) {
                inner_saw = true;
                CHECK(t.expired());
                throw;
            }
        } catch (const coio::timeout_error&) {
        }
        CHECK(inner_saw);
        co_await coio::sleep(1ms);  // no cancellation left over
    }(), coio_test::virtual_clock());
}

TEST_CASE("timeout: finishing in time leaves nothing pending") {
    coio::run([]() -> coio::coro<void> {
        {
            auto t = coio::timeout(1s);
            co_await coio::sleep(1ms);
            CHECK_FALSE(t.expired());
        }
        co_await coio::sleep(20ms);
    }(), coio_test::virtual_clock());
}

TEST_CASE("timeout: reschedule moves the deadline and timeout(nullopt) starts without one") {
    coio::run([]() -> coio::coro<void> {
        auto t0 = coio::clock::now();
        try {
            auto t = coio::timeout(std::nullopt);
            CHECK_FALSE(t.when());
            t.reschedule(coio::clock::now() + 10ms);
            t.reschedule(coio::clock::now() + 30ms);
            co_await coio::sleep(10s);
        } catch (const coio::timeout_error&) {
        }
        CHECK(coio::clock::now() - t0 >= 30ms);
        try {
            auto t = coio::timeout_at(coio::clock::now() + 1ms);
            co_await coio::sleep(1s);
        } catch (const coio::timeout_error&) {
        }
    }(), coio_test::virtual_clock());
}

TEST_CASE("timeout: an expired scope cannot be rescheduled") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::timeout(1ms);
        try {
            co_await coio::sleep(1s);
        } catch (const coio::timeout_error&) {
        }
        CHECK_THROWS_AS(t.reschedule(std::nullopt), coio::invalid_state_error);
    }(), coio_test::virtual_clock());
}

TEST_CASE("wait_for: value in time, timeout_error otherwise, task cancelled") {
    coio::run([]() -> coio::coro<void> {
        CO_CHECK(co_await coio::wait_for(after(1ms, 4), 1s) == 4);
        CO_CHECK(co_await coio::wait_for(after(1ms, 5), 1.0) == 5);
        CHECK_THROWS_AS(co_await coio::wait_for(after(10s, 1), 10ms), coio::timeout_error);
        auto t = coio::create_task(after(10s, 1));
        CHECK_THROWS_AS(co_await coio::wait_for(t, 10ms), coio::timeout_error);
        CHECK(t.cancelled());
    }(), coio_test::virtual_clock());
}

TEST_CASE("wait_for: cancelling the caller gives cancelled_error, not timeout_error") {
    coio::run([]() -> coio::coro<void> {
        auto w = coio::create_task([]() -> coio::coro<int> { co_return co_await coio::wait_for(after(10s, 1), 5s); }());
        co_await coio::sleep(1ms);
        w.cancel();
        CHECK_THROWS_AS(co_await w, coio::cancelled_error);
    }(), coio_test::virtual_clock());
}

TEST_CASE("nested timeouts: the inner one fires first") {
    coio::run([]() -> coio::coro<void> {
        auto outer = coio::timeout(1s);
        bool inner_fired = false;
        try {
            auto inner = coio::timeout(5ms);
            co_await coio::sleep(10s);
        } catch (const coio::timeout_error&) {
            inner_fired = true;
        }
        CHECK(inner_fired);
        CHECK_FALSE(outer.expired());
        co_await coio::sleep(1ms);
    }(), coio_test::virtual_clock());
}
