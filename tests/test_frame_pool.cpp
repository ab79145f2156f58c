// Tests of detail::frame_pool, the allocator of every coroutine frame and task state. Under
// AddressSanitizer and ThreadSanitizer the pool is compiled out (COIO_FRAME_POOL is 0, every
// block comes from operator new, so the sanitizers see it): the properties that only the pool
// has are tested in the plain builds, the rest in all of them.
#include <coio/detail/frame_pool.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

using coio::detail::frame_pool;

namespace {

struct allocation {
    unsigned char* p;
    std::size_t size;
};

unsigned char pattern(std::size_t i) { return static_cast<unsigned char>(i * 131 + 7); }

} // namespace

TEST_CASE("pool blocks of every size are distinct, aligned, and keep their contents") {
    std::mt19937 rng(11);
    std::uniform_int_distribution<std::size_t> size_of(1, frame_pool::max_size + 64);  // a few beyond the pool
    for (int round = 0; round < 3; ++round) {
        std::vector<allocation> live;
        for (std::size_t i = 0; i < 5000; ++i) {
            const std::size_t n = size_of(rng);
            auto* p = static_cast<unsigned char*>(frame_pool::allocate(n));
            REQUIRE(reinterpret_cast<std::uintptr_t>(p) % 16 == 0);
            std::memset(p, pattern(i), n);
            live.push_back({p, n});
        }
        bool intact = true;
        for (std::size_t i = 0; i < live.size(); ++i)
            for (std::size_t k = 0; k < live[i].size; ++k) intact = intact && live[i].p[k] == pattern(i);
        CHECK(intact);  // no two blocks overlap
        std::shuffle(live.begin(), live.end(), rng);
        for (const allocation& a : live) frame_pool::deallocate(a.p, a.size);
    }
}

TEST_CASE("pool blocks freed on another thread are neither lost nor handed out twice") {
    constexpr std::size_t n = 2000;
    constexpr std::size_t size = 144;
    std::vector<void*> mine;
    for (std::size_t i = 0; i < n; ++i) mine.push_back(frame_pool::allocate(size));
    std::vector<void*> reused;
    std::thread([&] {
        for (void* p : mine) frame_pool::deallocate(p, size);
        // This thread may hand them out again (they are its foreign blocks now).
        for (std::size_t i = 0; i < n; ++i) reused.push_back(frame_pool::allocate(size));
        for (void* p : reused) std::memset(p, 0x5a, size);
    }).join();
    // The owner keeps allocating: never one of the blocks the other thread holds.
    std::set<void*> held(reused.begin(), reused.end());
    CHECK(held.size() == n);
    std::vector<void*> more;
    for (std::size_t i = 0; i < 2 * n; ++i) more.push_back(frame_pool::allocate(size));
    CHECK(std::none_of(more.begin(), more.end(), [&](void* p) { return held.count(p) != 0; }));
    for (void* p : more) frame_pool::deallocate(p, size);
    for (void* p : reused) frame_pool::deallocate(p, size);  // freed here, after their thread ended
}

#if COIO_FRAME_POOL
TEST_CASE("after frees in random order, a burst of pool blocks comes in ascending addresses") {
    // 100,000 sleeping tasks end in the order of their deadlines; the next burst of tasks
    // must not inherit that order, or every access to a new frame is a cache and TLB miss.
    constexpr std::size_t n = 20000;
    constexpr std::size_t size = 144;
    std::mt19937 rng(5);
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < n; ++i) blocks.push_back(frame_pool::allocate(size));
    std::shuffle(blocks.begin(), blocks.end(), rng);
    for (void* p : blocks) frame_pool::deallocate(p, size);
    blocks.clear();
    for (std::size_t i = 0; i < n; ++i) blocks.push_back(frame_pool::allocate(size));
    // Slabs are 64 KiB: within one, each block must follow the previous one.
    std::size_t ascending = 0;
    std::size_t same_slab = 0;
    for (std::size_t i = 1; i < n; ++i) {
        const auto a = reinterpret_cast<std::uintptr_t>(blocks[i - 1]);
        const auto b = reinterpret_cast<std::uintptr_t>(blocks[i]);
        if ((a >> 16) != (b >> 16)) continue;
        ++same_slab;
        if (b == a + size) ++ascending;
    }
    CHECK(same_slab > n * 9 / 10);
    CHECK(ascending >= same_slab - 2);  // the one block kept aside for reuse may interrupt
    for (void* p : blocks) frame_pool::deallocate(p, size);
}

TEST_CASE("a block freed and allocated again is the same hot block") {
    void* a = frame_pool::allocate(80);
    frame_pool::deallocate(a, 80);
    void* b = frame_pool::allocate(80);
    CHECK(a == b);
    frame_pool::deallocate(b, 80);
}
#endif
