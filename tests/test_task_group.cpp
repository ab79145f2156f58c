// tests/test_task_group.cpp - coio::task_group and coio::exception_group: joining, first
// failure cancels siblings and the body, errors aggregated, owner cancellation, timeouts,
// misuse after the join.
#include <coio/task_group.hpp>

#include "support/catch.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

// Runs a capturing coroutine lambda with the lambda kept alive in the coroutine's own frame
// (a temporary lambda would die before the task runs, leaving its captures dangling).
template <class F>
auto owned(F f) -> decltype(f()) {
    co_return co_await f();
}

namespace {
coio::coro<int> value_after(int v, std::chrono::milliseconds d) {
    co_await coio::sleep(d);
    co_return v;
}
coio::coro<void> fail_after(std::chrono::milliseconds d, std::string msg) {
    co_await coio::sleep(d);
    throw std::runtime_error(msg);
}
// Sleeps "forever"; records that it was cancelled and that it finished its cleanup.
coio::coro<void> sleeper(int& cancelled, int& finished) {
    try {
        co_await coio::sleep(10s);
    } catch (const coio::cancelled_error&) {
        ++cancelled;
        ++finished;
        throw;
    }
    ++finished;
}
coio::coro<void> bump_later(int& ran) {
    co_await coio::sleep(1ms);
    ++ran;
}
coio::coro<void> spawner(coio::task_group g, int& ran) {
    co_await coio::sleep(1ms);
    g.create_task(bump_later(ran));
    ++ran;
}
} // namespace

TEST_CASE("task_group: waits for every task - returns the body's value") {
    coio::run([]() -> coio::coro<void> {
        std::vector<int> done;
        int n = co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<int> {
            auto a = tg.create_task(value_after(1, 5ms));
            tg.create_task(owned([&]() -> coio::coro<void> {
                co_await coio::sleep(1ms);
                done.push_back(2);
            }));
            CHECK(tg.size() == 2);
            done.push_back(co_await a);
            co_return 42;
        });
        CHECK(n == 42);
        CHECK(done == std::vector<int>{2, 1});
        co_await coio::task_group::run([](coio::task_group&) -> coio::coro<void> { co_return; });
    }());
}

TEST_CASE("task_group: first failure cancels the siblings and the body - one error is wrapped") {
    coio::run([]() -> coio::coro<void> {
        int cancelled = 0, finished = 0;
        bool body_cancelled = false;
        try {
            co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
                tg.create_task(sleeper(cancelled, finished));
                tg.create_task(sleeper(cancelled, finished));
                tg.create_task(fail_after(2ms, "boom"));
                try {
                    co_await coio::sleep(10s);  // interrupted by the failure
                } catch (const coio::cancelled_error&) {
                    body_cancelled = true;
                    throw;
                }
            });
            FAIL("no exception");
        } catch (const coio::exception_group& eg) {
            REQUIRE(eg.size() == 1);
            CHECK(std::string(eg.what()).find("boom") != std::string::npos);
            CHECK(std::string(eg.what()).find("std::runtime_error") != std::string::npos);
            REQUIRE(eg.find<std::runtime_error>() != nullptr);
            CHECK(std::string(eg.find<std::runtime_error>()->what()) == "boom");
            CHECK(eg.find<std::logic_error>() == nullptr);
        }
        CHECK(body_cancelled);
        CHECK(cancelled == 2);
        CHECK(finished == 2);  // the group waited for their cleanup
        // The group's own cancellation request is withdrawn: the owner keeps working.
        co_await coio::sleep(1ms);
        CHECK(coio::current_task().cancelling() == 0);
    }());
}

TEST_CASE("task_group: every failure is collected - the body's last") {
    coio::run([]() -> coio::coro<void> {
        try {
            co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
                tg.create_task(fail_after(1ms, "first"));
                tg.create_task([]() -> coio::coro<void> {
                    try {
                        co_await coio::sleep(10s);
                    } catch (const coio::cancelled_error&) {
                        throw std::logic_error("second, while cancelled");
                    }
                }());
                co_await coio::sleep(0);
                throw std::invalid_argument("body");
            });
            FAIL("no exception");
        } catch (const coio::exception_group& eg) {
            // The body failed first: it aborted the group; then "first" never ran to its
            // throw (cancelled in its sleep) and the other task failed while cancelled.
            REQUIRE(eg.size() == 2);
            CHECK(eg.find<std::logic_error>() != nullptr);
            CHECK(eg.find<std::invalid_argument>() != nullptr);
            try {
                std::rethrow_exception(eg.exceptions().back());
            } catch (const std::invalid_argument& e) {
                CHECK(std::string(e.what()) == "body");
            }
        }
    }());
}

TEST_CASE("task_group: cancelling the owner cancels the tasks - run throws cancelled_error") {
    coio::run([]() -> coio::coro<void> {
        int cancelled = 0, finished = 0;
        auto owner = coio::create_task(owned([&]() -> coio::coro<void> {
            co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
                tg.create_task(sleeper(cancelled, finished));
                tg.create_task(sleeper(cancelled, finished));
                co_return;  // cancelled while joining
            });
        }));
        co_await coio::sleep(1ms);
        owner.cancel();
        CHECK_THROWS_AS(co_await owner, coio::cancelled_error);
        CHECK(cancelled == 2);
        CHECK(finished == 2);

        // Cancelled while the body awaits.
        auto owner2 = coio::create_task(owned([&]() -> coio::coro<void> {
            co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
                tg.create_task(sleeper(cancelled, finished));
                co_await coio::sleep(10s);
            });
        }));
        co_await coio::sleep(1ms);
        owner2.cancel();
        CHECK_THROWS_AS(co_await owner2, coio::cancelled_error);
        CHECK(cancelled == 3);
    }());
}

TEST_CASE("task_group: under wait_for - the timeout cancels the group and throws timeout_error") {
    coio::run([]() -> coio::coro<void> {
        int cancelled = 0, finished = 0;
        auto start = coio::clock::now();
        CHECK_THROWS_AS(co_await coio::wait_for(coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
                                                    tg.create_task(sleeper(cancelled, finished));
                                                    co_return;
                                                }),
                                                10ms),
                        coio::timeout_error);
        CHECK(coio::clock::now() - start < 5s);
        CHECK(cancelled == 1);
        CHECK(finished == 1);
        co_await coio::sleep(0);  // no stray cancellation left behind
    }());
}

TEST_CASE("task_group: misuse after the join and while shutting down") {
    coio::run([]() -> coio::coro<void> {
        std::optional<coio::task_group> kept;
        co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
            kept = tg;
            co_return;
        });
        REQUIRE(kept);
        CHECK(kept->finished());
        CHECK_THROWS_AS(kept->create_task(value_after(1, 0ms)), coio::invalid_state_error);

        bool refused = false;
        try {
            co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
                tg.create_task(fail_after(0ms, "x"));
                try {
                    co_await coio::sleep(10s);
                } catch (const coio::cancelled_error&) {
                    try {
                        tg.create_task(value_after(1, 0ms));
                    } catch (const coio::invalid_state_error&) {
                        refused = true;
                    }
                    throw;
                }
            });
        } catch (const coio::exception_group&) {
        }
        CHECK(refused);
    }());
}

TEST_CASE("task_group: tasks may add tasks while the group joins") {
    coio::run([]() -> coio::coro<void> {
        int ran = 0;
        co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
            tg.create_task(spawner(tg, ran));
            co_return;
        });
        CHECK(ran == 2);
    }());
}

TEST_CASE("exception_group: lists its exceptions") {
    coio::exception_group eg({std::make_exception_ptr(std::runtime_error("a")),
                              std::make_exception_ptr(std::out_of_range("b"))});
    std::string w = eg.what();
    CHECK(w.find("2 sub-exceptions") != std::string::npos);
    CHECK(w.find("[1] std::runtime_error: a") != std::string::npos);
    CHECK(w.find("[2] std::out_of_range: b") != std::string::npos);
    CHECK(eg.find<std::logic_error>() != nullptr);  // out_of_range derives from logic_error
}

namespace {
template <class E>
std::exception_ptr ex(const char* what) { return std::make_exception_ptr(E(what)); }

// The what() of every leaf of `g`, depth first, nested groups in brackets.
std::string leaves(const coio::exception_group& g) {
    std::string s;
    for (const auto& p : g.exceptions()) {
        if (!s.empty()) s += ",";
        try {
            std::rethrow_exception(p);
        } catch (const coio::exception_group& inner) {
            s += "[" + leaves(inner) + "]";
        } catch (const std::exception& e) {
            s += e.what();
        }
    }
    return s;
}

struct custom_group : coio::exception_group {
    using coio::exception_group::exception_group;
};

void on_range(const std::range_error&) {}
} // namespace

TEST_CASE("exception_group::split and subgroup keep order, nesting and message") {
    coio::exception_group inner({ex<std::invalid_argument>("i1"), ex<std::runtime_error>("r1")}, "inner");
    coio::exception_group eg({ex<std::runtime_error>("r0"), std::make_exception_ptr(inner),
                              ex<std::out_of_range>("o1"), ex<std::invalid_argument>("i2")},
                             "outer");
    CHECK(eg.message() == "outer");

    auto [logic, rest] = eg.split<std::logic_error>();  // invalid_argument, out_of_range
    REQUIRE(logic);
    REQUIRE(rest);
    CHECK(leaves(*logic) == "[i1],o1,i2");
    CHECK(leaves(*rest) == "r0,[r1]");
    CHECK(logic->message() == "outer");
    CHECK(rest->message() == "outer");
    CHECK(coio::exception_group::as_group(logic->exceptions()[0])->message() == "inner");

    // exception_group is a std::runtime_error, but split walks groups: the leaves match.
    auto [rt, not_rt] = eg.split<std::runtime_error>();
    REQUIRE(rt);
    CHECK(leaves(*rt) == "r0,[r1]");
    REQUIRE(not_rt);
    CHECK(leaves(*not_rt) == "[i1],o1,i2");

    auto all = eg.split<std::exception>();
    CHECK(all.first);
    CHECK_FALSE(all.second);
    auto none = eg.split<std::system_error>();
    CHECK_FALSE(none.first);
    REQUIRE(none.second);
    CHECK(leaves(*none.second) == "r0,[i1,r1],o1,i2");

    auto sub = eg.subgroup<std::out_of_range>();
    REQUIRE(sub);
    CHECK(leaves(*sub) == "o1");
    CHECK_FALSE(eg.subgroup<std::bad_alloc>());

    // A group type matches whole groups: the group itself, or a nested one.
    CHECK(eg.split<coio::exception_group>().first);
    CHECK_FALSE(eg.split<coio::exception_group>().second);
    coio::exception_group with_custom({std::make_exception_ptr(custom_group({ex<std::runtime_error>("c")}, "c")),
                                       ex<std::runtime_error>("plain")});
    auto [custom, others] = with_custom.split<custom_group>();
    REQUIRE(custom);
    CHECK(leaves(*custom) == "[c]");
    REQUIRE(others);
    CHECK(leaves(*others) == "plain");
}

TEST_CASE("handle_group: handlers run per exception, in clause order; the rest is rethrown") {
    coio::exception_group inner({ex<std::invalid_argument>("i1"), ex<std::runtime_error>("r1")}, "inner");
    coio::exception_group eg({ex<std::runtime_error>("r0"), std::make_exception_ptr(inner),
                              ex<std::out_of_range>("o1"), ex<std::invalid_argument>("i2")},
                             "outer");
    std::vector<std::string> seen;
    try {
        coio::handle_group(eg,
            [&](const std::invalid_argument& e) { seen.push_back(std::string("inv:") + e.what()); },
            [&](const std::logic_error& e) { seen.push_back(std::string("logic:") + e.what()); });
        FAIL("the runtime_errors nobody handled must be rethrown");
    } catch (const coio::exception_group& left) {
        CHECK(left.message() == "outer");
        CHECK(leaves(left) == "r0,[r1]");
    }
    // First clause first (over the whole group), then the second over what is left.
    CHECK(seen == std::vector<std::string>{"inv:i1", "inv:i2", "logic:o1"});

    // Everything handled: returns normally. A function works as a handler too.
    int n = 0;
    coio::handle_group(eg, [&](const std::exception&) { ++n; }, on_range);
    CHECK(n == 5);
}

TEST_CASE("handle_group: what a handler throws is raised with the unhandled ones") {
    coio::exception_group eg({ex<std::runtime_error>("r0"), ex<std::out_of_range>("o1")}, "outer");
    try {
        coio::handle_group(eg, [](const std::out_of_range& e) { throw std::length_error(std::string("from ") + e.what()); });
        FAIL("expected a group");
    } catch (const coio::exception_group& g) {
        CHECK(g.message() == "outer");
        CHECK(leaves(g) == "from o1,[r0]");
    }
}

TEST_CASE("handle_group over std::current_exception: single exceptions and groups") {
    int handled = 0;
    try {
        throw std::out_of_range("x");
    } catch (...) {
        coio::handle_group(std::current_exception(), [&](const std::logic_error&) { ++handled; });
    }
    CHECK(handled == 1);
    // Not handled: rethrown unchanged, not wrapped.
    CHECK_THROWS_AS([] {
        try {
            throw coio::cancelled_error();
        } catch (...) {
            coio::handle_group(std::current_exception(), [](const std::exception&) {});
        }
    }(), coio::cancelled_error);
    try {
        try {
            throw coio::exception_group({ex<std::runtime_error>("a"), ex<std::out_of_range>("b")});
        } catch (...) {
            coio::handle_group(std::current_exception(), [&](std::runtime_error&) { ++handled; });
        }
        FAIL("the out_of_range must be rethrown");
    } catch (const coio::exception_group& g) {
        CHECK(leaves(g) == "b");
    }
    CHECK(handled == 2);
}

TEST_CASE("a task_group's failures, handled by type with handle_group") {
    std::string log;
    coio::run([](std::string& log) -> coio::coro<void> {
        try {
            co_await coio::task_group::run([](coio::task_group& tg) -> coio::coro<void> {
                tg.create_task([]() -> coio::coro<void> {
                    try {
                        co_await coio::sleep(1h);
                    } catch (const coio::cancelled_error&) {  // its cleanup fails too
                        throw std::system_error(std::make_error_code(std::errc::timed_out));
                    }
                }());
                tg.create_task([]() -> coio::coro<void> {
                    co_await coio::sleep(1ms);
                    throw std::invalid_argument("bad");
                }());
                co_return;
            });
        } catch (const coio::exception_group& eg) {
            coio::handle_group(eg,
                [&](const std::invalid_argument& e) { log += std::string("arg:") + e.what() + ";"; },
                [&](const std::system_error& e) { log += "io:" + std::to_string(e.code().value()) + ";"; });
        }
    }(log));
    CHECK(log == "arg:bad;io:" + std::to_string(static_cast<int>(std::errc::timed_out)) + ";");
}
