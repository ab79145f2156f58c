// Reference: the floor for timers. A hand-written liburing event loop in the shape coio's loop
// has (detail/core.hpp, detail/uring/backend.hpp): a userspace binary min-heap of timers and exactly one kernel
// wait per iteration, io_uring_submit_and_wait_timeout with the nearest deadline, no per-timer
// SQE. 100,000 sleeps of 0-100 ms (the same fixed delays as every program in this folder);
// reports how late the last one fires after the longest deadline and the lateness percentiles.
//
// Usage: ref_uring_timers [timers=100000]
//
// A "sleep" here is what coio::sleep(d) does: read the clock, push (now + d) on the heap. The
// reported deadline of timer i is t0 + d_i, with t0 read before the first one is armed, so the
// cost of arming 100,000 timers counts as lateness, as it would for a user.
#include "ref_common.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <liburing.h>

namespace {

/// One pending timer: its absolute deadline and the index of the sleeper to wake.
struct timer_entry {
    std::int64_t deadline_ns;
    std::uint32_t id;
};

/// Binary min-heap on deadline (std::push_heap/pop_heap keep a max-heap, hence the inverted
/// comparison). Ties between equal deadlines are broken by nothing: order among them is free.
class timer_heap {
public:
    void reserve(std::size_t n) { entries_.reserve(n); }
    void push(timer_entry entry) {
        entries_.push_back(entry);
        std::push_heap(entries_.begin(), entries_.end(), later);
    }
    [[nodiscard]] const timer_entry& top() const noexcept { return entries_.front(); }
    void pop() {
        std::pop_heap(entries_.begin(), entries_.end(), later);
        entries_.pop_back();
    }
    [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }

private:
    static bool later(const timer_entry& a, const timer_entry& b) noexcept {
        return a.deadline_ns > b.deadline_ns;
    }
    std::vector<timer_entry> entries_;
};

/// Sets up the ring with the flags coio wants, degrading when the kernel refuses them.
/// Returns a description of the flags used, or nullptr (with errno-style code in *error).
const char* init_ring(io_uring& ring, int* error) {
    struct attempt {
        unsigned flags;
        const char* name;
    };
    static constexpr attempt attempts[] = {
        // One thread submits (lets the kernel skip locking) and completions' task work runs only
        // when we wait, not by interrupting us: the cheapest mode for a one-thread loop (6.1+).
        {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "single_issuer+defer_taskrun"},
        // 5.19+: task work without an inter-processor interrupt.
        {IORING_SETUP_COOP_TASKRUN, "coop_taskrun"},
        {0, "none"},
    };
    for (const attempt& a : attempts) {
        io_uring_params params{};
        params.flags = a.flags;
        *error = io_uring_queue_init_params(256, &ring, &params);
        if (*error == 0) return a.name;
        if (*error != -EINVAL) break;  // not a flag problem (ENOMEM, EPERM, ENOSYS): give up
    }
    return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t n = coio_bench::count_arg(argc, argv, 1, coio_bench::default_timer_count);
    const std::vector<std::int64_t> delays = coio_bench::timer_delays_ns(n);

    io_uring ring{};
    int error = 0;
    const char* flags = init_ring(ring, &error);
    if (flags == nullptr) {
        std::fprintf(stderr,
                     "ref_uring_timers: io_uring_queue_init failed: %s (is io_uring disabled by "
                     "sysctl kernel.io_uring_disabled or a seccomp profile?)\n",
                     std::strerror(-error));
        return 1;
    }
    // Without EXT_ARG (kernel < 5.11) liburing implements the wait timeout with an extra
    // IORING_OP_TIMEOUT SQE; say so, since it changes what "one wait" costs.
    const bool ext_arg = (ring.features & IORING_FEAT_EXT_ARG) != 0;

    timer_heap heap;
    heap.reserve(n);
    bool ok = true;
    // Round 1 in a fresh process (the heap's pages are faulted in while arming), round 2
    // ("_warm") on the same, already touched heap, as bench_timers does for coio.
    for (const char* name : {"ref_uring_timers", "ref_uring_timers_warm"}) {
        std::vector<std::int64_t> requested(n, 0);
        std::vector<std::int64_t> fires(n, 0);

        const std::int64_t t0 = coio_bench::now_ns();
        for (std::size_t i = 0; i < n; ++i) {
            requested[i] = coio_bench::now_ns();
            heap.push({requested[i] + delays[i], static_cast<std::uint32_t>(i)});
        }
        std::size_t waits = 0;
        std::size_t iterations = 0;
        std::size_t fired = 0;
        while (fired < n) {
            ++iterations;
            // Run every timer that is due. The fire time is read per timer: it is when that
            // sleeper's continuation would run.
            for (std::int64_t now = coio_bench::now_ns(); !heap.empty() && heap.top().deadline_ns <= now;
                 now = coio_bench::now_ns()) {
                fires[heap.top().id] = now;
                heap.pop();
                ++fired;
            }
            if (heap.empty()) break;
            // One kernel wait until the nearest deadline (no I/O is in flight here, so it times out;
            // a real loop would drain CQEs that arrive earlier, which is what the walk below does).
            const std::int64_t wait_ns = heap.top().deadline_ns - coio_bench::now_ns();
            if (wait_ns <= 0) continue;
            __kernel_timespec ts{};
            ts.tv_sec = wait_ns / 1'000'000'000;
            ts.tv_nsec = wait_ns % 1'000'000'000;
            io_uring_cqe* cqe = nullptr;
            const int rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nullptr);
            ++waits;
            if (rc < 0 && rc != -ETIME && rc != -EINTR) {
                std::fprintf(stderr, "ref_uring_timers: io_uring_submit_and_wait_timeout: %s\n",
                             std::strerror(-rc));
                return 1;
            }
            unsigned head = 0;
            unsigned seen = 0;
            io_uring_for_each_cqe(&ring, head, cqe) {
                ++seen;
            }
            io_uring_cq_advance(&ring, seen);
        }
        char extra[160];
        std::snprintf(extra, sizeof extra, "kernel_waits=%zu iterations=%zu ring_flags=%s ext_arg=%d", waits,
                      iterations, flags, ext_arg ? 1 : 0);
        const coio_bench::timer_summary summary = coio_bench::print_timer_result(
            name, t0, delays, requested, fires, extra, "hand-written liburing loop + timer heap");
        std::printf("# %zu kernel waits over %zu loop iterations; ring flags: %s; EXT_ARG %s\n", waits,
                    iterations, flags, ext_arg ? "yes (one syscall per wait)" : "no (timeout SQE per wait)");
        ok = ok && summary.early == 0 && summary.missed == 0;
    }
    io_uring_queue_exit(&ring);
    return ok ? 0 : 1;
}
