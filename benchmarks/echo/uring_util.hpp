// Small io_uring helpers shared by the echo benchmark's reference server and its client.
//
// Deliberately plain (C-style structs and free functions, no coroutines, no coio): the
// reference server is the "physical limit" every coroutine library is compared against, so
// nothing here may cost more than the raw liburing calls it wraps.
//
// liburing 2.3 (Debian 12) has io_uring_register_buf_ring() and the buf_ring_add/advance
// inlines, but not io_uring_setup_buf_ring(); buf_ring_setup() below does its job: map the
// ring memory ourselves and register it.
#pragma once

#include <liburing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace echo_bench {

/// Which io_uring setup flags to ask for; `best` tries the strongest set and degrades.
enum class ring_mode { best, defer, coop, plain };

/// Parses "best", "defer", "coop" or "plain"; returns false for anything else.
inline bool parse_ring_mode(const char* s, ring_mode* out) {
    if (std::strcmp(s, "best") == 0) *out = ring_mode::best;
    else if (std::strcmp(s, "defer") == 0) *out = ring_mode::defer;
    else if (std::strcmp(s, "coop") == 0) *out = ring_mode::coop;
    else if (std::strcmp(s, "plain") == 0) *out = ring_mode::plain;
    else return false;
    return true;
}

/// Creates `ring` with `entries` SQEs and a CQ of `cq_entries`, asking for the ring flags
/// that `mode` names. With ring_mode::best it tries, in order:
///   SINGLE_ISSUER | DEFER_TASKRUN  (6.1+) completions are posted only when this thread
///       enters the kernel to wait, so no IPI/task-work interruption while we run user code,
///       and completions arrive in one batch per io_uring_enter. The biggest single win in
///       the echo ping-pong: +44% round trips per second and a third less CPU per round
///       trip than no flags (benchmarks/echo/README.md).
///   COOP_TASKRUN | TASKRUN_FLAG    (5.19+) task work without forcing an interrupt; measured
///       as good as DEFER_TASKRUN in that benchmark.
///   no flags.
/// Every level also asks for SUBMIT_ALL (keep submitting after one SQE fails) and CQSIZE (a
/// CQ large enough that multishot receives never overflow it).
/// Returns 0 and stores the name of the level that worked in *used, or -errno of the last try.
inline int setup_ring(io_uring* ring, unsigned entries, unsigned cq_entries, ring_mode mode,
                      const char** used) {
    struct level {
        ring_mode mode;
        unsigned flags;
        const char* name;
    };
    static const level levels[] = {
        {ring_mode::defer, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "defer"},
        {ring_mode::coop, IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, "coop"},
        {ring_mode::plain, 0, "plain"},
    };
    int ret = -EINVAL;
    for (const level& l : levels) {
        if (mode != ring_mode::best && mode != l.mode) continue;
        io_uring_params p;
        std::memset(&p, 0, sizeof p);
        p.flags = l.flags | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
        p.cq_entries = cq_entries;
        ret = io_uring_queue_init_params(entries, ring, &p);
        if (ret == 0) {
            // Registered ring fd (5.18+): io_uring_enter skips the fd table lookup and
            // reference count of the ring file on every call. Optional: on failure
            // liburing keeps using the plain fd.
            io_uring_register_ring_fd(ring);
            *used = l.name;
            return 0;
        }
    }
    return ret;
}

/// Returns a free SQE, submitting what is queued when the SQ is full (never fails on a full
/// SQ; the kernel consumes SQEs at submit time, so a retry always finds room).
inline io_uring_sqe* get_sqe(io_uring* ring) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    while (sqe == nullptr) {
        io_uring_submit(ring);
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

/// A provided-buffer ring: `entries` buffers of `size` bytes each, buffer id = index.
/// Buffers handed back with recycle() become visible to the kernel at publish(), so a batch
/// of completions costs one release store instead of one per buffer.
struct buf_ring {
    io_uring_buf_ring* br = nullptr;  ///< ring of buffer descriptors shared with the kernel
    unsigned char* base = nullptr;    ///< entries * size bytes of buffer memory
    unsigned entries = 0;             ///< power of two, at most 32768
    unsigned size = 0;                ///< bytes per buffer
    int mask = 0;                     ///< io_uring_buf_ring_mask(entries)
    int pending = 0;                  ///< buffers added since the last publish()
    int bgid = 0;                     ///< buffer group id used in SQEs
    std::size_t ring_bytes = 0;       ///< size of the descriptor mapping
    std::size_t data_bytes = 0;       ///< size of the buffer memory mapping

    /// Address of buffer `bid`.
    unsigned char* data(unsigned bid) const { return base + static_cast<std::size_t>(bid) * size; }

    /// Queues buffer `bid` to be handed back to the kernel at the next publish().
    void recycle(unsigned bid) {
        io_uring_buf_ring_add(br, data(bid), size, static_cast<unsigned short>(bid), mask,
                              pending);
        ++pending;
    }

    /// Makes every recycled buffer visible to the kernel; returns how many there were.
    int publish() {
        const int n = pending;
        if (n != 0) io_uring_buf_ring_advance(br, n);
        pending = 0;
        return n;
    }
};

/// Maps and registers a buffer ring (what liburing 2.4's io_uring_setup_buf_ring does) and
/// fills it with every buffer. Returns 0 or -errno.
inline int buf_ring_setup(io_uring* ring, buf_ring* b, unsigned entries, unsigned size,
                          int bgid) {
    if (entries == 0 || entries > 32768 || (entries & (entries - 1)) != 0) return -EINVAL;
    b->entries = entries;
    b->size = size;
    b->bgid = bgid;
    b->mask = io_uring_buf_ring_mask(entries);
    b->ring_bytes = entries * sizeof(io_uring_buf);
    // The kernel requires the descriptor ring to be page aligned; an anonymous mapping is.
    void* r = mmap(nullptr, b->ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
                   -1, 0);
    if (r == MAP_FAILED) return -errno;
    b->br = static_cast<io_uring_buf_ring*>(r);
    b->data_bytes = static_cast<std::size_t>(entries) * size;
    void* d = mmap(nullptr, b->data_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
                   -1, 0);
    if (d == MAP_FAILED) {
        const int e = -errno;
        munmap(r, b->ring_bytes);
        b->br = nullptr;
        return e;
    }
    b->base = static_cast<unsigned char*>(d);
    io_uring_buf_reg reg;
    std::memset(&reg, 0, sizeof reg);
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(r);
    reg.ring_entries = entries;
    reg.bgid = static_cast<__u16>(bgid);
    const int ret = io_uring_register_buf_ring(ring, &reg, 0);
    if (ret != 0) {
        munmap(d, b->data_bytes);
        munmap(r, b->ring_bytes);
        b->br = nullptr;
        b->base = nullptr;
        return ret;
    }
    io_uring_buf_ring_init(b->br);
    for (unsigned i = 0; i < entries; ++i) b->recycle(i);
    b->publish();
    return 0;
}

/// Unregisters and unmaps a ring set up by buf_ring_setup (call before io_uring_queue_exit).
inline void buf_ring_free(io_uring* ring, buf_ring* b) {
    if (b->br == nullptr) return;
    io_uring_unregister_buf_ring(ring, b->bgid);
    munmap(b->base, b->data_bytes);
    munmap(b->br, b->ring_bytes);
    b->br = nullptr;
    b->base = nullptr;
}

/// Prepares a multishot receive on `fd` that picks buffers from group `bgid`.
inline void prep_recv_multishot(io_uring_sqe* sqe, int fd, int bgid) {
    io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = static_cast<__u16>(bgid);
}

/// Monotonic time in nanoseconds.
inline std::int64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

/// Prints this process's CPU time (all threads, including io_uring's io-wq workers, which
/// belong to the thread group) in the line format run.sh parses:
///   server_cpu_s=<user+sys> user_s=<user> sys_s=<sys>
inline void print_rusage() {
    rusage ru;
    std::memset(&ru, 0, sizeof ru);
    getrusage(RUSAGE_SELF, &ru);
    const double user = static_cast<double>(ru.ru_utime.tv_sec) +
                        static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
    const double sys = static_cast<double>(ru.ru_stime.tv_sec) +
                       static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
    std::printf("server_cpu_s=%.6f user_s=%.6f sys_s=%.6f\n", user + sys, user, sys);
    std::fflush(stdout);
}

/// Parses an unsigned decimal argument in [lo, hi]; exits with a message otherwise.
inline unsigned long long parse_num(const char* name, const char* s, unsigned long long lo,
                                    unsigned long long hi) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        std::fprintf(stderr, "invalid value for %s: '%s' (expected %llu..%llu)\n", name, s, lo,
                     hi);
        std::exit(2);
    }
    return v;
}

/// The command line of a server that takes only `--port P` (the Asio and libuv servers):
/// returns P, or prints the usage and exits 2.
inline unsigned parse_port_only(int argc, char** argv, const char* program) {
    unsigned port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--port") != 0) {
            std::fprintf(stderr, "%s: unknown option %s\n", program, argv[i]);
            std::exit(2);
        }
        port = static_cast<unsigned>(parse_num("--port", argv[i + 1], 1, 65535));
    }
    if (port == 0 || argc % 2 == 0) {
        std::fprintf(stderr, "usage: %s --port P\n", program);
        std::exit(2);
    }
    return port;
}

/// Parses an IPv4 loopback address (127.0.0.0/8) into `out`; the benchmark must never send
/// traffic anywhere else, so any other address is refused.
inline bool parse_loopback(const char* host, in_addr* out) {
    if (inet_pton(AF_INET, host, out) != 1) return false;
    return (ntohl(out->s_addr) >> 24) == 127;
}

}  // namespace echo_bench
