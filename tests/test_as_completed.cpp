#include <coio/as_completed.hpp>

#include "support/after.hpp"
#include "support/catch.hpp"
#include "support/virtual_clock.hpp"
#include "support/co_check.hpp"

#include <coio/future.hpp>
#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <stdexcept>
#include <utility>
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
    }(), coio_test::virtual_clock());
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
    }(), coio_test::virtual_clock());
}

TEST_CASE("as_completed over tasks that are already done") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(1ms, 1)), coio::create_task(after(2ms, 2))};
        co_await coio::sleep(20ms);
        int sum = 0;
        for (auto&& next : coio::as_completed(ts)) sum += co_await next;
        CHECK(sum == 3);
    }(), coio_test::virtual_clock());
}

TEST_CASE("destroying an unfinished as_completed cancels what was not taken") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(1ms, 1)), coio::create_task(after(10s, 2))};
        {
            auto ac = coio::as_completed(ts);
            CO_CHECK(co_await ac.next() == 1);
        }
        CHECK_THROWS_AS(co_await ts[1], coio::cancelled_error);
    }(), coio_test::virtual_clock());
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
    }(), coio_test::virtual_clock());
}

namespace {
using ac_of_int = decltype(coio::as_completed(std::declval<std::vector<coio::task<int>>&>()));
using log_t = std::vector<std::pair<char, int>>;

// Takes steps of a shared as_completed until none is left, logging (who, result).
coio::coro<void> drain(ac_of_int& ac, char who, log_t& log) {
    while (ac.remaining() > 0) log.emplace_back(who, co_await ac.next());
}
} // namespace

TEST_CASE("as_completed: two tasks awaiting steps get distinct results, in completion order") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(30ms, 3)), coio::create_task(after(10ms, 1)),
                                        coio::create_task(after(20ms, 2))};
        auto ac = coio::as_completed(ts);
        log_t log;
        // a waits first, so it gets the first result; then b (waiting) the second; then a.
        co_await coio::gather(drain(ac, 'a', log), drain(ac, 'b', log));
        CHECK(log == log_t{{'a', 1}, {'b', 2}, {'a', 3}});
        CHECK(ac.remaining() == 0);
        CHECK_THROWS_AS(co_await ac.next(), coio::invalid_state_error);
    }(), coio_test::virtual_clock());
}

TEST_CASE("as_completed: a step nobody can get is refused while others wait for the last ones") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(10ms, 1))};
        auto ac = coio::as_completed(ts);
        auto waiter = coio::create_task([](ac_of_int& ac) -> coio::coro<int> { co_return co_await ac.next(); }(ac));
        co_await coio::sleep(0);  // waiter is now waiting for the only step
        CHECK(ac.remaining() == 0);
        CHECK_THROWS_AS(co_await ac.next(), coio::invalid_state_error);
        CO_CHECK(co_await waiter == 1);
    }(), coio_test::virtual_clock());
}

TEST_CASE("as_completed: a handed result whose task is cancelled before it runs goes to the next waiter") {
    coio::run([]() -> coio::coro<void> {
        coio::future<int> f1;
        coio::future<int> f2;
        std::vector<coio::future<int>> fs{f1, f2};
        auto ac = coio::as_completed(fs);
        auto step = [](auto& ac) -> coio::coro<int> { co_return co_await ac.next(); };
        auto a = coio::create_task(step(ac));
        auto b = coio::create_task(step(ac));
        co_await coio::sleep(0);  // both wait, a first
        f1.set_result(1);         // handed to a, which has not run yet...
        a.cancel();               // ...and is cancelled: 1 goes to b instead
        CHECK_THROWS_AS(co_await a, coio::cancelled_error);
        CO_CHECK(co_await b == 1);
        CHECK(ac.remaining() == 1);  // a's step was given back
        f2.set_result(2);
        CO_CHECK(co_await ac.next() == 2);
    }(), coio_test::virtual_clock());
}

TEST_CASE("as_completed: a task waiting when the range is destroyed gets invalid_state_error") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(10s, 1)), coio::create_task(after(10s, 2))};
        coio::task<int> waiter;
        {
            auto ac = coio::as_completed(ts);
            waiter = coio::create_task([](ac_of_int& ac) -> coio::coro<int> { co_return co_await ac.next(); }(ac));
            co_await coio::sleep(0);
        }
        CHECK_THROWS_AS(co_await waiter, coio::invalid_state_error);
        CHECK_THROWS_AS(co_await ts[0], coio::cancelled_error);
    }(), coio_test::virtual_clock());
}

TEST_CASE("as_completed with a timeout: results first, then timeout_error; the rest is cancelled") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(10s, 3)), coio::create_task(after(1ms, 1)),
                                        coio::create_task(after(10s, 2))};
        auto ac = coio::as_completed(ts, 50ms);
        auto t0 = coio::clock::now();
        CO_CHECK(co_await ac.next() == 1);
        CHECK_THROWS_AS(co_await ac.next(), coio::timeout_error);  // waited until the deadline
        auto waited = coio::clock::now() - t0;
        CHECK(waited >= 50ms);
        CHECK(waited < 5s);
        CHECK(ac.remaining() == 1);
        CHECK_THROWS_AS(co_await ac.next(), coio::timeout_error);  // at once now
        CHECK(ac.remaining() == 0);
        CHECK_THROWS_AS(co_await ac.next(), coio::invalid_state_error);
        // The children not done at the deadline were cancelled then.
        CHECK_THROWS_AS(co_await ts[0], coio::cancelled_error);
        CHECK_THROWS_AS(co_await ts[2], coio::cancelled_error);
        CHECK(coio::clock::now() - t0 < 5s);
    }(), coio_test::virtual_clock());
}

TEST_CASE("as_completed with a timeout: what completed before the deadline is still delivered after it") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::coro<int>> cs;
        cs.push_back(after(2ms, 2));
        cs.push_back(after(10s, 3));
        cs.push_back(after(1ms, 1));
        std::vector<int> got;
        int timeouts = 0;
        auto ac = coio::as_completed(std::move(cs), 0.02);
        co_await coio::sleep(40ms);  // past the deadline
        for (auto&& next : ac) {
            try {
                got.push_back(co_await next);
            } catch (const coio::timeout_error&) {
                ++timeouts;
            }
        }
        CHECK(got == std::vector<int>{1, 2});
        CHECK(timeouts == 1);
    }(), coio_test::virtual_clock());
}

TEST_CASE("as_completed with a timeout: waiting tasks all get timeout_error at the deadline") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(10s, 1)), coio::create_task(after(10s, 2))};
        auto ac = coio::as_completed(ts, 20ms);
        auto step = [](ac_of_int& ac) -> coio::coro<int> { co_return co_await ac.next(); };
        auto a = coio::create_task(step(ac));
        auto b = coio::create_task(step(ac));
        CHECK_THROWS_AS(co_await a, coio::timeout_error);
        CHECK_THROWS_AS(co_await b, coio::timeout_error);
        CHECK(ac.remaining() == 0);
    }(), coio_test::virtual_clock());
}

TEST_CASE("as_completed with a zero timeout: done results only; the rest never starts") {
    coio::run([]() -> coio::coro<void> {
        auto done = coio::create_task(after(0ms, 1));
        co_await coio::sleep(1ms);
        REQUIRE(done.done());
        bool started = false;
        auto later = coio::create_task([](bool& started) -> coio::coro<int> {
            started = true;
            co_return 2;
        }(started));
        std::vector<coio::task<int>> ts{later, done};
        auto ac = coio::as_completed(ts, 0s);
        CO_CHECK(co_await ac.next() == 1);
        CHECK_THROWS_AS(co_await ac.next(), coio::timeout_error);
        CHECK_THROWS_AS(co_await later, coio::cancelled_error);
        CHECK_FALSE(started);
    }(), coio_test::virtual_clock());
}

TEST_CASE("as_completed with a timeout: a timer that did not fire is removed with the range") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(1ms, 1))};
        {
            auto ac = coio::as_completed(ts, 1h);
            CO_CHECK(co_await ac.next() == 1);
        }
        co_await coio::sleep(1ms);  // the loop would run a dangling timer here if it were left
    }(), coio_test::virtual_clock());
}
