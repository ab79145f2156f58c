// Tests of coio::task_options: names and eager start (asyncio 3.12's eager tasks), per task
// and loop-wide (loop_options::eager_tasks).
#include <coio/task_options.hpp>

#include "support/catch.hpp"
#include "support/co_check.hpp"

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/task_group.hpp>

#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

coio::coro<int> immediate(int v, std::vector<std::string>& log) {
    log.push_back("immediate " + std::to_string(v));
    co_return v;
}

coio::coro<int> suspends_once(int v, std::vector<std::string>& log) {
    log.push_back("before");
    co_await coio::sleep(0);
    log.push_back("after");
    co_return v;
}

coio::coro<int> fails_at_once() {
    throw std::runtime_error("eager failure");
    co_return 0;
}

} // namespace

TEST_CASE("eager task: finishes inside create_task when it never suspends, never scheduled") {
    coio::run([]() -> coio::coro<void> {
        std::vector<std::string> log;
        auto t = coio::create_task(immediate(7, log), {.name = "eager", .eager_start = true});
        // Done before the creator yielded once: the loop never ran it.
        REQUIRE(t.done());
        CHECK(log == std::vector<std::string>{"immediate 7"});
        CHECK(t.result() == 7);
        CHECK(t.get_name() == "eager");
        CO_CHECK(co_await t == 7);
        CHECK_FALSE(t.cancel());  // done: nothing to cancel
    }());
}

TEST_CASE("eager task: runs until its first suspension, then goes on as a scheduled task") {
    coio::run([]() -> coio::coro<void> {
        std::vector<std::string> log;
        auto t = coio::create_task(suspends_once(3, log), {.eager_start = true});
        CHECK(log == std::vector<std::string>{"before"});
        CHECK_FALSE(t.done());
        log.push_back("creator");
        CO_CHECK(co_await t == 3);
        CHECK(log == std::vector<std::string>{"before", "creator", "after"});
    }());
}

TEST_CASE("lazy task (the default): nothing runs before the creator yields") {
    coio::run([]() -> coio::coro<void> {
        std::vector<std::string> log;
        auto t = coio::create_task(immediate(1, log));
        auto u = coio::create_task(immediate(2, log), {.eager_start = false});
        CHECK(log.empty());
        CHECK_FALSE(t.done());
        co_await coio::gather(t, u);
        CHECK(log == std::vector<std::string>{"immediate 1", "immediate 2"});
    }());
}

TEST_CASE("eager task: current_task() is the new task while it runs eagerly, the creator after") {
    coio::run([]() -> coio::coro<void> {
        coio::task<void> me = coio::current_task();
        coio::any_task seen;
        auto t = coio::create_task([](coio::any_task& out) -> coio::coro<void> {
            out = coio::current_task();
            co_return;
        }(seen), {.eager_start = true});
        CHECK(seen == t);
        CHECK(coio::current_task() == me);
        co_return;
    }());
}

TEST_CASE("eager task: an exception in the eager part is stored in the task, not thrown") {
    coio::run([]() -> coio::coro<void> {
        coio::task<int> t;
        CHECK_NOTHROW(t = coio::create_task(fails_at_once(), {.eager_start = true}));
        REQUIRE(t.done());
        CHECK_FALSE(t.cancelled());
        CHECK(t.exception() != nullptr);
        CHECK_THROWS_WITH(co_await t, "eager failure");
    }());
}

TEST_CASE("eager task: cancelled at its first await like any task") {
    coio::run([]() -> coio::coro<void> {
        bool cleaned = false;
        auto t = coio::create_task([](bool& c) -> coio::coro<void> {
            try {
                co_await coio::sleep(1h);
            } catch (const coio::cancelled_error&) {
                c = true;
                throw;
            }
        }(cleaned), {.eager_start = true});
        CHECK_FALSE(t.done());
        CHECK(t.cancel());
        CHECK_THROWS_AS(co_await t, coio::cancelled_error);
        CHECK(cleaned);
        CHECK(t.cancelled());
    }());
}

TEST_CASE("eager tasks loop-wide (loop_options::eager_tasks): create_task and gather start eagerly") {
    coio::run([]() -> coio::coro<void> {
        std::vector<std::string> log;
        auto t = coio::create_task(immediate(1, log));
        CHECK(t.done());
        auto u = coio::create_task(immediate(2, log), {.eager_start = false});  // the task says no
        CHECK_FALSE(u.done());
        CHECK(log == std::vector<std::string>{"immediate 1"});
        auto [a, b] = co_await coio::gather(immediate(3, log), suspends_once(4, log));
        CHECK(a == 3);
        CHECK(b == 4);
        CO_CHECK(co_await u == 2);
    }(), {.eager_tasks = true});
}

TEST_CASE("eager start on a loop that is not running is lazy (asyncio does the same)") {
    coio::event_loop loop;
    std::vector<std::string> log;
    auto t = loop.create_task(immediate(5, log), {.eager_start = true});
    CHECK_FALSE(t.done());
    CHECK(log.empty());
    CHECK(loop.run_until_complete(t) == 5);
}

TEST_CASE("eager tasks in a task_group: done at once, or failing at once, are accounted for") {
    coio::run([]() -> coio::coro<void> {
        std::vector<std::string> log;
        int sum = 0;
        co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
            auto a = tg.create_task(immediate(1, log), {.eager_start = true});
            auto b = tg.create_task(suspends_once(2, log), {.eager_start = true});
            CHECK(a.done());
            CHECK(tg.size() == 1);  // only b is still running
            sum = a.result();
            sum += co_await b;
        });
        CHECK(sum == 3);

        bool body_cancelled = false;
        try {
            co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
                (void)tg.create_task([]() -> coio::coro<void> { co_await coio::sleep(1h); }());
                (void)tg.create_task(fails_at_once(), {.eager_start = true});
                try {
                    co_await coio::sleep(1h);  // the eager failure cancels the body here
                } catch (const coio::cancelled_error&) {
                    body_cancelled = true;
                    throw;
                }
            });
            FAIL("the group should have failed");
        } catch (const std::exception& e) {
            CHECK(std::string(e.what()).find("eager failure") != std::string::npos);
        }
        CHECK(body_cancelled);
    }());
}

TEST_CASE("task_options with a long (heap-allocated) name, in a statement of its own") {
    coio::run([]() -> coio::coro<void> {
        std::vector<std::string> log;
        auto t = coio::create_task(immediate(1, log), {.name = "a name longer than the small-string buffer", .eager_start = true});
        CHECK(t.get_name() == "a name longer than the small-string buffer");
        CO_CHECK(co_await t == 1);
        CO_CHECK(co_await coio::create_task(immediate(3, log)) == 3);
    }());
}
