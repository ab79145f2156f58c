#include <coio/as_completed.hpp>

#include "support/after.hpp"
#include "support/catch.hpp"
#include "support/co_check.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <stdexcept>
#include <vector>

using namespace std::chrono_literals;
using coio_test::after;

namespace {
coio::coro<int> fail_after(std::chrono::milliseconds d) {
    co_await coio::sleep(d);
    throw std::runtime_error("failed child");
}
} // namespace

TEST_CASE("as_completed yields results in completion order") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::coro<int>> cs;
        cs.push_back(after(30ms, 3));
        cs.push_back(after(20ms, 2));
        cs.push_back(after(10ms, 1));
        std::vector<int> order;
        for (auto&& next : coio::as_completed(std::move(cs))) order.push_back(co_await next);
        CHECK(order == std::vector<int>{1, 2, 3});
    }());
}

TEST_CASE("as_completed: the next() form, exceptions at their turn, over-consumption") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::coro<int>> cs;
        cs.push_back(after(20ms, 2));
        cs.push_back(fail_after(10ms));
        auto ac = coio::as_completed(std::move(cs));
        CHECK(ac.size() == 2);
        CHECK_THROWS_WITH(co_await ac.next(), "failed child");
        CO_CHECK(co_await ac.next() == 2);
        CHECK(ac.remaining() == 0);
        CHECK_THROWS_AS(co_await ac.next(), coio::invalid_state_error);
    }());
}

TEST_CASE("as_completed over tasks that are already done") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(1ms, 1)), coio::create_task(after(2ms, 2))};
        co_await coio::sleep(20ms);
        int sum = 0;
        for (auto&& next : coio::as_completed(ts)) sum += co_await next;
        CHECK(sum == 3);
    }());
}

TEST_CASE("destroying an unfinished as_completed cancels what was not taken") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(1ms, 1)), coio::create_task(after(10s, 2))};
        {
            auto ac = coio::as_completed(ts);
            CO_CHECK(co_await ac.next() == 1);
        }
        CHECK_THROWS_AS(co_await ts[1], coio::cancelled_error);
    }());
}

TEST_CASE("cancelling a task waiting in as_completed") {
    coio::run([]() -> coio::coro<void> {
        auto consumer = coio::create_task([]() -> coio::coro<void> {
            std::vector<coio::coro<int>> cs;
            cs.push_back(after(10s, 1));
            for (auto&& next : coio::as_completed(std::move(cs))) co_await next;
        }());
        co_await coio::sleep(1ms);
        consumer.cancel();
        CHECK_THROWS_AS(co_await consumer, coio::cancelled_error);
    }());
}
