// tests/support/co_check.hpp - CHECK/REQUIRE for expressions that co_await.
//
// Catch2's CHECK(expr) repeats `expr` in a never-executed `false && (expr)`; g++ 12 still runs
// a co_await found there, so the awaitable is awaited twice. These macros evaluate the
// expression exactly once, then check the result (the expression text is printed on failure).
#pragma once

#include "support/catch.hpp"

#define CO_CHECK(...)                                              \
    do {                                                           \
        const bool coio_check_ok_ = static_cast<bool>(__VA_ARGS__); \
        INFO(#__VA_ARGS__);                                        \
        CHECK(coio_check_ok_);                                     \
    } while (0)

#define CO_REQUIRE(...)                                            \
    do {                                                           \
        const bool coio_check_ok_ = static_cast<bool>(__VA_ARGS__); \
        INFO(#__VA_ARGS__);                                        \
        REQUIRE(coio_check_ok_);                                   \
    } while (0)
