#include <coio/future.hpp>

#include "support/catch.hpp"
#include "support/co_check.hpp"
#include "support/counted.hpp"

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <stdexcept>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("future: set_result wakes every awaiter") {
    coio::run([]() -> coio::coro<void> {
        coio::future<int> f;
        CHECK_FALSE(f.done());
        CHECK_THROWS_AS(f.result(), coio::invalid_state_error);
        auto waiter = [](coio::future<int> f) -> coio::coro<int> { co_return co_await f; };
        auto a = coio::create_task(waiter(f));
        auto b = coio::create_task(waiter(f));
        coio::get_running_loop().call_later(5ms, [f]() mutable { f.set_result(11); });
        CO_CHECK(co_await a == 11);
        CO_CHECK(co_await b == 11);
        CHECK(f.result() == 11);
        CHECK_THROWS_AS(f.set_result(1), coio::invalid_state_error);
    }());
}

TEST_CASE("future: exceptions and cancellation") {
    coio::run([]() -> coio::coro<void> {
        coio::future<void> f;
        f.set_exception(std::make_exception_ptr(std::logic_error("nope")));
        CHECK_THROWS_AS(co_await f, std::logic_error);
        CHECK(f.exception() != nullptr);
        CHECK_THROWS_AS(f.set_exception(nullptr), coio::invalid_state_error);

        coio::future<int> g;
        CHECK(g.cancel());
        CHECK(g.cancelled());
        CHECK_FALSE(g.cancel());
        CHECK_THROWS_AS(co_await g, coio::cancelled_error);
        CHECK_THROWS_AS(g.result(), coio::cancelled_error);
    }());
}

TEST_CASE("future: cancelling the awaiting task cancels the future") {
    coio::run([]() -> coio::coro<void> {
        coio::future<int> f;
        auto t = coio::create_task([](coio::future<int> f) -> coio::coro<int> { co_return co_await f; }(f));
        co_await coio::sleep(1ms);
        t.cancel();
        CHECK_THROWS_AS(co_await t, coio::cancelled_error);
        CHECK(f.cancelled());
    }());
}

TEST_CASE("future: done callbacks and gather") {
    coio::run([]() -> coio::coro<void> {
        coio::future<int> f;
        int seen = 0;
        f.add_done_callback([&](coio::future<int> d) { seen = d.result(); });
        coio::get_running_loop().call_soon([f]() mutable { f.set_result(3); });
        auto [v, w] = co_await coio::gather(f, coio::create_task([]() -> coio::coro<int> { co_return 4; }()));
        CHECK(v + w == 7);
        co_await coio::sleep(0);
        CHECK(seen == 3);
    }());
}

TEST_CASE("future: an abandoned future frees its callbacks without calling them") {
    coio_test::counted::reset();
    int called = 0;
    coio::run([&called]() -> coio::coro<void> {
        {
            coio::future<int> f;
            f.add_done_callback([&called, c = coio_test::counted(1)](coio::future<int>) { called += c.value; });
            CHECK(coio_test::counted::alive == 1);  // the callback, with what it captured, is held
        }
        // The last handle is gone and the future was never completed: the callback node and
        // its captures are freed at once, and nothing is scheduled.
        CHECK(coio_test::counted::alive == 0);
        co_await coio::sleep(0);
        co_await coio::sleep(0);
        CHECK(called == 0);
    }());
    CHECK(called == 0);
    CHECK(coio_test::counted::alive == 0);
}

TEST_CASE("future: a done callback runs once, then its captures are freed") {
    coio_test::counted::reset();
    int called = 0;
    coio::run([&called]() -> coio::coro<void> {
        coio::future<int> f;
        f.add_done_callback([&called, c = coio_test::counted(1)](coio::future<int> d) { called += c.value * d.result(); });
        f.set_result(5);
        CHECK(called == 0);  // scheduled with call_soon, not run inline
        co_await coio::sleep(0);
        co_await coio::sleep(0);
        CHECK(called == 5);
        CHECK(coio_test::counted::alive == 0);
    }());
    CHECK(called == 5);
    CHECK(coio_test::counted::alive == 0);
}

TEST_CASE("future: remove_done_callback removes that one callback, frees it, and counts") {
    coio_test::counted::reset();
    std::vector<int> order;
    coio::run([&order]() -> coio::coro<void> {
        coio::future<int> f;
        auto h1 = f.add_done_callback([&order](coio::future<int>) { order.push_back(1); });
        auto h2 = f.add_done_callback([&order, c = coio_test::counted(2)](coio::future<int>) { order.push_back(c.value); });
        auto h3 = f.add_done_callback([&order](coio::future<int>) { order.push_back(3); });
        CHECK(h1 != h2);
        CHECK(coio_test::counted::alive == 1);
        CHECK(f.remove_done_callback(h2) == 1);
        CHECK(coio_test::counted::alive == 0);          // freed at once, with its captures
        CHECK(f.remove_done_callback(h2) == 0);         // already removed
        CHECK(f.remove_done_callback(coio::done_callback_handle{}) == 0);
        f.set_result(1);
        CHECK(f.remove_done_callback(h3) == 0);         // already scheduled: it will run
        co_await coio::sleep(0);
        CHECK(order == std::vector<int>{1, 3});
        (void)h1;
    }());
    CHECK(order == std::vector<int>{1, 3});
}

TEST_CASE("future: a stale handle never removes a later callback at the same address") {
    coio::run([]() -> coio::coro<void> {
        coio::future<int> f;
        int called = 0;
        auto old = f.add_done_callback([&called](coio::future<int>) { ++called; });
        CHECK(f.remove_done_callback(old) == 1);
        // Same size, so the allocator very likely reuses the freed node.
        auto fresh = f.add_done_callback([&called](coio::future<int>) { called += 10; });
        CHECK(f.remove_done_callback(old) == 0);
        f.set_result(0);
        co_await coio::sleep(0);
        CHECK(called == 10);
        CHECK(f.remove_done_callback(fresh) == 0);
    }());
}

TEST_CASE("future: a handle from another future removes nothing") {
    coio::run([]() -> coio::coro<void> {
        coio::future<int> f;
        coio::future<int> g;
        int called = 0;
        auto h = f.add_done_callback([&called](coio::future<int>) { ++called; });
        CHECK(g.remove_done_callback(h) == 0);
        f.set_result(0);
        g.set_result(0);
        co_await coio::sleep(0);
        CHECK(called == 1);
    }());
}
