// Reference: the floor for spawn+gather. A minimal hand-written C++20 coroutine type (no
// library, no scheduler): what allocating, resuming and destroying N no-op coroutine frames
// costs on this machine, and how much memory N live frames take. coio's spawn+gather is
// reported as a ratio of these figures (run.sh).
//
// Usage: ref_bare_coroutine [N=1000000] [rounds=5]
//
// Two results:
//   bare_coroutine      create all N frames (keeping their handles in a vector, as a gather
//                       must), then resume all, then destroy all: the shape of spawn+gather.
//                       bytes_per_task is measured in the first round, while all N frames
//                       are alive: (ru_maxrss after - current RSS before) / N.
//   bare_coroutine_hot  create, resume and destroy one frame at a time: the allocator hands
//                       the same block back every time, so this is the best case, not a
//                       spawn+gather shape (bytes_per_task is not measured).
//   bare_await_ready    `co_await` of a lazy coroutine that returns a value at once, in a loop
//                       inside another coroutine: the smallest awaitable coroutine type (result
//                       in the promise, symmetric transfer back, frames recycled through a free
//                       list as coio's pool does; no cancellation, no exceptions). The floor
//                       for coio's BM_await_ready_coro, as ns_per_await.
// Every round of the first result starts from a trimmed heap (malloc_trim), so each one pays
// for faulting its frames' memory in, as a burst of N new tasks does; see ref_common.hpp.
#include "ref_common.hpp"

#include <algorithm>
#include <coroutine>
#include <cstdio>
#include <exception>
#include <new>
#include <utility>
#include <vector>

namespace {

/// Size the compiler asked for in the last frame allocation (the frame itself, without the
/// allocator's header), reported as frame_bytes.
std::size_t g_frame_size = 0;

/// A lazy coroutine that only owns its frame: the smallest type the language allows.
class bare_coro {
public:
    struct promise_type {
        // Counts the frame size the compiler requests; the allocation itself is the global one,
        // the same that a library coroutine type would use by default.
        static void* operator new(std::size_t size) {
            g_frame_size = size;
            return ::operator new(size);
        }
        // Unsized: clang 14 does not declare sized ::operator delete unless -fsized-deallocation.
        static void operator delete(void* frame) noexcept { ::operator delete(frame); }

        bare_coro get_return_object() noexcept {
            return bare_coro{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        // Lazy start, as coio::coro and task: the frame exists before it is first resumed.
        std::suspend_always initial_suspend() noexcept { return {}; }
        // Stay suspended at the end so the owner destroys the frame explicitly (and can time it).
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
    };

    /// Hands the frame over to the caller, who must destroy() it.
    [[nodiscard]] std::coroutine_handle<promise_type> release() noexcept {
        return std::exchange(handle_, {});
    }

    bare_coro(bare_coro&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
    bare_coro& operator=(bare_coro&&) = delete;
    ~bare_coro() {
        if (handle_) handle_.destroy();
    }

private:
    explicit bare_coro(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}
    std::coroutine_handle<promise_type> handle_;
};

// noinline: otherwise the compiler may inline the ramp and elide the heap allocation (HALO)
// in the one-at-a-time loop, which would no longer measure a frame allocation.
[[gnu::noinline]] bare_coro no_op() {
    co_return;
}

using handle_t = std::coroutine_handle<bare_coro::promise_type>;

// ---- bare_await_ready ----

/// A one-size free list: the frames of `answer` recycled, as coio's frame pool does.
struct free_block {
    free_block* next;
};
free_block* g_free_frames = nullptr;

/// A lazy coroutine returning int that its awaiter runs by symmetric transfer.
class bare_lazy {
public:
    struct promise_type {
        static void* operator new(std::size_t size) {
            if (free_block* b = g_free_frames) {
                g_free_frames = b->next;
                return b;
            }
            return ::operator new(size < sizeof(free_block) ? sizeof(free_block) : size);
        }
        static void operator delete(void* frame) noexcept {
            auto* b = static_cast<free_block*>(frame);
            b->next = g_free_frames;
            g_free_frames = b;
        }
        bare_lazy get_return_object() noexcept {
            return bare_lazy{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        struct back_to_awaiter {
            bool await_ready() const noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
                return h.promise().continuation;
            }
            void await_resume() const noexcept {}
        };
        back_to_awaiter final_suspend() noexcept { return {}; }
        void return_value(int v) noexcept { value = v; }
        [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }

        std::coroutine_handle<> continuation;
        int value = 0;
    };

    bare_lazy(bare_lazy&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
    bare_lazy& operator=(bare_lazy&&) = delete;
    ~bare_lazy() {
        if (handle_) handle_.destroy();
    }
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
        handle_.promise().continuation = awaiting;
        return handle_;
    }
    int await_resume() const noexcept { return handle_.promise().value; }

private:
    explicit bare_lazy(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}
    std::coroutine_handle<promise_type> handle_;
};

bare_lazy answer(int v) {
    co_return v;
}

/// Awaits `answer` n times; runs to completion inside the first resume() (every await
/// completes synchronously), then stays suspended at its end for the caller to destroy.
bare_coro await_loop(std::size_t n, long& sum) {
    for (std::size_t i = 0; i < n; ++i) sum += co_await answer(1);
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t n = coio_bench::count_arg(argc, argv, 1, 1'000'000);
    const std::size_t rounds = coio_bench::count_arg(argc, argv, 2, 5);

    // --- create all, resume all, destroy all (the spawn+gather shape) ---
    std::vector<double> total_ns;
    std::vector<double> create_ns;
    std::vector<double> resume_ns;
    std::vector<double> destroy_ns;
    double bytes = 0;
    for (std::size_t round = 0; round < rounds; ++round) {
        coio_bench::release_free_memory();  // every round allocates into fresh memory, as the first
        const std::int64_t baseline_rss = coio_bench::current_rss_bytes();
        std::vector<handle_t> handles;
        handles.reserve(n);  // untouched pages: its RSS grows with the frames, 8 bytes per task
        const std::int64_t t0 = coio_bench::now_ns();
        for (std::size_t i = 0; i < n; ++i) handles.push_back(no_op().release());
        const std::int64_t t1 = coio_bench::now_ns();
        for (handle_t h : handles) h.resume();
        const std::int64_t t2 = coio_bench::now_ns();
        std::size_t done = 0;
        for (handle_t h : handles) {
            done += h.done() ? 1U : 0U;
            h.destroy();
        }
        const std::int64_t t3 = coio_bench::now_ns();
        if (done != n) {
            std::fprintf(stderr, "ref_bare_coroutine: only %zu of %zu coroutines finished\n", done, n);
            return 1;
        }
        // All N frames were alive between t1 and t2; ru_maxrss remembers that high-water mark.
        if (round == 0) bytes = coio_bench::bytes_per_task(baseline_rss, n);
        const auto per = [n](std::int64_t ns) { return static_cast<double>(ns) / static_cast<double>(n); };
        total_ns.push_back(per(t3 - t0));
        create_ns.push_back(per(t1 - t0));
        resume_ns.push_back(per(t2 - t1));
        destroy_ns.push_back(per(t3 - t2));
    }
    char extra[160];
    std::snprintf(extra, sizeof extra, "frame_bytes=%zu create_ns=%.1f resume_ns=%.1f destroy_ns=%.1f",
                  g_frame_size, coio_bench::median(create_ns), coio_bench::median(resume_ns),
                  coio_bench::median(destroy_ns));
    coio_bench::print_spawn_result("bare_coroutine", n, total_ns, bytes, extra,
                                   "bare coroutine frames (create all, resume all, destroy all)");
    std::printf(
        "# frame: %zu bytes requested by the compiler; phases per task: create %.1f, resume %.1f, "
        "destroy %.1f ns\n",
        g_frame_size, coio_bench::median(create_ns), coio_bench::median(resume_ns),
        coio_bench::median(destroy_ns));

    // --- one frame at a time (allocator-hot best case) ---
    std::vector<double> hot_ns;
    for (std::size_t round = 0; round < rounds; ++round) {
        const std::int64_t t0 = coio_bench::now_ns();
        for (std::size_t i = 0; i < n; ++i) {
            handle_t h = no_op().release();
            h.resume();
            h.destroy();
        }
        hot_ns.push_back(static_cast<double>(coio_bench::now_ns() - t0) / static_cast<double>(n));
    }
    coio_bench::print_spawn_result("bare_coroutine_hot", n, hot_ns, -1, "",
                                   "bare coroutine frames one at a time (create, resume, destroy)");

    // --- co_await of a ready coroutine ---
    std::vector<double> await_ns;
    const std::size_t awaits = 10 * n;
    for (std::size_t round = 0; round < rounds; ++round) {
        long sum = 0;
        handle_t h = await_loop(awaits, sum).release();
        const std::int64_t t0 = coio_bench::now_ns();
        h.resume();
        const std::int64_t t1 = coio_bench::now_ns();
        const bool ok = h.done() && sum == static_cast<long>(awaits);
        h.destroy();
        if (!ok) {
            std::fprintf(stderr, "ref_bare_coroutine: the await loop did not finish correctly\n");
            return 1;
        }
        await_ns.push_back(static_cast<double>(t1 - t0) / static_cast<double>(awaits));
    }
    std::printf("name=bare_await_ready n=%zu rounds=%zu ns_per_await=%.2f ns_per_await_min=%.2f\n", awaits,
                await_ns.size(), coio_bench::median(await_ns), *std::min_element(await_ns.begin(), await_ns.end()));
    std::printf("# bare await of a ready coroutine (lazy, symmetric transfer, recycled frames): %.2f ns\n",
                coio_bench::median(await_ns));
    return 0;
}
