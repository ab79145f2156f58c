// examples/as_completed.cpp - handle results as soon as each one is ready.
//
// The seed's as_completed lesson: three tables whose orders take 3, 2 and 1 seconds. Served
// in completion order, table 3 (1 s) comes first and table 1 (3 s) last; 3 s in total.
//
// Run: ./build/examples/as_completed
// Python original:
//   for next_done in asyncio.as_completed([serve(1, 3), serve(2, 2), serve(3, 1)]):
//       print(await next_done)
#include <coio/coio.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

coio::coro<std::string> serve_table(int table, double seconds) {
    std::printf("Table %d ordered (ready in %.0f s)\n", table, seconds);
    co_await coio::sleep(seconds);
    co_return "Table " + std::to_string(table) + " served";
}

coio::coro<void> main_coro() {
    auto start = coio::clock::now();
    std::vector<coio::coro<std::string>> orders;
    orders.push_back(serve_table(1, 3));
    orders.push_back(serve_table(2, 2));
    orders.push_back(serve_table(3, 1));
    for (auto&& next : coio::as_completed(std::move(orders))) {
        std::string done = co_await next;
        std::printf("%s after %.1f s\n", done.c_str(), std::chrono::duration<double>(coio::clock::now() - start).count());
    }
}

int main() { return coio::run_main(main_coro()); }  // Ctrl-C: exit status 130
