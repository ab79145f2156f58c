#include <coio/gather.hpp>

#include "support/after.hpp"
#include "support/catch.hpp"
#include "support/co_check.hpp"

#include <coio/future.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using coio_test::after;

namespace {
coio::coro<void> nap(std::chrono::milliseconds d) { co_await coio::sleep(d); }
coio::coro<int> fail_after(std::chrono::milliseconds d) {
    co_await coio::sleep(d);
    throw std::runtime_error("child failed");
}
} // namespace

TEST_CASE("gather: a tuple in argument order, monostate for void, concurrently") {
    coio::run([]() -> coio::coro<void> {
        auto t0 = coio::clock::now();
        auto [a, b, c] = co_await coio::gather(after(30ms, 1), nap(20ms), after(10ms, 3));
        static_assert(std::is_same_v<decltype(b), std::monostate>);
        CHECK(a == 1);
        CHECK(c == 3);
        CHECK(coio::clock::now() - t0 < 59ms);  // sequentially it would take >= 60 ms
    }());
}

TEST_CASE("gather: ranges give vectors, or void for void coros") {
    coio::run([]() -> coio::coro<void> {
        std::vector<coio::coro<int>> cs;
        for (int i = 0; i < 10; ++i) cs.push_back(after(std::chrono::milliseconds(10 - i), i));
        std::vector<int> r = co_await coio::gather(std::move(cs));
        CHECK(r == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});

        std::vector<coio::coro<void>> vs;
        for (int i = 0; i < 3; ++i) vs.push_back(nap(1ms));
        co_await coio::gather(std::move(vs));
        static_assert(std::is_void_v<decltype(coio::gather(std::move(vs)).await_resume())>);

        std::vector<coio::task<int>> none;
        CO_CHECK((co_await coio::gather(none)).empty());
    }());
}

TEST_CASE("gather: mixing tasks, futures and coros") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task(after(1ms, 1));
        coio::future<std::string> f;
        coio::get_running_loop().call_later(2ms, [f]() mutable { f.set_result("two"); });
        auto [x, y, z] = co_await coio::gather(t, f, after(3ms, 3));
        CHECK(x == 1);
        CHECK(y == "two");
        CHECK(z == 3);
    }());
}

TEST_CASE("gather: a failure cancels the siblings and waits for them before rethrowing") {
    coio::run([]() -> coio::coro<void> {
        bool sibling_finished = false;
        auto sibling = [](bool& finished) -> coio::coro<int> {
            bool cancelled = false;
            try {
                co_await coio::sleep(10s);
            } catch (const coio::cancelled_error&) {
                cancelled = true;
            }
            if (cancelled) {
                co_await coio::sleep(5ms);  // slow cleanup (C++ cannot co_await in a handler)
                finished = true;
                throw coio::cancelled_error();
            }
            co_return 0;
        };
        auto t0 = coio::clock::now();
        CHECK_THROWS_WITH(co_await coio::gather(sibling(sibling_finished), fail_after(1ms)), "child failed");
        CHECK(sibling_finished);
        CHECK(coio::clock::now() - t0 < 5s);
    }());
}

TEST_CASE("gather: the first error wins, the others are retrieved, not reported") {
    int reports = 0;
    coio::run([](int& reports) -> coio::coro<void> {
        coio::get_running_loop().set_exception_handler([&reports](coio::event_loop&, const coio::exception_context&) { ++reports; });
        auto late_fail = []() -> coio::coro<int> {
            try {
                co_await coio::sleep(10s);
            } catch (const coio::cancelled_error&) {
            }
            throw std::logic_error("second");
        };
        CHECK_THROWS_AS(co_await coio::gather(fail_after(1ms), late_fail()), std::runtime_error);
        co_await coio::sleep(5ms);
    }(reports));
    CHECK(reports == 0);
}

TEST_CASE("gather with return_exceptions: outcomes instead of throwing") {
    coio::run([]() -> coio::coro<void> {
        auto [a, b, c] = co_await coio::gather(coio::return_exceptions, after(1ms, 5), fail_after(2ms), nap(3ms));
        REQUIRE(a.has_value());
        CHECK(a.value() == 5);
        CHECK_FALSE(b.has_value());
        CHECK_THROWS_WITH(b.value(), "child failed");
        CHECK(c.has_value());

        std::vector<coio::coro<int>> cs;
        cs.push_back(after(1ms, 1));
        cs.push_back(fail_after(1ms));
        auto v = co_await coio::gather(coio::return_exceptions, std::move(cs));
        REQUIRE(v.size() == 2);
        CHECK(v[0].value() == 1);
        CHECK(v[1].error() != nullptr);
    }());
}

TEST_CASE("gather: a cancelled child counts as a failure (cancelled_error)") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task(after(10s, 1));
        auto victim = t;
        coio::get_running_loop().call_later(1ms, [victim]() mutable { victim.cancel(); });
        CHECK_THROWS_AS(co_await coio::gather(t, after(20ms, 2)), coio::cancelled_error);
    }());
}

TEST_CASE("gather: cancelling the awaiting task cancels every child") {
    coio::run([]() -> coio::coro<void> {
        auto a = coio::create_task(after(10s, 1));
        auto b = coio::create_task(after(10s, 2));
        auto g = coio::create_task([](coio::task<int> a, coio::task<int> b) -> coio::coro<void> {
            co_await coio::gather(coio::return_exceptions, a, b);
        }(a, b));
        co_await coio::sleep(1ms);
        g.cancel();
        CHECK_THROWS_AS(co_await g, coio::cancelled_error);
        CHECK(a.cancelled());
        CHECK(b.cancelled());
    }());
}

TEST_CASE("gather: a void range lets finished children go, and still reports the first failure") {
    int reports = 0;
    coio::run([](int& reports) -> coio::coro<void> {
        coio::get_running_loop().set_exception_handler([&reports](coio::event_loop&, const coio::exception_context&) { ++reports; });
        auto fail_void = []() -> coio::coro<void> {
            co_await coio::sleep(5ms);
            throw std::runtime_error("void child failed");
        };
        // Four children succeed (and are let go) before the fifth fails; a sixth is still
        // sleeping then and must be cancelled and waited for.
        auto long_one = coio::create_task(nap(10s));
        std::vector<coio::task<void>> ts;
        for (int i = 0; i < 4; ++i) ts.push_back(coio::create_task(nap(1ms)));
        ts.push_back(coio::create_task(fail_void()));
        ts.push_back(long_one);
        std::string what;
        try {
            co_await coio::gather(ts);
        } catch (const std::runtime_error& e) {
            what = e.what();
        }
        CHECK(what == "void child failed");
        CHECK(long_one.cancelled());
        for (int i = 0; i < 4; ++i) CHECK((ts[i].done() && !ts[i].cancelled()));

        // The same with coros, which only the gather holds.
        std::vector<coio::coro<void>> cs;
        for (int i = 0; i < 4; ++i) cs.push_back(nap(1ms));
        cs.push_back(fail_void());
        what.clear();
        try {
            co_await coio::gather(std::move(cs));
        } catch (const std::runtime_error& e) {
            what = e.what();
        }
        CHECK(what == "void child failed");
    }(reports));
    CHECK(reports == 0);
}

TEST_CASE("gather: dropped before it is awaited, its children still run to completion") {
    int finished = 0;
    coio::run([](int& finished) -> coio::coro<void> {
        auto count = [](int& finished) -> coio::coro<void> {
            co_await coio::sleep(1ms);
            ++finished;
        };
        {
            std::vector<coio::coro<void>> cs;
            for (int i = 0; i < 3; ++i) cs.push_back(count(finished));
            auto dropped = coio::gather(std::move(cs));  // schedules the children, never awaited
            (void)dropped;
        }
        co_await coio::sleep(20ms);
    }(finished));
    CHECK(finished == 3);
}
