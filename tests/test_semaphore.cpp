// tests/test_semaphore.cpp - coio::semaphore and coio::bounded_semaphore.
#include <coio/semaphore.hpp>

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

namespace {
coio::coro<void> take(coio::semaphore& s, std::vector<int>& order, int id) {
    co_await s.acquire();
    order.push_back(id);
    co_await coio::sleep(0);
    s.release();
}
} // namespace

TEST_CASE("semaphore: counts units - acquire without waiting while units are left") {
    coio::run([]() -> coio::coro<void> {
        coio::semaphore s(2);
        CHECK(s.value() == 2);
        co_await s.acquire();
        co_await s.acquire();
        CHECK(s.locked());
        CHECK_FALSE(s.try_acquire());
        s.release();
        CHECK(s.value() == 1);
        s.release();
        s.release();  // a plain semaphore may grow past its initial value
        CHECK(s.value() == 3);
    }());
}

TEST_CASE("semaphore: FIFO among waiters - at most N inside") {
    coio::run([]() -> coio::coro<void> {
        coio::semaphore s(2);
        int inside = 0, max_inside = 0;
        std::vector<int> order;
        auto worker = [&](int id) -> coio::coro<void> {
            auto unit = co_await s.scoped();
            order.push_back(id);
            max_inside = std::max(max_inside, ++inside);
            co_await coio::sleep(1ms);
            --inside;
        };
        std::vector<coio::coro<void>> ws;
        for (int i = 0; i < 8; ++i) ws.push_back(worker(i));
        co_await coio::gather(std::move(ws));
        CHECK(max_inside == 2);
        CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
        CHECK(s.value() == 2);
    }());
}

TEST_CASE("semaphore: a cancelled waiter takes no unit") {
    coio::run([]() -> coio::coro<void> {
        coio::semaphore s(0);
        std::vector<int> order;
        auto a = coio::create_task(take(s, order, 0));
        auto b = coio::create_task(take(s, order, 1));
        co_await coio::sleep(0);
        a.cancel();
        co_await coio::sleep(0);
        CHECK(s.waiting() == 1);
        s.release();
        co_await b;
        CHECK(order == std::vector<int>{1});
        CHECK(s.value() == 1);
    }());
}

TEST_CASE("semaphore: unit handed over then cancelled before running passes on") {
    coio::run([]() -> coio::coro<void> {
        coio::semaphore s(0);
        std::vector<int> order;
        auto a = coio::create_task(take(s, order, 0));
        auto b = coio::create_task(take(s, order, 1));
        co_await coio::sleep(0);
        s.release();  // to a
        a.cancel();   // before a runs
        co_await b;
        CHECK(a.cancelled());
        CHECK(order == std::vector<int>{1});
        CHECK(s.value() == 1);
    }());
}

TEST_CASE("semaphore: wait_for timeout") {
    coio::run([]() -> coio::coro<void> {
        coio::semaphore s(0);
        CHECK_THROWS_AS(co_await coio::wait_for(s.acquire(), 10ms), coio::timeout_error);
        CHECK(s.waiting() == 0);
        s.release();
        co_await coio::wait_for(s.acquire(), 1s);
        CHECK(s.value() == 0);
    }());
}

TEST_CASE("bounded_semaphore: release past the initial value throws") {
    coio::run([]() -> coio::coro<void> {
        coio::bounded_semaphore s(2);
        CHECK_THROWS_AS(s.release(), coio::invalid_state_error);
        co_await s.acquire();
        s.release();
        CHECK_THROWS_AS(s.release(), coio::invalid_state_error);
        CHECK(s.value() == 2);
        {
            auto u = co_await s.scoped();
            CHECK(s.value() == 1);
        }
        CHECK(s.value() == 2);
    }());
}
