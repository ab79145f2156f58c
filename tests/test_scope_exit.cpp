// Tests of coio/scope_exit.hpp: cleanup on every exit path, cancellation included.
#include <coio/scope_exit.hpp>

#include "support/catch.hpp"

#include <coio/errors.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/task_group.hpp>
#include <coio/timeout.hpp>

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("scope_exit runs at the end of a scope, on an exception, and not after release") {
    int calls = 0;
    { coio::scope_exit g{[&] { ++calls; }}; }
    CHECK(calls == 1);
    try {
        coio::scope_exit g{[&] { ++calls; }};
        throw std::runtime_error("x");
    } catch (const std::runtime_error&) {
    }
    CHECK(calls == 2);
    {
        coio::scope_exit g{[&] { ++calls; }};
        g.release();
    }
    CHECK(calls == 2);
    {
        coio::scope_exit a{[&] { ++calls; }};
        coio::scope_exit b{std::move(a)};  // one call, from b
    }
    CHECK(calls == 3);
}

namespace {

// A connection registry as in a chat server: a handler that registers itself must always
// unregister, or the registry keeps a dangling pointer.
coio::coro<void> handler(std::vector<int*>& registry, int& me, std::vector<std::string>& log) {
    registry.push_back(&me);
    coio::scope_exit unregister{[&] { std::erase(registry, &me); }};
    try {
        co_await coio::sleep(10s);
    } catch (const std::exception&) {
        log.push_back("std::exception handler ran");  // never for a cancellation
    }
}

coio::coro<void> plain_handler(std::vector<int*>& registry, int& me) {
    registry.push_back(&me);
    coio::scope_exit unregister{[&] { std::erase(registry, &me); }};
    co_await coio::sleep(10s);
}

}  // namespace

TEST_CASE("scope_exit runs when the task is cancelled, where catch (std::exception&) does not") {
    std::vector<int*> registry;
    std::vector<std::string> log;
    int a = 0, b = 0;
    coio::run([](std::vector<int*>& registry, std::vector<std::string>& log, int& a, int& b) -> coio::coro<void> {
        auto ta = coio::create_task(handler(registry, a, log));
        auto tb = coio::create_task(handler(registry, b, log));
        co_await coio::sleep(1ms);
        CHECK(registry.size() == 2);
        ta.cancel();
        try {
            co_await ta;
        } catch (const coio::cancelled_error&) {
        }
        CHECK(registry == std::vector<int*>{&b});
        // tb is still pending when main returns: run cancels it at shutdown.
    }(registry, log, a, b));
    CHECK(registry.empty());
    CHECK(log.empty());
}

TEST_CASE("scope_exit runs in the siblings a failing task_group member cancels, and on timeout") {
    std::vector<int*> registry;
    std::vector<std::string> log;
    int a = 0, b = 0;
    coio::run([](std::vector<int*>& registry, std::vector<std::string>& log, int& a, int& b) -> coio::coro<void> {
        try {
            co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
                tg.create_task(handler(registry, a, log));
                tg.create_task([]() -> coio::coro<void> {
                    co_await coio::sleep(1ms);
                    throw std::runtime_error("sibling failed");
                }());
                co_return;
            });
            FAIL("no exception_group");
        } catch (const coio::exception_group&) {
        }
        CHECK(registry.empty());
        try {
            co_await coio::wait_for(plain_handler(registry, b), 5ms);
            FAIL("no timeout");
        } catch (const coio::timeout_error&) {
        }
        CHECK(registry.empty());
    }(registry, log, a, b));
    CHECK(log.empty());
}

TEST_CASE("asynchronous cleanup on every path: keep the exception, await, rethrow") {
    std::vector<std::string> events;
    coio::run([](std::vector<std::string>& events) -> coio::coro<void> {
        auto t = coio::create_task([](std::vector<std::string>& events) -> coio::coro<void> {
            std::exception_ptr failure;
            try {
                co_await coio::sleep(10s);
            } catch (...) {
                failure = std::current_exception();  // cancelled_error too
            }
            co_await coio::sleep(1ms);  // cleanup that awaits
            events.push_back("cleaned up");
            if (failure) std::rethrow_exception(failure);
        }(events));
        co_await coio::sleep(1ms);
        t.cancel();
        try {
            co_await t;
        } catch (const coio::cancelled_error&) {
            events.push_back("cancelled");
        }
    }(events));
    CHECK(events == std::vector<std::string>{"cleaned up", "cancelled"});
}
