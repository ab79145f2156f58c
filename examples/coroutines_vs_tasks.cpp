// examples/coroutines_vs_tasks.cpp - coroutine objects run inline; tasks run concurrently.
//
// The seed's first lesson. Three `take_order` calls that each wait one second:
//   * awaited one after the other as coroutines, they take about 3 s in total;
//   * created as tasks first and then awaited, they overlap and take about 1 s.
//
// Run: ./build/examples/coroutines_vs_tasks
// Python original:
//   async def take_order(name): print(f"Taking order from {name}"); await asyncio.sleep(1); ...
//   for n in names: await take_order(n)                      # ~3 s
//   tasks = [asyncio.create_task(take_order(n)) for n in names]
//   for t in tasks: await t                                  # ~1 s
#include <coio/coio.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

coio::coro<std::string> take_order(std::string customer) {
    std::printf("Taking order from %s...\n", customer.c_str());
    co_await coio::sleep(1s);  // the kitchen prepares the order
    std::printf("Order for %s is ready\n", customer.c_str());
    co_return customer + "'s order";
}

coio::coro<void> main_coro() {
    const std::vector<std::string> customers{"Alice", "Bob", "Charlie"};

    std::puts("--- coroutines, awaited one after the other ---");
    auto start = coio::clock::now();
    for (const auto& c : customers) co_await take_order(c);
    std::printf("Total time with coroutines: %.2f s\n\n",
                std::chrono::duration<double>(coio::clock::now() - start).count());

    std::puts("--- tasks, created first, then awaited ---");
    start = coio::clock::now();
    std::vector<coio::task<std::string>> tasks;
    for (const auto& c : customers) tasks.push_back(coio::create_task(take_order(c)));
    for (auto& t : tasks) co_await t;
    std::printf("Total time with tasks: %.2f s\n",
                std::chrono::duration<double>(coio::clock::now() - start).count());
}

int main() { return coio::run_main(main_coro()); }  // Ctrl-C: exit status 130
