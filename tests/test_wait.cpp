#include <coio/wait.hpp>

#include "support/after.hpp"
#include "support/catch.hpp"
#include "support/virtual_clock.hpp"
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
    throw std::runtime_error("x");
}
} // namespace

TEST_CASE("wait: first_completed returns done and pending, cancelling nothing") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(5ms, 1)), coio::create_task(after(200ms, 2))};
        auto [done, pending] = co_await coio::wait(ts, coio::first_completed);
        REQUIRE(done.size() == 1);
        REQUIRE(pending.size() == 1);
        CHECK(done[0].result() == 1);
        CHECK_FALSE(pending[0].cancelled());
        CO_CHECK(co_await pending[0] == 2);
    }(), coio_test::virtual_clock());
}

TEST_CASE("wait: first_exception and all_completed") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(fail_after(5ms)), coio::create_task(after(200ms, 2))};
        auto r = co_await coio::wait(ts, coio::first_exception);
        CHECK(r.done.size() == 1);
        CHECK(r.pending.size() == 1);
        CHECK(r.done[0].exception() != nullptr);
        auto all = co_await coio::wait(ts);
        CHECK(all.done.size() == 2);
        CHECK(all.pending.empty());
    }(), coio_test::virtual_clock());
}

TEST_CASE("wait: a timeout returns what is done so far, not an error") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(1ms, 1)), coio::create_task(after(10s, 2))};
        auto t0 = coio::clock::now();
        auto [done, pending] = co_await coio::wait(ts, coio::all_completed, 30ms);
        CHECK(coio::clock::now() - t0 >= 30ms);
        CHECK(done.size() == 1);
        CHECK(pending.size() == 1);
        pending[0].cancel();
        auto r2 = co_await coio::wait(ts, coio::all_completed, 0.5);
        CHECK(r2.pending.empty());
    }(), coio_test::virtual_clock());
}

TEST_CASE("wait: cancelling the waiter leaves the awaited tasks running") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::task<int>> ts{coio::create_task(after(30ms, 1))};
        auto w = coio::create_task([](std::vector<coio::task<int>> ts) -> coio::coro<void> { co_await coio::wait(ts); }(ts));
        co_await coio::sleep(1ms);
        w.cancel();
        CHECK_THROWS_AS(co_await w, coio::cancelled_error);
        CO_CHECK(co_await ts[0] == 1);
    }(), coio_test::virtual_clock());
}
