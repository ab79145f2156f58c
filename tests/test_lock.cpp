// tests/test_lock.cpp - coio::lock: mutual exclusion, FIFO hand-off, cancellation (also after
// the lock was handed over), timeouts, misuse, RAII guard, no allocation per wait.
#include <coio/lock.hpp>

#include "support/catch.hpp"
#include "support/count_allocations.hpp"

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <chrono>
#include <cstdlib>
#include <new>
#include <optional>
#include <vector>

using namespace std::chrono_literals;

// Allocation counting (this executable only): proves that waiting and hand-off allocate nothing.
using coio_test::g_allocs;
using coio_test::g_count;

namespace {
coio::coro<void> take(coio::lock& lk, std::vector<int>& order, int id) {
    co_await lk.acquire();
    order.push_back(id);
    co_await coio::sleep(0);  // hold it across a suspension
    lk.release();
}
} // namespace

TEST_CASE("lock: acquire/release/locked and misuse") {
    coio::run([]() -> coio::coro<void> {
        coio::lock lk;
        CHECK_FALSE(lk.locked());
        co_await lk.acquire();
        CHECK(lk.locked());
        CHECK_FALSE(lk.try_acquire());
        lk.release();
        CHECK_FALSE(lk.locked());
        CHECK_THROWS_AS(lk.release(), coio::invalid_state_error);  // asyncio: RuntimeError
    }());
}

TEST_CASE("lock: waiters get the lock in FIFO order") {
    coio::run([]() -> coio::coro<void> {
        coio::lock lk;
        std::vector<int> order;
        std::vector<coio::task<void>> ts;
        co_await lk.acquire();
        for (int i = 0; i < 5; ++i) ts.push_back(coio::create_task(take(lk, order, i)));
        co_await coio::sleep(0);
        lk.release();
        co_await coio::gather(std::move(ts));
        CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
        CHECK_FALSE(lk.locked());
    }());
}

TEST_CASE("lock: a cancelled waiter is unlinked and consumes no hand-off") {
    coio::run([]() -> coio::coro<void> {
        coio::lock lk;
        std::vector<int> order;
        co_await lk.acquire();
        auto a = coio::create_task(take(lk, order, 0));
        auto b = coio::create_task(take(lk, order, 1));
        auto c = coio::create_task(take(lk, order, 2));
        co_await coio::sleep(0);
        b.cancel();
        co_await coio::sleep(0);
        CHECK(b.cancelled());
        lk.release();
        co_await a;
        co_await c;
        CHECK(order == std::vector<int>{0, 2});
        CHECK_FALSE(lk.locked());
    }());
}

TEST_CASE("lock: handed over - then cancelled before running: the lock passes on") {
    coio::run([]() -> coio::coro<void> {
        coio::lock lk;
        std::vector<int> order;
        co_await lk.acquire();
        auto a = coio::create_task(take(lk, order, 0));
        auto b = coio::create_task(take(lk, order, 1));
        co_await coio::sleep(0);
        lk.release();  // hands the lock to a (a is now ready, not yet running)
        a.cancel();
        co_await b;
        CHECK(a.cancelled());
        CHECK(order == std::vector<int>{1});
        CHECK_FALSE(lk.locked());
    }());
}

TEST_CASE("lock: wait_for timeout leaves the queue intact") {
    coio::run([]() -> coio::coro<void> {
        coio::lock lk;
        std::vector<int> order;
        co_await lk.acquire();
        auto a = coio::create_task(take(lk, order, 0));
        co_await coio::sleep(0);
        CHECK_THROWS_AS(co_await coio::wait_for(lk.acquire(), 10ms), coio::timeout_error);
        CHECK(lk.locked());
        lk.release();
        co_await a;
        CHECK(order == std::vector<int>{0});
        CHECK_FALSE(lk.locked());
    }());
}

TEST_CASE("lock: scoped guard releases on scope exit and on exceptions") {
    coio::run([]() -> coio::coro<void> {
        coio::lock lk;
        {
            auto g = co_await lk.scoped();
            CHECK(g.owns_lock());
            CHECK(lk.locked());
            auto moved = std::move(g);
            CHECK_FALSE(g.owns_lock());
            CHECK(lk.locked());
        }
        CHECK_FALSE(lk.locked());
        try {
            auto g = co_await lk.scoped();
            throw std::runtime_error("boom");
        } catch (const std::runtime_error&) {
        }
        CHECK_FALSE(lk.locked());
        auto g = co_await lk.scoped();
        g.unlock();
        CHECK_FALSE(lk.locked());
    }());
}

TEST_CASE("lock: mutual exclusion under contention") {
    coio::run([]() -> coio::coro<void> {
        coio::lock lk;
        int inside = 0, max_inside = 0, total = 0;
        auto worker = [&]() -> coio::coro<void> {
            for (int i = 0; i < 100; ++i) {
                auto g = co_await lk.scoped();
                max_inside = std::max(max_inside, ++inside);
                co_await coio::sleep(0);
                --inside;
                ++total;
            }
        };
        co_await coio::gather(worker(), worker(), worker(), worker());
        CHECK(max_inside == 1);
        CHECK(total == 400);
    }());
}

TEST_CASE("lock: destroying a lock with waiters wakes them with invalid_state_error") {
    coio::run([]() -> coio::coro<void> {
        std::optional<coio::lock> lk(std::in_place);
        co_await lk->acquire();
        auto t = coio::create_task([](coio::lock& l) -> coio::coro<void> { co_await l.acquire(); }(*lk));
        co_await coio::sleep(0);
        lk.reset();
        CHECK_THROWS_AS(co_await t, coio::invalid_state_error);
    }());
}

TEST_CASE("lock: contended hand-off allocates nothing") {
    coio::run([]() -> coio::coro<void> {
        coio::lock lk;
        auto worker = [&]() -> coio::coro<void> {
            for (int i = 0; i < 1000; ++i) {
                co_await lk.acquire();
                co_await coio::sleep(0);
                lk.release();
            }
        };
        auto a = coio::create_task(worker());
        auto b = coio::create_task(worker());
        co_await coio::sleep(0);
        co_await coio::sleep(0);  // both running, the steady state reached
        g_allocs = 0;
        g_count = true;
        for (int i = 0; i < 200; ++i) co_await coio::sleep(0);
        g_count = false;
        CHECK(g_allocs == 0);
        co_await a;
        co_await b;
    }());
}
