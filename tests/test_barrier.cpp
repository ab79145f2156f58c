// tests/test_barrier.cpp - coio::barrier: arrival indices, cyclic use, abort/reset,
// cancellation withdraws an arrival, timeouts.
#include <coio/barrier.hpp>

#include "support/catch.hpp"
#include "support/co_check.hpp"

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

using namespace std::chrono_literals;

// Runs a capturing coroutine lambda with the lambda kept alive in the coroutine's own frame
// (a temporary lambda would die before the task runs, leaving its captures dangling).
template <class F>
auto owned(F f) -> decltype(f()) {
    co_return co_await f();
}

TEST_CASE("barrier: indices in arrival order - cyclic") {
    coio::run([]() -> coio::coro<void> {
        coio::barrier b(3);
        CHECK(b.parties() == 3);
        for (int round = 0; round < 3; ++round) {
            auto w = [&]() -> coio::coro<std::size_t> { co_return co_await b.wait(); };
            auto [x, y, z] = co_await coio::gather(w(), w(), w());
            CHECK(x == 0);
            CHECK(y == 1);
            CHECK(z == 2);
            CHECK(b.n_waiting() == 0);
        }
        CHECK_THROWS_AS(coio::barrier(0), std::invalid_argument);
    }());
}

TEST_CASE("barrier: nobody passes before all parties arrived") {
    coio::run([]() -> coio::coro<void> {
        coio::barrier b(2);
        bool passed = false;
        auto t = coio::create_task(owned([&]() -> coio::coro<void> {
            co_await b.wait();
            passed = true;
        }));
        co_await coio::sleep(1ms);
        CHECK_FALSE(passed);
        CHECK(b.n_waiting() == 1);
        std::size_t mine = co_await b.wait();
        CHECK(mine == 1);
        co_await t;
        CHECK(passed);
    }());
}

TEST_CASE("barrier: abort breaks current and future waits until reset") {
    coio::run([]() -> coio::coro<void> {
        coio::barrier b(3);
        auto t = coio::create_task(owned([&]() -> coio::coro<std::size_t> { co_return co_await b.wait(); }));
        co_await coio::sleep(0);
        b.abort();
        CHECK(b.broken());
        CHECK_THROWS_AS(co_await t, coio::broken_barrier_error);
        CHECK_THROWS_AS(co_await b.wait(), coio::broken_barrier_error);
        b.reset();
        CHECK_FALSE(b.broken());
        auto w = [&]() -> coio::coro<std::size_t> { co_return co_await b.wait(); };
        auto [x, y, z] = co_await coio::gather(w(), w(), w());
        CHECK(x + y + z == 3);
    }());
}

TEST_CASE("barrier: reset breaks the current waiters only") {
    coio::run([]() -> coio::coro<void> {
        coio::barrier b(2);
        auto t = coio::create_task(owned([&]() -> coio::coro<std::size_t> { co_return co_await b.wait(); }));
        co_await coio::sleep(0);
        b.reset();
        CHECK_THROWS_AS(co_await t, coio::broken_barrier_error);
        CHECK_FALSE(b.broken());
        CHECK(b.n_waiting() == 0);
    }());
}

TEST_CASE("barrier: a cancelled waiter withdraws its arrival") {
    coio::run([]() -> coio::coro<void> {
        coio::barrier b(3);
        auto w = [&]() -> coio::coro<std::size_t> { co_return co_await b.wait(); };
        auto a = coio::create_task(w());
        auto c = coio::create_task(w());
        co_await coio::sleep(0);
        c.cancel();
        co_await coio::sleep(0);
        CHECK(c.cancelled());
        CHECK(b.n_waiting() == 1);
        auto d = coio::create_task(w());
        co_await coio::sleep(0);
        CHECK_FALSE(a.done());  // still needs a third party
        std::size_t last = co_await b.wait();
        std::size_t ia = co_await a;
        std::size_t id = co_await d;
        CHECK(last == 2);
        CHECK(ia == 0);
        CHECK(id == 1);
    }());
}

TEST_CASE("barrier: wait_for timeout withdraws the arrival") {
    coio::run([]() -> coio::coro<void> {
        coio::barrier b(2);
        CHECK_THROWS_AS(co_await coio::wait_for(b.wait(), 10ms), coio::timeout_error);
        CHECK(b.n_waiting() == 0);
        CHECK_FALSE(b.broken());
    }());
}

TEST_CASE("barrier: rounds do not overlap - a reset by the last task out breaks nobody") {
    coio::run([]() -> coio::coro<void> {
        coio::barrier b(3);
        int out = 0;      // tasks that left the current round
        int resets = 0;
        std::vector<std::size_t> seen;
        auto party = [&]() -> coio::coro<void> {
            for (int round = 0; round < 4; ++round) {
                seen.push_back(co_await b.wait());  // a fast task comes back while others drain
                if (++out == 3) {                   // the last one out resets the barrier
                    out = 0;
                    ++resets;
                    b.reset();
                }
            }
        };
        auto all = coio::gather(owned(party), owned(party), owned(party));
        co_await coio::wait_for(std::move(all), 2s);  // before the fix: broken_barrier_error
        CHECK(resets == 4);
        std::sort(seen.begin(), seen.end());
        CHECK(seen == std::vector<std::size_t>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
    }());
}

TEST_CASE("barrier: a task arriving while the round drains waits for the next round") {
    coio::run([]() -> coio::coro<void> {
        coio::barrier b(2);
        auto a = coio::create_task(owned([&]() -> coio::coro<std::size_t> { co_return co_await b.wait(); }));
        co_await coio::sleep(0);
        CO_CHECK(co_await b.wait() == 1);  // completes the round; a has not resumed yet
        CHECK(b.n_waiting() == 0);
        auto c = coio::create_task(owned([&]() -> coio::coro<std::size_t> { co_return co_await b.wait(); }));
        // Back before a left: we wait for the drain, so c (which runs after a left) is the
        // first arrival of the next round and we are the second.
        CO_CHECK(co_await coio::wait_for(b.wait(), 1s) == 1);
        CO_CHECK(co_await a == 0);
        CO_CHECK(co_await c == 0);
    }());
}
