// The one client every echo server in run.sh is measured with.
//
// One thread, one io_uring (the same flags and buffer-ring receive as the reference server,
// so the client is never the slower side because of its event loop), N connections to a
// loopback address only.
//
//   --mode pingpong  each connection sends --size bytes, waits for the complete echo, then
//                    sends the next message; --count round trips in total (or until
//                    --seconds). Latency per round trip from send to full echo
//                    (CLOCK_MONOTONIC). Prints rt_per_s, p50_us, p99_us, p999_us.
//   --mode stream    each connection sends --block byte blocks and receives the echo while
//                    it sends; at most --window bytes per connection are sent but not yet
//                    echoed (default: one block), so what is measured is the server's echo
//                    rate, not how much the socket buffers can absorb. --bytes in total (or
//                    until --seconds). Prints gb_per_s (1 GB = 1e9 bytes of echoed data).
//                    The window matters: on this machine 50 x 4 MiB in flight echoes ~40%
//                    slower than 50 x 1 MiB, at more CPU per byte (the data in flight no
//                    longer fits in cache), which would blur the differences between servers.
//   --probe          connect until the port accepts (or --timeout-ms passes); exit 0 / 1.
//   --free-port      print a currently free TCP port on 127.0.0.1 and exit.
//
// Bounds: never more than --count round trips / --bytes bytes, never sends after --seconds,
// and gives up (exit 1) if the echoes have not all arrived --grace seconds after that.
// Output: one line of key=value pairs on stdout (run.sh parses it); errors on stderr.
//
// Correctness: ping-pong compares every echoed byte. Stream checks three bytes of every
// received chunk against the position-dependent pattern (cheap enough not to slow the
// client); --verify compares every byte in both modes.
#include "uring_util.hpp"

#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using namespace echo_bench;

enum op : std::uint64_t { op_recv = 1, op_send = 2 };
constexpr std::uint64_t make_ud(unsigned idx, op o) {
    return (static_cast<std::uint64_t>(idx) << 8) | o;
}

struct options {
    in_addr host{};
    unsigned port = 0;
    unsigned conns = 50;
    unsigned size = 64;
    unsigned long long count = 500000;  // at most 5e7: one latency sample (8 bytes) each
    bool stream = false;
    unsigned long long block = 1 << 20;
    unsigned long long window = 0;  // 0: one block
    unsigned long long bytes = 4ull << 30;
    double seconds = 10;
    double grace = 10;
    bool verify = false;
    bool probe = false;
    bool free_port = false;
    unsigned timeout_ms = 5000;
    ring_mode ring = ring_mode::best;
};

struct cconn {
    int fd = -1;
    bool recv_armed = false;
    bool send_inflight = false;
    bool done = false;
    // ping-pong
    unsigned char* msg = nullptr;  // the message in flight; the echo is compared with it
    unsigned got = 0;              // bytes of the echo received so far
    std::uint64_t seq = 0;
    std::int64_t t0 = 0;
    // stream
    std::uint64_t sent = 0;      // bytes whose send completed
    std::uint64_t received = 0;  // bytes echoed back
    std::uint64_t cur_off = 0;   // bytes of the block in flight already sent (short sends)
    std::uint64_t cur_len = 0;   // size of the block in flight
};

struct client {
    options opt;
    io_uring ring{};
    buf_ring bufs;
    std::vector<cconn> conns;
    bool skip_send_cqe = false;
    const char* ring_name = "";
    // ping-pong
    std::uint64_t issued = 0;
    std::uint64_t completed = 0;
    std::vector<std::int64_t> lat_ns;
    // stream
    std::vector<unsigned char> pattern;  // one block; byte at stream offset s is pattern[s % block]
    std::uint64_t planned = 0;           // bytes of blocks started
    std::uint64_t echoed = 0;
    // both
    std::int64_t now = 0;  // refreshed once per CQE batch (stream) or per echo (ping-pong)
    std::int64_t start = 0;
    std::int64_t deadline = 0;
    std::int64_t last_echo = 0;
    unsigned active = 0;
};

[[noreturn]] void die(const char* what, int err) {
    std::fprintf(stderr, "echo_client: %s: %s\n", what, std::strerror(err));
    std::exit(1);
}

[[noreturn]] void fail(const char* msg, unsigned idx) {
    std::fprintf(stderr, "echo_client: connection %u: %s\n", idx, msg);
    std::exit(1);
}

int connect_once(const options& opt) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket", errno);
    sockaddr_in sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr = opt.host;
    sa.sin_port = htons(static_cast<std::uint16_t>(opt.port));
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        const int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int do_probe(const options& opt) {
    const std::int64_t until = now_ns() + static_cast<std::int64_t>(opt.timeout_ms) * 1000000;
    for (;;) {
        const int fd = connect_once(opt);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (now_ns() >= until) {
            std::fprintf(stderr, "echo_client: port %u not accepting after %u ms: %s\n",
                         opt.port, opt.timeout_ms, std::strerror(errno));
            return 1;
        }
        usleep(5000);
    }
}

int do_free_port(const options& opt) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket", errno);
    sockaddr_in sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr = opt.host;
    socklen_t len = sizeof sa;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
        die("bind", errno);
    std::printf("%u\n", ntohs(sa.sin_port));
    close(fd);
    return 0;
}

void arm_recv(client& cl, unsigned idx) {
    io_uring_sqe* sqe = get_sqe(&cl.ring);
    prep_recv_multishot(sqe, cl.conns[idx].fd, cl.bufs.bgid);
    io_uring_sqe_set_data64(sqe, make_ud(idx, op_recv));
    cl.conns[idx].recv_armed = true;
}

// ---- ping-pong -------------------------------------------------------------------------

void send_message(client& cl, unsigned idx) {
    cconn& c = cl.conns[idx];
    // The message names its connection and sequence number, so an echo that went to the
    // wrong connection or is stale cannot match.
    std::memset(c.msg, static_cast<int>('a' + idx % 26), cl.opt.size);
    const std::uint64_t tag[2] = {idx, c.seq};
    std::memcpy(c.msg, tag, std::min<std::size_t>(sizeof tag, cl.opt.size));
    c.got = 0;
    c.t0 = now_ns();
    io_uring_sqe* sqe = get_sqe(&cl.ring);
    // MSG_WAITALL: the kernel finishes a short send itself, so success means every byte
    // went out and the success CQE can be skipped (one CQE per round trip instead of two).
    io_uring_prep_send(sqe, c.fd, c.msg, cl.opt.size, MSG_WAITALL | MSG_NOSIGNAL);
    if (cl.skip_send_cqe) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, make_ud(idx, op_send));
    ++cl.issued;
}

void pingpong_recv(client& cl, unsigned idx, const unsigned char* data, unsigned len) {
    cconn& c = cl.conns[idx];
    if (c.got + len > cl.opt.size) fail("received more bytes than were sent", idx);
    if (std::memcmp(data, c.msg + c.got, len) != 0) fail("echo differs from the message", idx);
    c.got += len;
    if (c.got < cl.opt.size) return;
    cl.now = now_ns();
    cl.lat_ns.push_back(cl.now - c.t0);
    ++cl.completed;
    cl.last_echo = cl.now;
    if (cl.issued < cl.opt.count && cl.now < cl.deadline) {
        ++c.seq;
        send_message(cl, idx);
    } else {
        c.done = true;
        --cl.active;
    }
}

// ---- stream ----------------------------------------------------------------------------

void stream_send(client& cl, unsigned idx) {
    cconn& c = cl.conns[idx];
    // Every block is the whole pattern and blocks are sent whole, one after the other, so
    // the stream offset of pattern byte k is always (a multiple of the block size) + k.
    io_uring_sqe* sqe = get_sqe(&cl.ring);
    io_uring_prep_send(sqe, c.fd, cl.pattern.data() + c.cur_off, c.cur_len - c.cur_off,
                       MSG_WAITALL | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, make_ud(idx, op_send));
    c.send_inflight = true;
}

// Starts the next block if the window and the global budget allow; marks the connection
// done when it has stopped sending and everything came back.
void stream_pump(client& cl, unsigned idx) {
    cconn& c = cl.conns[idx];
    if (c.done || c.send_inflight) return;
    const bool may_start = cl.planned + cl.opt.block <= cl.opt.bytes && cl.now < cl.deadline;
    if (may_start && c.sent - c.received + cl.opt.block <= cl.opt.window) {
        cl.planned += cl.opt.block;
        c.cur_off = 0;
        c.cur_len = cl.opt.block;
        stream_send(cl, idx);
        return;
    }
    if (!may_start && c.received == c.sent) {
        c.done = true;
        --cl.active;
    }
}

void stream_recv(client& cl, unsigned idx, const unsigned char* data, unsigned len) {
    cconn& c = cl.conns[idx];
    if (c.received + len > c.sent + (c.send_inflight ? c.cur_len : 0))
        fail("received more bytes than were sent", idx);
    const std::uint64_t block = cl.opt.block;
    const unsigned char* pat = cl.pattern.data();
    const std::uint64_t pos = c.received % block;
    if (cl.opt.verify) {
        std::uint64_t p = pos;
        unsigned done = 0;
        while (done < len) {
            const auto n = static_cast<unsigned>(std::min<std::uint64_t>(len - done, block - p));
            if (std::memcmp(data + done, pat + p, n) != 0)
                fail("echo differs from the data", idx);
            done += n;
            p = 0;
        }
    } else {
        const unsigned checks[3] = {0, len / 2, len - 1};
        for (const unsigned k : checks)
            if (data[k] != pat[(pos + k) % block]) fail("echo differs from the data", idx);
    }
    c.received += len;
    cl.echoed += len;
    cl.last_echo = cl.now;
    stream_pump(cl, idx);
}

void stream_sent(client& cl, unsigned idx, int res) {
    cconn& c = cl.conns[idx];
    c.cur_off += static_cast<std::uint64_t>(res);
    if (c.cur_off < c.cur_len) {
        stream_send(cl, idx);  // short send: send the rest of the block
        return;
    }
    c.send_inflight = false;
    c.sent += c.cur_len;
    c.cur_off = c.cur_len = 0;
    stream_pump(cl, idx);
}

// ---- loop ------------------------------------------------------------------------------

void handle(client& cl, const io_uring_cqe* cqe) {
    const std::uint64_t ud = io_uring_cqe_get_data64(cqe);
    const auto idx = static_cast<unsigned>(ud >> 8);
    cconn& c = cl.conns[idx];
    if ((ud & 0xff) == op_send) {
        if (cqe->res < 0) {
            std::fprintf(stderr, "echo_client: send: %s\n", std::strerror(-cqe->res));
            fail("send failed", idx);
        }
        if (cl.opt.stream) stream_sent(cl, idx, cqe->res);
        else if (static_cast<unsigned>(cqe->res) != cl.opt.size) fail("short send", idx);
        return;
    }
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        const unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (cqe->res > 0) {
            const unsigned char* data = cl.bufs.data(bid);
            const auto len = static_cast<unsigned>(cqe->res);
            if (c.done) fail("data after the connection finished", idx);
            if (cl.opt.stream) stream_recv(cl, idx, data, len);
            else pingpong_recv(cl, idx, data, len);
        }
        cl.bufs.recycle(bid);  // the data has been checked: the buffer can be refilled
    }
    if (cqe->flags & IORING_CQE_F_MORE) return;
    c.recv_armed = false;
    if (cqe->res == 0) {
        if (!c.done) fail("server closed the connection early", idx);
    } else if (cqe->res < 0 && cqe->res != -ENOBUFS) {
        std::fprintf(stderr, "echo_client: recv: %s\n", std::strerror(-cqe->res));
        fail("recv failed", idx);
    } else if (!c.done) {
        // Ran out of buffers (they are refilled at the end of this batch) or the kernel
        // ended the multishot: receive again. The new SQE is submitted after the batch's
        // buffers are published, so it finds buffers.
        arm_recv(cl, idx);
    }
}

int run(client& cl) {
    options& opt = cl.opt;
    const int r = setup_ring(&cl.ring, 1024, 16384, opt.ring, &cl.ring_name);
    if (r != 0) die("io_uring_queue_init_params", -r);
    cl.skip_send_cqe = (cl.ring.features & IORING_FEAT_CQE_SKIP) != 0 && !opt.stream;
    const int br = buf_ring_setup(&cl.ring, &cl.bufs, 1024, 64 * 1024, 0);
    if (br != 0) die("io_uring_register_buf_ring", -br);

    cl.conns.resize(opt.conns);
    for (unsigned i = 0; i < opt.conns; ++i) {
        cconn& c = cl.conns[i];
        c.fd = connect_once(opt);
        if (c.fd < 0) die("connect", errno);
        const int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (!opt.stream) c.msg = static_cast<unsigned char*>(std::calloc(1, opt.size));
    }
    if (opt.stream) {
        // A fixed pseudo-random block: position-dependent, so reordered or shifted data
        // fails the check.
        cl.pattern.resize(opt.block);
        std::uint32_t x = 2463534242u;
        for (auto& b : cl.pattern) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b = static_cast<unsigned char>(x >> 24);
        }
    } else {
        cl.lat_ns.reserve(static_cast<std::size_t>(opt.count));
    }

    cl.start = cl.now = now_ns();
    cl.deadline = cl.start + static_cast<std::int64_t>(opt.seconds * 1e9);
    const std::int64_t hard_deadline = cl.deadline + static_cast<std::int64_t>(opt.grace * 1e9);
    cl.last_echo = cl.start;
    cl.active = opt.conns;
    for (unsigned i = 0; i < opt.conns; ++i) {
        arm_recv(cl, i);
        if (opt.stream) stream_pump(cl, i);
        else if (cl.issued < opt.count) send_message(cl, i);
        else {
            cl.conns[i].done = true;
            --cl.active;
        }
    }

    while (cl.active > 0) {
        // A timeout keeps the hard deadline enforceable even if the server stops answering.
        __kernel_timespec ts{0, 200 * 1000 * 1000};
        io_uring_cqe* first = nullptr;
        const int ret = io_uring_submit_and_wait_timeout(&cl.ring, &first, 1, &ts, nullptr);
        if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
            die("io_uring_enter", -ret);
        cl.now = now_ns();
        if (cl.now > hard_deadline) {
            std::fprintf(stderr,
                         "echo_client: gave up: %u connections still waiting for echoes %.1f s "
                         "after the send deadline\n",
                         cl.active, opt.grace);
            return 1;
        }
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&cl.ring, head, cqe) {
            ++seen;
            handle(cl, cqe);
        }
        io_uring_cq_advance(&cl.ring, seen);
        cl.bufs.publish();
        if (opt.stream && cl.now >= cl.deadline) {
            // Time is up: connections with nothing in flight finish now.
            for (unsigned i = 0; i < opt.conns; ++i) stream_pump(cl, i);
        }
    }
    const double secs = static_cast<double>(cl.last_echo - cl.start) / 1e9;

    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;

    if (opt.stream) {
        std::printf("mode=stream conns=%u block=%llu window=%llu bytes=%llu seconds=%.6f "
                    "gb_per_s=%.4f client_cpu_s=%.4f ring=%s\n",
                    opt.conns, opt.block, opt.window,
                    static_cast<unsigned long long>(cl.echoed), secs,
                    secs > 0 ? static_cast<double>(cl.echoed) / secs / 1e9 : 0.0, cpu,
                    cl.ring_name);
    } else {
        std::vector<std::int64_t>& l = cl.lat_ns;
        const auto pct = [&l](double q) -> double {
            if (l.empty()) return 0;
            auto k = static_cast<std::size_t>(q * static_cast<double>(l.size() - 1));
            std::nth_element(l.begin(), l.begin() + static_cast<std::ptrdiff_t>(k), l.end());
            return static_cast<double>(l[k]) / 1e3;
        };
        const double p50 = pct(0.50);
        const double p99 = pct(0.99);
        const double p999 = pct(0.999);
        std::printf("mode=pingpong conns=%u size=%u round_trips=%llu seconds=%.6f "
                    "rt_per_s=%.1f p50_us=%.2f p99_us=%.2f p999_us=%.2f client_cpu_s=%.4f "
                    "ring=%s\n",
                    opt.conns, opt.size, static_cast<unsigned long long>(cl.completed), secs,
                    secs > 0 ? static_cast<double>(cl.completed) / secs : 0.0, p50, p99, p999,
                    cpu, cl.ring_name);
    }
    std::fflush(stdout);

    for (cconn& c : cl.conns) {
        close(c.fd);  // pending multishot receives are cancelled by io_uring_queue_exit
        std::free(c.msg);
    }
    buf_ring_free(&cl.ring, &cl.bufs);
    io_uring_queue_exit(&cl.ring);
    return 0;
}

void usage() {
    std::fprintf(
        stderr,
        "usage: echo_client --port P [--host 127.0.0.1] [--conns 50]\n"
        "         [--mode pingpong|stream] [--size 64] [--count 500000]\n"
        "         [--block 1048576] [--window BLOCK] [--bytes 4294967296]\n"
        "         [--seconds 10] [--grace 10] [--verify] [--ring best|defer|coop|plain]\n"
        "       echo_client --probe --port P [--timeout-ms 5000]\n"
        "       echo_client --free-port\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    client cl;
    options& opt = cl.opt;
    inet_pton(AF_INET, "127.0.0.1", &opt.host);
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        if (std::strcmp(a, "--probe") == 0) { opt.probe = true; continue; }
        if (std::strcmp(a, "--free-port") == 0) { opt.free_port = true; continue; }
        if (std::strcmp(a, "--verify") == 0) { opt.verify = true; continue; }
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (v == nullptr) usage();
        ++i;
        const auto num = [&](unsigned long long lo, unsigned long long hi) {
            return parse_num(a, v, lo, hi);
        };
        const auto u32 = [&](unsigned long long lo, unsigned long long hi) {
            return static_cast<unsigned>(parse_num(a, v, lo, hi));
        };
        if (std::strcmp(a, "--port") == 0) opt.port = u32(1, 65535);
        else if (std::strcmp(a, "--conns") == 0) opt.conns = u32(1, 10000);
        else if (std::strcmp(a, "--size") == 0) opt.size = u32(1, 1 << 20);
        else if (std::strcmp(a, "--count") == 0) opt.count = num(0, 50000000);
        else if (std::strcmp(a, "--block") == 0) opt.block = num(1, 1ull << 28);
        else if (std::strcmp(a, "--window") == 0) opt.window = num(1, 1ull << 32);
        else if (std::strcmp(a, "--bytes") == 0) opt.bytes = num(0, 1ull << 40);
        else if (std::strcmp(a, "--seconds") == 0) opt.seconds = static_cast<double>(num(1, 3600));
        else if (std::strcmp(a, "--grace") == 0) opt.grace = static_cast<double>(num(1, 3600));
        else if (std::strcmp(a, "--timeout-ms") == 0) opt.timeout_ms = u32(1, 600000);
        else if (std::strcmp(a, "--host") == 0) {
            if (!parse_loopback(v, &opt.host)) {
                std::fprintf(stderr, "echo_client: --host must be an IPv4 loopback address\n");
                return 2;
            }
        } else if (std::strcmp(a, "--mode") == 0) {
            if (std::strcmp(v, "pingpong") == 0) opt.stream = false;
            else if (std::strcmp(v, "stream") == 0) opt.stream = true;
            else usage();
        } else if (std::strcmp(a, "--ring") == 0) {
            if (!parse_ring_mode(v, &opt.ring)) usage();
        } else usage();
    }
    if (opt.free_port) return do_free_port(opt);
    if (opt.port == 0) usage();
    if (opt.probe) return do_probe(opt);
    if (opt.window == 0) opt.window = opt.block;
    if (opt.window < opt.block) {
        std::fprintf(stderr, "echo_client: --window must be at least --block\n");
        return 2;
    }
    return run(cl);
}
