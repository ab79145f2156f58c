// tests/test_barrier.cpp - coio::barrier: arrival indices, cyclic use, abort/reset,
// cancellation withdraws an arrival, timeouts.
#include <coio/barrier.hpp>

#include "support/catch.hpp"

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
