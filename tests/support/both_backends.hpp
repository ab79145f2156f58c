// tests/support/both_backends.hpp - runs a test body once on each backend (io_uring, epoll)
// in the same process, whatever COIO_BACKEND says, with a time limit per run.
#pragma once

#include "catch.hpp"

#include <coio/backend.hpp>
#include <coio/run.hpp>
#include <coio/timeout.hpp>

#include <chrono>

/// Runs `body()` (a coroutine factory) on a fresh loop per backend, `limit` at most each
/// (coio::timeout_error fails the test case).
template <class F>
void on_both_backends(F body, std::chrono::seconds limit = std::chrono::seconds(60)) {
    for (coio::backend b : {coio::backend::io_uring, coio::backend::epoll}) {
        INFO("backend " << coio::to_string(b));
        coio::run([](F f, std::chrono::seconds l) -> coio::coro<void> { co_await coio::wait_for(f(), l); }(body, limit),
                  {.backend = b});
    }
}
