// coio/detail/uring/backend.hpp - the io_uring backend: the loop's one ring. Not API.
//
// Contracts:
//  * The only place that creates, submits to, waits on and tears down the ring. Operations
//    (detail/operation.hpp) become SQEs whose user_data is the operation's address; every CQE
//    goes back to its operation's complete(). CQEs whose user_data is 0 (async-cancel
//    requests) are nobody's and are skipped.
//  * One io_uring_enter per loop iteration in steady state (see wait()), and none at all when
//    tasks are ready and the kernel provably has nothing for us; connections that stream add
//    their own recv(2) calls (see "Streaming receives").
//  * Never fails on a full submission queue: it submits what it has and takes a fresh SQE.
//  * The cross-thread wake-up is an eventfd read always in flight on the ring; its
//    completion calls the loop's wake handler and re-arms the read.
//  * Streaming receives. A multishot receive runs readiness-style while its connection
//    streams: a one-shot poll, and on readiness up to `burst` recv(2) calls into the most
//    recently returned spare buffers of the provided-buffer ring (receive()), each
//    delivered as the kernel's multishot receive would deliver it (op_buffer | op_more),
//    then the poll again. A receive starts that way; after `streaming_run_` rounds in a row
//    whose first recv brought less than half a buffer (messages, not a stream), it is
//    re-armed as the kernel's multishot receive, and after `streaming_run_` receives in a
//    row of at least half a buffer there (a stream again), the backend cancels that and
//    re-arms it readiness-style, unseen by its owner. Without a spare buffer it takes the
//    kernel's multishot, and the ring keeps more buffers in user space (want_spares).
//    Why: on the echo benchmark (benchmarks/README.md, wave 9) 50 connections streaming
//    1 MiB blocks through read_chunk/write/drain ran 0.75-0.84x the plain liburing server
//    on the kernel's multishot and 1.00-1.05x readiness-style with bbr, 1.02-1.06x against
//    1.09-1.16x with cubic: the bytes are copied out of the socket when the loop is about
//    to hand them on, into a buffer just used. Request/response traffic lost 4-10% that
//    way (a poll, a recv and a re-arm per message instead of one completion), hence the
//    switch. The owner sees the same completions either way; its cancel() is honoured in
//    every state (one made during a delivery ends the receive right after it).
#pragma once

#include <coio/detail/core.hpp>
#include <coio/detail/operation.hpp>
#include <coio/detail/uring/buf_ring.hpp>

#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

namespace coio::detail {

static_assert(op_buffer == IORING_CQE_F_BUFFER && op_more == IORING_CQE_F_MORE &&
                  op_buffer_shift == IORING_CQE_BUFFER_SHIFT,
              "operation completion flags must be io_uring's CQE flags");

/// The message of the std::system_error thrown when the ring cannot be created: the errno and
/// its likely cause, which is rarely obvious (a sysctl, a container's seccomp profile).
inline std::string ring_error_text(const char* call, int err) {
    std::string msg = "coio: cannot use io_uring (";
    msg += call;
    msg += " failed: ";
    msg += std::strerror(err);
    msg += "): ";
    switch (err) {
    case EPERM:
        msg += "io_uring is disabled for this process: check the kernel.io_uring_disabled sysctl "
               "(must be 0, or 1 with this user in kernel.io_uring_group), and container seccomp "
               "profiles (Docker's default profile blocks io_uring_setup)";
        break;
    case ENOSYS:
        msg += "this kernel has no io_uring (needs Linux 5.1+ built with CONFIG_IO_URING), or a "
               "seccomp filter hides the system call";
        break;
    case ENOMEM:
        msg += "not enough locked memory for the rings: raise RLIMIT_MEMLOCK (ulimit -l) or use "
               "fewer entries";
        break;
    case EINVAL:
        msg += "the kernel rejected the ring parameters (entries must be a power of two, at most "
               "32768 for the submission queue)";
        break;
    case EMFILE:
    case ENFILE:
        msg += "too many open files";
        break;
    default:
        msg += "see io_uring_setup(2) and io_uring_enter(2)";
    }
    return msg;
}

[[noreturn]] inline void throw_ring_error(const char* call, int err) {
    throw std::system_error(err, std::system_category(), ring_error_text(call, err));
}

class uring_backend {
public:
    using wake_handler = void (*)(void* ctx) noexcept;

    /// Sets up the ring (`entries` SQEs, `cq_entries` CQEs, 0: 8 x entries) and the wake-up.
    /// Throws: std::system_error with ring_error_text's explanation.
    uring_backend(unsigned entries, unsigned cq_entries, wake_handler on_wake, void* ctx)
        : on_wake_(on_wake), wake_ctx_(ctx) {
        const unsigned cq = cq_entries ? cq_entries : entries * 8;
        // Flags, most wanted first; dropped one group at a time on kernels that refuse them.
        //  SINGLE_ISSUER  only this thread submits: lets the kernel skip submission locking.
        //  DEFER_TASKRUN  completions are processed when we enter the kernel to wait, not by
        //                 interrupting the thread: fewer context switches, batched completions.
        //  SUBMIT_ALL     keep submitting the batch past a failed SQE (each gets its own CQE).
        //  CQSIZE         a completion queue larger than the submission queue.
        //  TASKRUN_FLAG   the kernel flags (IORING_SQ_TASKRUN) when deferred completions wait to
        //                 be run, so an iteration with ready tasks and nothing to submit can
        //                 skip the system call entirely (see wait()).
        const unsigned attempts[] = {
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
            IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
            IORING_SETUP_CQSIZE,
        };
        int rc = -EINVAL;
        for (unsigned flags : attempts) {
            io_uring_params p{};
            p.flags = flags;
            p.cq_entries = cq;
            rc = io_uring_queue_init_params(entries, &ring_, &p);
            if (rc == 0) { flags_ = flags; break; }
            if (rc != -EINVAL) break;  // only "unknown flag" is worth a retry
        }
        if (rc < 0) throw_ring_error("io_uring_setup", -rc);
        if (const char* missing = missing_operation()) {
            io_uring_queue_exit(&ring_);
            throw std::system_error(ENOSYS, std::system_category(),
                                    std::string("coio: cannot use io_uring: this kernel lacks ") + missing +
                                        " (coio needs Linux 5.19 or later for io_uring; the epoll backend works anywhere)");
        }
        wake_fd_ = ::eventfd(0, EFD_CLOEXEC);  // blocking on purpose: the ring polls it for us
        if (wake_fd_ < 0) {
            const int e = errno;
            io_uring_queue_exit(&ring_);
            throw std::system_error(e, std::system_category(), "coio: eventfd");
        }
        wake_op_.owner = this;
        wake_op_.background = true;
        wake_op_.complete = [](operation* op, int, unsigned) noexcept {
            auto* self = static_cast<wake_operation*>(op)->owner;
            if (self->closed_) return;
            self->on_wake_(self->wake_ctx_);
            try {
                self->arm_wake_read();
            } catch (...) {
                // The ring is broken; the next wait() reports it.
            }
        };
        try {
            arm_wake_read();
            // A seccomp filter may allow io_uring_setup but refuse io_uring_enter: find out now,
            // with a clear message, rather than at the first iteration.
            const int r = io_uring_submit(&ring_);
            ++enter_calls_;
            if (r < 0) throw_ring_error("io_uring_enter", -r);
        } catch (...) {
            ::close(wake_fd_);
            io_uring_queue_exit(&ring_);
            throw;
        }
    }
    uring_backend(const uring_backend&) = delete;
    uring_backend& operator=(const uring_backend&) = delete;
    ~uring_backend() { close(); }

    /// Tears the ring down (after every operation completed; see event_loop::close). Idempotent.
    void close() noexcept {
        if (closed_) return;
        closed_ = true;
        io_uring_queue_exit(&ring_);
        ::close(wake_fd_);
        wake_fd_ = -1;
    }

    /// Starts `op`. Throws: std::system_error when the ring is broken.
    void submit(operation& op) {
        if (op.code == op_code::recv_multishot) {
            op.uring_cancel = false;
            arm_receive(op);
            return;
        }
        io_uring_sqe* sqe = get_sqe();
        prepare(sqe, op);
        io_uring_sqe_set_data(sqe, &op);
        if (holds_clock(op)) ++holding_;
    }
    /// Asks the kernel to cancel `op` (it still completes; see operation.hpp). Best effort: when
    /// the ring is broken the operation completes on its own.
    void cancel(operation& op) noexcept {
        if (op.code == op_code::recv_multishot) {
            op.uring_cancel = true;
            if (op.uring_state == ms_delivering) return;  // nothing armed: ends after the delivery
        }
        cancel_sqe(op);
    }

    /// The iteration's one system call, then every completion is dispatched. `block`: sleep
    /// until a completion arrives or `timeout` passes (null: no timeout); otherwise only
    /// submit and collect, and skip the kernel when it has provably nothing for us.
    /// Throws: std::system_error when io_uring_enter fails for good.
    void wait(bool block, const clock::duration* timeout) {
        int r = 0;
        if (!block) {
            // Work is ready: do not sleep. With DEFER_TASKRUN completions are only run inside
            // io_uring_enter, and the kernel sets IORING_SQ_TASKRUN as soon as one waits, so
            // no SQE, no CQE and the flag clear means there is nothing to enter for: task
            // switches between ready tasks then cost no system call (queue ping-pong: ~120 ->
            // ~25 ns per item), and I/O is never delayed. Otherwise a plain GETEVENTS enter,
            // not a zero timeout, which costs a kernel timer (~20 us against ~1 us).
            if (!nothing_for_kernel()) {
                r = io_uring_submit_and_get_events(&ring_);
                ++enter_calls_;
            }
        } else {
            __kernel_timespec ts{};
            if (timeout) {
                const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout).count();
                ts.tv_sec = ns / 1'000'000'000;
                ts.tv_nsec = ns % 1'000'000'000;
            }
            io_uring_cqe* cqe = nullptr;
            r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout ? &ts : nullptr, nullptr);
            ++enter_calls_;
        }
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            throw std::system_error(-r, std::system_category(), "coio: io_uring_enter");

        io_uring_cqe* cqe = nullptr;
        unsigned head;
        unsigned seen = 0;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            ++seen;
            if (auto* op = reinterpret_cast<operation*>(static_cast<std::uintptr_t>(cqe->user_data))) {
                if (op->code == op_code::recv_multishot) {
                    on_receive(*op, cqe->res, cqe->flags);
                    continue;
                }
                if (!(cqe->flags & IORING_CQE_F_MORE) && holds_clock(*op)) --holding_;
                op->complete(op, cqe->res, cqe->flags);
            }
        }
        io_uring_cq_advance(&ring_, seen);
    }

    /// Wakes a wait() from any thread (async-signal-safe: one write(2)).
    void wake() noexcept {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    }
    /// The eventfd wake() writes to (for a signal handler that must write it itself).
    [[nodiscard]] int wake_fd() const noexcept { return wake_fd_; }

    /// The ring, for coio::uring_op and the provided-buffer ring.
    [[nodiscard]] io_uring& ring() noexcept { return ring_; }
    /// The provided-buffer ring streaming receives pick their buffers from (see "Streaming
    /// receives"); null: they keep the kernel's multishot.
    void set_buffers(provided_buffer_ring* pool) noexcept { pool_ = pool; }
    /// The setup flags the kernel accepted (IORING_SETUP_*).
    [[nodiscard]] unsigned ring_flags() const noexcept { return flags_; }
    /// io_uring_enter calls made so far.
    [[nodiscard]] std::uint64_t enter_calls() const noexcept { return enter_calls_; }
    /// Receives made readiness-style so far (see "Streaming receives").
    [[nodiscard]] std::uint64_t streaming_receives() const noexcept { return streaming_receives_; }
    /// Operations in flight that hold a virtual clock (see holds_clock).
    [[nodiscard]] std::size_t holding() const noexcept { return holding_; }
    /// True when nothing waits to be submitted or dispatched (a virtual clock may jump).
    [[nodiscard]] bool quiet() const noexcept { return io_uring_sq_ready(&ring_) == 0 && io_uring_cq_ready(&ring_) == 0; }

private:
    struct wake_operation : operation {
        uring_backend* owner = nullptr;
        std::uint64_t value = 0;
    };

    // Multishot receive states (operation::uring_state; see "Streaming receives").
    static constexpr std::uint8_t ms_kernel = 0;      // the kernel's multishot receive is armed
    static constexpr std::uint8_t ms_switching = 1;   // ... and cancelled, to go readiness-style
    static constexpr std::uint8_t ms_polling = 2;     // a one-shot poll is armed
    static constexpr std::uint8_t ms_delivering = 3;  // its owner is handed a receive: nothing armed
    // Full buffers in a row that make a receive a stream (and short rounds that end one): 8,
    // or COIO_URING_STREAMING_RUN (tests: 0 makes every receive stream from the start).
    static int streaming_run_from_environment() noexcept {
        const char* v = std::getenv("COIO_URING_STREAMING_RUN");
        if (!v || !*v) return 8;
        return std::clamp(std::atoi(v), 0, 255);
    }
    // recv(2) calls per readiness round: a fair share per connection and per iteration.
    static constexpr int burst = 4;

    // True when `op` can receive readiness-style now: a spare buffer waits for it. When none
    // does, the buffer ring is asked to keep more in user space from now on.
    [[nodiscard]] bool can_stream(const operation& op) noexcept {
        if (!pool_ || pool_->group() != op.buf_group) return false;
        if (pool_->has_spare()) return true;
        pool_->want_spares();
        return false;
    }

    // Arms multishot receive `op`: readiness-style while it streams (and a spare buffer
    // waits), else the kernel's multishot. Throws: as get_sqe().
    void arm_receive(operation& op) {
        io_uring_sqe* sqe = get_sqe();
        if ((op.uring_streaming || streaming_run_ == 0) && can_stream(op)) {
            io_uring_prep_poll_add(sqe, op.fd, POLLIN);
            op.uring_state = ms_polling;
        } else {
            prepare(sqe, op);
            op.uring_state = ms_kernel;
        }
        io_uring_sqe_set_data(sqe, &op);
    }

    // The final completion of multishot receive `op`.
    static void finish_receive(operation& op, int res, unsigned flags) noexcept {
        op.uring_state = ms_kernel;
        op.complete(&op, res, flags);
    }

    // A CQE of multishot receive `op`: its kernel multishot's, or its poll's.
    void on_receive(operation& op, int res, unsigned flags) noexcept {
        if (op.uring_state == ms_polling) {
            on_readable(op, res);
            return;
        }
        const bool more = (flags & IORING_CQE_F_MORE) != 0;
        if (op.uring_state == ms_kernel && more && pool_ && op.buf_group == pool_->group()) {
            const bool bulk = res > 0 && static_cast<unsigned>(res) >= pool_->buffer_size() / 2;
            op.uring_run = bulk ? static_cast<std::uint8_t>(std::min(op.uring_run + 1, 255)) : 0;
            if (op.uring_run >= streaming_run_) {
                // A stream: readiness-style from its next arming. Unless its owner is ending
                // it already, that is now: cancelled, and re-armed on the final CQE.
                op.uring_streaming = true;
                if (!op.uring_cancel) {
                    op.uring_state = ms_switching;
                    cancel_sqe(op);
                }
            }
        }
        if (!more && op.uring_state == ms_switching) {
            op.uring_run = 0;
            if (res == -ECANCELED && !op.uring_cancel) {
                try {
                    arm_receive(op);  // unseen by the owner
                    return;
                } catch (...) {
                    res = -EIO;
                }
            }
        }
        if (more) op.complete(&op, res, flags);
        else finish_receive(op, res, flags);
    }

    // The poll of a streaming receive reported `res` (poll events or -errno): receive what is
    // there, up to `burst` buffers, then poll again (or end, or go back to the kernel's
    // multishot).
    void on_readable(operation& op, int res) noexcept {
        if (op.uring_cancel) res = -ECANCELED;
        else if (!pool_ || pool_->group() != op.buf_group) res = -ENOBUFS;  // the ring is gone (shutdown)
        if (res < 0) {
            finish_receive(op, res, 0);
            return;
        }
        const unsigned size = pool_->buffer_size();
        for (int i = 0; i < burst; ++i) {
            unsigned bid = 0;
            const int r = pool_->receive(op.fd, op.flags, bid);
            // -ENOBUFS: every spare is in use, the kernel's multishot takes over (arm_receive).
            if (r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS) break;
            if (r <= 0) {  // end of stream, or an error: the end of the receive, as in the kernel's
                finish_receive(op, r, 0);
                return;
            }
            if (i == 0) {
                op.uring_run = static_cast<unsigned>(r) < size / 2 ? static_cast<std::uint8_t>(op.uring_run + 1) : 0;
                if (op.uring_run >= streaming_run_) {
                    op.uring_streaming = false;  // messages now: the kernel's multishot again
                    op.uring_run = 0;
                }
            }
            op.uring_state = ms_delivering;
            ++streaming_receives_;
            op.complete(&op, r, op_more | op_buffer | (bid << op_buffer_shift));
            if (op.uring_cancel) {  // the owner cancelled during the delivery
                finish_receive(op, -ECANCELED, 0);
                return;
            }
            if (static_cast<unsigned>(r) < size) break;  // most likely the socket is empty
        }
        try {
            arm_receive(op);
        } catch (...) {
            finish_receive(op, -EIO, 0);
        }
    }

    // Asks the kernel to cancel `op`. Best effort: when the ring is broken the operation
    // completes on its own.
    void cancel_sqe(operation& op) noexcept {
        try {
            io_uring_sqe* sqe = get_sqe();
            io_uring_prep_cancel64(sqe, reinterpret_cast<std::uintptr_t>(&op), 0);
            io_uring_sqe_set_data64(sqe, 0);  // nobody waits for the cancel's own completion
        } catch (...) {
        }
    }

    io_uring_sqe* get_sqe() {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        while (!sqe) {
            // Submission queue full: hand the batch to the kernel and take a fresh slot.
            const int r = io_uring_submit(&ring_);
            ++enter_calls_;
            if (r < 0 && r != -EBUSY && r != -EAGAIN && r != -EINTR)
                throw std::system_error(-r, std::system_category(), "coio: io_uring_submit");
            sqe = io_uring_get_sqe(&ring_);
        }
        return sqe;
    }

    static void prepare(io_uring_sqe* sqe, operation& op) noexcept {
        switch (op.code) {
        case op_code::recv: io_uring_prep_recv(sqe, op.fd, op.buf, op.len, op.flags); break;
        case op_code::recv_multishot:
            io_uring_prep_recv_multishot(sqe, op.fd, nullptr, 0, op.flags);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = op.buf_group;
            break;
        case op_code::send: io_uring_prep_send(sqe, op.fd, op.buf, op.len, op.flags); break;
        case op_code::recvmsg: io_uring_prep_recvmsg(sqe, op.fd, static_cast<msghdr*>(op.buf), static_cast<unsigned>(op.flags)); break;
        case op_code::sendmsg:
            io_uring_prep_sendmsg(sqe, op.fd, static_cast<const msghdr*>(op.buf), static_cast<unsigned>(op.flags));
            break;
        case op_code::accept: io_uring_prep_accept(sqe, op.fd, static_cast<sockaddr*>(op.buf), op.addrlen, op.flags); break;
        case op_code::accept_multishot: io_uring_prep_multishot_accept(sqe, op.fd, nullptr, nullptr, op.flags); break;
        case op_code::connect: io_uring_prep_connect(sqe, op.fd, static_cast<const sockaddr*>(op.buf), op.len); break;
        case op_code::poll: io_uring_prep_poll_add(sqe, op.fd, static_cast<unsigned>(op.flags)); break;
        case op_code::read: io_uring_prep_read(sqe, op.fd, op.buf, op.len, static_cast<std::uint64_t>(op.offset)); break;
        case op_code::write: io_uring_prep_write(sqe, op.fd, op.buf, op.len, static_cast<std::uint64_t>(op.offset)); break;
        case op_code::shutdown: io_uring_prep_shutdown(sqe, op.fd, op.flags); break;
        case op_code::cancel_fd: io_uring_prep_cancel_fd(sqe, op.fd, IORING_ASYNC_CANCEL_ALL); break;
        case op_code::openat: io_uring_prep_openat(sqe, op.fd, static_cast<const char*>(op.buf), op.flags, op.len); break;
        case op_code::close: io_uring_prep_close(sqe, op.fd); break;
        case op_code::statx:
            io_uring_prep_statx(sqe, op.fd, op.path, op.flags, op.len, static_cast<struct statx*>(op.buf));
            break;
        case op_code::renameat:
            io_uring_prep_renameat(sqe, op.fd, static_cast<const char*>(op.buf), op.fd, op.path, 0);
            break;
        case op_code::fsync:
            io_uring_prep_fsync(sqe, op.fd, (op.flags & op_fsync_datasync) ? IORING_FSYNC_DATASYNC : 0);
            break;
        case op_code::custom: op.prep(&op, sqe); break;
        }
    }

    void arm_wake_read() {
        wake_op_.set_read(wake_fd_, &wake_op_.value, sizeof wake_op_.value, 0);
        submit(wake_op_);
    }

    // The first operation the loop needs that the kernel does not offer, or null.
    const char* missing_operation() noexcept {
        io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
        if (!probe) return "IORING_REGISTER_PROBE";
        struct {
            int op;
            const char* name;
        } const needed[] = {
            {IORING_OP_READ, "IORING_OP_READ"},         {IORING_OP_WRITE, "IORING_OP_WRITE"},
            {IORING_OP_SEND, "IORING_OP_SEND"},         {IORING_OP_RECV, "IORING_OP_RECV"},
            {IORING_OP_SENDMSG, "IORING_OP_SENDMSG"},   {IORING_OP_RECVMSG, "IORING_OP_RECVMSG"},
            {IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},     {IORING_OP_CONNECT, "IORING_OP_CONNECT"},
            {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"}, {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"},
            {IORING_OP_SHUTDOWN, "IORING_OP_SHUTDOWN"},
        };
        const char* missing = nullptr;
        for (const auto& n : needed)
            if (!io_uring_opcode_supported(probe, n.op)) { missing = n.name; break; }
        io_uring_free_probe(probe);
        return missing;
    }

    [[nodiscard]] bool nothing_for_kernel() const noexcept {
        if (!(flags_ & IORING_SETUP_TASKRUN_FLAG)) return false;
        if (io_uring_sq_ready(&ring_) != 0 || io_uring_cq_ready(&ring_) != 0) return false;
        const unsigned kflags = __atomic_load_n(ring_.sq.kflags, __ATOMIC_ACQUIRE);
        return (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) == 0;
    }

    io_uring ring_{};
    provided_buffer_ring* pool_ = nullptr;
    int streaming_run_ = streaming_run_from_environment();
    unsigned flags_ = 0;
    std::uint64_t enter_calls_ = 0;
    std::uint64_t streaming_receives_ = 0;
    std::size_t holding_ = 0;
    int wake_fd_ = -1;
    wake_operation wake_op_;
    wake_handler on_wake_;
    void* wake_ctx_;
    bool closed_ = false;
};

} // namespace coio::detail
