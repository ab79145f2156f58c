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
