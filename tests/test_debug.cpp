// tests/test_debug.cpp - debug mode (loop_options::debug, COIO_DEBUG) and the task dump on a
// signal (loop_options::dump_signal, COIO_DUMP_SIGNAL): slow steps and callbacks, coros
// never awaited, tasks pending at close, demangled "never retrieved" reports.
// ctest-labels: serial
//
// Never-awaited reports and call stacks need COIO_INTROSPECTION, off by default in Release.
#define COIO_INTROSPECTION 1
#include <coio/call_graph.hpp>

#include "support/catch.hpp"

#include <coio/loop.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// Redirects fd 2 to a temporary file while alive; text() reads what was written.
class capture_stderr {
public:
    capture_stderr() {
        char path[] = "/tmp/coio_test_debug_XXXXXX";
        fd_ = ::mkstemp(path);
        REQUIRE(fd_ >= 0);
        ::unlink(path);
        std::fflush(stderr);
        saved_ = ::dup(2);
        ::dup2(fd_, 2);
    }
    ~capture_stderr() { restore(); ::close(fd_); }
    std::string text() {
        restore();
        return peek();
    }
    /// What was written so far, still capturing.
    std::string peek() const {
        std::string out;
        char buf[4096];
        ssize_t n;
        for (off_t at = 0; (n = ::pread(fd_, buf, sizeof buf, at)) > 0; at += n) out.append(buf, static_cast<std::size_t>(n));
        return out;
    }

private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }
    int fd_ = -1;
    int saved_ = -1;
};

struct reports {
    std::vector<coio::exception_context> seen;
    void install(coio::event_loop& loop) {
        loop.set_exception_handler([this](coio::event_loop&, const coio::exception_context& c) { seen.push_back(c); });
    }
    [[nodiscard]] std::string all() const {
        std::string s;
        for (const auto& c : seen) s += c.message + "\n";
        return s;
    }
};

coio::coro<void> sleeper() { co_await coio::sleep(10s); }

coio::coro<void> slow_step() {
    std::this_thread::sleep_for(60ms);  // blocks the loop: what debug mode is for
    co_await coio::sleep(10s);
}

coio::coro<int> never_run() { co_return 1; }

} // namespace

TEST_CASE("debug mode: a slow task step is reported with the task and where it is now") {
    coio::event_loop loop({.debug = true, .slow_callback_duration = 30ms});
    reports r;
    r.install(loop);
    loop.run_until_complete([]() -> coio::coro<void> {
        auto t = coio::create_task(slow_step(), "slowpoke");
        co_await coio::sleep(100ms);
        t.cancel();
        co_await coio::sleep(1ms);
    }());
    const std::string s = r.all();
    INFO(s);
    CHECK(contains(s, "Executing task 'slowpoke' took 0.0"));
    CHECK(contains(s, "; now waiting on sleep in slow_step() at "));
    CHECK(contains(s, "test_debug.cpp:"));
    REQUIRE(!r.seen.empty());
    CHECK(r.seen[0].task_name == "slowpoke");
}

TEST_CASE("debug mode: a slow callback is reported; fast ones and non-debug loops are not") {
    reports r;
    {
        coio::event_loop loop({.debug = true, .slow_callback_duration = 30ms});
        r.install(loop);
        loop.call_soon([] { std::this_thread::sleep_for(50ms); });
        loop.call_soon([] {});
        loop.run_until_complete([]() -> coio::coro<void> { co_await coio::sleep(1ms); }());
    }
    REQUIRE(r.seen.size() == 1);
    CHECK(r.seen[0].message.rfind("Executing a callback took 0.0", 0) == 0);
    reports quiet;
    {
        coio::event_loop loop({.slow_callback_duration = 30ms});
        quiet.install(loop);
        loop.call_soon([] { std::this_thread::sleep_for(50ms); });
        loop.run_until_complete([]() -> coio::coro<void> { co_await coio::sleep(1ms); }());
    }
    CHECK(quiet.seen.empty());
}

TEST_CASE("debug mode: a coro destroyed without ever being awaited is reported with its site") {
    coio::event_loop loop({.debug = true});
    reports r;
    r.install(loop);
    loop.run_until_complete([]() -> coio::coro<void> {
        { auto c = never_run(); }
        co_await never_run();  // awaited: not reported
        co_return;
    }());
    REQUIRE(r.seen.size() == 1);
    CHECK(contains(r.seen[0].message, "coroutine 'never_run' created at "));
    CHECK(contains(r.seen[0].message, "test_debug.cpp:"));
    CHECK(contains(r.seen[0].message, "was destroyed without ever being awaited"));

    coio::event_loop plain;
    reports none;
    none.install(plain);
    plain.run_until_complete([]() -> coio::coro<void> {
        { auto c = never_run(); }
        co_return;
    }());
    CHECK(none.seen.empty());
}

TEST_CASE("debug mode: tasks still pending at close are reported with their call graphs") {
    reports r;
    {
        coio::event_loop loop({.debug = true});
        r.install(loop);
        loop.run_until_complete([]() -> coio::coro<void> {
            (void)coio::create_task(sleeper(), "left-behind");
            co_await coio::sleep(1ms);
        }());
        loop.close();
    }
    REQUIRE(r.seen.size() == 1);
    CHECK(r.seen[0].task_name == "left-behind");
    CHECK(contains(r.seen[0].message, "Task was still pending when the loop closed"));
    CHECK(contains(r.seen[0].message, "* Task(name='left-behind'"));
    CHECK(contains(r.seen[0].message, "+ Waiting on: sleep"));
    CHECK(contains(r.seen[0].message, "in async sleeper()"));
}

TEST_CASE("debug mode: COIO_DEBUG=1 turns it on") {
    ::setenv("COIO_DEBUG", "1", 1);
    coio::event_loop on;
    ::unsetenv("COIO_DEBUG");
    coio::event_loop off;
    CHECK(on.options().debug);
    CHECK_FALSE(off.options().debug);
}

TEST_CASE("never retrieved: the default handler names the exception type demangled") {
    capture_stderr err;
    coio::run([]() -> coio::coro<void> {
        (void)coio::create_task([]() -> coio::coro<void> {
            throw std::runtime_error("forgotten");
            co_return;
        }());
        co_await coio::sleep(1ms);
    }());
    const std::string s = err.text();
    INFO(s);
    CHECK(contains(s, "Task exception was never retrieved"));
    CHECK(contains(s, ": std::runtime_error: forgotten"));
    CHECK_FALSE(contains(s, "St13runtime_error"));
}

TEST_CASE("dump signal: SIGUSR1 makes the loop print the task tree to stderr") {
    capture_stderr err;
    coio::run([](capture_stderr& err) -> coio::coro<void> {
        auto t = coio::create_task(sleeper(), "hung");
        co_await coio::sleep(1ms);
        REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
        // The dump comes from a loop iteration soon after; bounded wait, no fixed sleep.
        for (int i = 0; i < 500 && !contains(err.peek(), "pending task"); ++i) co_await coio::sleep(2ms);
        t.cancel();
    }(err), {.dump_signal = SIGUSR1});
    const std::string s = err.text();
    INFO(s);
    CHECK(contains(s, "coio: 2 pending tasks\n"));
    CHECK(contains(s, "(T) task 'hung' id="));
    CHECK(contains(s, "waiting on sleep"));
    CHECK(contains(s, "    sleeper() "));
}

TEST_CASE("dump signal: COIO_DUMP_SIGNAL=USR2 installs it without changing the program") {
    ::setenv("COIO_DUMP_SIGNAL", "USR2", 1);
    capture_stderr err;
    coio::run([](capture_stderr& err) -> coio::coro<void> {
        CHECK(coio::get_running_loop().options().dump_signal == SIGUSR2);
        auto t = coio::create_task(sleeper(), "hung2");
        co_await coio::sleep(1ms);
        REQUIRE(::kill(::getpid(), SIGUSR2) == 0);
        // The dump comes from a loop iteration soon after; bounded wait, no fixed sleep.
        for (int i = 0; i < 500 && !contains(err.peek(), "pending task"); ++i) co_await coio::sleep(2ms);
        t.cancel();
    }(err));
    ::unsetenv("COIO_DUMP_SIGNAL");
    const std::string s = err.text();
    INFO(s);
    CHECK(contains(s, "(T) task 'hung2' id="));
}

TEST_CASE("dump signal: a signal a loop cannot handle is refused by the constructor; a bad name is ignored") {
    CHECK_THROWS_AS(coio::event_loop({.dump_signal = SIGKILL}), std::invalid_argument);
    ::setenv("COIO_DUMP_SIGNAL", "NOSUCHSIGNAL", 1);
    coio::event_loop loop;
    ::unsetenv("COIO_DUMP_SIGNAL");
    CHECK(loop.options().dump_signal == 0);
}
