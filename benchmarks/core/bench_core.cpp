// benchmarks/core/bench_core.cpp - coio's core runtime costs, with Google Benchmark.
//
//   BM_spawn_gather/N     create_task + gather of N no-op coroutines: ns per task (wall
//                         clock / N) and peak bytes per pending task (first run, RSS growth)
//   BM_gather_coros/N     gather of N coroutines (gather creates the tasks)
//   BM_await_ready_coro/N co_await of a coroutine that completes at once, N per iteration:
//                         ns per await = time / N
//   BM_sleep0_round_trip  sleep(0): one full loop iteration (one io_uring_enter)
//   BM_timers/N           N concurrent sleeps of 0-1 ms: ns per timer
//   BM_async_tree/eager:E a tree of tasks (depth 5, 6 children per node: 9,331 tasks) where
//                         each node gathers its children and one leaf in ten waits (sleep(0)),
//                         the others finish at once; E=1 with loop_options::eager_tasks
//   BM_context_var_get    context_var<int>::get() in a task whose context holds 4 variables
// Compare with benchmarks/core/run.sh, which runs the references in the same run.
// Run: build/benchmarks/core/bench_core [--benchmark_filter=...]
#include <coio/coio.hpp>

#include "ref_common.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <vector>

namespace {

coio::coro<void> noop() { co_return; }
coio::coro<int> ready(int v) { co_return v; }

void BM_spawn_gather(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    // ru_maxrss only rises: the first run (the process's biggest allocation so far) measures,
    // and every later report repeats that figure.
    static double bytes = -1;
    for (auto _ : state) {
        const auto baseline = coio_bench::current_rss_bytes();
        coio::run([](std::size_t n) -> coio::coro<void> {
            std::vector<coio::task<void>> tasks;
            tasks.reserve(n);
            for (std::size_t i = 0; i < n; ++i) tasks.push_back(coio::create_task(noop()));
            co_await coio::gather(tasks);
        }(n));
        if (bytes < 0) bytes = coio_bench::bytes_per_task(baseline, n);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
    if (bytes >= 0) state.counters["bytes_per_task"] = bytes;
}
BENCHMARK(BM_spawn_gather)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same with gather creating the tasks from coroutines (asyncio: gather(*[noop() ...])).
void BM_gather_coros(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    for (auto _ : state) {
        coio::run([](std::size_t n) -> coio::coro<void> {
            std::vector<coio::coro<void>> coros;
            coros.reserve(n);
            for (std::size_t i = 0; i < n; ++i) coros.push_back(noop());
            co_await coio::gather(std::move(coros));
        }(n));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_gather_coros)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->UseRealTime();

// N awaits per iteration, in a plain loop like ref_bare_coroutine's bare_await_ready, so the
// harness's own per-iteration work is not charged to the await: ns per await = time / N.
void BM_await_ready_coro(benchmark::State& state) {
    const auto n = static_cast<int>(state.range(0));
    coio::run([](benchmark::State& state, int n) -> coio::coro<void> {
        int sum = 0;
        for (auto _ : state)
            for (int i = 0; i < n; ++i) sum += co_await ready(1);
        benchmark::DoNotOptimize(sum);
    }(state, n));
    state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_await_ready_coro)->Arg(1000)->UseRealTime();

void BM_sleep0_round_trip(benchmark::State& state) {
    coio::run([](benchmark::State& state) -> coio::coro<void> {
        for (auto _ : state) co_await coio::sleep(0);
    }(state));
}
BENCHMARK(BM_sleep0_round_trip);

void BM_timers(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto delays = coio_bench::timer_delays_ns(n);
    for (auto _ : state) {
        coio::run([](const std::vector<std::int64_t>& delays) -> coio::coro<void> {
            std::vector<coio::coro<void>> sleeps;
            sleeps.reserve(delays.size());
            for (auto d : delays)
                sleeps.push_back([](std::int64_t d) -> coio::coro<void> {
                    co_await coio::sleep(std::chrono::nanoseconds(d / 100));  // 0-1 ms
                }(d));
            co_await coio::gather(std::move(sleeps));
        }(delays));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_timers)->Arg(10'000)->Unit(benchmark::kMillisecond)->UseRealTime();

// pyperformance's async_tree shape: eager tasks pay off where most tasks finish without
// suspending (no trip through the ready queue, and a gather of done tasks needs no wait).
coio::coro<void> tree_node(int depth, int branches, std::uint32_t& leaves) {
    if (depth == 0) {
        if (++leaves % 10 == 0) co_await coio::sleep(0);  // one leaf in ten waits (I/O stand-in)
        co_return;
    }
    std::vector<coio::task<void>> children;
    children.reserve(static_cast<std::size_t>(branches));
    for (int i = 0; i < branches; ++i) children.push_back(coio::create_task(tree_node(depth - 1, branches, leaves)));
    co_await coio::gather(children);
}

void BM_async_tree(benchmark::State& state) {
    constexpr int depth = 5, branches = 6;
    std::int64_t tasks = 0;
    for (int d = 1, width = branches; d <= depth; ++d, width *= branches) tasks += width;
    coio::run_options options;
    options.eager_tasks = state.range(0) != 0;
    for (auto _ : state) {
        std::uint32_t leaves = 0;
        coio::run(tree_node(depth, branches, leaves), options);
        benchmark::DoNotOptimize(leaves);
    }
    state.SetItemsProcessed(state.iterations() * tasks);
}
BENCHMARK(BM_async_tree)->ArgName("eager")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

coio::context_var<int> bench_vars[4] = {coio::context_var<int>("a"), coio::context_var<int>("b"),
                                        coio::context_var<int>("c"), coio::context_var<int>("d")};

void BM_context_var_get(benchmark::State& state) {
    coio::run([](benchmark::State& state) -> coio::coro<void> {
        std::vector<coio::context_var<int>::token> tokens;
        for (int i = 0; i < 4; ++i) tokens.push_back(bench_vars[i].set(i));
        int sum = 0;
        for (auto _ : state) {
            sum += bench_vars[3].get();  // the last one: the longest lookup
            benchmark::DoNotOptimize(sum);
        }
        for (int i = 3; i >= 0; --i) bench_vars[i].reset(tokens[static_cast<std::size_t>(i)]);
        co_return;
    }(state));
}
BENCHMARK(BM_context_var_get);

} // namespace

BENCHMARK_MAIN();
