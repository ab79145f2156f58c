#include <coio/task.hpp>

#include "support/after.hpp"
#include "support/catch.hpp"
#include "support/co_check.hpp"
#include "support/counted.hpp"

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coio_test::after;

namespace {

coio::coro<void> fail_after(std::chrono::milliseconds d) {
    co_await coio::sleep(d);
    throw std::runtime_error("task failed");
}

} // namespace

TEST_CASE("create_task runs concurrently and gives its result") {
    coio::run([]() -> coio::coro<void> {
        auto start = coio::clock::now();
        auto a = coio::create_task(after(50ms, 1));
        auto b = coio::create_task(after(50ms, 2));
        CHECK_FALSE(a.done());
        CO_CHECK(co_await a + co_await b == 3);
        CHECK(coio::clock::now() - start < 99ms);  // sequentially it would take >= 100 ms
        CHECK(a.done());
        CHECK(a.result() == 1);
        CHECK(a.exception() == nullptr);
    }());
}

TEST_CASE("result() of an unfinished task is invalid_state_error") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task(after(10ms, 1));
        CHECK_THROWS_AS(t.result(), coio::invalid_state_error);
        CHECK_THROWS_AS(t.exception(), coio::invalid_state_error);
        co_await t;
    }());
}

TEST_CASE("a task can be awaited by several tasks") {
    coio::run([]() -> coio::coro<void> {
        auto shared = coio::create_task(after(10ms, 21));
        auto waiter = [](coio::task<int> t) -> coio::coro<int> { co_return co_await t * 2; };
        auto [x, y] = co_await coio::gather(waiter(shared), waiter(shared));
        CHECK(x == 42);
        CHECK(y == 42);
    }());
}

TEST_CASE("task names, creation site, current_task and all_tasks") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task(after(10ms, 0), "worker");
        CHECK(t.get_name() == "worker");
        t.set_name("renamed");
        CHECK(t.get_name() == "renamed");
        CHECK(std::string(t.created_at().file_name()).find("test_task.cpp") != std::string::npos);
        auto unnamed = coio::create_task(after(1ms, 0));
        CHECK(unnamed.get_name().rfind("Task-", 0) == 0);
        CHECK(coio::current_task().get_name() == "main");
        auto all = coio::all_tasks();
        CHECK(all.size() == 3);  // main, worker, unnamed
        co_await t;
        co_await unnamed;
    }());
    CHECK_FALSE(coio::current_task());
}

TEST_CASE("cancelling a task blocked in sleep") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task(after(10s, 1));
        co_await coio::sleep(1ms);
        CHECK(t.cancel());
        CHECK_THROWS_AS(co_await t, coio::cancelled_error);
        CHECK(t.cancelled());
        CHECK(t.done());
        CHECK_THROWS_AS(t.result(), coio::cancelled_error);
        CHECK_THROWS_AS(t.exception(), coio::cancelled_error);
        CHECK_FALSE(t.cancel());  // cancelling a finished task is a no-op returning false
    }());
}

TEST_CASE("a task cancelled before it starts never runs its body") {
    coio::run([]() -> coio::coro<void> {
        bool ran = false;
        auto t = coio::create_task([](bool& ran) -> coio::coro<void> { ran = true; co_return; }(ran));
        t.cancel();
        CHECK_THROWS_AS(co_await t, coio::cancelled_error);
        CHECK_FALSE(ran);
    }());
}

TEST_CASE("a task may catch cancelled_error, clean up and return a value") {
    coio::run([]() -> coio::coro<void> {
        bool cleaned = false;
        auto t = coio::create_task([](bool& cleaned) -> coio::coro<int> {
            try {
                co_await coio::sleep(10s);
            } catch (const coio::cancelled_error&) {
                cleaned = true;
            }
            co_await coio::sleep(1ms);  // it may still await after catching
            co_return 7;
        }(cleaned));
        co_await coio::sleep(1ms);
        t.cancel();
        CO_CHECK(co_await t == 7);
        CHECK(cleaned);
        CHECK_FALSE(t.cancelled());
    }());
}

TEST_CASE("cancelling a task that awaits another task cancels both") {
    coio::run([]() -> coio::coro<void> {
        auto inner = coio::create_task(after(10s, 1));
        auto outer = coio::create_task([](coio::task<int> i) -> coio::coro<int> { co_return co_await i; }(inner));
        co_await coio::sleep(1ms);
        outer.cancel();
        CHECK_THROWS_AS(co_await outer, coio::cancelled_error);
        CHECK(inner.cancelled());
    }());
}

TEST_CASE("cancelling a task blocked in gather cancels the children") {
    coio::run([]() -> coio::coro<void> {
        auto a = coio::create_task(after(10s, 1));
        auto b = coio::create_task(after(10s, 2));
        auto g = coio::create_task([](coio::task<int> a, coio::task<int> b) -> coio::coro<void> {
            co_await coio::gather(a, b);
        }(a, b));
        co_await coio::sleep(1ms);
        g.cancel();
        CHECK_THROWS_AS(co_await g, coio::cancelled_error);
        CHECK(a.cancelled());
        CHECK(b.cancelled());
    }());
}

TEST_CASE("task exceptions: awaited, inspected, and reported when never retrieved") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task(fail_after(1ms));
        CHECK_THROWS_WITH(co_await t, "task failed");
        REQUIRE(t.exception());
        CHECK_THROWS_AS(t.result(), std::runtime_error);

        std::vector<std::string> reports;
        coio::get_running_loop().set_exception_handler(
            [&](coio::event_loop&, const coio::exception_context& ctx) { reports.push_back(ctx.message + "|" + ctx.task_name); });
        {
            auto forgotten = coio::create_task(fail_after(1ms), "forgotten");
        }  // the loop keeps it running; nobody will look at its exception
        co_await coio::sleep(20ms);
        REQUIRE(reports.size() == 1);
        CHECK(reports[0] == "Task exception was never retrieved|forgotten");
        coio::get_running_loop().set_exception_handler({});
    }());
}

TEST_CASE("add_done_callback runs with the task once it is done") {
    coio::run([]() -> coio::coro<void> {
        int seen = 0;
        auto t = coio::create_task(after(1ms, 5));
        t.add_done_callback([&](coio::task<int> done) { seen = done.result(); });
        CHECK(seen == 0);
        co_await t;
        // Done callbacks run in registration order, as in asyncio: this one was added before
        // our await subscribed, so it ran before we were resumed.
        CHECK(seen == 5);
        int late = 0;
        t.add_done_callback([&](coio::task<int> done) { late = done.result() + 1; });  // already done
        co_await coio::sleep(0);
        CHECK(late == 6);
    }());
}

TEST_CASE("remove_done_callback on a task: the removed callback never runs") {
    coio::run([]() -> coio::coro<void> {
        std::vector<int> seen;
        auto t = coio::create_task(after(1ms, 5));
        auto keep = t.add_done_callback([&](coio::task<int> done) { seen.push_back(done.result()); });
        auto drop = t.add_done_callback([&](coio::task<int>) { seen.push_back(-1); });
        CHECK(t.remove_done_callback(drop) == 1);
        CHECK(t.remove_done_callback(drop) == 0);
        co_await t;
        CHECK(t.remove_done_callback(keep) == 0);  // scheduled when the task finished
        co_await coio::sleep(0);
        CHECK(seen == std::vector<int>{5});
    }());
}

TEST_CASE("move-only task results go to the awaiter") {
    auto p = coio::run([]() -> coio::coro<std::unique_ptr<int>> {
        auto t = coio::create_task([]() -> coio::coro<std::unique_ptr<int>> { co_return std::make_unique<int>(9); }());
        co_return co_await t;
    }());
    REQUIRE(p);
    CHECK(*p == 9);
}

TEST_CASE("create_task without a running loop is invalid_state_error") {
    CHECK_THROWS_AS(coio::create_task(after(1ms, 1)), coio::invalid_state_error);
}

TEST_CASE("task results are destroyed exactly once") {
    coio_test::counted::reset();
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task([]() -> coio::coro<coio_test::counted> { co_return coio_test::counted(1); }());
        auto a = co_await t;
        auto b = co_await t;
        CHECK(a.value == 1);
        CHECK(b.value == 1);
    }());
    CHECK(coio_test::counted::alive == 0);
}

TEST_CASE("current_task() goes where a task<void> is expected: a checked conversion") {
    coio::run([]() -> coio::coro<void> {
        coio::task<void> me = coio::current_task();  // main is a task<void>
        CHECK(me);
        CHECK(me == coio::current_task());
        CHECK(coio::current_task() == me);
        CHECK(me.get_name() == coio::current_task().get_name());
        CHECK_THROWS_AS(static_cast<coio::task<int>>(coio::current_task()), coio::invalid_state_error);

        // The asyncio pattern: each client registers itself; the owner waits for them all.
        std::vector<coio::task<void>> clients;
        auto client = [](std::vector<coio::task<void>>& clients, int& served) -> coio::coro<void> {
            clients.push_back(coio::current_task());
            co_await coio::sleep(1ms);
            ++served;
        };
        int served = 0;
        coio::create_task(client(clients, served));
        coio::create_task(client(clients, served));
        co_await coio::sleep(0);
        REQUIRE(clients.size() == 2);
        co_await coio::gather(clients);
        CHECK(served == 2);

        // A typed task back from all_tasks().
        auto w = coio::create_task(after(1ms, 9), "typed");
        for (const coio::any_task& t : coio::all_tasks())
            if (t.get_name() == "typed") {
                coio::task<int> back = t;
                CHECK(back == w);
                CO_CHECK(co_await back == 9);
            }
    }());
    coio::task<void> none = coio::current_task();  // outside a task: an empty handle
    CHECK_FALSE(none);
}

TEST_CASE("any_task is awaitable: waits, rethrows, drops the value; cancellation forwarded") {
    coio::run([]() -> coio::coro<void> {
        coio::any_task ok = coio::create_task(after(1ms, 5));
        co_await ok;
        CHECK(ok.done());
        coio::any_task bad = coio::create_task([]() -> coio::coro<int> {
            co_await coio::sleep(1ms);
            throw std::runtime_error("boom");
        }());
        CHECK_THROWS_WITH(co_await bad, "boom");
        CHECK(bad.exception() != nullptr);

        // Cancelling a task that awaits an any_task cancels that task, as for a task<T>.
        coio::any_task sleeper = coio::create_task(after(10s, 1));
        auto awaiting = coio::create_task([](coio::any_task t) -> coio::coro<void> { co_await t; }(sleeper));
        co_await coio::sleep(1ms);
        awaiting.cancel();
        CHECK_THROWS_AS(co_await awaiting, coio::cancelled_error);
        CHECK(sleeper.cancelled());
        CHECK_THROWS_AS(co_await sleeper, coio::cancelled_error);
    }());
}

TEST_CASE("any_task: done callbacks, removable") {
    coio::run([]() -> coio::coro<void> {
        std::vector<std::string> seen;
        coio::any_task t = coio::create_task(after(1ms, 5), "cb");
        t.add_done_callback([&](coio::any_task d) { seen.push_back(d.get_name()); });
        auto h = t.add_done_callback([&](const coio::any_task&) { seen.push_back("removed"); });
        CHECK(t.remove_done_callback(h) == 1);
        co_await t;
        co_await coio::sleep(0);
        CHECK(seen == std::vector<std::string>{"cb"});
    }());
}
