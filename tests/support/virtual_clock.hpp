// tests/support/virtual_clock.hpp - run options for tests whose timing is only timers: under a
// virtual clock their sleeps and deadlines pass at once, in the same order (see
// coio::clock_kind), so they take no real time and no scheduling delay can reorder them.
#pragma once

#include <coio/loop.hpp>

namespace coio_test {
/// `coio::run(body(), coio_test::virtual_clock());`
inline coio::run_options virtual_clock() {
    coio::run_options o;
    o.clock = coio::clock_kind::virtual_time;
    return o;
}
} // namespace coio_test
