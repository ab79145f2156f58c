// tests/support/after.hpp - the coroutine most core tests build on: `after(d, v)` sleeps for
// `d`, then returns `v`.
#pragma once

#include <coio/coro.hpp>
#include <coio/sleep.hpp>

#include <chrono>

namespace coio_test {
inline coio::coro<int> after(std::chrono::milliseconds d, int v) {
    co_await coio::sleep(d);
    co_return v;
}
} // namespace coio_test
