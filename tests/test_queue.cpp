// tests/test_queue.cpp - coio::queue, lifo_queue, priority_queue: order, bounds, *_nowait
// errors, move-only items, cancellation loses no item, task_done/join, shutdown (3.13),
// timeouts, no allocation per hand-off.
#include <coio/queue.hpp>

#include "support/catch.hpp"
#include "support/co_check.hpp"
#include "support/count_allocations.hpp"

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

// Runs a capturing coroutine lambda with the lambda kept alive in the coroutine's own frame
// (a temporary lambda would die before the task runs, leaving its captures dangling).
template <class F>
auto owned(F f) -> decltype(f()) {
    co_return co_await f();
}

using coio_test::g_allocs;
using coio_test::g_count;

namespace {
// Counts live instances: no item is leaked or destroyed twice.
struct counted {
    static inline int live = 0;
    int v;
    explicit counted(int x) : v(x) { ++live; }
    counted(counted&& o) noexcept : v(o.v) { ++live; }
    counted(const counted&) = delete;
    counted& operator=(counted&&) = delete;
    ~counted() { --live; }
};
using item = std::unique_ptr<counted>;
item make(int v) { return std::make_unique<counted>(v); }
} // namespace

TEST_CASE("queue: FIFO - LIFO and priority order - sizes") {
    coio::run([]() -> coio::coro<void> {
        coio::queue<int> q;
        coio::lifo_queue<int> s;
        coio::priority_queue<int> p;
        coio::priority_queue<int, std::greater<int>> pmax;
        for (int v : {3, 1, 2}) {
            co_await q.put(v);
            co_await s.put(v);
            co_await p.put(v);
            pmax.put_nowait(v);
        }
        CHECK(q.qsize() == 3);
        CHECK(q.maxsize() == 0);
        CHECK_FALSE(q.full());
        std::vector<int> a, b, c, d;
        for (int i = 0; i < 3; ++i) {
            a.push_back(co_await q.get());
            b.push_back(co_await s.get());
            c.push_back(co_await p.get());
            d.push_back(pmax.get_nowait());
        }
        CHECK(a == std::vector<int>{3, 1, 2});
        CHECK(b == std::vector<int>{2, 1, 3});
        CHECK(c == std::vector<int>{1, 2, 3});  // asyncio.PriorityQueue: smallest first
        CHECK(d == std::vector<int>{3, 2, 1});
        CHECK(q.empty());
    }());
}

TEST_CASE("queue: put_nowait/get_nowait raise queue_full/queue_empty") {
    coio::run([]() -> coio::coro<void> {
        coio::queue<std::string> q(2);
        q.put_nowait("a");
        std::string b = "b";
        q.put_nowait(b);
        CHECK(q.full());
        std::string c = "c";
        CHECK_THROWS_AS(q.put_nowait(std::move(c)), coio::queue_full);
        CHECK(c == "c");  // not moved from on failure
        CHECK(q.get_nowait() == "a");
        CHECK(q.get_nowait() == "b");
        CHECK_THROWS_AS(q.get_nowait(), coio::queue_empty);
        co_return;
    }());
}

TEST_CASE("queue: bounded put waits - getters and putters are served FIFO") {
    coio::run([]() -> coio::coro<void> {
        coio::queue<int> q(1);
        co_await q.put(0);
        std::vector<coio::task<void>> putters;
        for (int i = 1; i <= 3; ++i)
            putters.push_back(coio::create_task([](coio::queue<int>& qq, int v) -> coio::coro<void> { co_await qq.put(v); }(q, i)));
        co_await coio::sleep(0);
        CHECK(q.qsize() == 1);
        std::vector<int> got;
        for (int i = 0; i < 4; ++i) got.push_back(co_await q.get());
        CHECK(got == std::vector<int>{0, 1, 2, 3});
        co_await coio::gather(std::move(putters));

        std::vector<int> order;
        auto getter = [&](int id) -> coio::coro<void> {
            int v = co_await q.get();
            order.push_back(id * 10 + v);
        };
        auto g0 = coio::create_task(getter(0));
        auto g1 = coio::create_task(getter(1));
        co_await coio::sleep(0);
        co_await q.put(5);
        co_await q.put(6);
        co_await g0;
        co_await g1;
        CHECK(order == std::vector<int>{5, 16});
    }());
}

TEST_CASE("queue: move-only items - nothing leaked") {
    coio::run([]() -> coio::coro<void> {
        {
            coio::queue<item> q(2);
            co_await q.put(make(1));
            item x = make(2);
            co_await q.put(std::move(x));
            CHECK(x == nullptr);
            auto y = make(3);
            CHECK_THROWS_AS(q.put_nowait(std::move(y)), coio::queue_full);
            CHECK(y != nullptr);  // a failed put leaves the item with the caller
            item a = co_await q.get();
            CHECK(a->v == 1);
            q.put_nowait(std::move(y));
            item second = co_await q.get();
            CHECK(second->v == 2);
            CHECK(counted::live == 3);  // a, second, and 3 still queued
        }
        CHECK(counted::live == 0);  // queue destroyed with an item inside: freed once
    }());
}

TEST_CASE("queue: cancelling a blocked get loses no item") {
    coio::run([]() -> coio::coro<void> {
        coio::queue<item> q;
        std::vector<int> got;
        auto getter = [&]() -> coio::coro<void> { got.push_back((co_await q.get())->v); };
        auto a = coio::create_task(getter());
        auto b = coio::create_task(getter());
        co_await coio::sleep(0);
        a.cancel();
        co_await coio::sleep(0);
        CHECK(a.cancelled());
        co_await q.put(make(7));  // goes to b, not to the cancelled a
        co_await b;
        CHECK(got == std::vector<int>{7});
        CHECK(q.empty());
        // Timeout variant.
        CHECK_THROWS_AS(co_await coio::wait_for(q.get(), 5ms), coio::timeout_error);
        q.put_nowait(make(8));
        item eight = co_await q.get();
        CHECK(eight->v == 8);
    }());
    CHECK(counted::live == 0);
}

TEST_CASE("queue: handed an item - then cancelled before running: the item is returned") {
    coio::run([]() -> coio::coro<void> {
        coio::queue<item> q(1);
        int got = 0;
        auto a = coio::create_task(owned([&]() -> coio::coro<void> {
            item it = co_await q.get();  // handed 9, but cancelled before it ran: throws
            got = it->v;
        }));
        co_await coio::sleep(0);
        q.put_nowait(make(9));  // handed to a
        CHECK(q.full());        // the hand-off holds the only slot until a runs
        CHECK_THROWS_AS(q.put_nowait(make(0)), coio::queue_full);
        a.cancel();
        CHECK_THROWS_AS(co_await a, coio::cancelled_error);
        CHECK(got == 0);
        // The item went back: it is the next one out, and the bound still holds.
        CHECK(q.qsize() == 1);
        CHECK(q.full());
        CHECK(q.get_nowait()->v == 9);

        // With another getter waiting, the returned item goes straight to it, in order.
        auto b = coio::create_task(owned([&]() -> coio::coro<int> { co_return (co_await q.get())->v; }));
        auto c = coio::create_task(owned([&]() -> coio::coro<int> { co_return (co_await q.get())->v; }));
        co_await coio::sleep(0);
        q.put_nowait(make(5));  // handed to b
        b.cancel();
        CO_CHECK(co_await c == 5);
        CHECK_THROWS_AS(co_await b, coio::cancelled_error);
        CHECK(q.empty());
    }());
    CHECK(counted::live == 0);
}

TEST_CASE("queue: a returned item keeps its place in LIFO and priority queues") {
    coio::run([]() -> coio::coro<void> {
        coio::priority_queue<int> pq;
        auto a = coio::create_task(owned([&]() -> coio::coro<int> { co_return co_await pq.get(); }));
        co_await coio::sleep(0);
        pq.put_nowait(3);  // handed to a
        pq.put_nowait(7);
        a.cancel();
        CHECK_THROWS_AS(co_await a, coio::cancelled_error);
        CHECK(pq.get_nowait() == 3);
        CHECK(pq.get_nowait() == 7);

        coio::lifo_queue<int> lq;
        auto b = coio::create_task(owned([&]() -> coio::coro<int> { co_return co_await lq.get(); }));
        co_await coio::sleep(0);
        lq.put_nowait(1);  // handed to b
        b.cancel();
        CHECK_THROWS_AS(co_await b, coio::cancelled_error);
        lq.put_nowait(2);
        CHECK(lq.get_nowait() == 2);
        CHECK(lq.get_nowait() == 1);
    }());
}

TEST_CASE("queue: cancelling a blocked put leaves the item with the caller") {
    coio::run([]() -> coio::coro<void> {
        coio::queue<item> q(1);
        q.put_nowait(make(1));
        item mine = make(2);
        CHECK_THROWS_AS(co_await coio::wait_for(q.put(std::move(mine)), 5ms), coio::timeout_error);
        REQUIRE(mine != nullptr);
        CHECK(mine->v == 2);
        CHECK(q.qsize() == 1);
        // Served (a get freed its slot), then cancelled before running: the put did not
        // happen, the caller keeps the item, and the slot is free for a retry.
        auto p = coio::create_task(owned([&]() -> coio::coro<void> { co_await q.put(std::move(mine)); }));
        co_await coio::sleep(0);
        item one = co_await q.get();  // promises the freed slot to p
        CHECK(one->v == 1);
        CHECK(q.full());              // promised
        p.cancel();
        CHECK_THROWS_AS(co_await p, coio::cancelled_error);
        REQUIRE(mine != nullptr);
        CHECK(mine->v == 2);
        CHECK(q.empty());
        CHECK_FALSE(q.full());
        co_await coio::wait_for(q.put(std::move(mine)), 1s);  // the retry does not block
        CHECK(mine == nullptr);
        item two = co_await q.get();
        CHECK(two->v == 2);

        // With a second putter waiting, the cancelled putter's slot passes to it.
        q.put_nowait(make(3));
        item x = make(4), y = make(5);
        auto px = coio::create_task(owned([&]() -> coio::coro<void> { co_await q.put(std::move(x)); }));
        auto py = coio::create_task(owned([&]() -> coio::coro<void> { co_await q.put(std::move(y)); }));
        co_await coio::sleep(0);
        CHECK(q.get_nowait()->v == 3);  // slot promised to px
        px.cancel();
        CHECK_THROWS_AS(co_await px, coio::cancelled_error);
        co_await py;
        CHECK(x != nullptr);
        CHECK(y == nullptr);
        CHECK(q.get_nowait()->v == 5);
    }());
    CHECK(counted::live == 0);
}

TEST_CASE("queue: task_done and join") {
    coio::run([]() -> coio::coro<void> {
        coio::queue<int> q;
        CHECK_THROWS_AS(q.task_done(), coio::invalid_state_error);
        co_await q.join();  // nothing unfinished
        for (int i = 0; i < 3; ++i) q.put_nowait(i);
        int processed = 0;
        auto worker = coio::create_task(owned([&]() -> coio::coro<void> {
            for (int i = 0; i < 3; ++i) {
                (void)co_await q.get();
                co_await coio::sleep(0);
                ++processed;
                q.task_done();
            }
        }));
        co_await q.join();
        CHECK(processed == 3);
        co_await worker;
        CHECK_THROWS_AS(co_await coio::wait_for([&]() -> coio::coro<void> {
            q.put_nowait(1);
            co_await q.join();
        }(), 5ms), coio::timeout_error);
    }());
}

TEST_CASE("queue: shutdown stops putters at once and getters once drained") {
    coio::run([]() -> coio::coro<void> {
        coio::queue<int> q(2);
        q.put_nowait(1);
        q.put_nowait(2);
        auto putter = coio::create_task(owned([&]() -> coio::coro<void> { co_await q.put(3); }));
        co_await coio::sleep(0);
        q.shutdown();
        CHECK(q.is_shutdown());
        CHECK_THROWS_AS(co_await putter, coio::queue_shutdown);
        CHECK_THROWS_AS(q.put_nowait(4), coio::queue_shutdown);
        CHECK_THROWS_AS(co_await q.put(4), coio::queue_shutdown);
        int first = co_await q.get();
        CHECK(first == 1);
        CHECK(q.get_nowait() == 2);
        CHECK_THROWS_AS(co_await q.get(), coio::queue_shutdown);
        CHECK_THROWS_AS(q.get_nowait(), coio::queue_shutdown);

        coio::queue<int> r;
        auto getter = coio::create_task(owned([&]() -> coio::coro<void> { (void)co_await r.get(); }));
        co_await coio::sleep(0);
        r.shutdown();
        CHECK_THROWS_AS(co_await getter, coio::queue_shutdown);
    }());
}

TEST_CASE("queue: shutdown(immediate) drops items and releases join") {
    coio::run([]() -> coio::coro<void> {
        coio::queue<item> q;
        for (int i = 0; i < 3; ++i) q.put_nowait(make(i));
        auto joiner = coio::create_task(owned([&]() -> coio::coro<void> { co_await q.join(); }));
        co_await coio::sleep(0);
        CHECK_FALSE(joiner.done());
        q.shutdown(true);
        CHECK(counted::live == 0);
        CHECK(q.empty());
        co_await joiner;
        CHECK_THROWS_AS(co_await q.get(), coio::queue_shutdown);
    }());
}

TEST_CASE("queue: ping-pong hand-off allocates nothing") {
    coio::run([]() -> coio::coro<void> {
        coio::queue<int> ping, pong;
        auto echo = coio::create_task(owned([&]() -> coio::coro<void> {
            for (;;) {
                int v = co_await ping.get();
                if (v < 0) co_return;
                co_await pong.put(v);
            }
        }));
        for (int i = 0; i < 10; ++i) {  // warm up (deque blocks allocated)
            co_await ping.put(i);
            int back = co_await pong.get();
            CHECK(back == i);
        }
        g_allocs = 0;
        g_count = true;
        long sum = 0;
        for (int i = 0; i < 200; ++i) {
            co_await ping.put(i);
            sum += co_await pong.get();
        }
        g_count = false;
        CHECK(g_allocs == 0);
        CHECK(sum == 199 * 200 / 2);
        co_await ping.put(-1);
        co_await echo;
    }());
}
