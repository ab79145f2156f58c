// Tests of coio::context_var: task-local values with asyncio's contextvars semantics.
#include <coio/context_var.hpp>

#include "support/catch.hpp"
#include "support/co_check.hpp"
#include "support/counted.hpp"

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/task_group.hpp>
#include <coio/thread.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace {

coio::context_var<std::string> request_id("request_id", "-");
coio::context_var<int> depth("depth");

coio::coro<std::string> read_id() { co_return request_id.get(); }

coio::coro<void> set_in_coro(std::string v) {
    (void)request_id.set(std::move(v));
    co_return;
}

} // namespace

TEST_CASE("context_var: default, get(fallback), lookup_error without a default, name") {
    coio::run([]() -> coio::coro<void> {
        CHECK(request_id.get() == "-");
        CHECK(request_id.name() == "request_id");
        CHECK_THROWS_AS(depth.get(), coio::lookup_error);
        CHECK(depth.get(7) == 7);
        auto t = depth.set(1);
        CHECK(depth.get() == 1);
        CHECK(depth.get(7) == 1);
        REQUIRE(t.old_value() == nullptr);
        depth.reset(t);
        CHECK_THROWS_AS(depth.get(), coio::lookup_error);
        co_return;
    }());
}

TEST_CASE("context_var: a task starts with a snapshot of its creator's context; changes never leak back") {
    coio::run([]() -> coio::coro<void> {
        auto tok = request_id.set("parent");
        std::vector<std::string> seen;
        auto child = coio::create_task([](std::vector<std::string>& s) -> coio::coro<void> {
            s.push_back(request_id.get());  // the snapshot
            co_await coio::sleep(0);
            s.push_back(request_id.get());  // the parent's later set() does not reach it
            auto t = request_id.set("child");
            s.push_back(request_id.get());
            // A grandchild copies the child's context at its creation.
            s.push_back(co_await coio::create_task(read_id()));
            co_return;
        }(seen));
        (void)request_id.set("parent 2");
        co_await child;
        CHECK(request_id.get() == "parent 2");  // the child's set stayed in the child
        CHECK(seen == std::vector<std::string>{"parent", "parent", "child", "child"});
        request_id.reset(tok);
        CHECK(request_id.get() == "-");
    }());
}

TEST_CASE("context_var: coroutines awaited directly run in their task's context") {
    coio::run([]() -> coio::coro<void> {
        auto tok = request_id.set("task");
        CO_CHECK(co_await read_id() == "task");
        co_await set_in_coro("set by a coro");
        CHECK(request_id.get() == "set by a coro");  // same context, as in Python
        request_id.reset(tok);
        CHECK(request_id.get() == "-");
    }());
}

TEST_CASE("context_var: gather, task_group and eager tasks copy the context too") {
    coio::run([]() -> coio::coro<void> {
        auto tok = request_id.set("req-42");
        auto [a, b] = co_await coio::gather(read_id(), read_id());
        CHECK(a == "req-42");
        CHECK(b == "req-42");
        std::string in_group;
        co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
            auto t = tg.create_task(read_id());
            in_group = co_await t;
        });
        CHECK(in_group == "req-42");
        auto e = coio::create_task([]() -> coio::coro<std::string> {
            auto t = request_id.set("eager child");
            co_return request_id.get();
        }(), {.eager_start = true});
        REQUIRE(e.done());
        CHECK(e.result() == "eager child");
        CHECK(request_id.get() == "req-42");  // it ran inside create_task, in its own context
        request_id.reset(tok);
    }());
}

TEST_CASE("context_var: reset checks its token") {
    coio::run([]() -> coio::coro<void> {
        auto tok = depth.set(1);
        auto tok2 = depth.set(2);
        REQUIRE(tok2.old_value() != nullptr);
        CHECK(*tok2.old_value() == 1);
        depth.reset(tok2);
        CHECK(depth.get() == 1);
        CHECK_THROWS_AS(depth.reset(tok2), coio::invalid_state_error);  // used already
        coio::context_var<int> other_var("other");
        CHECK_THROWS_AS(other_var.reset(tok), std::invalid_argument);  // another variable's token
        // A token made in another task.
        auto other = co_await coio::create_task([]() -> coio::coro<bool> {
            auto t = depth.set(5);
            co_return true;
        }());
        CHECK(other);
        auto theirs = coio::create_task([]() -> coio::coro<coio::context_var<int>::token> { co_return depth.set(9); }());
        auto t9 = co_await theirs;
        CHECK_THROWS_AS(depth.reset(t9), std::invalid_argument);
        CHECK(depth.get() == 1);
        depth.reset(tok);
    }());
}

TEST_CASE("context_var: outside tasks, the thread's own context; tasks created there copy it") {
    coio::event_loop loop;
    auto tok = request_id.set("main thread");
    CHECK(request_id.get() == "main thread");
    auto t = loop.create_task(read_id());
    (void)request_id.set("changed later");
    CHECK(loop.run_until_complete(t) == "main thread");
    request_id.reset(tok);
    CHECK(request_id.get() == "-");
}

TEST_CASE("context_var: a to_thread function sees a copy of its caller's context") {
    coio::run([]() -> coio::coro<void> {
        auto tok = request_id.set("from the task");
        const std::string seen = co_await coio::to_thread([] {
            std::string s = request_id.get();
            (void)request_id.set("set in the worker");  // stays in the worker's copy
            return s;
        });
        CHECK(seen == "from the task");
        CHECK(request_id.get() == "from the task");
        // The worker's context is its own again afterwards.
        CO_CHECK(co_await coio::to_thread([] { return request_id.get(); }) == "from the task");
        request_id.reset(tok);
        CO_CHECK(co_await coio::to_thread([] { return request_id.get(); }) == "-");
    }());
}

TEST_CASE("context_var: values are destroyed once, when no context holds them") {
    coio_test::counted::reset();
    {
        coio::context_var<coio_test::counted> var("counted");
        coio::run([](coio::context_var<coio_test::counted>& v) -> coio::coro<void> {
            auto t = v.set(coio_test::counted(1));
            auto child = coio::create_task([](coio::context_var<coio_test::counted>& v) -> coio::coro<int> {
                auto t2 = v.set(coio_test::counted(2));
                co_await coio::sleep(0);
                co_return v.get().value;
            }(v));
            CO_CHECK(co_await child == 2);
            CHECK(v.get().value == 1);
        }(var));
    }
    CHECK(coio_test::counted::alive == 0);
}
