// Reference: standalone Asio (Debian libasio-dev) doing coio's two core workloads, so coio's
// figures can be compared with the C++ library people would otherwise reach for.
//
// Usage: ref_asio [N=1000000] [rounds=5] [timers=100000]
//
// Results:
//   asio_spawn            co_spawn N no-op awaitable<void> coroutines on one io_context (all
//                         spawned before run(), as a gather creates all its tasks first), then
//                         run() until every completion handler has counted in. ns_per_task is
//                         spawn + run time / N; bytes_per_task is measured in the first round:
//                         (ru_maxrss after run - current RSS before spawning) / N. Each
//                         round starts from a trimmed heap (see release_free_memory()).
//   asio_timers           co_spawn `timers` coroutines that each do the asyncio-style sleep:
//                         a steady_timer with expires_after(d), co_await async_wait.
//   asio_timers_handler   the same sleeps without coroutines: steady_timers armed before run()
//                         with plain completion handlers (Asio's cheapest form).
// Timer lateness is measured against t0 + d, t0 read before the first sleep is created, and
// against each sleep's own start + d (precision_*); see ref_common.hpp.
#include "ref_common.hpp"

#include <chrono>
#include <cstdio>
#include <deque>
#include <exception>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

namespace {

asio::awaitable<void> no_op() {
    co_return;
}

/// The asyncio-style sleep: the deadline is computed when the coroutine reaches the sleep.
/// Records when the sleep was requested and when the coroutine continued after it.
asio::awaitable<void> sleeper(std::int64_t delay_ns, std::int64_t* requested, std::int64_t* fire) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    *requested = coio_bench::now_ns();
    timer.expires_after(std::chrono::nanoseconds(delay_ns));
    co_await timer.async_wait(asio::use_awaitable);
    *fire = coio_bench::now_ns();
}

/// Spawns n no-op coroutines and runs them to completion; returns ns per task.
/// If bytes is not null (first round only: ru_maxrss never goes down), stores the peak bytes
/// per task there.
double spawn_round(std::size_t n, double* bytes) {
    coio_bench::release_free_memory();  // comparable rounds: see release_free_memory()
    const std::int64_t baseline_rss = coio_bench::current_rss_bytes();
    // Concurrency hint 1: one thread runs this io_context, Asio may skip internal locking.
    asio::io_context ctx{1};
    std::size_t completed = 0;
    const std::int64_t t0 = coio_bench::now_ns();
    for (std::size_t i = 0; i < n; ++i) {
        asio::co_spawn(ctx, no_op(), [&completed](const std::exception_ptr& error) {
            if (error) std::rethrow_exception(error);
            ++completed;
        });
    }
    ctx.run();
    const std::int64_t t1 = coio_bench::now_ns();
    if (completed != n) {
        std::fprintf(stderr, "ref_asio: only %zu of %zu coroutines completed\n", completed, n);
        std::exit(1);
    }
    if (bytes != nullptr) *bytes = coio_bench::bytes_per_task(baseline_rss, n);
    return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t n = coio_bench::count_arg(argc, argv, 1, 1'000'000);
    const std::size_t rounds = coio_bench::count_arg(argc, argv, 2, 5);
    const std::size_t timer_count = coio_bench::count_arg(argc, argv, 3, coio_bench::default_timer_count);
    int status = 0;

    // Spawn first: the memory figure relies on this being the process's first big workload.
    {
        double bytes = 0;
        std::vector<double> ns;
        ns.push_back(spawn_round(n, &bytes));
        for (std::size_t round = 1; round < rounds; ++round) ns.push_back(spawn_round(n, nullptr));
        coio_bench::print_spawn_result("asio_spawn", n, ns, bytes, "",
                                       "asio co_spawn(no-op awaitable<void>) + io_context::run");
    }

    const std::vector<std::int64_t> delays = coio_bench::timer_delays_ns(timer_count);

    // Coroutine sleepers, as coio and asyncio programs write them.
    {
        asio::io_context ctx{1};
        std::vector<std::int64_t> requested(timer_count, 0);
        std::vector<std::int64_t> fires(timer_count, 0);
        const std::int64_t t0 = coio_bench::now_ns();
        for (std::size_t i = 0; i < timer_count; ++i) {
            asio::co_spawn(ctx, sleeper(delays[i], &requested[i], &fires[i]),
                           [](const std::exception_ptr& error) {
                               if (error) std::rethrow_exception(error);
                           });
        }
        // The coroutines reach their sleep only inside run(), as coio tasks and asyncio tasks do.
        ctx.run();
        const auto summary = coio_bench::print_timer_result("asio_timers", t0, delays, requested, fires, "",
                                                            "asio co_spawn + steady_timer co_await");
        if (summary.missed != 0) status = 1;  // early wake-ups are Asio's to report, not a failure
    }

    // Plain handlers: every timer armed before run().
    {
        asio::io_context ctx{1};
        std::vector<std::int64_t> requested(timer_count, 0);
        std::vector<std::int64_t> fires(timer_count, 0);
        std::deque<asio::steady_timer> timers;
        const std::int64_t t0 = coio_bench::now_ns();
        for (std::size_t i = 0; i < timer_count; ++i) {
            asio::steady_timer& timer = timers.emplace_back(ctx);
            requested[i] = coio_bench::now_ns();
            timer.expires_after(std::chrono::nanoseconds(delays[i]));
            timer.async_wait([fire = &fires[i]](const std::error_code& error) {
                if (!error) *fire = coio_bench::now_ns();
            });
        }
        ctx.run();
        const auto summary =
            coio_bench::print_timer_result("asio_timers_handler", t0, delays, requested, fires, "",
                                           "asio steady_timer + completion handlers");
        if (summary.missed != 0) status = 1;  // early wake-ups are Asio's to report, not a failure
    }
    return status;
}
