// benchmarks/sync/bench_sync.cpp - coio's synchronization primitives and threads, measured.
//
//   BM_queue_pingpong       two tasks bounce an int through two coio::queue<int>: every item
//                           is a put, a get and a task switch (ns_per_item counter)
//   BM_queue_nowait         put_nowait + get_nowait on one queue: the data-structure floor
//   BM_lock_handoff/4       4 tasks contend for one coio::lock, each holding it across a
//                           sleep(0): every acquisition is a FIFO hand-off (ns_per_acquire)
//   BM_to_thread_roundtrip  co_await coio::to_thread(trivial function), one at a time
//                           (ns_per_call): submit, worker wake-up, eventfd back to the loop
//   BM_loop_iteration       co_await sleep(0): one loop iteration, the cost of any task switch
//
// The benchmark's `for (auto _ : state)` loop runs inside a coroutine on the event loop, so
// each iteration is exactly the measured operation. Compare with ref_asyncio_sync.py (run.sh).
#include <coio/lock.hpp>
#include <coio/queue.hpp>
#include <coio/loop.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/thread.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <vector>

namespace {

// Counter showing nanoseconds (of wall-clock time: every benchmark here uses UseRealTime) per unit when `units_per_iteration` units happen per iteration.
benchmark::Counter ns_per(double units_per_iteration) {
    return benchmark::Counter(units_per_iteration * 1e-9,
                              benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

coio::coro<void> echo(coio::queue<int>& in, coio::queue<int>& out) {
    for (;;) {
        int v = co_await in.get();
        if (v < 0) co_return;
        co_await out.put(v);
    }
}

coio::coro<void> pingpong(benchmark::State& state) {
    coio::queue<int> ping, pong;
    auto peer = coio::create_task(echo(ping, pong));
    int v = 0;
    for (auto _ : state) {
        co_await ping.put(v);
        v = co_await pong.get();
        benchmark::DoNotOptimize(v);
        ++v;
    }
    co_await ping.put(-1);
    co_await peer;
    state.counters["ns_per_item"] = ns_per(2);  // two items per round trip
}

void BM_queue_pingpong(benchmark::State& state) {
    coio::event_loop loop;
    loop.run_until_complete(pingpong(state));
}
BENCHMARK(BM_queue_pingpong)->UseRealTime();

coio::coro<void> nowait(benchmark::State& state) {
    coio::queue<int> q;
    int v = 0;
    for (auto _ : state) {
        q.put_nowait(v);
        v = q.get_nowait() + 1;
        benchmark::DoNotOptimize(v);
    }
    co_return;
}

void BM_queue_nowait(benchmark::State& state) {
    coio::event_loop loop;
    loop.run_until_complete(nowait(state));
}
BENCHMARK(BM_queue_nowait)->UseRealTime();

coio::coro<void> contender(coio::lock& lk, bool& stop, long& acquisitions) {
    while (!stop) {
        co_await lk.acquire();
        ++acquisitions;
        co_await coio::sleep(0);
        lk.release();
    }
}

coio::coro<void> handoff(benchmark::State& state) {
    coio::lock lk;
    bool stop = false;
    long acquisitions = 0;
    std::vector<coio::task<void>> others;
    for (long i = 1; i < state.range(0); ++i) others.push_back(coio::create_task(contender(lk, stop, acquisitions)));
    co_await coio::sleep(0);
    long before = 0;
    bool first = true;
    auto start = std::chrono::steady_clock::now();
    for (auto _ : state) {
        if (first) {  // the timed region starts with the first iteration
            first = false;
            before = acquisitions;
            start = std::chrono::steady_clock::now();
        }
        co_await lk.acquire();
        ++acquisitions;
        co_await coio::sleep(0);
        lk.release();
    }
    auto elapsed = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    long counted = acquisitions - before;
    stop = true;
    for (auto& t : others) co_await t;
    state.counters["ns_per_acquire"] = counted > 0 ? elapsed / static_cast<double>(counted) : 0.0;
    state.counters["acquires_per_iter"] = static_cast<double>(counted) / static_cast<double>(state.iterations());
}

void BM_lock_handoff(benchmark::State& state) {
    coio::event_loop loop;
    loop.run_until_complete(handoff(state));
}
BENCHMARK(BM_lock_handoff)->Arg(4)->UseRealTime();

coio::coro<void> roundtrip(benchmark::State& state) {
    for (auto _ : state) {
        int v = co_await coio::to_thread([] { return 1; });
        benchmark::DoNotOptimize(v);
    }
    state.counters["ns_per_call"] = ns_per(1);
}

void BM_to_thread_roundtrip(benchmark::State& state) {
    coio::event_loop loop;
    loop.run_until_complete(roundtrip(state));
}
BENCHMARK(BM_to_thread_roundtrip)->UseRealTime();

coio::coro<void> yields(benchmark::State& state) {
    for (auto _ : state) co_await coio::sleep(0);
    state.counters["ns_per_iteration"] = ns_per(1);
}

// The floor under every hand-off above: one task switch = one loop iteration (sleep(0)).
void BM_loop_iteration(benchmark::State& state) {
    coio::event_loop loop;
    loop.run_until_complete(yields(state));
}
BENCHMARK(BM_loop_iteration)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
