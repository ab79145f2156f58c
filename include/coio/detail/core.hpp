// coio/detail/core.hpp - the intrusive building blocks every other header stands on.
//
// Not API. Contracts:
//  * A loop is single-threaded: nothing here is atomic.
//  * Scheduling never allocates: a work_item is linked into the ready queue in place.
//  * A task suspended on an awaitable records the handle to resume (resume_at) and the
//    awaitable's cancel_hook; waking it pushes the task itself onto the ready queue.
#pragma once

#include <coio/detail/frame_pool.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <limits>
#include <new>
#include <stdexcept>
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
///
/// Its time points and durations are std::chrono::steady_clock's, and so is `now()`, except
/// on the thread of a running loop that was created with `loop_options::clock =
/// clock_kind::virtual_time`: there `now()` is that loop's virtual time (see clock_kind), so
/// every deadline coio computes (sleep, timeout, wait_for, call_later) and every deadline a
/// test computes from `coio::clock::now()` follow the virtual clock.
///
/// Example: `auto deadline = coio::clock::now() + 5s;`
struct clock {
    /// As std::chrono::steady_clock's.
    using duration = std::chrono::steady_clock::duration;
    /// As std::chrono::steady_clock's.
    using rep = duration::rep;
    /// As std::chrono::steady_clock's.
    using period = duration::period;
    /// A std::chrono::steady_clock::time_point: real and virtual times are one type.
    using time_point = std::chrono::steady_clock::time_point;
    /// Never goes backwards.
    static constexpr bool is_steady = true;
    /// The running loop's time on this thread (virtual under a virtual clock), else
    /// std::chrono::steady_clock::now(). Never throws.
    static time_point now() noexcept;
};

/// Which clock a loop runs on (loop_options::clock).
///
/// `virtual_time` is for tests of timing-dependent code (Trio's MockClock with autojump):
/// time stands still while tasks run, and when every task is blocked the clock jumps straight
/// to the earliest timer. `sleep(3600s)` then completes at once, deadlines still fire in
/// order, and `loop.time()`, `loop.now()` and `coio::clock::now()` (on the loop's thread,
/// while it runs) report the virtual time.
///
/// The rule with real I/O. Before a jump the loop polls its backend without blocking, and
/// jumps only if that completed nothing and no operation that completes on its own is in
/// flight: file operations, reads and writes of descriptors (pipes included), sends, connects,
/// custom io_uring operations, to_thread calls, DNS lookups (their server is outside the
/// loop, and c-ares times its tries with the real clock). While one is, the loop waits for it
/// in real time (at most until the earliest timer) and the clock advances by the real time
/// waited.
/// Receives, accepts and polls do not hold the clock: they wait for a peer.
///  * A peer in the same loop (a server and its client in one test, over loopback TCP or Unix
///    sockets) is deterministic: its send or connect completes inside its own system call, so
///    the data is there by the time the poll looks, before any timer can race it.
///  * A peer outside the loop (another thread or process, a real network) races the clock: a
///    read guarded by a timeout may time out at its virtual deadline before the data arrives.
///    Let such a peer finish first (for instance through coio::to_thread, which holds the
///    clock), or use the real clock for that test.
///  * Nothing can hang: without operations that hold it, the clock always jumps to the next
///    timer; with them, it waits in real time only as long as they take.
///
/// Example: `coio::run(main(), {.clock = coio::clock_kind::virtual_time});`
enum class clock_kind : unsigned char {
    real,          ///< std::chrono::steady_clock (the default)
    virtual_time,  ///< virtual time that jumps to the next timer when the loop is idle
};

namespace detail {

/// The virtual time of the loop running on this thread, or null (real time). Set while a loop
/// with clock_kind::virtual_time runs, so clock::now() costs one thread-local load otherwise.
inline thread_local const clock::time_point* virtual_now = nullptr;

} // namespace detail

inline clock::time_point clock::now() noexcept {
    if (const time_point* v = detail::virtual_now) return *v;
    return std::chrono::steady_clock::now();
}

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

struct wait_info;  // detail/wait_info.hpp

/// What an awaitable registers with its task while suspended, so that `task.cancel()` can
/// reach it. `what` names the wait for debugging dumps ("sleep", "uring op", ...); `inspect`,
/// when set, adds what only the awaiter knows (an fd, a deadline, the tasks it waits for) for
/// coio::capture_call_graph. Both are static: the hot path pays one pointer store each.
struct cancel_hook {
    void (*on_cancel)(cancel_hook*) noexcept = nullptr;
    const char* what = "?";
    void (*inspect)(const cancel_hook*, wait_info&) = nullptr;
};

/// A deadline in the loop's userspace timer heap.
struct timer_node {
    static constexpr std::uint32_t not_queued = std::numeric_limits<std::uint32_t>::max();
    clock::time_point deadline{};
    std::uint32_t slot = not_queued;  // the heap's handle for O(log n) removal
    void (*on_expire)(timer_node*) noexcept = nullptr;

    [[nodiscard]] bool queued() const noexcept { return slot != not_queued; }
};

/// A min-heap of timers, so cancel is O(log n) and there is no kernel timeout per sleep:
/// the loop waits in the kernel once, until the earliest deadline.
///
/// Laid out so that neither a push nor a pop touches any node but the one pushed or popped.
/// Nodes live in (scattered, mostly cold) coroutine frames; with 100,000 sleeps, loading or
/// writing a node on every step of a sift was most of the heap's cost, a cache miss each. So
/// each entry carries its deadline, and the back-index removal needs lives in a dense slot
/// table: a node keeps its slot number, the table maps slot -> position in the heap.
class timer_heap {
public:
    void push(timer_node* n) {
        const std::uint32_t slot = take_slot();
        n->slot = slot;
        heap_.push_back(entry{n->deadline, n, next_seq_++, slot});  // the order lives in the heap only
        sift_up(heap_.size() - 1);
    }
    /// Unqueues `n`. Precondition: n->queued().
    void remove(timer_node* n) noexcept { erase_at(pos_[n->slot]); }
    /// Removes the node with the earliest deadline and returns it. Precondition: !empty().
    /// Reads only the heap: the node is written (unqueued) but not loaded first.
    timer_node* pop() noexcept { return erase_at(0); }
    /// The earliest deadline. Precondition: !empty(). Read from the heap, not from the node.
    [[nodiscard]] clock::time_point top_deadline() const noexcept { return heap_.front().deadline; }
    [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }

private:
    struct entry {
        clock::time_point deadline;
        timer_node* node;
        std::uint32_t seq;   // FIFO among equal deadlines (compared modulo 2^32)
        std::uint32_t slot;  // pos_[slot] is this entry's index
    };
    static bool less(const entry& a, const entry& b) noexcept {
        // Bitwise, not short-circuit: the choice among four children compiles to conditional
        // moves (which child is earliest is a coin toss a branch predictor cannot learn).
        const int earlier = a.deadline < b.deadline;
        const int tie_first = (a.deadline == b.deadline) & (static_cast<std::int32_t>(a.seq - b.seq) < 0);
        return (earlier | tie_first) != 0;
    }
    /// Takes out the entry at `i`: the last entry fills its place and sifts from there.
    timer_node* erase_at(std::uint32_t i) noexcept {
        const entry gone = heap_[i];
        free_slot(gone.slot);
        gone.node->slot = timer_node::not_queued;
        const entry last = heap_.back();
        heap_.pop_back();
        if (i < heap_.size()) {
            place(i, last);
            if (i > 0 && less(last, heap_[(i - 1) / arity])) sift_up(i); else sift_down(i);
        }
        return gone.node;
    }
    void place(std::uint32_t i, const entry& e) noexcept {
        heap_[i] = e;
        pos_[e.slot] = i;
    }
    // A 4-ary heap: half the depth of a binary one (100,000 timers: 9 levels instead of 17),
    // so a pop moves half as many entries, and a node's children share one or two cache lines.
    static constexpr std::size_t arity = 4;
    void sift_up(std::size_t index) noexcept {
        auto i = static_cast<std::uint32_t>(index);
        const entry e = heap_[i];
        while (i > 0) {
            const std::uint32_t parent = (i - 1) / arity;
            if (!less(e, heap_[parent])) break;
            place(i, heap_[parent]);
            i = parent;
        }
        place(i, e);
    }
    void sift_down(std::uint32_t i) noexcept {
        const entry e = heap_[i];
        const std::size_t size = heap_.size();
        for (;;) {
            const std::size_t first = arity * std::size_t{i} + 1;
            if (first >= size) break;
            const std::size_t end = first + arity < size ? first + arity : size;
            std::size_t best = first;
            for (std::size_t c = first + 1; c < end; ++c)
                best = less(heap_[c], heap_[best]) ? c : best;
            if (!less(heap_[best], e)) break;
            place(i, heap_[best]);
            i = static_cast<std::uint32_t>(best);
        }
        place(i, e);
    }
    /// A free slot: the head of the free list (threaded through pos_), else a new one.
    std::uint32_t take_slot() {
        if (free_ != timer_node::not_queued) {
            const std::uint32_t s = free_;
            free_ = pos_[s];
            return s;
        }
        if (pos_.size() >= timer_node::not_queued) throw std::length_error("coio: too many timers");
        pos_.push_back(0);
        return static_cast<std::uint32_t>(pos_.size() - 1);
    }
    void free_slot(std::uint32_t s) noexcept {
        pos_[s] = free_;
        free_ = s;
    }

    /// A growable array of trivially copyable entries that grows with realloc: for a large
    /// heap glibc moves the pages (mremap) instead of copying them into freshly faulted
    /// memory, which std::vector's allocate-copy-free growth costs (100,000 sleeps: 1,200
    /// page faults less).
    template <class T>
    class realloc_array {
    public:
        realloc_array() noexcept = default;
        realloc_array(const realloc_array&) = delete;
        realloc_array& operator=(const realloc_array&) = delete;
        ~realloc_array() { std::free(data_); }

        void push_back(const T& e) {
            if (size_ == cap_) grow();
            data_[size_++] = e;
        }
        void pop_back() noexcept { --size_; }
        [[nodiscard]] T& operator[](std::size_t i) noexcept { return data_[i]; }
        [[nodiscard]] const T& operator[](std::size_t i) const noexcept { return data_[i]; }
        [[nodiscard]] const T& front() const noexcept { return data_[0]; }
        [[nodiscard]] T& back() noexcept { return data_[size_ - 1]; }
        [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
        [[nodiscard]] std::size_t size() const noexcept { return size_; }

    private:
        static_assert(std::is_trivially_copyable_v<T>);
        void grow() {
            const std::size_t cap = cap_ ? 2 * cap_ : 64;
            void* p = std::realloc(data_, cap * sizeof(T));
            if (!p) throw std::bad_alloc();
            data_ = static_cast<T*>(p);
            cap_ = cap;
        }
        T* data_ = nullptr;
        std::size_t size_ = 0;
        std::size_t cap_ = 0;
    };

    realloc_array<entry> heap_;
    realloc_array<std::uint32_t> pos_;  // slot -> heap index; for a free slot, the next free one
    std::uint32_t free_ = timer_node::not_queued;
    std::uint32_t next_seq_ = 0;
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
