// tests/support/count_allocations.hpp - replaces the global operator new/delete of the test
// executable that includes it, so a test can prove that a code path allocates nothing:
//     coio_test::g_allocs = 0; coio_test::g_count = true; ...; coio_test::g_count = false;
//     CHECK(coio_test::g_allocs == 0);
// Include it from exactly one file per executable (the replacements are program-wide).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace coio_test {
inline bool g_count = false;  // count allocations while true
inline long g_allocs = 0;     // allocations counted
[[gnu::noinline]] inline void* counted_alloc(std::size_t n) {
    if (g_count) ++g_allocs;
    return std::malloc(n == 0 ? 1 : n);
}
[[gnu::noinline]] inline void counted_free(void* p) noexcept { std::free(p); }
} // namespace coio_test

void* operator new(std::size_t n) {
    if (void* p = coio_test::counted_alloc(n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    if (void* p = coio_test::counted_alloc(n)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return coio_test::counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return coio_test::counted_alloc(n); }
void operator delete(void* p) noexcept { coio_test::counted_free(p); }
void operator delete[](void* p) noexcept { coio_test::counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { coio_test::counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { coio_test::counted_free(p); }
