// tests/test_thread.cpp - to_thread, thread_pool/run_in_executor, call_soon_threadsafe from
// several threads, run_coroutine_threadsafe between two loops on two threads.
// ctest-labels: thread
#include <coio/thread.hpp>

#include "support/catch.hpp"

#include <coio/event.hpp>
#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

// Runs a capturing coroutine lambda with the lambda kept alive in the coroutine's own frame
// (a temporary lambda would die before the task runs, leaving its captures dangling).
template <class F>
auto owned(F f) -> decltype(f()) {
    co_return co_await f();
}

TEST_CASE("to_thread: result - arguments - void - another thread") {
    coio::run([]() -> coio::coro<void> {
        const auto me = std::this_thread::get_id();
        auto id = co_await coio::to_thread([] { return std::this_thread::get_id(); });
        CHECK(id != me);
        int product = co_await coio::to_thread([](int a, int b) { return a * b; }, 6, 7);
        CHECK(product == 42);
        auto owned = std::make_unique<int>(5);
        int plus_one = co_await coio::to_thread([](std::unique_ptr<int> p) { return *p + 1; }, std::move(owned));
        CHECK(plus_one == 6);
        int side = 0;
        co_await coio::to_thread([&side] { side = 1; });
        CHECK(side == 1);
        auto [a, b] = co_await coio::gather(coio::to_thread([] { return 1; }), coio::to_thread([] { return std::string("x"); }));
        CHECK(a == 1);
        CHECK(b == "x");
    }());
}

TEST_CASE("to_thread: exceptions cross back to the loop thread") {
    coio::run([]() -> coio::coro<void> {
        try {
            co_await coio::to_thread([]() -> int { throw std::out_of_range("far"); });
            FAIL("no exception");
        } catch (const std::out_of_range& e) {
            CHECK(std::string(e.what()) == "far");
        }
    }());
}

TEST_CASE("to_thread: 10000 calls") {
    const long total = coio::run([]() -> coio::coro<long> {
        auto batch = [](int base) -> coio::coro<long> {
            long sum = 0;
            for (int i = 0; i < 100; ++i) sum += co_await coio::to_thread([](int v) { return long(v); }, base + i);
            co_return sum;
        };
        std::vector<coio::coro<long>> batches;
        for (int b = 0; b < 100; ++b) batches.push_back(batch(b * 100));
        long sum = 0;
        for (long s : co_await coio::gather(std::move(batches))) sum += s;
        co_return sum;
    }());
    CHECK(total == 9999L * 10000 / 2);
}

TEST_CASE("to_thread: cancelling the awaiting task does not kill the thread - result dropped") {
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    coio::run([&]() -> coio::coro<void> {
        std::promise<void> gate;
        auto gate_f = gate.get_future().share();
        // Named, not a temporary inside the co_await expression: g++ 12 destroys temporaries
        // of a co_await full-expression twice when the await throws (here: cancelled_error).
        auto blocking = [gate_f, &started, &finished] {
            started = true;
            gate_f.wait();
            finished = true;
            return std::string(1000, 'x');  // dropped on arrival
        };
        auto t = coio::create_task(owned([&]() -> coio::coro<std::string> {
            co_return co_await coio::to_thread(blocking);
        }));
        // Cancel only once the call runs: a call still queued is withdrawn instead (and would
        // never set `finished`). On a loaded machine the worker may take a while to start.
        const auto give_up = coio::clock::now() + 10s;
        while (!started && coio::clock::now() < give_up) co_await coio::sleep(1ms);
        REQUIRE(started);
        t.cancel();
        CHECK_THROWS_AS(co_await t, coio::cancelled_error);  // returns at once
        CHECK_FALSE(finished);
        gate.set_value();
        while (!finished) co_await coio::sleep(1ms);
        co_await coio::sleep(5ms);  // the dropped completion arrives: must touch nothing
    }());
    CHECK(finished);
}

TEST_CASE("to_thread: wait_for timeout - loop shutdown waits for running calls") {
    std::atomic<int> ran{0};
    coio::run([&]() -> coio::coro<void> {
        // The call must be running when the timeout hits (a queued call that is cancelled
        // never runs, by design): on a loaded machine the pool thread may start late.
        std::atomic<bool> first_started{false};
        auto first = coio::create_task(coio::to_thread([&] {
            first_started = true;
            std::this_thread::sleep_for(50ms);
            ++ran;
        }));
        for (int i = 0; i < 5000 && !first_started; ++i) co_await coio::sleep(1ms);
        REQUIRE(first_started);
        CHECK_THROWS_AS(co_await coio::wait_for(first, 5ms), coio::timeout_error);
        // A task still inside to_thread when main returns: cancelled by the shutdown, and the
        // loop's close waits for the thread before tearing down.
        // Wait (bounded) until the call is running: a call still queued when its task is
        // cancelled never runs, by design, and that is not what this test is about.
        std::atomic<bool> started{false};
        (void)coio::create_task(coio::to_thread([&] {
            started = true;
            std::this_thread::sleep_for(20ms);
            ++ran;
        }));
        for (int i = 0; i < 5000 && !started; ++i) co_await coio::sleep(1ms);
        REQUIRE(started);
    }());
    CHECK(ran == 2);
}

TEST_CASE("thread_pool: run_in_executor - default executor size - shutdown") {
    coio::run([]() -> coio::coro<void> {
        coio::thread_pool pool(2);
        CHECK(pool.max_threads() == 2);
        std::atomic<int> concurrent{0}, peak{0};
        auto job = [&] {
            int now = ++concurrent;
            int p = peak.load();
            while (now > p && !peak.compare_exchange_weak(p, now)) {
            }
            std::this_thread::sleep_for(5ms);
            --concurrent;
            return 1;
        };
        std::vector<coio::coro<int>> calls;
        for (int i = 0; i < 6; ++i) calls.push_back(coio::run_in_executor(pool, job));
        auto results = co_await coio::gather(std::move(calls));
        CHECK(results.size() == 6);
        CHECK(peak <= 2);
        CHECK(pool.threads() <= 2);
        int three = co_await coio::run_in_executor(nullptr, [] { return 3; });
        CHECK(three == 3);
        CHECK(coio::default_executor().max_threads() == 3);
        pool.shutdown();
        CHECK_THROWS_AS(pool.submit([] {}), coio::invalid_state_error);
        CHECK_THROWS_AS(co_await coio::run_in_executor(pool, [] { return 1; }), coio::invalid_state_error);
    }(), {.executor_threads = 3});
}

TEST_CASE("call_soon_threadsafe: 4 threads at once - nothing lost") {
    constexpr int per_thread = 10000;
    coio::event_loop loop;
    long count = 0;  // touched only on the loop thread
    coio::event* all_arrived = nullptr;
    std::vector<std::thread> threads;
    loop.run_until_complete([&]() -> coio::coro<void> {
        coio::event ev;
        all_arrived = &ev;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < per_thread; ++i)
                    loop.call_soon_threadsafe([&] {
                        if (++count == 4L * per_thread) all_arrived->set();
                    });
            });
        co_await coio::wait_for(ev.wait(), 60s);
    }());
    for (auto& t : threads) t.join();
    CHECK(count == 4L * per_thread);
}

namespace {
coio::coro<int> remote_square(int v, std::thread::id expected) {
    co_await coio::sleep(0);
    CHECK(std::this_thread::get_id() == expected);
    co_return v * v;
}
coio::coro<int> remote_fail() {
    co_await coio::sleep(0);
    throw std::runtime_error("remote");
}
} // namespace

TEST_CASE("run_coroutine_threadsafe: between two loops on two threads") {
    // Loop B runs on its own thread until told to stop.
    coio::event_loop* b_loop = nullptr;
    std::promise<void> b_ready;
    std::promise<void> b_stop_posted;
    std::thread::id b_id;
    coio::event* b_stop = nullptr;
    std::thread b([&] {
        coio::event_loop loop;
        b_loop = &loop;
        b_id = std::this_thread::get_id();
        loop.run_until_complete([&]() -> coio::coro<void> {
            coio::event stop;
            b_stop = &stop;
            b_ready.set_value();
            co_await stop.wait();
        }());
    });
    b_ready.get_future().wait();

    // Loop A (this thread) submits to B and awaits the std::futures without blocking itself.
    coio::run([&]() -> coio::coro<void> {
        std::vector<std::future<int>> fs;
        for (int i = 0; i < 50; ++i) fs.push_back(coio::run_coroutine_threadsafe(remote_square(i, b_id), *b_loop));
        int sum = 0;
        for (auto& f : fs) sum += co_await coio::to_thread([&f] { return f.get(); });
        int expected = 0;
        for (int i = 0; i < 50; ++i) expected += i * i;
        CHECK(sum == expected);

        auto bad = coio::run_coroutine_threadsafe(remote_fail(), *b_loop);
        CHECK_THROWS_AS(co_await coio::to_thread([&bad] { return bad.get(); }), std::runtime_error);
    }());

    b_loop->call_soon_threadsafe([&] { b_stop->set(); });
    b.join();
}

TEST_CASE("run_coroutine_threadsafe: from a plain thread - with a void coroutine") {
    coio::event_loop loop;
    std::atomic<int> hits{0};
    std::thread caller;
    loop.run_until_complete([&]() -> coio::coro<void> {
        coio::event done;
        caller = std::thread([&] {
            auto f = coio::run_coroutine_threadsafe(owned([&]() -> coio::coro<void> {
                ++hits;
                co_return;
            }), loop);
            f.get();
            loop.call_soon_threadsafe([&] { done.set(); });
        });
        co_await coio::wait_for(done.wait(), 60s);
    }());
    caller.join();
    CHECK(hits == 1);
}
