// tests/test_call_graph.cpp - coio::capture_call_graph, format_call_graph, print_call_graph
// and event_loop::dump_tasks: call stacks of nested coros and async generators, what the
// innermost await waits on, and who awaits a task (co_await, gather, task_group, shield,
// wait_for).
//
// Call stacks need frames that record their creation site: on in every build of this test
// (the suite also runs in Release, where it is off by default).
#define COIO_INTROSPECTION 1
#include <coio/call_graph.hpp>

#include "support/catch.hpp"

#include <coio/async_generator.hpp>
#include <coio/event.hpp>
#include <coio/gather.hpp>
#include <coio/lock.hpp>
#include <coio/queue.hpp>
#include <coio/run.hpp>
#include <coio/shield.hpp>
#include <coio/sleep.hpp>
#include <coio/socket.hpp>
#include <coio/task.hpp>
#include <coio/task_group.hpp>
#include <coio/timeout.hpp>
#include <coio/wait.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<std::string> functions(const coio::call_graph& g) {
    std::vector<std::string> out;
    for (const auto& f : g.call_stack) out.push_back(f.function);
    return out;
}

const unsigned fetch_page_line = __LINE__ + 1;
coio::coro<int> fetch_page(int n) {
    co_await coio::sleep(10s);
    co_return n;
}

coio::coro<int> worker() { co_return co_await fetch_page(1); }

coio::coro<void> sleeper() { co_await coio::sleep(10s); }

coio::async_generator<int> slow_numbers() {
    co_await coio::sleep(10s);
    co_yield 1;
}

/// Waits until `t` is done, whatever it ended with (no sleeps: a loaded machine may run
/// fewer loop iterations in a millisecond than a cancellation needs).
template <class T>
coio::coro<void> settle(coio::task<T> t) {
    try {
        (void)co_await t;
    } catch (...) {
    }
}

coio::coro<void> consume_numbers() {
    auto gen = slow_numbers();
    while (auto v = co_await gen.next()) (void)v;
}

} // namespace

TEST_CASE("call graph: a task suspended in nested coros - the chain, innermost first, and the sleep") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task(worker(), "worker-1");
        const unsigned created_line = __LINE__ - 1;
        co_await coio::sleep(5ms);
        const coio::call_graph g = coio::capture_call_graph(t);
        CHECK(g.name == "worker-1");
        CHECK(g.id > 0);
        CHECK(g.created_at.line() == created_line);
        CHECK(contains(g.created_at.file_name(), "test_call_graph.cpp"));
        CHECK(g.status == coio::call_graph::state::waiting);
        CHECK(g.waiting_on == "sleep");
        CHECK(contains(g.wait_detail, "s left (of 10.000 s)"));
        CHECK(functions(g) == std::vector<std::string>{"fetch_page", "worker"});
        REQUIRE(!g.call_stack.empty());
        CHECK(contains(g.call_stack[0].location.file_name(), "test_call_graph.cpp"));
        // GCC names the closing brace, Clang the declaration: within the function.
        CHECK(g.call_stack[0].location.line() >= fetch_page_line);
        CHECK(g.call_stack[0].location.line() <= fetch_page_line + 3);
        CHECK_FALSE(g.call_stack[0].async_generator);
        CHECK(g.awaited_by.empty());

        const std::string text = coio::format_call_graph(t);
        CHECK(text.rfind("* Task(name='worker-1', id=" + std::to_string(g.id) + ")", 0) == 0);
        CHECK(contains(text, "\n  + Waiting on: sleep ("));
        CHECK(contains(text, "\n  + Call stack:\n  |   File '"));
        CHECK(contains(text, "', line " + std::to_string(g.call_stack[0].location.line()) + ", in async fetch_page()\n"));
        CHECK(contains(text, "in async worker()"));
        CHECK(text.find("fetch_page") < text.find("worker()"));
        std::ostringstream os;
        coio::print_call_graph(t, os);
        // A fresh capture: the same lines but the time left, which may have ticked since.
        CHECK(os.str().rfind(text.substr(0, text.find("+ Waiting on: sleep (")), 0) == 0);
        CHECK(os.str().substr(os.str().find("\n  + Call stack:")) == text.substr(text.find("\n  + Call stack:")) + "\n");
        t.cancel();
    }());
}

TEST_CASE("call graph: a task not started yet, a ready one, the running one, and a finished one") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task(sleeper(), "later");
        coio::call_graph g = coio::capture_call_graph(t);
        CHECK(g.status == coio::call_graph::state::pending);
        CHECK(functions(g) == std::vector<std::string>{"sleeper"});
        CHECK(contains(coio::format_call_graph(g), "Not started yet"));

        auto me = coio::capture_call_graph();
        CHECK(me.status == coio::call_graph::state::running);
        CHECK(me.call_stack.empty());

        auto quick = coio::create_task([]() -> coio::coro<void> { co_await coio::sleep(0); }());
        co_await coio::sleep(0);  // quick is now in sleep(0): on the ready queue, hook kept
        co_await coio::sleep(0);
        co_await coio::sleep(0);
        g = coio::capture_call_graph(quick);
        CHECK(g.status == coio::call_graph::state::done);
        CHECK(g.call_stack.empty());
        t.cancel();
    }());
}

TEST_CASE("call graph: a plain co_await of a task - awaited by the awaiting task") {
    coio::run([]() -> coio::coro<void> {
        auto child = coio::create_task(sleeper(), "child");
        auto parent = coio::create_task([](coio::task<void> c) -> coio::coro<void> { co_await c; }(child), "parent");
        co_await coio::sleep(5ms);
        const auto g = coio::capture_call_graph(child);
        REQUIRE(g.awaited_by.size() == 1);
        CHECK(g.awaited_by[0].name == "parent");
        CHECK(g.awaited_by[0].waiting_on == "future");
        CHECK(g.awaited_by[0].wait_detail == "task 'child'");
        CHECK(g.awaited_by[0].call_stack.size() == 1);
        const std::string text = coio::format_call_graph(g);
        CHECK(contains(text, "\n  + Awaited by:\n    * Task(name='parent', id="));
        CHECK(contains(text, "\n      + Waiting on: future (task 'child')"));
        // The awaited-by side: the parent's own graph has nobody above it.
        CHECK(coio::capture_call_graph(parent).awaited_by.empty());
        parent.cancel();  // forwarded to the child
        co_await settle(parent);
        CHECK(child.done());
    }());
}

TEST_CASE("call graph: gather - each child is awaited by the gathering task") {
    coio::run([]() -> coio::coro<void> {
        auto a = coio::create_task(sleeper(), "a");
        auto b = coio::create_task(worker(), "b");
        auto g = coio::create_task([](coio::task<void> a, coio::task<int> b) -> coio::coro<void> {
            co_await coio::gather(a, b);
        }(a, b), "gatherer");
        co_await coio::sleep(5ms);
        for (const auto& child : {coio::capture_call_graph(a), coio::capture_call_graph(b)}) {
            REQUIRE(child.awaited_by.size() == 1);
            CHECK(child.awaited_by[0].name == "gatherer");
            CHECK(child.awaited_by[0].waiting_on == "gather");
            CHECK(child.awaited_by[0].wait_detail == "2 children, 2 pending");
        }
        a.cancel();  // gather cancels b too and ends
        co_await settle(g);
        CHECK(b.done());
    }());
}

TEST_CASE("call graph: task_group - children are awaited by the owner at its join") {
    coio::run([]() -> coio::coro<void> {
        coio::task<void> seen;
        auto owner = coio::create_task([](coio::task<void>& seen) -> coio::coro<void> {
            co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
                seen = tg.create_task(sleeper(), "grouped");
                co_return;
            });
        }(seen), "owner");
        co_await coio::sleep(5ms);
        const auto g = coio::capture_call_graph(seen);
        REQUIRE(g.awaited_by.size() == 1);
        CHECK(g.awaited_by[0].name == "owner");
        CHECK(g.awaited_by[0].waiting_on == "task_group join");
        CHECK(g.awaited_by[0].wait_detail == "1 tasks");
        owner.cancel();
        co_await settle(owner);
        CHECK(seen.done());
    }());
}

TEST_CASE("call graph: shield and wait_for - the awaiting task, through the wrapper coroutine") {
    coio::run([]() -> coio::coro<void> {
        auto inner = coio::create_task(sleeper(), "inner");
        auto shielded = coio::create_task([](coio::task<void> t) -> coio::coro<void> { co_await coio::shield(t); }(inner),
                                          "shielding");
        auto limited = coio::create_task([](coio::task<void> t) -> coio::coro<void> { co_await coio::wait_for(t, 10s); }(inner),
                                         "limiting");
        co_await coio::sleep(5ms);
        const auto g = coio::capture_call_graph(inner);
        REQUIRE(g.awaited_by.size() == 2);
        const auto& s = g.awaited_by[0].name == "shielding" ? g.awaited_by[0] : g.awaited_by[1];
        const auto& l = g.awaited_by[0].name == "shielding" ? g.awaited_by[1] : g.awaited_by[0];
        CHECK(s.name == "shielding");
        CHECK(s.waiting_on == "shielded future");
        CHECK(l.name == "limiting");
        CHECK(l.waiting_on == "future");
        // wait_for is a coroutine of its own: it shows in the awaiting task's stack.
        REQUIRE(l.call_stack.size() == 2);
        CHECK(l.call_stack[0].function.rfind("wait_for", 0) == 0);  // GCC adds the template arguments
        shielded.cancel();
        limited.cancel();
        inner.cancel();
        co_await coio::sleep(1ms);
    }());
}

TEST_CASE("call graph: coio::wait - the waiting task awaits each pending task") {
    coio::run([]() -> coio::coro<void> {
        auto a = coio::create_task(sleeper(), "a");
        auto w = coio::create_task([](coio::task<void> a) -> coio::coro<void> {
            std::vector<coio::task<void>> ts{a};
            (void)co_await coio::wait(ts, coio::first_completed);
        }(a), "waiter");
        co_await coio::sleep(5ms);
        const auto g = coio::capture_call_graph(a);
        REQUIRE(g.awaited_by.size() == 1);
        CHECK(g.awaited_by[0].name == "waiter");
        CHECK(g.awaited_by[0].waiting_on == "wait");
        CHECK(g.awaited_by[0].wait_detail == "1 tasks, 1 pending");
        a.cancel();
        co_await settle(w);
    }());
}

TEST_CASE("call graph: an async generator's body is a frame of the consuming task") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task(consume_numbers(), "consumer");
        co_await coio::sleep(5ms);
        const auto g = coio::capture_call_graph(t);
        CHECK(g.waiting_on == "sleep");
        REQUIRE(functions(g) == std::vector<std::string>{"slow_numbers", "consume_numbers"});
        CHECK(g.call_stack[0].async_generator);
        CHECK_FALSE(g.call_stack[1].async_generator);
        CHECK(contains(coio::format_call_graph(g), "in async generator slow_numbers()"));
        t.cancel();
    }());
}

TEST_CASE("call graph: what the innermost await waits on - queue, lock, event, socket") {
    coio::run([]() -> coio::coro<void> {
        coio::queue<int> q;
        coio::lock l;
        coio::event ev;
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        coio::socket a = coio::socket::from_fd(fds[0]);
        coio::socket b = coio::socket::from_fd(fds[1]);
        co_await l.acquire();
        auto tq = coio::create_task([](coio::queue<int>& q) -> coio::coro<void> { (void)co_await q.get(); }(q), "q");
        auto tl = coio::create_task([](coio::lock& l) -> coio::coro<void> { co_await l.acquire(); l.release(); }(l), "l");
        auto te = coio::create_task([](coio::event& e) -> coio::coro<void> { co_await e.wait(); }(ev), "e");
        auto ts = coio::create_task([](coio::socket& s) -> coio::coro<void> { (void)co_await s.recv(16); }(a), "s");
        co_await coio::sleep(5ms);
        CHECK(coio::capture_call_graph(tq).waiting_on == "queue get");
        CHECK(coio::capture_call_graph(tl).waiting_on == "lock");
        CHECK(coio::capture_call_graph(te).waiting_on == "event");
        const auto gs = coio::capture_call_graph(ts);
        CHECK_FALSE(gs.waiting_on.empty());
        CHECK(gs.wait_detail == "fd " + std::to_string(a.fileno()));
        for (auto* t : {&tq, &tl, &te, &ts}) t->cancel();
        l.release();
        co_await coio::sleep(1ms);
    }());
}

TEST_CASE("dump_tasks: every pending task as a tree, children under the task awaiting them") {
    coio::run([]() -> coio::coro<void> {
        auto a = coio::create_task(worker(), "worker-1");
        auto b = coio::create_task(sleeper(), "worker-2");
        auto lone = coio::create_task(sleeper(), "lone");
        auto g = coio::create_task([](coio::task<int> a, coio::task<void> b) -> coio::coro<void> {
            co_await coio::gather(a, b);
        }(a, b), "gatherer");
        co_await coio::sleep(5ms);
        std::ostringstream os;
        coio::get_running_loop().dump_tasks(os);
        const std::string s = os.str();
        INFO(s);
        CHECK(s.rfind("coio: 5 pending tasks\n", 0) == 0);
        // Roots at the left margin (creation order: main, lone, gatherer); the gathered tasks
        // one level in, under the gatherer.
        CHECK(contains(s, "\n\u2514\u2500\u2500 (T) task 'gatherer' id="));
        CHECK(contains(s, "waiting on gather (2 children, 2 pending)\n"));
        CHECK(contains(s, "\n    \u251c\u2500\u2500 (T) task 'worker-1' id="));
        CHECK(contains(s, "\n    \u2514\u2500\u2500 (T) task 'worker-2' id="));
        CHECK(contains(s, "\n\u251c\u2500\u2500 (T) task 'lone' id="));  // a root, not the last one
        CHECK(contains(s, "running\n"));  // the task calling dump_tasks
        CHECK(s.find("fetch_page() ") > s.find("task 'worker-1'"));
        CHECK(s.find("fetch_page() ") < s.find("task 'worker-2'"));
        CHECK(s.find("task 'worker-1'") > s.find("task 'gatherer'"));
        a.cancel();
        lone.cancel();
        co_await settle(g);
        co_await settle(lone);
    }());
}
