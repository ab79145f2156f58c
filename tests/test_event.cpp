// tests/test_event.cpp - coio::event: set/clear/wait, FIFO wake-up, cancellation, timeouts.
#include <coio/event.hpp>

#include "support/catch.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <chrono>
#include <optional>
#include <vector>

using namespace std::chrono_literals;

namespace {
coio::coro<void> wait_and_record(coio::event& ev, std::vector<int>& order, int id) {
    co_await ev.wait();
    order.push_back(id);
}
} // namespace

TEST_CASE("event: wait returns at once when set - clear makes it wait again") {
    coio::run([]() -> coio::coro<void> {
        coio::event ev;
        CHECK_FALSE(ev.is_set());
        ev.set();
        CHECK(ev.is_set());
        co_await ev.wait();  // no suspension
        ev.clear();
        CHECK_FALSE(ev.is_set());
        CHECK_THROWS_AS(co_await coio::wait_for(ev.wait(), 5ms), coio::timeout_error);
    }());
}

TEST_CASE("event: set wakes every waiter in FIFO order") {
    coio::run([]() -> coio::coro<void> {
        coio::event ev;
        std::vector<int> order;
        std::vector<coio::task<void>> ts;
        for (int i = 0; i < 5; ++i) ts.push_back(coio::create_task(wait_and_record(ev, order, i)));
        co_await coio::sleep(0);  // all waiting
        CHECK(order.empty());
        ev.set();
        for (auto& t : ts) co_await t;
        CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
    }());
}

TEST_CASE("event: a cancelled waiter leaves - the others are still woken") {
    coio::run([]() -> coio::coro<void> {
        coio::event ev;
        std::vector<int> order;
        auto a = coio::create_task(wait_and_record(ev, order, 0));
        auto b = coio::create_task(wait_and_record(ev, order, 1));
        auto c = coio::create_task(wait_and_record(ev, order, 2));
        co_await coio::sleep(0);
        b.cancel();
        co_await coio::sleep(0);
        CHECK(b.cancelled());
        ev.set();
        co_await a;
        co_await c;
        CHECK(order == std::vector<int>{0, 2});
    }());
}

TEST_CASE("event: woken then cancelled before running throws cancelled_error") {
    coio::run([]() -> coio::coro<void> {
        coio::event ev;
        std::vector<int> order;
        auto a = coio::create_task(wait_and_record(ev, order, 0));
        co_await coio::sleep(0);
        ev.set();
        a.cancel();  // a is on the ready queue already
        co_await coio::sleep(0);
        CHECK(a.cancelled());
        CHECK(order.empty());
    }());
}

TEST_CASE("event: timeout on wait_for - and the event still works afterwards") {
    coio::run([]() -> coio::coro<void> {
        coio::event ev;
        auto start = coio::clock::now();
        CHECK_THROWS_AS(co_await coio::wait_for(ev.wait(), 10ms), coio::timeout_error);
        CHECK(coio::clock::now() - start >= 10ms);
        auto t = coio::create_task([](coio::event& e) -> coio::coro<void> { co_await e.wait(); }(ev));
        co_await coio::sleep(0);
        ev.set();
        co_await t;
        CHECK(t.done());
    }());
}

TEST_CASE("event: destroying an event with waiters wakes them with invalid_state_error") {
    coio::run([]() -> coio::coro<void> {
        std::optional<coio::event> ev(std::in_place);
        auto t = coio::create_task([](coio::event& e) -> coio::coro<void> { co_await e.wait(); }(*ev));
        co_await coio::sleep(0);
        ev.reset();
        CHECK_THROWS_AS(co_await t, coio::invalid_state_error);
    }());
}
