#include <coio/run.hpp>

#include "support/catch.hpp"

#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <csignal>
#include <cstdio>
#include <unistd.h>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("run returns main's result or rethrows its exception") {
    CHECK(coio::run([]() -> coio::coro<int> { co_return 5; }()) == 5);
    CHECK_THROWS_WITH(coio::run([]() -> coio::coro<void> {
                          co_await coio::sleep(1ms);
                          throw std::runtime_error("main failed");
                      }()),
                      "main failed");
    coio::run([]() -> coio::coro<void> { co_return; }(), {.entries = 64});
}

TEST_CASE("run inside a running loop is invalid_state_error") {
    coio::run([]() -> coio::coro<void> {
        CHECK_THROWS_AS(coio::run([]() -> coio::coro<void> { co_return; }()), coio::invalid_state_error);
        co_return;
    }());
}

TEST_CASE("run cancels the tasks still pending when main returns and waits for them") {
    std::vector<std::string> events;
    coio::run([](std::vector<std::string>& events) -> coio::coro<void> {
        for (int i = 0; i < 3; ++i)
            coio::create_task([](std::vector<std::string>& events, int i) -> coio::coro<void> {
                bool cancelled = false;
                try {
                    co_await coio::sleep(10s);
                } catch (const coio::cancelled_error&) {
                    cancelled = true;
                }
                if (cancelled) {
                    co_await coio::sleep(1ms);  // cleanup may still await
                    events.push_back("cleaned " + std::to_string(i));
                    throw coio::cancelled_error();
                }
            }(events, i));
        co_await coio::sleep(1ms);
    }(events));
    CHECK(events == std::vector<std::string>{"cleaned 0", "cleaned 1", "cleaned 2"});
}

TEST_CASE("an exception nobody retrieved is reported at shutdown, not dropped") {
    std::vector<std::string> reports;
    coio::run([](std::vector<std::string>& reports) -> coio::coro<void> {
        coio::get_running_loop().set_exception_handler(
            [&reports](coio::event_loop&, const coio::exception_context& ctx) { reports.push_back(ctx.message); });
        coio::create_task([]() -> coio::coro<void> {
            try {
                co_await coio::sleep(10s);
            } catch (const coio::cancelled_error&) {
                throw std::runtime_error("failed while cancelled");
            }
        }());
        co_await coio::sleep(1ms);
    }(reports));
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "Task exception was never retrieved");
}

TEST_CASE("Ctrl-C cancels main and run throws keyboard_interrupt") {
    // Catch2 installs its own SIGINT handler; coio only takes over a default disposition.
    struct sigaction saved {};
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGINT, &dfl, &saved);
    bool main_saw_cancel = false;
    CHECK_THROWS_AS(coio::run([](bool& saw) -> coio::coro<void> {
                        coio::get_running_loop().call_later(10ms, [] { std::raise(SIGINT); });
                        try {
                            co_await coio::sleep(10s);
                        } catch (const coio::cancelled_error&) {
                            saw = true;
                            throw;
                        }
                    }(main_saw_cancel)),
                    coio::keyboard_interrupt);
    CHECK(main_saw_cancel);
    struct sigaction now {};
    ::sigaction(SIGINT, &saved, &now);
    CHECK(now.sa_handler == SIG_DFL);  // coio restored the disposition it found
}

namespace {

/// Runs `f` with stderr redirected into a temporary file and returns what it wrote.
template <class F>
std::string capture_stderr(F&& f) {
    std::fflush(stderr);
    std::FILE* tmp = std::tmpfile();
    REQUIRE(tmp);
    const int saved = ::dup(STDERR_FILENO);
    ::dup2(::fileno(tmp), STDERR_FILENO);
    f();
    std::fflush(stderr);
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    std::rewind(tmp);
    std::string text;
    char buf[512];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, tmp)) > 0;) text.append(buf, n);
    std::fclose(tmp);
    return text;
}

struct not_a_std_exception {};

}  // namespace

TEST_CASE("run_main returns main's int, or 0 for other results") {
    CHECK(coio::run_main([]() -> coio::coro<int> { co_return 7; }()) == 7);
    CHECK(coio::run_main([]() -> coio::coro<void> { co_return; }()) == 0);
    CHECK(coio::run_main([]() -> coio::coro<std::string> { co_return "ignored"; }()) == 0);
}

TEST_CASE("run_main prints an uncaught exception's demangled type and message and returns 1") {
    int status = -1;
    std::string err = capture_stderr([&] {
        status = coio::run_main([]() -> coio::coro<void> {
            co_await coio::sleep(1ms);
            throw std::invalid_argument("bad input");
        }());
    });
    CHECK(status == 1);
    CHECK(err == "std::invalid_argument: bad input\n");

    err = capture_stderr([&] {
        status = coio::run_main([]() -> coio::coro<int> {
            throw not_a_std_exception{};
            co_return 0;
        }());
    });
    CHECK(status == 1);
    CHECK(err == "(anonymous namespace)::not_a_std_exception: (not a std::exception)\n");

    err = capture_stderr([&] {
        status = coio::run_main([]() -> coio::coro<void> {
            coio::current_task().cancel();
            co_await coio::sleep(1ms);
        }());
    });
    CHECK(status == 1);
    CHECK(err == "coio::cancelled_error: task cancelled\n");
}

TEST_CASE("run_main returns 130 after Ctrl-C, quietly, with stdout flushed") {
    struct sigaction saved {};
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGINT, &dfl, &saved);
    int status = -1;
    bool cleaned_up = false;
    const std::string err = capture_stderr([&] {
        status = coio::run_main([](bool& cleaned) -> coio::coro<void> {
            coio::get_running_loop().call_later(10ms, [] { std::raise(SIGINT); });
            try {
                co_await coio::sleep(10s);
            } catch (const coio::cancelled_error&) {
                cleaned = true;
                throw;
            }
        }(cleaned_up));
    });
    ::sigaction(SIGINT, &saved, nullptr);
    CHECK(status == 130);
    CHECK(status == coio::exit_status_interrupted);
    CHECK(cleaned_up);
    CHECK(err.empty());
}
