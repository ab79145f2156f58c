// examples/to_thread.cpp - blocking work off the loop with coio::to_thread (asyncio.to_thread)
// and a dedicated coio::thread_pool with run_in_executor.
//
// Four blocking calls (each sleeps 200 ms, standing in for a blocking library call) run on
// the default executor concurrently, while a ticker task keeps running on the loop: the loop
// is never blocked. Exceptions thrown on the worker thread are rethrown on the loop thread.
// Run: build/examples/to_thread
#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/thread.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;

int blocking_lookup(int key) {
    std::this_thread::sleep_for(200ms);  // e.g. a synchronous database driver
    return key * 10;
}

coio::coro<void> ticker(int& ticks) {
    for (;;) {
        co_await coio::sleep(20ms);
        ++ticks;
    }
}

coio::coro<int> main_() {
    int ticks = 0;
    auto tick_task = coio::create_task(ticker(ticks));
    auto start = coio::clock::now();
    auto [a, b, c, d] = co_await coio::gather(coio::to_thread(blocking_lookup, 1), coio::to_thread(blocking_lookup, 2),
                                              coio::to_thread(blocking_lookup, 3), coio::to_thread(blocking_lookup, 4));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(coio::clock::now() - start).count();
    std::printf("results %d %d %d %d in %lld ms; the loop ticked %d times meanwhile\n", a, b, c, d,
                static_cast<long long>(ms), ticks);

    try {
        co_await coio::to_thread([] { throw std::runtime_error("failed on a worker thread"); });
    } catch (const std::runtime_error& e) {
        std::printf("caught on the loop thread: %s\n", e.what());
    }

    coio::thread_pool pool(2);  // a dedicated executor, e.g. for CPU-heavy work
    std::string digest = co_await coio::run_in_executor(pool, [](std::string s) {
        unsigned h = 2166136261u;  // FNV-1a
        for (unsigned char ch : s) h = (h ^ ch) * 16777619u;
        return std::to_string(h);
    }, std::string("hello"));
    std::printf("fnv1a(hello) = %s\n", digest.c_str());

    tick_task.cancel();
    co_return 0;
}

int main() { return coio::run_main(main_(), {.executor_threads = 4}); }  // Ctrl-C: exit status 130
