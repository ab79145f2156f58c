// Reference TCP echo server: plain liburing, no coroutines, no allocation per message.
//
// This is the "physical limit" row of the echo benchmark (run.sh): what one io_uring thread
// can do on this kernel, against which coio, Asio and asyncio are compared. It uses the
// tricks an io_uring event loop can use, each switchable for ablation:
//   --ring best|defer|coop|plain  ring flags (see uring_util.hpp setup_ring)
//   --recv multishot|single       multishot recv into a provided buffer ring (default), or
//                                 the classic one-shot recv into a per-connection buffer
//   multishot accept; TCP_NODELAY; sends of several queued buffers gathered into one sendmsg.
//
// Ownership of a received buffer: the kernel picks it from the buffer ring, we queue it on
// the connection, send it, and hand it back to the ring only when the send that covers its
// last byte has completed (the kernel reads it until then). One send per connection is in
// flight at a time, which keeps the echoed bytes in order and handles partial sends.
// When the ring runs dry the multishot recv ends with -ENOBUFS; the connection then waits
// until a send completes and returns buffers, and is re-armed: that is the back-pressure.
//
// Usage: ref_uring_echo_server --port P [--host 127.0.0.1] [--threads N] [--ring MODE]
//          [--recv MODE] [--buf-size BYTES] [--buf-count N]
// --threads N runs N independent rings, each with its own SO_REUSEPORT listener
// (thread-per-core sharding). On SIGTERM or SIGINT every loop stops and the process prints
// "server_cpu_s=..." (getrusage, all threads) to stdout, then exits 0.
#include "uring_util.hpp"

#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

using namespace echo_bench;

// user_data = fd << 8 | op. Every operation's state is found from the fd, so no per-op
// allocation; an fd is closed only when none of its operations is in flight, so a reused
// fd number can never receive a stale completion.
enum op : std::uint64_t { op_accept = 1, op_recv = 2, op_send = 3, op_stop = 4 };
constexpr std::uint64_t make_ud(int fd, op o) {
    return (static_cast<std::uint64_t>(static_cast<unsigned>(fd)) << 8) | o;
}

constexpr unsigned max_iov = 64;      // buffers gathered into one sendmsg
constexpr std::uint16_t no_bid = 0xffff;

struct options {
    in_addr host{};
    unsigned port = 0;
    unsigned threads = 1;
    ring_mode ring = ring_mode::best;
    bool multishot = true;
    unsigned buf_size = 64 * 1024;
    unsigned buf_count = 1024;
};

struct conn {
    int fd = -1;
    bool open = false;
    bool recv_armed = false;     // a recv (multishot or single) is in flight
    bool send_inflight = false;  // a send/sendmsg is in flight
    bool eof = false;            // peer closed or error: no more recv; close once drained
    bool dead = false;           // send failed: drop queued data
    bool waiting_bufs = false;   // multishot recv ended with -ENOBUFS; re-arm on recycle
    // FIFO of received buffers not yet fully sent, linked through worker::next_bid.
    std::uint16_t head = no_bid;
    std::uint16_t tail = no_bid;
    std::uint32_t head_off = 0;  // bytes of the head buffer already sent
    // --recv single: the connection's own buffer and the bytes in it not yet sent.
    unsigned char* single_buf = nullptr;
    std::uint32_t single_len = 0;
    std::uint32_t single_off = 0;
    // sendmsg arguments: the kernel reads them at submission, so they live here (stable
    // address: conns are heap-allocated once and never move).
    iovec iov[max_iov];
    msghdr msg;
};

struct worker {
    const options* opt = nullptr;
    io_uring ring{};
    buf_ring bufs;
    std::vector<std::uint16_t> next_bid;  // per-buffer link for connection FIFOs
    std::vector<std::uint32_t> buf_len;   // bytes received into each queued buffer
    std::vector<conn*> conns;             // indexed by fd; entries allocated once
    std::vector<int> waiters;             // FIFO of fds waiting for buffers (-ENOBUFS)
    std::size_t waiters_head = 0;         // first live entry of `waiters`
    int listen_fd = -1;
    int stop_fd = -1;                     // eventfd written by the main thread
    std::uint64_t stop_value = 0;
    bool stopping = false;
    const char* ring_name = "";
};

[[noreturn]] void die(const char* what, int err) {
    std::fprintf(stderr, "ref_uring_echo_server: %s: %s\n", what, std::strerror(err));
    std::exit(1);
}

conn* get_conn(worker& w, int fd) {
    const auto idx = static_cast<std::size_t>(fd);
    if (idx >= w.conns.size()) w.conns.resize(idx * 2 + 16, nullptr);
    if (w.conns[idx] == nullptr) {
        w.conns[idx] = new conn();
        if (!w.opt->multishot)
            w.conns[idx]->single_buf = static_cast<unsigned char*>(std::malloc(w.opt->buf_size));
    }
    return w.conns[idx];
}

void arm_accept(worker& w) {
    io_uring_sqe* sqe = get_sqe(&w.ring);
    io_uring_prep_multishot_accept(sqe, w.listen_fd, nullptr, nullptr, 0);
    io_uring_sqe_set_data64(sqe, make_ud(w.listen_fd, op_accept));
}

void arm_recv(worker& w, conn* c) {
    io_uring_sqe* sqe = get_sqe(&w.ring);
    if (w.opt->multishot) {
        prep_recv_multishot(sqe, c->fd, w.bufs.bgid);
    } else {
        io_uring_prep_recv(sqe, c->fd, c->single_buf, w.opt->buf_size, 0);
    }
    io_uring_sqe_set_data64(sqe, make_ud(c->fd, op_recv));
    c->recv_armed = true;
}

// Sends as much of the connection's queue as fits in one sendmsg. MSG_WAITALL makes the
// kernel retry short sends on a stream socket itself; on_send still copes with a short
// count. MSG_NOSIGNAL: a vanished peer is an error code, not a SIGPIPE.
void start_send(worker& w, conn* c) {
    io_uring_sqe* sqe = nullptr;
    if (!w.opt->multishot) {
        sqe = get_sqe(&w.ring);
        io_uring_prep_send(sqe, c->fd, c->single_buf + c->single_off,
                           c->single_len - c->single_off, MSG_WAITALL | MSG_NOSIGNAL);
    } else {
        unsigned n = 0;
        std::uint32_t off = c->head_off;
        for (std::uint16_t b = c->head; b != no_bid && n < max_iov; b = w.next_bid[b]) {
            c->iov[n].iov_base = w.bufs.data(b) + off;
            c->iov[n].iov_len = w.buf_len[b] - off;
            off = 0;
            ++n;
        }
        sqe = get_sqe(&w.ring);
        if (n == 1) {
            // One buffer (always the case for ping-pong): plain send, no msghdr to copy.
            io_uring_prep_send(sqe, c->fd, c->iov[0].iov_base, c->iov[0].iov_len,
                               MSG_WAITALL | MSG_NOSIGNAL);
        } else {
            std::memset(&c->msg, 0, sizeof c->msg);
            c->msg.msg_iov = c->iov;
            c->msg.msg_iovlen = n;
            io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_WAITALL | MSG_NOSIGNAL);
        }
    }
    io_uring_sqe_set_data64(sqe, make_ud(c->fd, op_send));
    c->send_inflight = true;
}

bool queue_empty(const worker& w, const conn* c) {
    return w.opt->multishot ? c->head == no_bid : c->single_off == c->single_len;
}

void drop_queue(worker& w, conn* c) {
    while (c->head != no_bid) {
        const std::uint16_t b = c->head;
        c->head = w.next_bid[b];
        w.bufs.recycle(b);
    }
    c->tail = no_bid;
    c->head_off = 0;
    c->single_off = c->single_len = 0;
}

// Closes the connection once nothing of it is in flight and nothing is left to echo.
void maybe_close(worker& w, conn* c) {
    if (!c->open || !c->eof || c->recv_armed || c->send_inflight) return;
    if (!c->dead && !queue_empty(w, c)) return;
    drop_queue(w, c);
    close(c->fd);
    c->open = false;
}

// Stops a connection whose send failed: queued data cannot be delivered any more, and
// shutdown() makes a pending recv complete so the fd can be closed safely.
void kill_conn(worker& w, conn* c) {
    c->dead = true;
    c->eof = true;
    drop_queue(w, c);
    if (c->recv_armed) shutdown(c->fd, SHUT_RDWR);
    maybe_close(w, c);
}

void on_accept(worker& w, const io_uring_cqe* cqe) {
    if (cqe->res >= 0) {
        const int fd = cqe->res;
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn* c = get_conn(w, fd);
        unsigned char* keep = c->single_buf;
        *c = conn();
        c->single_buf = keep;
        c->fd = fd;
        c->open = true;
        if (w.stopping) {
            close(fd);
            c->open = false;
        } else {
            arm_recv(w, c);
        }
    } else if (cqe->res != -ECANCELED) {
        std::fprintf(stderr, "ref_uring_echo_server: accept: %s\n", std::strerror(-cqe->res));
    }
    if (!(cqe->flags & IORING_CQE_F_MORE) && !w.stopping) arm_accept(w);
}

void on_recv(worker& w, conn* c, const io_uring_cqe* cqe) {
    const int res = cqe->res;
    const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (!w.opt->multishot) {
        c->recv_armed = false;
        if (res > 0 && !c->dead) {
            c->single_len = static_cast<std::uint32_t>(res);
            c->single_off = 0;
            start_send(w, c);  // recv is re-armed when the echo has been sent
        } else {
            c->eof = true;
            maybe_close(w, c);
        }
        return;
    }
    if (res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
        const auto bid = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (c->dead) {
            w.bufs.recycle(bid);
        } else {
            w.buf_len[bid] = static_cast<std::uint32_t>(res);
            w.next_bid[bid] = no_bid;
            if (c->tail == no_bid) c->head = bid;
            else w.next_bid[c->tail] = bid;
            c->tail = bid;
            if (!c->send_inflight) start_send(w, c);
        }
    } else if (cqe->flags & IORING_CQE_F_BUFFER) {
        // Defensive: a buffer attached to an empty or failed receive goes straight back.
        w.bufs.recycle(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    }
    if (more) return;
    c->recv_armed = false;
    if (res == -ENOBUFS && !c->eof && !w.stopping) {
        if (!c->waiting_bufs) w.waiters.push_back(c->fd);
        c->waiting_bufs = true;
    } else if (res > 0 && !c->eof && !w.stopping) {
        arm_recv(w, c);  // the kernel ended the multishot (e.g. CQ pressure): keep going
    } else {
        c->eof = true;   // 0 = peer closed; <0 = error or cancellation
        maybe_close(w, c);
    }
}

void on_send(worker& w, conn* c, const io_uring_cqe* cqe) {
    c->send_inflight = false;
    if (cqe->res < 0) {
        kill_conn(w, c);
        return;
    }
    auto sent = static_cast<std::uint32_t>(cqe->res);
    if (!w.opt->multishot) {
        c->single_off += sent;
        if (c->single_off < c->single_len) start_send(w, c);  // short send: the rest
        else if (!c->eof && !w.stopping) arm_recv(w, c);
        else maybe_close(w, c);
        return;
    }
    // Hand back every buffer whose last byte has now been sent.
    while (sent > 0 && c->head != no_bid) {
        const std::uint16_t b = c->head;
        const std::uint32_t left = w.buf_len[b] - c->head_off;
        if (sent < left) {
            c->head_off += sent;
            break;
        }
        sent -= left;
        c->head = w.next_bid[b];
        if (c->head == no_bid) c->tail = no_bid;
        c->head_off = 0;
        w.bufs.recycle(b);
    }
    if (c->head != no_bid) start_send(w, c);
    else maybe_close(w, c);
}

// After `n` buffers went back to the ring, up to `n` connections that ran dry get their
// receive again, oldest first. Not all of them: with few buffers, re-arming every waiter
// would make most fail again at once with -ENOBUFS (a thundering herd). Progress is
// guaranteed because a connection only runs dry when data is waiting, so each re-armed
// receive fills a buffer whose send completes and publishes buffers again.
void rearm_waiters(worker& w, int n) {
    while (n > 0 && w.waiters_head < w.waiters.size()) {
        conn* c = w.conns[static_cast<std::size_t>(w.waiters[w.waiters_head++])];
        c->waiting_bufs = false;
        if (c->open && !c->eof && !c->recv_armed && !w.stopping) {
            arm_recv(w, c);
            --n;
        } else {
            maybe_close(w, c);
        }
    }
    if (w.waiters_head == w.waiters.size()) {
        w.waiters.clear();
        w.waiters_head = 0;
    }
}

int open_listener(const options& opt, bool reuseport) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket", errno);
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        die("SO_REUSEPORT", errno);
    sockaddr_in sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr = opt.host;
    sa.sin_port = htons(static_cast<std::uint16_t>(opt.port));
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) die("bind", errno);
    if (listen(fd, 4096) != 0) die("listen", errno);
    return fd;
}

void run_worker(worker& w) {
    const int ret = setup_ring(&w.ring, 1024, 16384, w.opt->ring, &w.ring_name);
    if (ret != 0) die("io_uring_queue_init_params", -ret);
    if (w.opt->multishot) {
        const int r = buf_ring_setup(&w.ring, &w.bufs, w.opt->buf_count, w.opt->buf_size, 0);
        if (r != 0) die("io_uring_register_buf_ring", -r);
        w.next_bid.assign(w.opt->buf_count, no_bid);
        w.buf_len.assign(w.opt->buf_count, 0);
    }
    arm_accept(w);
    io_uring_sqe* sqe = get_sqe(&w.ring);
    io_uring_prep_read(sqe, w.stop_fd, &w.stop_value, sizeof w.stop_value, 0);
    io_uring_sqe_set_data64(sqe, make_ud(w.stop_fd, op_stop));

    while (!w.stopping) {
        // One system call per iteration: submit everything queued and wait for >= 1 CQE.
        const int r = io_uring_submit_and_wait(&w.ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) die("io_uring_enter", -r);
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&w.ring, head, cqe) {
            ++seen;
            const std::uint64_t ud = io_uring_cqe_get_data64(cqe);
            const int fd = static_cast<int>(ud >> 8);
            switch (static_cast<op>(ud & 0xff)) {
            case op_accept: on_accept(w, cqe); break;
            case op_recv: on_recv(w, w.conns[static_cast<std::size_t>(fd)], cqe); break;
            case op_send: on_send(w, w.conns[static_cast<std::size_t>(fd)], cqe); break;
            case op_stop: w.stopping = true; break;
            }
        }
        io_uring_cq_advance(&w.ring, seen);
        if (w.opt->multishot) {
            const int returned = w.bufs.publish();
            if (returned != 0) rearm_waiters(w, returned);
        }
    }
    // Stopping: the process is about to print its CPU time and exit, so close the sockets
    // and tear the ring down (io_uring_queue_exit cancels whatever is still in flight).
    for (conn* c : w.conns) {
        if (c == nullptr) continue;
        if (c->open) close(c->fd);
        std::free(c->single_buf);
        delete c;
    }
    w.conns.clear();
    close(w.listen_fd);
    if (w.opt->multishot) buf_ring_free(&w.ring, &w.bufs);
    io_uring_queue_exit(&w.ring);
}

void usage() {
    std::fprintf(stderr,
                 "usage: ref_uring_echo_server --port P [--host 127.0.0.1] [--threads N]\n"
                 "         [--ring best|defer|coop|plain] [--recv multishot|single]\n"
                 "         [--buf-size BYTES] [--buf-count N (power of two)]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    inet_pton(AF_INET, "127.0.0.1", &opt.host);
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (v == nullptr) usage();
        ++i;
        const auto num = [&](unsigned long long lo, unsigned long long hi) {
            return static_cast<unsigned>(parse_num(a, v, lo, hi));
        };
        if (std::strcmp(a, "--port") == 0) opt.port = num(1, 65535);
        else if (std::strcmp(a, "--threads") == 0) opt.threads = num(1, 64);
        else if (std::strcmp(a, "--buf-size") == 0) opt.buf_size = num(64, 1u << 24);
        else if (std::strcmp(a, "--buf-count") == 0) opt.buf_count = num(1, 32768);
        else if (std::strcmp(a, "--host") == 0) {
            if (!parse_loopback(v, &opt.host)) {
                std::fprintf(stderr, "--host must be an IPv4 loopback address\n");
                return 2;
            }
        } else if (std::strcmp(a, "--ring") == 0) {
            if (!parse_ring_mode(v, &opt.ring)) usage();
        } else if (std::strcmp(a, "--recv") == 0) {
            if (std::strcmp(v, "multishot") == 0) opt.multishot = true;
            else if (std::strcmp(v, "single") == 0) opt.multishot = false;
            else usage();
        } else usage();
    }
    if (opt.port == 0) usage();

    // Block the stop signals in every thread (workers inherit the mask); the main thread
    // collects them with sigwait, so no handler can interrupt a worker's io_uring_enter.
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);
    signal(SIGPIPE, SIG_IGN);

    std::vector<worker> workers(opt.threads);
    for (worker& w : workers) {
        w.opt = &opt;
        // Listeners are bound here, before the threads start, so the port accepts as soon
        // as any worker runs and run.sh's readiness probe is meaningful.
        w.listen_fd = open_listener(opt, opt.threads > 1);
        w.stop_fd = eventfd(0, EFD_CLOEXEC);
        if (w.stop_fd < 0) die("eventfd", errno);
    }
    std::vector<std::thread> threads;
    threads.reserve(opt.threads);
    for (worker& w : workers) threads.emplace_back([&w] { run_worker(w); });

    int sig = 0;
    sigwait(&stop_set, &sig);
    for (worker& w : workers) {
        const std::uint64_t one = 1;
        if (write(w.stop_fd, &one, sizeof one) != sizeof one) die("eventfd write", errno);
    }
    for (std::thread& t : threads) t.join();
    if (!workers.empty())
        std::fprintf(stderr, "ref_uring_echo_server: ring=%s recv=%s\n", workers[0].ring_name,
                     opt.multishot ? "multishot" : "single");
    for (worker& w : workers) close(w.stop_fd);
    print_rusage();
    return 0;
}
