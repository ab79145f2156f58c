// coio/detail/core.hpp - the intrusive building blocks every other header stands on.
//
// Not API. Contracts:
//  * A loop is single-threaded: nothing here is atomic.
//  * Scheduling never allocates: a work_item is linked into the ready queue in place.
//  * A task suspended on an awaitable records the handle to resume (resume_at) and the
//    awaitable's cancel_hook; waking it pushes the task itself onto the ready queue.
#pragma once

#include <sys/mman.h>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

// Symmetric transfer (await_suspend returning the next coroutine's handle) only avoids stack
// growth when the compiler turns the resume into a tail call. Clang always does; GCC 12 does
// only with sibling-call optimisation (-O2 and up) and never under AddressSanitizer. Elsewhere
// coio uses a trampoline: the handle goes to a thread-local slot and the loop's resume site
// resumes it, which keeps the stack flat at some cost per transfer. Define
// COIO_SYMMETRIC_TRANSFER to 0 or 1 to override (GCC at -O1 needs 0).
#ifndef COIO_SYMMETRIC_TRANSFER
#if defined(__clang__)
#define COIO_SYMMETRIC_TRANSFER 1
#elif defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__NO_INLINE__)
#define COIO_SYMMETRIC_TRANSFER 1
#else
#define COIO_SYMMETRIC_TRANSFER 0
#endif
#endif

namespace coio {

class event_loop;

/// Where something was created (file and line), captured by default arguments. std's
/// <source_location> is unusable with clang 14 over libstdc++ 12, so coio has its own.
struct source_location {
    /// The caller's location.
    static constexpr source_location current(const char* file = __builtin_FILE(),
                                             unsigned line = __builtin_LINE()) noexcept {
        return source_location(file, line);
    }
    constexpr source_location() noexcept = default;
    constexpr source_location(const char* file, unsigned line) noexcept : file_(file), line_(line) {}
    /// The file name.
    [[nodiscard]] constexpr const char* file_name() const noexcept { return file_; }
    /// The line number.
    [[nodiscard]] constexpr unsigned line() const noexcept { return line_; }

private:
    const char* file_ = "";
    unsigned line_ = 0;
};

/// The loop's clock: monotonic, as asyncio's `loop.time()`.
using clock = std::chrono::steady_clock;

namespace detail {

#if !COIO_SYMMETRIC_TRANSFER
inline thread_local std::coroutine_handle<> trampoline_next;
#endif

/// What await_suspend returns to pass control to `h`: `h` itself (symmetric transfer), or,
/// where the compiler cannot make that a tail call, noop after parking `h` for resume().
inline std::coroutine_handle<> transfer(std::coroutine_handle<> h) noexcept {
#if COIO_SYMMETRIC_TRANSFER
    return h;
#else
    trampoline_next = h;
    return std::noop_coroutine();
#endif
}

/// Resumes `h` and every coroutine control is transferred to after it, until one suspends
/// for real. The only way coio resumes a coroutine.
inline void resume(std::coroutine_handle<> h) noexcept {
    h.resume();
#if !COIO_SYMMETRIC_TRANSFER
    while (trampoline_next) std::exchange(trampoline_next, nullptr).resume();
#endif
}

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

/// Recycles coroutine frames and task states: a thread-local free list per 16-byte size
/// class, refilled from 64 KiB slabs. Measured on spawn+gather of a million tasks: malloc's
/// free/consolidate work was a quarter of the time, and its per-block headers a fifth of the
/// memory. Slabs are kept for the life of the process (a block freed on another thread joins
/// that thread's list, so no slab can be returned safely); the pool holds the peak, as
/// Seastar's allocator does. Disabled under AddressSanitizer and ThreadSanitizer, so they
/// see every allocation.
///
/// A slab is mapped with MAP_POPULATE: carving it writes into every block at once anyway, and
/// one system call that faults in all 16 pages is cheaper than 16 page faults (100,000 new
/// sleeping tasks: about 2 ms of 25 sooner; a first touch costs ~1.35 us per page here).
class frame_pool {
public:
    static constexpr std::size_t granularity = 16;
    static constexpr std::size_t max_size = 512;

    static void* allocate(std::size_t n) {
#if COIO_FRAME_POOL
        if (n <= max_size) {
            frame_pool& p = local();
            const std::size_t c = (n - 1) / granularity;
            if (block* b = p.free_[c]) {
                p.free_[c] = b->next;
                return b;
            }
            return p.refill(c);
        }
#endif
        return ::operator new(n);
    }
    static void deallocate(void* ptr, [[maybe_unused]] std::size_t n) noexcept {
#if COIO_FRAME_POOL
        if (n <= max_size) {
            frame_pool& p = local();
            const std::size_t c = (n - 1) / granularity;
            auto* b = static_cast<block*>(ptr);
            b->next = p.free_[c];
            p.free_[c] = b;
            return;
        }
#endif
        ::operator delete(ptr);  // unsized: clang 14 does not declare sized delete by default
    }

private:
    struct block {
        block* next;
    };
    static constexpr std::size_t slab_bytes = 64 * 1024;

    static frame_pool& local() noexcept {
        static thread_local frame_pool pool;
        return pool;
    }
    void* refill(std::size_t c) {
        const std::size_t size = (c + 1) * granularity;
        void* slab = ::mmap(nullptr, slab_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (slab == MAP_FAILED) throw std::bad_alloc();
        auto* bytes = static_cast<unsigned char*>(slab);
        const std::size_t count = slab_bytes / size;
        for (std::size_t i = count - 1; i > 0; --i) {  // blocks 1..count-1 to the free list
            auto* b = reinterpret_cast<block*>(bytes + i * size);
            b->next = free_[c];
            free_[c] = b;
        }
        return bytes;  // block 0 to the caller
    }

    block* free_[max_size / granularity] = {};
};

/// A unit of work on the ready queue. `run` is a plain function pointer: resuming a task or
/// running a callback costs one indirect call, never a std::function.
struct work_item {
    work_item* next_ready = nullptr;
    void (*run)(work_item*) noexcept = nullptr;
};

/// Intrusive FIFO of work items.
class ready_queue {
public:
    void push(work_item* w) noexcept {
        w->next_ready = nullptr;
        if (tail_) tail_->next_ready = w; else head_ = w;
        tail_ = w;
        ++size_;
    }
    work_item* pop() noexcept {
        work_item* w = head_;
        head_ = w->next_ready;
        if (!head_) tail_ = nullptr;
        --size_;
        return w;
    }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    work_item* head_ = nullptr;
    work_item* tail_ = nullptr;
    std::size_t size_ = 0;
};

/// What an awaitable registers with its task while suspended, so that `task.cancel()` can
/// reach it. `what` names the wait for debugging dumps ("sleep", "uring op", ...).
struct cancel_hook {
    void (*on_cancel)(cancel_hook*) noexcept = nullptr;
    const char* what = "?";
};

/// A deadline in the loop's userspace timer heap.
struct timer_node {
    static constexpr std::size_t not_queued = std::numeric_limits<std::size_t>::max();
    clock::time_point deadline{};
    std::size_t heap_index = not_queued;     // position in the heap: O(log n) removal
    void (*on_expire)(timer_node*) noexcept = nullptr;

    [[nodiscard]] bool queued() const noexcept { return heap_index != not_queued; }
};

/// Binary min-heap of timer nodes with back-indices, so cancel is O(log n) and there is no
/// kernel timeout per sleep: the loop waits in the kernel once, until the earliest deadline.
/// Each entry carries its deadline and sequence number, so sifting compares within the array
/// instead of loading every node from its (scattered) coroutine frame: with 100,000 sleeps,
/// those loads were most of the heap's cost.
class timer_heap {
public:
    void push(timer_node* n) {
        n->heap_index = heap_.size();
        heap_.push_back(entry{n->deadline, next_seq_++, n});  // the order lives in the heap only
        sift_up(n->heap_index);
    }
    void remove(timer_node* n) noexcept {
        std::size_t i = n->heap_index;
        n->heap_index = timer_node::not_queued;
        entry last = heap_.back();
        heap_.pop_back();
        if (last.node == n) return;
        heap_[i] = last;
        last.node->heap_index = i;
        if (i > 0 && less(last, heap_[(i - 1) / 2])) sift_up(i); else sift_down(i);
    }
    [[nodiscard]] timer_node* top() const noexcept { return heap_.empty() ? nullptr : heap_.front().node; }
    [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }

private:
    struct entry {
        clock::time_point deadline;
        std::uint64_t seq;  // FIFO among equal deadlines
        timer_node* node;
    };
    static bool less(const entry& a, const entry& b) noexcept {
        return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
    }
    void place(std::size_t i, const entry& e) noexcept {
        heap_[i] = e;
        e.node->heap_index = i;
    }
    void sift_up(std::size_t i) noexcept {
        const entry e = heap_[i];
        while (i > 0) {
            std::size_t parent = (i - 1) / 2;
            if (!less(e, heap_[parent])) break;
            place(i, heap_[parent]);
            i = parent;
        }
        place(i, e);
    }
    void sift_down(std::size_t i) noexcept {
        const entry e = heap_[i];
        const std::size_t size = heap_.size();
        for (;;) {
            std::size_t child = 2 * i + 1;
            if (child >= size) break;
            if (child + 1 < size && less(heap_[child + 1], heap_[child])) ++child;
            if (!less(heap_[child], e)) break;
            place(i, heap_[child]);
            i = child;
        }
        place(i, e);
    }

    /// A growable array of trivially copyable entries that grows with realloc: for a large
    /// heap glibc moves the pages (mremap) instead of copying them into freshly faulted
    /// memory, which std::vector's allocate-copy-free growth costs (100,000 sleeps: 1,200
    /// page faults less).
    class entry_array {
    public:
        entry_array() noexcept = default;
        entry_array(const entry_array&) = delete;
        entry_array& operator=(const entry_array&) = delete;
        ~entry_array() { std::free(data_); }

        void push_back(const entry& e) {
            if (size_ == cap_) grow();
            data_[size_++] = e;
        }
        void pop_back() noexcept { --size_; }
        [[nodiscard]] entry& operator[](std::size_t i) noexcept { return data_[i]; }
        [[nodiscard]] const entry& operator[](std::size_t i) const noexcept { return data_[i]; }
        [[nodiscard]] const entry& front() const noexcept { return data_[0]; }
        [[nodiscard]] entry& back() noexcept { return data_[size_ - 1]; }
        [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
        [[nodiscard]] std::size_t size() const noexcept { return size_; }

    private:
        void grow() {
            const std::size_t cap = cap_ ? 2 * cap_ : 64;
            void* p = std::realloc(data_, cap * sizeof(entry));
            if (!p) throw std::bad_alloc();
            data_ = static_cast<entry*>(p);
            cap_ = cap;
        }
        entry* data_ = nullptr;
        std::size_t size_ = 0;
        std::size_t cap_ = 0;
    };
    static_assert(std::is_trivially_copyable_v<entry>);

    entry_array heap_;
    std::uint64_t next_seq_ = 0;
};

/// Intrusive reference counting for shared states (non-atomic: one loop, one thread).
template <class T>
class ref_ptr {
public:
    ref_ptr() noexcept = default;
    explicit ref_ptr(T* p) noexcept : p_(p) { if (p_) p_->add_ref(); }
    ref_ptr(const ref_ptr& o) noexcept : ref_ptr(o.p_) {}
    ref_ptr(ref_ptr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    template <class U>
    ref_ptr(const ref_ptr<U>& o) noexcept : ref_ptr(o.get()) {}  // NOLINT: upcast
    ref_ptr& operator=(ref_ptr o) noexcept { std::swap(p_, o.p_); return *this; }
    ~ref_ptr() { if (p_) p_->release(); }

    [[nodiscard]] T* get() const noexcept { return p_; }
    /// Gives up the reference without releasing it; the caller now owns it.
    [[nodiscard]] T* detach() noexcept { return std::exchange(p_, nullptr); }
    T* operator->() const noexcept { return p_; }
    T& operator*() const noexcept { return *p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }
    friend bool operator==(const ref_ptr& a, const ref_ptr& b) noexcept { return a.p_ == b.p_; }

private:
    T* p_ = nullptr;
};

} // namespace detail
} // namespace coio
