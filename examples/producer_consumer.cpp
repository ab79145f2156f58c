// examples/producer_consumer.cpp - a bounded coio::queue with several producers and
// consumers, and a clean shutdown (Python 3.13's Queue.shutdown).
//
// Producers block while the queue is full (back-pressure). When every producer is done the
// queue is shut down: consumers drain what is left, then get() throws coio::queue_shutdown
// and they stop. Nothing is lost: the totals printed at the end match.
// Run: build/examples/producer_consumer
#include <coio/gather.hpp>
#include <coio/queue.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

using namespace std::chrono_literals;

struct job {
    int producer;
    int seq;
};

coio::coro<int> produce(coio::queue<job>& q, int id, int count) {
    for (int i = 0; i < count; ++i) {
        co_await q.put(job{id, i});  // waits while the queue is full
        if (i % 10 == 0) co_await coio::sleep(1ms);
    }
    co_return count;
}

coio::coro<int> consume(coio::queue<job>& q, int id) {
    int handled = 0;
    try {
        for (;;) {
            job j = co_await q.get();
            co_await coio::sleep(0);  // pretend to work
            ++handled;
            q.task_done();
            (void)j;
        }
    } catch (const coio::queue_shutdown&) {
        std::printf("consumer %d: queue shut down after %d jobs\n", id, handled);
    }
    co_return handled;
}

coio::coro<int> main_() {
    coio::queue<job> q(8);  // bounded: producers feel back-pressure
    std::vector<coio::task<int>> consumers;  // run alongside the producers
    for (int c = 0; c < 2; ++c) consumers.push_back(coio::create_task(consume(q, c)));

    auto produced = co_await coio::gather(produce(q, 0, 100), produce(q, 1, 100), produce(q, 2, 100));
    int total_produced = std::get<0>(produced) + std::get<1>(produced) + std::get<2>(produced);
    co_await q.join();  // every job processed
    q.shutdown();       // consumers stop once the queue is empty (it is)

    int total_consumed = 0;
    for (auto& c : consumers) total_consumed += co_await c;
    std::printf("produced %d, consumed %d\n", total_produced, total_consumed);
    co_return total_produced == total_consumed ? 0 : 1;
}

int main() { return coio::run_main(main_()); }  // Ctrl-C: exit status 130
