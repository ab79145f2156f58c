// coio/detail/frame_pool.hpp - the allocator of coroutine frames and task states. Not API.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COIO_FRAME_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define COIO_FRAME_POOL 0
#endif
#endif
#ifndef COIO_FRAME_POOL
#define COIO_FRAME_POOL 1
#endif

namespace coio::detail {

/// Recycles coroutine frames and task states, per thread, in 16-byte size classes up to 512
/// bytes. Disabled under AddressSanitizer and ThreadSanitizer, so that they see every
/// allocation. Measured on spawn+gather of a million tasks: malloc's free/consolidate work
/// was a quarter of the time, and its per-block headers a fifth of the memory.
///
/// Blocks live in 64 KiB slabs (64 KiB-aligned, so a block finds its slab by masking its
/// address), each with a bitmap of its free blocks. A slab hands out its lowest free block:
/// a burst of new tasks gets ascending addresses, whatever order earlier tasks ended in.
/// A plain free list would hand blocks back in the order they were freed; 100,000 sleeping
/// tasks end in the (random) order of their deadlines, and the next 100,000 then got frames
/// scattered over 30 MB: creating and first running them took 35 ms instead of 13 ms
/// (benchmarks/core/bench_timers, second round), nearly every access a cache and TLB miss.
/// One block per size class is kept aside, last freed first allocated, so that a coroutine
/// awaited in a loop reuses one hot frame without touching a bitmap.
///
/// Memory is reserved 4 MiB at a time and faulted in a slab at a time (MADV_POPULATE_WRITE:
/// one system call instead of 16 page faults; a first touch costs ~1.35 us per page here).
/// Slabs are kept for the life of the process, as Seastar's allocator keeps its memory. A
/// block freed on a thread that does not own its slab stays with that thread (a per-class
/// list of foreign blocks it allocates from when its own slab runs out): no slab bitmap is
/// touched by two threads. Blocks a thread still holds aside when it exits are not reused.
class frame_pool {
public:
    static constexpr std::size_t granularity = 16;
    static constexpr std::size_t max_size = 512;

    // The fast paths are forced inline (clang otherwise calls them out of line from every
    // coroutine ramp); the slow paths are kept out of line.
    [[gnu::always_inline]] static void* allocate(std::size_t n) {
#if COIO_FRAME_POOL
        if (n <= max_size) {
            frame_pool& p = local();
            const std::size_t c = (n - 1) / granularity;
            if (void* b = std::exchange(p.hot_[c], nullptr)) return b;
            if (slab* s = p.current_[c]; s && s->free_blocks) return s->take();
            return p.allocate_slow(c);
        }
#endif
        return ::operator new(n);
    }
    [[gnu::always_inline]] static void deallocate(void* ptr, [[maybe_unused]] std::size_t n) noexcept {
#if COIO_FRAME_POOL
        if (n <= max_size) {
            frame_pool& p = local();
            const std::size_t c = (n - 1) / granularity;
            if (void* older = std::exchange(p.hot_[c], ptr)) p.release(c, older);
            return;
        }
#endif
        ::operator delete(ptr);  // unsized: clang 14 does not declare sized delete by default
    }

private:
    static constexpr std::size_t classes = max_size / granularity;
    static constexpr std::size_t slab_bytes = 64 * 1024;
    static constexpr std::size_t arena_bytes = 4 * 1024 * 1024;
    static constexpr std::size_t max_blocks = slab_bytes / granularity;

    struct block {
        block* next;
    };

    /// A slab's header, at its start; the blocks follow it.
    struct slab {
        std::uint64_t owner;       // the owning pool's id
        slab* next_partial;        // link in the owner's list of slabs with free blocks
        std::uint32_t size;        // block size
        std::uint32_t inverse;     // ceil(2^32 / size): block index by multiplication
        std::uint32_t free_blocks;
        std::uint32_t cursor;      // no free block below word `cursor` of the bitmap
        bool listed;               // current, or on the partial list
        std::uint64_t bits[max_blocks / 64];  // 1 = free

        [[nodiscard]] unsigned char* first() noexcept { return reinterpret_cast<unsigned char*>(this) + header_bytes; }
        static slab* of(void* p) noexcept {
            return reinterpret_cast<slab*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{slab_bytes - 1});
        }
        /// The lowest free block. Precondition: free_blocks > 0.
        void* take() noexcept {
            std::uint32_t w = cursor;
            while (bits[w] == 0) ++w;
            const auto bit = static_cast<std::uint32_t>(__builtin_ctzll(bits[w]));
            bits[w] &= bits[w] - 1;
            cursor = w;
            --free_blocks;
            return first() + (std::size_t{w} * 64 + bit) * size;
        }
        void give(void* p) noexcept {
            // Exact: offsets are multiples of size below 2^16, so the rounding error of
            // `inverse` stays below 2^32 / 2^16 of one.
            const auto offset = static_cast<std::uint64_t>(static_cast<unsigned char*>(p) - first());
            const auto index = static_cast<std::uint32_t>((offset * inverse) >> 32);
            bits[index / 64] |= std::uint64_t{1} << (index % 64);
            if (index / 64 < cursor) cursor = index / 64;
            ++free_blocks;
        }
    };
    /// The header rounded up to a cache line: blocks start on one.
    static constexpr std::size_t header_bytes = (sizeof(slab) + 63) / 64 * 64;

    static frame_pool& local() noexcept {
        static thread_local frame_pool pool;  // constant-initialized: no TLS guard on access
        return pool;
    }

    /// A block goes back to its slab, or to the foreign list if another thread owns the slab.
    [[gnu::noinline]] void release(std::size_t c, void* p) noexcept {
        slab* s = slab::of(p);
        if (s->owner != id_) [[unlikely]] {  // owners are never 0: a thread without slabs owns none
            auto* b = static_cast<block*>(p);
            b->next = foreign_[c];
            foreign_[c] = b;
            return;
        }
        s->give(p);
        if (!s->listed) {
            s->listed = true;
            s->next_partial = partial_[c];
            partial_[c] = s;
        }
    }

    /// The current slab of class c is exhausted (or there is none): a foreign block, else the
    /// next slab with free blocks, else a new slab.
    [[gnu::noinline]] void* allocate_slow(std::size_t c) {
        if (block* b = foreign_[c]) {
            foreign_[c] = b->next;
            return b;
        }
        if (slab* s = current_[c]) s->listed = false;  // exhausted: listed again by its next free
        slab* s = partial_[c];
        if (s) partial_[c] = s->next_partial;
        else s = new_slab(c);
        current_[c] = s;
        return s->take();
    }

    slab* new_slab(std::size_t c) {
        if (id_ == 0) id_ = next_id().fetch_add(1, std::memory_order_relaxed) + 1;
        if (arena_next_ == arena_end_) {
            // Reserve an arena with room to align its start to a slab boundary.
            void* m = ::mmap(nullptr, arena_bytes + slab_bytes, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (m == MAP_FAILED) throw std::bad_alloc();
            const auto start = (reinterpret_cast<std::uintptr_t>(m) + slab_bytes - 1) & ~std::uintptr_t{slab_bytes - 1};
            arena_next_ = reinterpret_cast<unsigned char*>(start);
            arena_end_ = arena_next_ + arena_bytes;
        }
        unsigned char* mem = arena_next_;
        arena_next_ += slab_bytes;
#ifdef MADV_POPULATE_WRITE
        (void)::madvise(mem, slab_bytes, MADV_POPULATE_WRITE);  // kernels before 5.14: page faults instead
#endif
        auto* s = ::new (mem) slab{};
        s->owner = id_;
        s->size = static_cast<std::uint32_t>((c + 1) * granularity);
        s->inverse = static_cast<std::uint32_t>(((std::uint64_t{1} << 32) + s->size - 1) / s->size);
        const std::size_t count = (slab_bytes - header_bytes) / s->size;
        s->free_blocks = static_cast<std::uint32_t>(count);
        for (std::size_t i = 0; i < count / 64; ++i) s->bits[i] = ~std::uint64_t{0};
        if (count % 64) s->bits[count / 64] = (std::uint64_t{1} << (count % 64)) - 1;
        s->listed = true;
        return s;
    }

    static std::atomic<std::uint64_t>& next_id() noexcept {
        static std::atomic<std::uint64_t> id{0};
        return id;
    }

    void* hot_[classes] = {};         // the last block freed, per class
    slab* current_[classes] = {};     // where blocks come from
    slab* partial_[classes] = {};     // other own slabs with free blocks
    block* foreign_[classes] = {};    // blocks of other threads' slabs freed here
    unsigned char* arena_next_ = nullptr;
    unsigned char* arena_end_ = nullptr;
    std::uint64_t id_ = 0;            // 0 until this thread makes its first slab
};

} // namespace coio::detail
