#include <coio/loop.hpp>

#include "support/catch.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/uring.hpp>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("call_soon runs callbacks in FIFO order on the next iteration") {
    coio::event_loop loop;
    std::vector<int> order;
    loop.call_soon([&] { order.push_back(1); });
    loop.call_soon([&] { order.push_back(2); });
    auto h = loop.call_soon([&] { order.push_back(3); });
    h.cancel();
    CHECK(h.cancelled());
    loop.call_soon([&] { order.push_back(4); loop.stop(); });
    loop.run_forever();
    CHECK(order == std::vector<int>{1, 2, 4});
}

TEST_CASE("call_later and call_at fire in deadline order, never early") {
    coio::event_loop loop;
    std::vector<int> order;
    auto start = coio::clock::now();
    coio::clock::duration late_fire{};
    loop.call_later(30ms, [&] { order.push_back(30); late_fire = coio::clock::now() - start; loop.stop(); });
    loop.call_later(0.01, [&] { order.push_back(10); });
    auto cancelled = loop.call_later(20ms, [&] { order.push_back(20); });
    loop.call_at(loop.time() + 0.005, [&] { order.push_back(5); });
    cancelled.cancel();
    loop.run_forever();
    CHECK(order == std::vector<int>{5, 10, 30});
    CHECK(late_fire >= 30ms);
    CHECK(cancelled.when() > start);
}

TEST_CASE("timers fire in deadline order, ties in call order, none cancelled, through many cancels") {
    // Deadlines in the past all expire in the next iteration, so the firing order is exactly
    // the heap's order: by deadline, then by call order among equal deadlines. Random cancels
    // (from the middle of the heap, and of slots that get reused) must keep that order.
    coio::event_loop loop;
    std::mt19937 rng(7);
    const auto base = coio::clock::now() - 1h;
    for (int round = 0; round < 3; ++round) {
        struct expected { coio::clock::time_point when; int seq; };
        std::vector<expected> live;
        std::vector<int> fired;
        std::vector<coio::timer_handle> handles;
        std::vector<int> ids;
        for (int i = 0; i < 5000; ++i) {
            // Few distinct deadlines, so ties are common.
            const auto when = base + std::chrono::microseconds(std::uniform_int_distribution<int>(0, 300)(rng));
            handles.push_back(loop.call_at(when, [&fired, i] { fired.push_back(i); }));
            ids.push_back(i);
            live.push_back({when, i});
            if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) {  // cancel a random earlier timer
                const auto k = std::uniform_int_distribution<std::size_t>(0, handles.size() - 1)(rng);
                if (!handles[k].cancelled()) {
                    handles[k].cancel();
                    std::erase_if(live, [&](const expected& e) { return e.seq == ids[k]; });
                }
            }
        }
        std::stable_sort(live.begin(), live.end(), [](const expected& a, const expected& b) { return a.when < b.when; });
        std::vector<int> want;
        for (const auto& e : live) want.push_back(e.seq);
        loop.call_later(1ms, [&] { loop.stop(); });
        loop.run_forever();
        CHECK(fired == want);
    }
}

TEST_CASE("run_until_complete, is_running, and misuse while running") {
    coio::event_loop loop;
    CHECK_FALSE(loop.is_running());
    int v = loop.run_until_complete([](coio::event_loop& loop) -> coio::coro<int> {
        CHECK(loop.is_running());
        CHECK(&coio::get_running_loop() == &loop);
        CHECK_THROWS_AS(loop.run_forever(), coio::invalid_state_error);
        CHECK_THROWS_AS(loop.close(), coio::invalid_state_error);
        coio::event_loop other;
        CHECK_THROWS_AS(other.run_until_complete([]() -> coio::coro<void> { co_return; }()), coio::invalid_state_error);
        co_return 3;
    }(loop));
    CHECK(v == 3);
    CHECK(loop.run_until_complete([]() -> coio::coro<int> { co_return 4; }()) == 4);
    loop.close();
    CHECK(loop.is_closed());
    loop.close();  // idempotent
    CHECK_THROWS_AS(loop.call_soon([] {}), coio::invalid_state_error);
}

TEST_CASE("get_running_loop outside a loop is invalid_state_error") {
    CHECK_THROWS_AS(coio::get_running_loop(), coio::invalid_state_error);
}

TEST_CASE("exceptions escaping callbacks go to the exception handler") {
    coio::event_loop loop;
    std::vector<std::string> seen;
    loop.set_exception_handler([&](coio::event_loop&, const coio::exception_context& ctx) {
        try {
            std::rethrow_exception(ctx.exception);
        } catch (const std::exception& e) {
            seen.push_back(ctx.message + ": " + e.what());
        }
    });
    loop.call_soon([] { throw std::runtime_error("bad callback"); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == "Exception in callback: bad callback");
}

TEST_CASE("call_soon_threadsafe from other threads loses nothing and wakes the loop") {
    coio::event_loop loop;
    constexpr int per_thread = 2000;
    int received = 0;
    std::vector<std::thread> threads;
    loop.run_until_complete([](coio::event_loop& loop, int& received, std::vector<std::thread>& threads) -> coio::coro<void> {
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&loop, &received] {
                for (int i = 0; i < per_thread; ++i) loop.call_soon_threadsafe([&received] { ++received; });
            });
        auto deadline = coio::clock::now() + 20s;
        while (received < 4 * per_thread && coio::clock::now() < deadline) co_await coio::sleep(1ms);
    }(loop, received, threads));
    for (auto& t : threads) t.join();
    CHECK(received == 4 * per_thread);
}

TEST_CASE("a loop blocked in the kernel is woken by call_soon_threadsafe") {
    coio::event_loop loop;
    std::thread t([&] {
        std::this_thread::sleep_for(20ms);
        loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    auto start = coio::clock::now();
    loop.run_forever();  // nothing else to do: sleeps in io_uring_enter until woken
    t.join();
    CHECK(coio::clock::now() - start < 5s);
}

TEST_CASE("one io_uring_enter per loop iteration in steady state") {
    coio::event_loop loop({.backend = coio::backend::io_uring});
    constexpr int iterations = 1000;
    auto before = loop.enter_calls();
    loop.run_until_complete([]() -> coio::coro<void> {
        for (int i = 0; i < iterations; ++i) {
            // Each round: an SQE submitted, its completion reaped, a yield: still one enter.
            int r = co_await coio::uring_op([](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
            REQUIRE(r == 0);
        }
    }());
    auto calls = loop.enter_calls() - before;
    INFO("io_uring_enter calls: " << calls);
    CHECK(calls <= iterations + 5);
}

TEST_CASE("the ring uses SINGLE_ISSUER and DEFER_TASKRUN when the kernel has them") {
    coio::event_loop loop({.backend = coio::backend::io_uring});
    if (!(loop.ring_flags() & IORING_SETUP_DEFER_TASKRUN)) {
        WARN("kernel refused IORING_SETUP_DEFER_TASKRUN; running with flags " << loop.ring_flags());
    } else {
        CHECK((loop.ring_flags() & IORING_SETUP_SINGLE_ISSUER) != 0);
    }
    CHECK((loop.ring_flags() & IORING_SETUP_CQSIZE) != 0);
}

TEST_CASE("dump_tasks shows what each task waits on") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task([]() -> coio::coro<void> { co_await coio::sleep(10s); }(), "sleeper");
        co_await coio::sleep(1ms);
        std::ostringstream os;
        coio::get_running_loop().dump_tasks(os);
        CHECK(os.str().find("task 'sleeper'") != std::string::npos);
        CHECK(os.str().find("waiting on sleep") != std::string::npos);
        t.cancel();
    }());
}

TEST_CASE("a ring that cannot be created gives a clear system_error") {
    // In a child process, a seccomp filter makes io_uring_setup fail with EPERM, as Docker's
    // default profile or kernel.io_uring_disabled=2 do.
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            ::_exit(3);
        try {
            coio::event_loop loop({.backend = coio::backend::io_uring});  // automatic would use epoll
            ::_exit(1);
        } catch (const std::system_error& e) {
            std::string what = e.what();
            bool ok = e.code().value() == EPERM && what.find("io_uring_disabled") != std::string::npos &&
                      what.find("seccomp") != std::string::npos;
            ::_exit(ok ? 0 : 2);
        }
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("closing a loop cancels and finishes pending tasks") {
    bool cleaned = false;
    {
        coio::event_loop loop;
        loop.create_task([](bool& cleaned) -> coio::coro<void> {
            try {
                co_await coio::sleep(10s);
            } catch (const coio::cancelled_error&) {
                cleaned = true;
                throw;
            }
        }(cleaned));
        loop.run_until_complete([]() -> coio::coro<void> { co_await coio::sleep(1ms); }());
        CHECK(loop.pending_tasks() == 1);
    }  // destructor closes
    CHECK(cleaned);
}
