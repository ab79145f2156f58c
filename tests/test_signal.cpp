// tests/test_signal.cpp - event_loop::add_signal_handler / remove_signal_handler,
// coio::wait_signal and run_options::cancel_on_signals, with real signals: kill(getpid()),
// raise() on the loop thread, and kill(getppid()) from a forked child. Runs on whichever
// backend COIO_BACKEND selects (ctest runs it on both).
// ctest-labels: thread
#include <coio/signal.hpp>

#include "support/catch.hpp"

#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/thread.hpp>
#include <coio/timeout.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

bool blocked_here(int sig) {
    sigset_t now;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &now);
    return sigismember(&now, sig) == 1;
}

/// Runs the loop until `done()` or 5 s (then fails the check that follows).
template <class Done>
void run_until(coio::event_loop& loop, Done done) {
    loop.run_until_complete([](Done d) -> coio::coro<void> {
        const auto limit = std::chrono::steady_clock::now() + 5s;
        while (!d() && std::chrono::steady_clock::now() < limit) co_await coio::sleep(1ms);
    }(done));
}

/// Sets a signal's disposition to the default for the scope (Catch2 installs handlers for
/// some signals; a test of "the default action would apply" needs the default).
struct default_disposition {
    explicit default_disposition(int s) : sig(s) {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        ::sigaction(sig, &dfl, &saved);
    }
    ~default_disposition() { ::sigaction(sig, &saved, nullptr); }
    int sig;
    struct sigaction saved {};
};

} // namespace

TEST_CASE("add_signal_handler: kill(getpid()) runs the callback on the loop thread") {
    REQUIRE_FALSE(blocked_here(SIGUSR1));
    coio::event_loop loop;
    int calls = 0;
    std::thread::id ran_on;
    loop.add_signal_handler(SIGUSR1, [&] {
        ++calls;
        ran_on = std::this_thread::get_id();
    });
    CHECK(blocked_here(SIGUSR1));  // while handled, the kernel keeps it for the signalfd
    REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
    run_until(loop, [&] { return calls > 0; });
    CHECK(calls == 1);
    CHECK(ran_on == std::this_thread::get_id());
    // A second one: the read was re-armed after the first batch.
    REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
    run_until(loop, [&] { return calls > 1; });
    CHECK(calls == 2);
    CHECK(loop.remove_signal_handler(SIGUSR1));
    CHECK_FALSE(blocked_here(SIGUSR1));
    CHECK_FALSE(loop.remove_signal_handler(SIGUSR1));
    loop.close();
}

TEST_CASE("add_signal_handler: raise() on the loop thread (a thread-directed signal)") {
    coio::event_loop loop;
    int calls = 0;
    loop.add_signal_handler(SIGUSR2, [&] { ++calls; });
    REQUIRE(std::raise(SIGUSR2) == 0);
    run_until(loop, [&] { return calls > 0; });
    CHECK(calls == 1);
    loop.close();
    CHECK_FALSE(blocked_here(SIGUSR2));
}

TEST_CASE("add_signal_handler: a signal from a child process (kill(getppid()))") {
    coio::event_loop loop;
    int got = 0;
    loop.add_signal_handler(SIGUSR2, [&] { got = SIGUSR2; });
    loop.add_signal_handler(SIGHUP, [&] { got = SIGHUP; });
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::kill(::getppid(), SIGHUP);
        ::_exit(0);
    }
    run_until(loop, [&] { return got != 0; });
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(got == SIGHUP);
    loop.close();
    CHECK_FALSE(blocked_here(SIGHUP));
    CHECK_FALSE(blocked_here(SIGUSR2));
}

TEST_CASE("add_signal_handler replaces the handler; remove_signal_handler returns whether there was one") {
    coio::event_loop loop;
    std::vector<std::string> log;
    loop.add_signal_handler(SIGUSR1, [&] { log.push_back("first"); });
    loop.add_signal_handler(SIGUSR1, [&] { log.push_back("second"); });
    REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
    run_until(loop, [&] { return !log.empty(); });
    CHECK(log == std::vector<std::string>{"second"});
    CHECK(loop.remove_signal_handler(SIGUSR1));
    CHECK_FALSE(loop.remove_signal_handler(SIGUSR1));
    CHECK_FALSE(loop.remove_signal_handler(SIGUSR2));
    CHECK_FALSE(blocked_here(SIGUSR1));
    loop.close();
}

TEST_CASE("invalid signals are refused with std::invalid_argument") {
    coio::event_loop loop;
    for (int sig : {0, -1, NSIG, 1000, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
        INFO("signal " << sig);
        CHECK_THROWS_AS(loop.add_signal_handler(sig, [] {}), std::invalid_argument);
        CHECK_THROWS_AS(loop.remove_signal_handler(sig), std::invalid_argument);
    }
    CHECK_THROWS_AS(loop.add_signal_handler(SIGUSR1, std::function<void()>{}), std::invalid_argument);
    CHECK_FALSE(blocked_here(SIGUSR1));
    coio::run([]() -> coio::coro<void> {
        CHECK_THROWS_AS((void)coio::wait_signal(0), std::invalid_argument);
        CHECK_THROWS_AS((void)coio::wait_signal({SIGUSR1, NSIG}), std::invalid_argument);
        CHECK_THROWS_AS((void)coio::wait_signal({SIGUSR1, SIGKILL}), std::invalid_argument);
        CHECK_FALSE(blocked_here(SIGUSR1));  // nothing registered by the failed call
        co_return;
    }());
    loop.close();
    CHECK_THROWS_AS(loop.add_signal_handler(SIGUSR1, [] {}), coio::invalid_state_error);
    CHECK_THROWS_AS((void)coio::wait_signal({SIGUSR1}), coio::invalid_state_error);  // no running loop
}

TEST_CASE("several signals before the loop reads them: standard ones coalesce, real-time ones queue") {
    coio::event_loop loop;
    int usr1 = 0, usr2 = 0, rt = 0;
    loop.add_signal_handler(SIGUSR1, [&] { ++usr1; });
    loop.add_signal_handler(SIGUSR2, [&] { ++usr2; });
    loop.add_signal_handler(SIGRTMIN, [&] { ++rt; });
    // The loop is not running: all of these are pending when it first reads.
    for (int i = 0; i < 3; ++i) {
        REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
        REQUIRE(::kill(::getpid(), SIGRTMIN) == 0);
    }
    REQUIRE(::kill(::getpid(), SIGUSR2) == 0);
    run_until(loop, [&] { return usr1 > 0 && usr2 > 0 && rt >= 3; });
    // Let a late duplicate show up if there were one.
    loop.run_until_complete([]() -> coio::coro<void> { co_await coio::sleep(20ms); }());
    CHECK(usr1 == 1);
    CHECK(usr2 == 1);
    CHECK(rt == 3);
    loop.close();
}

TEST_CASE("an exception from a signal handler goes to the exception handler") {
    coio::event_loop loop;
    std::vector<std::string> reports;
    loop.set_exception_handler([&](coio::event_loop&, const coio::exception_context& ctx) { reports.push_back(ctx.message); });
    loop.add_signal_handler(SIGUSR1, [] { throw std::runtime_error("boom"); });
    REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
    run_until(loop, [&] { return !reports.empty(); });
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "Exception in callback");
    loop.close();
}

TEST_CASE("wait_signal returns the signal that arrived") {
    const int sig = coio::run([]() -> coio::coro<int> {
        auto signals = coio::wait_signal({SIGUSR1, SIGUSR2});
        CHECK(blocked_here(SIGUSR1));
        CHECK(blocked_here(SIGUSR2));
        coio::get_running_loop().call_later(10ms, [] { ::kill(::getpid(), SIGUSR2); });
        const int got = co_await signals;
        CHECK(co_await signals == got);  // awaiting again yields the same number
        co_return got;
    }());
    CHECK(sig == SIGUSR2);
    CHECK_FALSE(blocked_here(SIGUSR1));
    CHECK_FALSE(blocked_here(SIGUSR2));
}

TEST_CASE("wait_signal: a signal sent between the call and the co_await is not lost") {
    const int sig = coio::run([]() -> coio::coro<int> {
        auto signals = coio::wait_signal({SIGUSR1});
        ::kill(::getpid(), SIGUSR1);
        co_await coio::sleep(20ms);  // the loop reads it meanwhile
        co_return co_await signals;
    }());
    CHECK(sig == SIGUSR1);
}

TEST_CASE("wait_signal and a handler of the same signal both see it; the handler keeps it blocked") {
    coio::run([]() -> coio::coro<void> {
        auto& loop = coio::get_running_loop();
        int handled = 0;
        loop.add_signal_handler(SIGUSR1, [&] { ++handled; });
        {
            auto signals = coio::wait_signal({SIGUSR1});
            ::kill(::getpid(), SIGUSR1);
            CHECK(co_await signals == SIGUSR1);
        }
        CHECK(blocked_here(SIGUSR1));  // the handler still uses it
        co_await coio::sleep(5ms);
        CHECK(handled == 1);
        CHECK(loop.remove_signal_handler(SIGUSR1));
        CHECK_FALSE(blocked_here(SIGUSR1));
    }());
}

TEST_CASE("wait_signal is cancellable: the registration is undone") {
    coio::run([]() -> coio::coro<void> {
        auto t = coio::create_task([]() -> coio::coro<int> { co_return co_await coio::wait_signal({SIGUSR1}); }());
        co_await coio::sleep(5ms);
        CHECK(blocked_here(SIGUSR1));
        t.cancel();
        CHECK_THROWS_AS(co_await t, coio::cancelled_error);
        CHECK_FALSE(blocked_here(SIGUSR1));
        // And with a timeout (a cancellation delivered as timeout_error).
        CHECK_THROWS_AS(co_await coio::wait_for(
                            []() -> coio::coro<int> { co_return co_await coio::wait_signal({SIGUSR2}); }(), 10ms),
                        coio::timeout_error);
        CHECK_FALSE(blocked_here(SIGUSR2));
    }());
}

TEST_CASE("to_thread pool threads block the signals: kill(getpid()) reaches the loop") {
    // SIGUSR1 at its default disposition: if the kernel delivered it to a pool thread that
    // does not block it, the process would end here (the bug this guards against: the
    // loop's thread blocks it, so the kernel picks another thread that does not).
    default_disposition dfl(SIGUSR1);
    coio::run([]() -> coio::coro<void> {
        auto& loop = coio::get_running_loop();
        int handled = 0;
        // Pool threads that exist, and sit in a job, while the signals are sent. They start
        // before the handler is added: a thread inherits its creator's mask, so threads
        // started by the loop thread after add_signal_handler would block SIGUSR1 anyway.
        std::atomic<bool> release{false};
        std::atomic<int> started{0};
        std::vector<coio::task<bool>> jobs;
        for (int i = 0; i < 4; ++i) {
            jobs.push_back(coio::create_task(coio::to_thread([&] {
                ++started;
                const bool blocked = blocked_here(SIGUSR1) && blocked_here(SIGTERM) && blocked_here(SIGINT);
                while (!release.load()) std::this_thread::sleep_for(1ms);
                return blocked;
            })));
        }
        for (int i = 0; i < 1000 && started.load() < 4; ++i) co_await coio::sleep(1ms);
        REQUIRE(started.load() == 4);
        loop.add_signal_handler(SIGUSR1, [&] { ++handled; });
        for (int i = 0; i < 20; ++i) {
            REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
            const int before = handled;
            for (int j = 0; j < 1000 && handled == before; ++j) co_await coio::sleep(1ms);
            REQUIRE(handled == before + 1);
        }
        release = true;
        for (auto& j : jobs) CHECK(co_await j);  // each worker started with them blocked
        CHECK(loop.remove_signal_handler(SIGUSR1));
    }());
}

TEST_CASE("closing the loop restores the thread's signal mask") {
    sigset_t usr2, before;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    ::pthread_sigmask(SIG_BLOCK, &usr2, &before);  // the program blocks SIGUSR2 itself
    {
        coio::event_loop loop;
        loop.add_signal_handler(SIGUSR1, [] {});
        loop.add_signal_handler(SIGUSR2, [] {});
        loop.add_signal_handler(SIGHUP, [] {});
        CHECK(blocked_here(SIGUSR1));
        CHECK(loop.remove_signal_handler(SIGUSR2));
        CHECK(blocked_here(SIGUSR2));  // it was blocked before: it stays blocked
        loop.close();
        CHECK_FALSE(blocked_here(SIGUSR1));
        CHECK_FALSE(blocked_here(SIGHUP));
        CHECK(blocked_here(SIGUSR2));
    }
    {
        // The destructor closes too.
        coio::event_loop loop;
        loop.add_signal_handler(SIGUSR1, [] {});
        CHECK(blocked_here(SIGUSR1));
    }
    CHECK_FALSE(blocked_here(SIGUSR1));
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

TEST_CASE("removing a handler discards an instance that arrived but was not dispatched") {
    default_disposition dfl(SIGUSR1);  // would end the process if it were delivered now
    coio::event_loop loop;
    loop.add_signal_handler(SIGUSR1, [] {});
    REQUIRE(::kill(::getpid(), SIGUSR1) == 0);  // pending: the loop has not run
    CHECK(loop.remove_signal_handler(SIGUSR1));
    CHECK_FALSE(blocked_here(SIGUSR1));
    loop.close();
}

TEST_CASE("run_options::cancel_on_signals cancels main and names the signal") {
    default_disposition dfl(SIGUSR1);
    bool saw_cancel = false;
    int signal = 0;
    try {
        coio::run(
            [](bool& saw) -> coio::coro<void> {
                coio::get_running_loop().call_later(10ms, [] { ::kill(::getpid(), SIGUSR1); });
                try {
                    co_await coio::sleep(10s);
                } catch (const coio::cancelled_error&) {
                    saw = true;
                    // The handlers are gone: a second signal would have its default effect.
                    CHECK_FALSE(blocked_here(SIGUSR1));
                    CHECK_FALSE(blocked_here(SIGUSR2));
                    throw;
                }
            }(saw_cancel),
            {.cancel_on_signals = {SIGUSR2, SIGUSR1}});
    } catch (const coio::keyboard_interrupt& e) {
        signal = e.signal();
    }
    CHECK(saw_cancel);
    CHECK(signal == SIGUSR1);
    CHECK_FALSE(blocked_here(SIGUSR1));

    // run_main: 128 + the signal number, as a shell reports it.
    const int status = coio::run_main(
        []() -> coio::coro<void> {
            coio::get_running_loop().call_later(10ms, [] { ::kill(::getpid(), SIGUSR1); });
            co_await coio::sleep(10s);
        }(),
        {.cancel_on_signals = {SIGUSR1}});
    CHECK(status == 128 + SIGUSR1);

    // Main finishing first: no interrupt, the signals are unblocked again.
    CHECK(coio::run([]() -> coio::coro<int> { co_return 7; }(), {.cancel_on_signals = {SIGUSR1, SIGTERM}}) == 7);
    CHECK_FALSE(blocked_here(SIGUSR1));
    CHECK_FALSE(blocked_here(SIGTERM));
}

TEST_CASE("a SIGINT handler takes Ctrl-C from run's own handler while it is installed") {
    default_disposition dfl(SIGINT);  // so that run installs its Ctrl-C handler
    const int r = coio::run([]() -> coio::coro<int> {
        auto& loop = coio::get_running_loop();
        int handled = 0;
        loop.add_signal_handler(SIGINT, [&] { ++handled; });
        ::kill(::getpid(), SIGINT);
        for (int i = 0; i < 1000 && handled == 0; ++i) co_await coio::sleep(1ms);
        CHECK(loop.remove_signal_handler(SIGINT));
        co_return handled;  // main was not cancelled: the handler had the signal
    }());
    CHECK(r == 1);
    // Once removed, run's handler is back: Ctrl-C cancels main again.
    CHECK_THROWS_AS(coio::run([]() -> coio::coro<void> {
                        auto& loop = coio::get_running_loop();
                        loop.add_signal_handler(SIGINT, [] {});
                        CHECK(loop.remove_signal_handler(SIGINT));
                        ::kill(::getpid(), SIGINT);
                        co_await coio::sleep(10s);
                    }()),
                    coio::keyboard_interrupt);
}
