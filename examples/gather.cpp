// examples/gather.cpp - run several coroutines concurrently and collect their results in order.
//
// The seed's gather lesson: three orders prepared concurrently; gather returns their results
// in argument order (not completion order), after about 1 s in total.
//
// Run: ./build/examples/gather
// Python original:
//   results = await asyncio.gather(take_order("Alice", 1), take_order("Bob", 0.5), ...)
#include <coio/coio.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

coio::coro<std::string> take_order(std::string customer, double seconds) {
    std::printf("Taking order from %s...\n", customer.c_str());
    co_await coio::sleep(seconds);
    std::printf("Order for %s is ready\n", customer.c_str());
    co_return customer + "'s order";
}

coio::coro<void> main_coro() {
    auto start = coio::clock::now();
    auto [a, b, c] = co_await coio::gather(take_order("Alice", 1.0), take_order("Bob", 0.5), take_order("Charlie", 0.8));
    std::printf("Results: %s, %s, %s\n", a.c_str(), b.c_str(), c.c_str());
    std::printf("Total time: %.2f s\n", std::chrono::duration<double>(coio::clock::now() - start).count());
}

int main() { return coio::run_main(main_coro()); }  // Ctrl-C: exit status 130
