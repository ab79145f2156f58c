// tests/support/counted.hpp - a value that counts its lives, to catch leaks and double frees.
#pragma once

namespace coio_test {

struct counted {
    static inline int alive = 0;
    static inline int constructed = 0;
    int value = 0;
    explicit counted(int v = 0) noexcept : value(v) { ++alive; ++constructed; }
    counted(const counted& o) noexcept : value(o.value) { ++alive; ++constructed; }
    counted(counted&& o) noexcept : value(o.value) { ++alive; ++constructed; }
    counted& operator=(const counted&) = default;
    counted& operator=(counted&&) = default;
    ~counted() { --alive; }
    static void reset() noexcept { alive = 0; constructed = 0; }
};

} // namespace coio_test
