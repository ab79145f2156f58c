// coio/detail/uring/backend.hpp - the io_uring backend: the loop's one ring. Not API.
//
// Contracts:
//  * The only place that creates, submits to, waits on and tears down the ring. Operations
//    (detail/operation.hpp) become SQEs whose user_data is the operation's address; every CQE
//    goes back to its operation's complete(). CQEs whose user_data is 0 (async-cancel
//    requests) are nobody's and are skipped.
//  * One io_uring_enter per loop iteration in steady state (see wait()), and none at all when
//    tasks are ready and the kernel provably has nothing for us.
//  * Never fails on a full submission queue: it submits what it has and takes a fresh SQE.
//  * The cross-thread wake-up is an eventfd read always in flight on the ring; its
//    completion calls the loop's wake handler and re-arms the read.
#pragma once

#include <coio/detail/core.hpp>
#include <coio/detail/operation.hpp>

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
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
        io_uring_sqe* sqe = get_sqe();
        prepare(sqe, op);
        io_uring_sqe_set_data(sqe, &op);
        if (holds_clock(op)) ++holding_;
    }
    /// Asks the kernel to cancel `op` (it still completes; see operation.hpp). Best effort: when
    /// the ring is broken the operation completes on its own.
    void cancel(operation& op) noexcept {
        try {
            io_uring_sqe* sqe = get_sqe();
            io_uring_prep_cancel64(sqe, reinterpret_cast<std::uintptr_t>(&op), 0);
            io_uring_sqe_set_data64(sqe, 0);  // nobody waits for the cancel's own completion
        } catch (...) {
        }
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
    /// The setup flags the kernel accepted (IORING_SETUP_*).
    [[nodiscard]] unsigned ring_flags() const noexcept { return flags_; }
    /// io_uring_enter calls made so far.
    [[nodiscard]] std::uint64_t enter_calls() const noexcept { return enter_calls_; }
    /// Operations in flight that hold a virtual clock (see holds_clock).
    [[nodiscard]] std::size_t holding() const noexcept { return holding_; }
    /// True when nothing waits to be submitted or dispatched (a virtual clock may jump).
    [[nodiscard]] bool quiet() const noexcept { return io_uring_sq_ready(&ring_) == 0 && io_uring_cq_ready(&ring_) == 0; }

private:
    struct wake_operation : operation {
        uring_backend* owner = nullptr;
        std::uint64_t value = 0;
    };

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
    unsigned flags_ = 0;
    std::uint64_t enter_calls_ = 0;
    std::size_t holding_ = 0;
    int wake_fd_ = -1;
    wake_operation wake_op_;
    wake_handler on_wake_;
    void* wake_ctx_;
    bool closed_ = false;
};

} // namespace coio::detail
