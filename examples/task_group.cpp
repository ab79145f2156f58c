// examples/task_group.cpp - structured concurrency with coio::task_group (asyncio.TaskGroup).
//
// Shows: a group whose tasks all succeed; then a group where one task fails, which cancels
// its siblings and the body, and surfaces as a coio::exception_group listing the failure.
// Run: build/examples/task_group
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task_group.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

coio::coro<std::string> fetch(std::string what, std::chrono::milliseconds delay, bool fail = false) {
    try {
        co_await coio::sleep(delay);
    } catch (const coio::cancelled_error&) {
        std::printf("  %s: cancelled, cleaning up\n", what.c_str());
        throw;
    }
    if (fail) throw std::runtime_error(what + " is unreachable");
    std::printf("  %s: done\n", what.c_str());
    co_return what + " ok";
}

coio::coro<int> main_() {
    std::puts("group 1: all succeed");
    std::string summary = co_await coio::task_group::run([](coio::task_group& tg) -> coio::coro<std::string> {
        auto a = tg.create_task(fetch("alpha", 20ms));
        auto b = tg.create_task(fetch("beta", 10ms));
        co_return co_await a + ", " + co_await b;  // the group would wait for both anyway
    });
    std::printf("  -> %s\n", summary.c_str());

    std::puts("group 2: one fails, the rest is cancelled");
    try {
        co_await coio::task_group::run([](coio::task_group& tg) -> coio::coro<void> {
            tg.create_task(fetch("gamma", 1s));
            tg.create_task(fetch("delta", 1s));
            tg.create_task(fetch("epsilon", 10ms, /*fail=*/true));
            co_await coio::sleep(10s);  // interrupted by epsilon's failure
        });
    } catch (const coio::exception_group& eg) {
        std::printf("  -> %s\n", eg.what());
    }
    co_return 0;
}

int main() { return coio::run_main(main_()); }  // Ctrl-C: exit status 130
