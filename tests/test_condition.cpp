// tests/test_condition.cpp - coio::condition: notify order, wait_for(predicate), misuse,
// cancellation (lock re-acquired, notification passed on), timeouts.
#include <coio/condition.hpp>

#include "support/catch.hpp"

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <chrono>
#include <deque>
#include <vector>

using namespace std::chrono_literals;

// Runs a capturing coroutine lambda with the lambda kept alive in the coroutine's own frame
// (a temporary lambda would die before the task runs, leaving its captures dangling).
template <class F>
auto owned(F f) -> decltype(f()) {
    co_return co_await f();
}

namespace {
coio::coro<void> wait_once(coio::condition& cv, std::vector<int>& order, int id) {
    auto g = co_await cv.scoped();
    co_await cv.wait();
    CHECK(cv.locked());
    order.push_back(id);
}
} // namespace

TEST_CASE("condition: notify wakes waiters one at a time in FIFO order") {
    coio::run([]() -> coio::coro<void> {
        coio::condition cv;
        std::vector<int> order;
        std::vector<coio::task<void>> ts;
        for (int i = 0; i < 4; ++i) ts.push_back(coio::create_task(wait_once(cv, order, i)));
        co_await coio::sleep(0);
        CHECK(cv.waiting() == 4);
        CHECK_FALSE(cv.locked());  // every waiter released the lock
        {
            auto g = co_await cv.scoped();
            cv.notify();
        }
        co_await coio::sleep(0);
        co_await coio::sleep(0);
        CHECK(order == std::vector<int>{0});
        {
            auto g = co_await cv.scoped();
            cv.notify(2);
        }
        co_await coio::sleep(0);
        co_await coio::sleep(0);
        CHECK(order == std::vector<int>{0, 1, 2});
        {
            auto g = co_await cv.scoped();
            cv.notify_all();
        }
        co_await coio::gather(std::move(ts));
        CHECK(order == std::vector<int>{0, 1, 2, 3});
        CHECK_FALSE(cv.locked());
    }());
}

TEST_CASE("condition: wait and notify need the lock") {
    coio::run([]() -> coio::coro<void> {
        coio::condition cv;
        CHECK_THROWS_AS(co_await cv.wait(), coio::invalid_state_error);
        CHECK_THROWS_AS(cv.notify(), coio::invalid_state_error);
        CHECK_THROWS_AS(cv.notify_all(), coio::invalid_state_error);
        CHECK_THROWS_AS(cv.release(), coio::invalid_state_error);
    }());
}

TEST_CASE("condition: wait_for(predicate) with a shared lock - producer/consumer") {
    coio::run([]() -> coio::coro<void> {
        coio::lock lk;
        coio::condition cv(lk);
        std::deque<int> items;
        std::vector<int> got;
        auto consumer = [&]() -> coio::coro<void> {
            for (int i = 0; i < 10; ++i) {
                auto g = co_await cv.scoped();
                bool ok = co_await cv.wait_for([&] { return !items.empty(); });
                CHECK(ok);
                got.push_back(items.front());
                items.pop_front();
            }
        };
        auto producer = [&]() -> coio::coro<void> {
            for (int i = 0; i < 10; ++i) {
                co_await coio::sleep(0);
                auto g = co_await lk.scoped();
                items.push_back(i);
                cv.notify();
            }
        };
        co_await coio::gather(consumer(), producer());
        CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    }());
}

TEST_CASE("condition: a cancelled wait re-acquires the lock before throwing") {
    coio::run([]() -> coio::coro<void> {
        coio::condition cv;
        bool held_when_cancelled = false;
        auto t = coio::create_task(owned([&]() -> coio::coro<void> {
            co_await cv.acquire();
            try {
                co_await cv.wait();
            } catch (const coio::cancelled_error&) {
                held_when_cancelled = cv.locked();
                cv.release();
                throw;
            }
        }));
        co_await coio::sleep(0);
        auto g = co_await cv.scoped();  // hold the lock: the cancelled wait must wait for it
        t.cancel();
        co_await coio::sleep(0);
        CHECK_FALSE(t.done());
        g.unlock();
        CHECK_THROWS_AS(co_await t, coio::cancelled_error);
        CHECK(held_when_cancelled);
        CHECK_FALSE(cv.locked());
        CHECK(cv.waiting() == 0);
    }());
}

TEST_CASE("condition: notified then cancelled passes the notification on") {
    coio::run([]() -> coio::coro<void> {
        coio::condition cv;
        std::vector<int> order;
        auto a = coio::create_task(wait_once(cv, order, 0));
        auto b = coio::create_task(wait_once(cv, order, 1));
        co_await coio::sleep(0);
        {
            auto g = co_await cv.scoped();
            cv.notify(1);  // a is moved onto the lock's queue
            a.cancel();    // cancelled while waiting for the lock, after the notification
        }
        CHECK_THROWS_AS(co_await a, coio::cancelled_error);
        co_await b;  // b got the notification a could not use
        CHECK(order == std::vector<int>{1});
        CHECK_FALSE(cv.locked());
    }());
}

TEST_CASE("condition: wait under wait_for times out holding the lock") {
    coio::run([]() -> coio::coro<void> {
        coio::condition cv;
        co_await cv.acquire();
        CHECK_THROWS_AS(co_await coio::wait_for(cv.wait(), 10ms), coio::timeout_error);
        CHECK(cv.locked());
        CHECK(cv.waiting() == 0);
        cv.release();
    }());
}
