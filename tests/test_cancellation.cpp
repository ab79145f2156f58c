// tests/test_cancellation.cpp - the cancellation rules that cut across every awaitable:
//  * a wait that completed, but whose task was cancelled before it resumed, throws the
//    cancellation, and what the primitive had handed over goes on to the next waiter;
//  * a task awaiting a task or a future forwards its cancellation and gets what the target
//    ends with; a cancel requested before the await is forwarded too;
//  * timeouts: nested expiries are each delivered, cancelling() returns to its value, and
//    wait_for with a non-positive timeout never starts a coroutine;
//  * task groups keep an outside cancellation and let control exceptions through unwrapped;
//  * done callbacks run in registration order.
#include <coio/task.hpp>

#include "support/catch.hpp"
#include "support/co_check.hpp"

#include <coio/barrier.hpp>
#include <coio/condition.hpp>
#include <coio/errors.hpp>
#include <coio/event.hpp>
#include <coio/future.hpp>
#include <coio/lock.hpp>
#include <coio/queue.hpp>
#include <coio/run.hpp>
#include <coio/semaphore.hpp>
#include <coio/sleep.hpp>
#include <coio/task_group.hpp>
#include <coio/timeout.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Keeps a capturing coroutine lambda alive in the coroutine's own frame.
template <class F>
auto owned(F f) -> decltype(f()) {
    co_return co_await f();
}

// Blocks the loop's thread: timers that pass meanwhile all fire in the same iteration.
void stall(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

} // namespace

// ---- served, then cancelled before resuming ------------------------------------------------

TEST_CASE("served then cancelled: lock and semaphore pass what they handed on") {
    coio::run([]() -> coio::coro<void> {
        coio::lock lk;
        co_await lk.acquire();
        auto a = coio::create_task(owned([&]() -> coio::coro<void> { co_await lk.acquire(); }));
        auto b = coio::create_task(owned([&]() -> coio::coro<void> {
            co_await lk.acquire();
            lk.release();
        }));
        co_await coio::sleep(0);
        lk.release();  // handed to a
        a.cancel();    // before a ran: the lock goes to b
        CHECK_THROWS_AS(co_await a, coio::cancelled_error);
        co_await b;
        CHECK_FALSE(lk.locked());

        coio::semaphore sem(0);
        auto c = coio::create_task(owned([&]() -> coio::coro<void> { co_await sem.acquire(); }));
        co_await coio::sleep(0);
        sem.release();  // handed to c
        c.cancel();
        CHECK_THROWS_AS(co_await c, coio::cancelled_error);
        CHECK(sem.value() == 1);  // back in the counter, not lost
    }());
}

TEST_CASE("served then cancelled: a condition notification is passed on") {
    coio::run([]() -> coio::coro<void> {
        coio::condition cv;
        int woke = 0;
        auto waiter = [&]() -> coio::coro<void> {
            auto g = co_await cv.scoped();
            co_await cv.wait();
            ++woke;
        };
        auto a = coio::create_task(owned(waiter));
        auto b = coio::create_task(owned(waiter));
        co_await coio::sleep(0);
        {
            auto g = co_await cv.scoped();
            cv.notify(1);  // a is notified
        }
        a.cancel();  // notified but not resumed: the notification goes to b
        CHECK_THROWS_AS(co_await a, coio::cancelled_error);
        co_await coio::wait_for(b, 1s);
        CHECK(woke == 1);
        CHECK_FALSE(cv.locked());
    }());
}

TEST_CASE("served then cancelled: event, barrier, future and task keep their state") {
    coio::run([]() -> coio::coro<void> {
        coio::event ev;
        auto a = coio::create_task(owned([&]() -> coio::coro<void> { co_await ev.wait(); }));
        co_await coio::sleep(0);
        ev.set();
        a.cancel();
        CHECK_THROWS_AS(co_await a, coio::cancelled_error);
        CHECK(ev.is_set());

        coio::future<std::string> f;
        auto b = coio::create_task(owned([&]() -> coio::coro<std::string> { co_return co_await f; }));
        co_await coio::sleep(0);
        f.set_result("kept");
        b.cancel();  // after f completed: b throws, f keeps its value
        CHECK_THROWS_AS(co_await b, coio::cancelled_error);
        CHECK(f.result() == "kept");

        coio::barrier bar(2);
        auto c = coio::create_task(owned([&]() -> coio::coro<std::size_t> { co_return co_await bar.wait(); }));
        co_await coio::sleep(0);
        CO_CHECK(co_await bar.wait() == 1);  // completes the round, releasing c
        c.cancel();
        CHECK_THROWS_AS(co_await c, coio::cancelled_error);
        // The round is over for everybody: the next one starts empty and works.
        CHECK(bar.n_waiting() == 0);
        auto d = coio::create_task(owned([&]() -> coio::coro<std::size_t> { co_return co_await bar.wait(); }));
        CO_CHECK(co_await coio::wait_for(bar.wait(), 1s) == 0);  // we arrive before d runs
        CO_CHECK(co_await d == 1);
    }());
}

// ---- cancellation travels through awaits -------------------------------------------------

TEST_CASE("cancel forwarded to an awaited task: the awaiter gets the task's exception") {
    coio::run([]() -> coio::coro<void> {
        auto inner = coio::create_task([]() -> coio::coro<int> {
            try {
                co_await coio::sleep(10s);
            } catch (const coio::cancelled_error&) {
                throw std::runtime_error("cleanup failed");
            }
            co_return 1;
        }());
        auto outer = coio::create_task([](coio::task<int> i) -> coio::coro<std::string> {
            std::string what = "no error";
            try {
                co_await i;
            } catch (const std::runtime_error& e) {
                what = std::string("caught: ") + e.what();
            }
            co_await coio::sleep(1ms);  // not cancelled: the request was used up by the forward
            co_return what;
        }(inner));
        co_await coio::sleep(1ms);
        outer.cancel();
        CO_CHECK(co_await outer == "caught: cleanup failed");
        CHECK_FALSE(outer.cancelled());
        CHECK(outer.cancelling() == 1);  // counted, as asyncio counts forwarded requests
    }());
}

TEST_CASE("cancel forwarded to an awaited task that swallows it: the awaiter gets its value") {
    coio::run([]() -> coio::coro<void> {
        auto inner = coio::create_task([]() -> coio::coro<int> {
            try {
                co_await coio::sleep(10s);
            } catch (const coio::cancelled_error&) {
            }
            co_return 42;
        }());
        bool next_await_ran = false;
        auto outer = coio::create_task([](coio::task<int> i, bool& next) -> coio::coro<int> {
            int v = co_await i;
            co_await coio::sleep(1ms);  // not cancelled: the request went to the inner task
            next = true;
            co_return v;
        }(inner, next_await_ran));
        co_await coio::sleep(1ms);
        outer.cancel();
        CO_CHECK(co_await outer == 42);
        CHECK(next_await_ran);
    }());
}

TEST_CASE("a cancel requested before the await reaches the awaited task or future") {
    coio::run([]() -> coio::coro<void> {
        auto inner = coio::create_task([]() -> coio::coro<int> {
            co_await coio::sleep(10s);
            co_return 1;
        }());
        auto outer = coio::create_task([](coio::task<int> i) -> coio::coro<int> {
            coio::current_task().cancel();
            co_return co_await i;
        }(inner));
        CHECK_THROWS_AS(co_await coio::wait_for(outer, 2s), coio::cancelled_error);
        CHECK(inner.cancelled());

        coio::future<int> f;
        auto waiter = coio::create_task([](coio::future<int> fut) -> coio::coro<int> {
            coio::current_task().cancel();
            co_return co_await fut;
        }(f));
        CHECK_THROWS_AS(co_await coio::wait_for(waiter, 2s), coio::cancelled_error);
        CHECK(f.cancelled());
    }());
}

TEST_CASE("a cancel that arrives after the awaited task finished is thrown - the task keeps its result") {
    coio::run([]() -> coio::coro<void> {
        coio::future<int> f;
        auto inner = coio::create_task([](coio::future<int> fut) -> coio::coro<int> { co_return co_await fut; }(f));
        auto outer = coio::create_task([](coio::task<int> i) -> coio::coro<int> { co_return co_await i; }(inner));
        co_await coio::sleep(0);  // outer waits on inner, inner on f
        f.set_result(5);
        co_await coio::sleep(0);  // inner ran (after f) and finished, waking outer: queued behind us
        CHECK(inner.done());
        CHECK_FALSE(outer.done());
        outer.cancel();
        CHECK_THROWS_AS(co_await outer, coio::cancelled_error);
        CHECK(inner.result() == 5);
    }());
}

// ---- timeouts ------------------------------------------------------------------------------

TEST_CASE("nested timeouts that expire together: each deadline is delivered") {
    coio::run([]() -> coio::coro<void> {
        const auto start = coio::clock::now();
        bool inner_caught = false;
        bool outer_caught = false;
        try {
            auto outer = coio::timeout(20ms);
            try {
                auto inner = coio::timeout(10ms);
                stall(40ms);  // both deadlines pass before the loop runs timers
                co_await coio::sleep(5s);
            } catch (const coio::timeout_error&) {
                inner_caught = true;
            }
            co_await coio::sleep(5s);  // the outer deadline passed too: thrown here
        } catch (const coio::timeout_error&) {
            outer_caught = true;
        }
        CHECK(inner_caught);
        CHECK(outer_caught);
        CHECK(coio::clock::now() - start < 2s);
        CHECK(coio::current_task().cancelling() == 0);
    }());
}

TEST_CASE("an expired timeout returns cancelling() to zero") {
    coio::run([]() -> coio::coro<void> {
        auto me = coio::current_task();
        for (int i = 0; i < 2; ++i) {
            try {
                auto t = coio::timeout(1ms);
                co_await coio::sleep(1s);
            } catch (const coio::timeout_error&) {
            }
            CHECK(me.cancelling() == 0);
        }
        CHECK_THROWS_AS(co_await coio::wait_for(coio::sleep(1s), 1ms), coio::timeout_error);
        CHECK(me.cancelling() == 0);
        CHECK(me.uncancel() == 0);
        co_await coio::sleep(1ms);  // nothing pending
    }());
}

TEST_CASE("wait_for with a zero or negative timeout") {
    coio::run([]() -> coio::coro<void> {
        bool started = false;
        auto body = [](bool& s) -> coio::coro<int> {
            s = true;
            co_return 1;
        };
        CHECK_THROWS_AS(co_await coio::wait_for(body(started), 0s), coio::timeout_error);
        CHECK_THROWS_AS(co_await coio::wait_for(body(started), -1.0), coio::timeout_error);
        CHECK_FALSE(started);  // asyncio never starts the coroutine

        auto done = coio::create_task(body(started));
        co_await coio::sleep(0);
        CO_CHECK(co_await coio::wait_for(done, 0s) == 1);  // done: its result

        auto slow = coio::create_task([]() -> coio::coro<int> {
            co_await coio::sleep(10s);
            co_return 2;
        }());
        CHECK_THROWS_AS(co_await coio::wait_for(slow, 0s), coio::timeout_error);
        CHECK(slow.cancelled());  // cancelled and waited for

        CO_CHECK(co_await coio::wait_for(body(started), std::nullopt) == 1);  // no limit
        CHECK(coio::current_task().cancelling() == 0);
    }());
}

// ---- task groups ---------------------------------------------------------------------------

TEST_CASE("task_group: an outside cancel survives a child's failure") {
    coio::run([]() -> coio::coro<void> {
        bool group_seen = false;
        bool next_await_cancelled = false;
        auto owner = coio::create_task([](bool& seen, bool& next) -> coio::coro<void> {
            try {
                co_await coio::task_group::run([](coio::task_group& tg) -> coio::coro<void> {
                    tg.create_task([]() -> coio::coro<void> {
                        try {
                            co_await coio::sleep(10s);
                        } catch (const coio::cancelled_error&) {
                            throw std::runtime_error("child failed while cancelled");
                        }
                    }());
                    co_await coio::sleep(10s);
                });
            } catch (const coio::exception_group& eg) {
                seen = eg.find<std::runtime_error>() != nullptr;
            }
            try {
                co_await coio::sleep(1s);
            } catch (const coio::cancelled_error&) {
                next = true;
                throw;
            }
        }(group_seen, next_await_cancelled));
        co_await coio::sleep(1ms);
        owner.cancel();
        CHECK_THROWS_AS(co_await coio::wait_for(owner, 2s), coio::cancelled_error);
        CHECK(group_seen);
        CHECK(next_await_cancelled);
    }());
}

TEST_CASE("task_group: keyboard_interrupt comes out as itself") {
    coio::run([]() -> coio::coro<void> {
        bool got = false;
        try {
            co_await coio::task_group::run([](coio::task_group& tg) -> coio::coro<void> {
                tg.create_task([]() -> coio::coro<void> {
                    co_await coio::sleep(1ms);
                    throw coio::keyboard_interrupt();
                }());
                tg.create_task([]() -> coio::coro<void> {
                    co_await coio::sleep(1ms);
                    throw std::runtime_error("other");
                }());
                co_await coio::sleep(10s);
            });
        } catch (const coio::keyboard_interrupt&) {
            got = true;
        } catch (const coio::exception_group&) {
        }
        CHECK(got);

        got = false;
        try {
            co_await coio::task_group::run([](coio::task_group&) -> coio::coro<void> {
                co_await coio::sleep(0);
                throw coio::keyboard_interrupt();  // from the body
            });
        } catch (const coio::keyboard_interrupt&) {
            got = true;
        } catch (const coio::exception_group&) {
        }
        CHECK(got);
    }());
}

// ---- done callbacks --------------------------------------------------------------------

TEST_CASE("done callbacks run in registration order") {
    coio::run([]() -> coio::coro<void> {
        std::vector<int> order;
        auto t = coio::create_task([]() -> coio::coro<void> { co_await coio::sleep(1ms); }());
        for (int i = 0; i < 4; ++i) t.add_done_callback([&order, i](const coio::task<void>&) { order.push_back(i); });
        coio::future<int> f;
        for (int i = 10; i < 13; ++i) f.add_done_callback([&order, i](const coio::future<int>&) { order.push_back(i); });
        f.set_result(1);
        co_await t;
        co_await coio::sleep(1ms);
        CHECK(order == std::vector<int>{10, 11, 12, 0, 1, 2, 3});
    }());
}
