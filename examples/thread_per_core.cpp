// examples/thread_per_core.cpp - one event loop per hardware thread, sharing work through
// coio::run_coroutine_threadsafe (the shape of a thread-per-core server: Seastar-style
// shards, each with its own io_uring ring, nothing shared but messages).
//
// The main thread starts one loop per core, then hands each shard jobs with
// run_coroutine_threadsafe and collects the std::futures. Shard 0 also forwards part of its
// work to the next shard, awaiting the answer without blocking its own loop. Finally every
// loop is stopped with call_soon_threadsafe and joined.
// Run: build/examples/thread_per_core
#include <coio/event.hpp>
#include <coio/loop.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/thread.hpp>

#include <algorithm>
#include <cstdio>
#include <future>
#include <memory>
#include <thread>
#include <vector>

struct shard {
    coio::event_loop* loop = nullptr;
    coio::event* stop = nullptr;
    std::thread thread;
    std::promise<void> ready;
};

// CPU work done on whichever shard runs it.
coio::coro<long> sum_range(long from, long to) {
    long s = 0;
    for (long i = from; i < to; ++i) {
        s += i;
        if ((i & 0xffff) == 0) co_await coio::sleep(0);  // stay fair to the shard's other tasks
    }
    co_return s;
}

// Runs on shard `self`: computes half itself, asks shard `peer` for the other half.
coio::coro<long> split_sum(long from, long to, coio::event_loop* peer) {
    long mid = from + (to - from) / 2;
    std::future<long> remote = coio::run_coroutine_threadsafe(sum_range(mid, to), *peer);
    long local = co_await sum_range(from, mid);
    // Never block a loop on a std::future: wait for it on the default executor instead.
    long other = co_await coio::to_thread([&remote] { return remote.get(); });
    co_return local + other;
}

int main() {
    const unsigned n = std::max(2u, std::thread::hardware_concurrency());
    std::vector<std::unique_ptr<shard>> shards;
    for (unsigned i = 0; i < n; ++i) {
        auto s = std::make_unique<shard>();
        shard* sp = s.get();
        sp->thread = std::thread([sp] {
            coio::event_loop loop;
            sp->loop = &loop;
            loop.run_until_complete([](shard* me) -> coio::coro<void> {
                coio::event stop;
                me->stop = &stop;
                me->ready.set_value();
                co_await stop.wait();  // serve until told to stop
            }(sp));
        });
        shards.push_back(std::move(s));
    }
    for (auto& s : shards) s->ready.get_future().wait();

    const long per_job = 2'000'000;
    std::vector<std::future<long>> results;
    for (unsigned j = 0; j < 2 * n; ++j) {
        shard& target = *shards[j % n];
        if (j == 0) {
            results.push_back(coio::run_coroutine_threadsafe(split_sum(0, per_job, shards[1]->loop), *target.loop));
        } else {
            results.push_back(coio::run_coroutine_threadsafe(sum_range(j * per_job, (j + 1) * per_job), *target.loop));
        }
    }
    long total = 0;
    for (auto& r : results) total += r.get();
    const long last = 2L * n * per_job;
    std::printf("%u shards; sum of [0, %ld) = %ld (expected %ld)\n", n, last, total, last * (last - 1) / 2);

    for (auto& s : shards) s->loop->call_soon_threadsafe([sp = s.get()] { sp->stop->set(); });
    for (auto& s : shards) s->thread.join();
    return total == last * (last - 1) / 2 ? 0 : 1;
}
