// examples/call_graph.cpp - what is every task waiting on? (asyncio.print_call_graph and
// `python -m asyncio pstree`).
//
// Shows: a task 'worker-1' that awaits the coroutine fetch_page, itself asleep, and a task
// 'worker-2' blocked in queue.get(). After 100 ms the program prints the task tree
// (event_loop::dump_tasks) and worker-1's call graph (coio::print_call_graph), then cancels
// both workers and exits 0. A hung program can print the same tree without being changed:
// run it with COIO_DUMP_SIGNAL=USR1 and send `kill -USR1 <pid>`.
// Run: build/examples/call_graph
//
// Coroutine frames record where they were created only with COIO_INTROSPECTION, on by
// default in Debug builds; this program turns it on so that a Release build shows
// fetch_page too. Define it before any coio header, the same in every file of a program.
#define COIO_INTROSPECTION 1
#include <coio/call_graph.hpp>
#include <coio/queue.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <chrono>
#include <iostream>
#include <string>

using namespace std::chrono_literals;

coio::coro<std::string> fetch_page(std::string url) {
    co_await coio::sleep(1h);  // a server that never answers
    co_return "<html>" + url + "</html>";
}

coio::coro<void> crawl(std::string url) {
    std::string page = co_await fetch_page(url);
    std::cout << page.size() << '\n';
}

coio::coro<void> consume(coio::queue<std::string>& jobs) {
    for (;;) std::cout << co_await jobs.get() << '\n';  // nobody ever puts a job
}

coio::coro<int> main_() {
    coio::queue<std::string> jobs;
    auto w1 = coio::create_task(crawl("http://127.0.0.1/"), "worker-1");
    auto w2 = coio::create_task(consume(jobs), "worker-2");
    co_await coio::sleep(100ms);

    std::cout << "--- task tree ---\n";
    coio::get_running_loop().dump_tasks(std::cout);
    std::cout << "--- call graph of worker-1 ---\n";
    coio::print_call_graph(w1, std::cout);

    w1.cancel();
    w2.cancel();
    for (auto* t : {&w1, &w2}) {
        try {
            co_await *t;
        } catch (const coio::cancelled_error&) {
            std::cout << t->get_name() << ": cancelled\n";
        }
    }
    co_return 0;
}

int main() { return coio::run_main(main_()); }  // Ctrl-C: exit status 130
