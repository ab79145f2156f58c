#include <coio/run.hpp>

#include "support/catch.hpp"

#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <csignal>
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
