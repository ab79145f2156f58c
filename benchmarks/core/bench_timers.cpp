// benchmarks/core/bench_timers.cpp - coio's timers under load: 100,000 concurrent sleeps of
// 0-100 ms (the same delays as every reference program in this folder, see ref_common.hpp).
//
// Each sleep runs in its own task; its wake-up time is read when the task resumes, which is
// what a user's code sees. Two rounds: in a fresh process, then warm (see main). Output: the
// key=value lines run.sh compares with ref_uring_timers.
// Run: build/benchmarks/core/bench_timers [count]
#include <coio/coio.hpp>

#include "ref_common.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace {

coio::coro<void> sleeper(std::int64_t delay_ns, std::int64_t& requested, std::int64_t& fired) {
    requested = coio_bench::now_ns();
    co_await coio::sleep(std::chrono::nanoseconds(delay_ns));
    fired = coio_bench::now_ns();
}

coio::coro<void> workload(const std::vector<std::int64_t>& delays, std::vector<std::int64_t>& requested,
                          std::vector<std::int64_t>& fires) {
    std::vector<coio::coro<void>> sleeps;
    sleeps.reserve(delays.size());
    for (std::size_t i = 0; i < delays.size(); ++i) sleeps.push_back(sleeper(delays[i], requested[i], fires[i]));
    co_await coio::gather(std::move(sleeps));
}

} // namespace

int main(int argc, char** argv) {
    const std::size_t n = coio_bench::count_arg(argc, argv, 1, coio_bench::default_timer_count);
    const std::vector<std::int64_t> delays = coio_bench::timer_delays_ns(n);
    // Round 1 starts in a fresh process: every frame and task state is new memory, faulted in
    // while the sleeps are armed. Round 2 ("_warm") runs the same workload again on the memory
    // round 1 gave back, as a long-running program does; its frames were freed in deadline
    // (random) order.
    bool ok = true;
    for (const char* name : {"coio_timers", "coio_timers_warm"}) {
        std::vector<std::int64_t> requested(n, 0);
        std::vector<std::int64_t> fires(n, 0);
        const std::int64_t t0 = coio_bench::now_ns();
        coio::run(workload(delays, requested, fires));
        auto summary = coio_bench::print_timer_result(name, t0, delays, requested, fires, "",
                                                      "coio: one task per sleep, userspace timer heap");
        ok = ok && summary.missed == 0 && summary.early == 0;
    }
    // The loop's timers without a task per sleep: call_later callbacks (asyncio's TimerHandle),
    // the shape of ref_uring_timers and of Asio's plain-handler row.
    {
        std::vector<std::int64_t> requested(n, 0);
        std::vector<std::int64_t> fires(n, 0);
        const std::int64_t t0 = coio_bench::now_ns();
        coio::run([](const std::vector<std::int64_t>& delays, std::vector<std::int64_t>& requested,
                     std::vector<std::int64_t>& fires) -> coio::coro<void> {
            coio::event_loop& loop = coio::get_running_loop();
            coio::future<void> all_fired;
            std::size_t pending = delays.size();
            for (std::size_t i = 0; i < delays.size(); ++i) {
                requested[i] = coio_bench::now_ns();
                loop.call_later(std::chrono::nanoseconds(delays[i]), [&fires, &pending, &all_fired, i] {
                    fires[i] = coio_bench::now_ns();
                    if (--pending == 0) all_fired.set_result();
                });
            }
            co_await all_fired;
        }(delays, requested, fires));
        auto summary = coio_bench::print_timer_result("coio_call_later", t0, delays, requested, fires, "",
                                                      "coio: loop.call_later callbacks, no task per sleep");
        ok = ok && summary.missed == 0 && summary.early == 0;
    }
    return ok ? 0 : 1;
}
