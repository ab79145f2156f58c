// coio/detail/operation.hpp - one I/O operation, described once for every backend. Not API.
//
// Contracts:
//  * An operation says WHAT to do (receive into this buffer, accept on this socket, wait for
//    this descriptor to become readable...), never how: the backend turns it into an SQE
//    (io_uring) or into a non-blocking system call plus a readiness registration (epoll).
//  * It lives where its owner lives (the awaiter in a coroutine frame, a stream's state) and
//    must not move or die while in flight: the backend keeps its address. No allocation.
//  * `complete(op, res, flags)` runs exactly once per completion, always from the loop's
//    completion dispatch, never inline from submit(): res is the system call's result, or
//    -errno. A multishot operation completes once per result while `flags` has op_more, and
//    a last time without it.
//  * cancel() is asynchronous: the operation still completes, with -ECANCELED or with a
//    result that won the race. Its owner may free the memory the kernel writes into only
//    after that completion.
#pragma once

#include <coio/detail/intrusive_list.hpp>

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <limits>

namespace coio::detail {

/// What an operation asks for.
enum class op_code : std::uint8_t {
    recv,              ///< recv(fd, buf, len, flags)
    recv_multishot,    ///< receive repeatedly into the loop's provided buffers (group buf_group)
    send,              ///< send(fd, buf, len, flags); MSG_NOSIGNAL is the caller's to add
    recvmsg,           ///< recvmsg(fd, msg = buf, flags)
    sendmsg,           ///< sendmsg(fd, msg = buf, flags)
    accept,            ///< accept4(fd, addr = buf, addrlen, flags)
    accept_multishot,  ///< accept repeatedly (no address), one completion per connection
    connect,           ///< connect(fd, addr = buf, len)
    poll,              ///< wait until fd has one of the poll(2) events in `flags` (one shot)
    read,              ///< read(fd, buf, len) at `offset` (-1: the file position)
    write,             ///< write(fd, buf, len) at `offset` (-1: the file position)
    shutdown,          ///< shutdown(fd, how = flags)
    cancel_fd,         ///< cancel every operation in flight on fd (before closing it)
    openat,            ///< openat(fd = dirfd, path = buf, flags, mode = len)
    close,             ///< close(fd)
    statx,             ///< statx(fd = dirfd, path, flags, mask = len, statxbuf = buf)
    fsync,             ///< fsync(fd), or fdatasync when flags has op_fsync_datasync
    renameat,          ///< renameat(fd = dirfd, from = buf, fd, to = path)
    custom,            ///< io_uring only: `prep(op, sqe)` prepares the SQE (coio::uring_op)
};

/// Completion flags. Their values are io_uring's (IORING_CQE_F_BUFFER, IORING_CQE_F_MORE and
/// IORING_CQE_BUFFER_SHIFT; the io_uring backend checks it), so that backend passes a CQE's
/// flags through unchanged and another backend produces the same bits.
inline constexpr unsigned op_buffer = 1u << 0;   ///< a provided buffer holds the data
inline constexpr unsigned op_more = 1u << 1;     ///< a multishot operation stays armed
inline constexpr unsigned op_buffer_shift = 16;  ///< the buffer's id is flags >> this

/// op_code::fsync's flag: flush the data only (fdatasync), as IORING_FSYNC_DATASYNC.
inline constexpr int op_fsync_datasync = 1 << 0;

/// An operation in flight (see the contracts above). The list_hook and the backend_* fields
/// belong to the backend that runs it (the epoll backend queues waiting and finished
/// operations through them; io_uring needs none).
struct operation : list_hook<operation> {
    using complete_fn = void (*)(operation*, int res, unsigned flags) noexcept;
    using prep_fn = void (*)(operation*, void* sqe);

    complete_fn complete = nullptr;
    void* buf = nullptr;  // data, msghdr (recvmsg/sendmsg) or sockaddr (accept/connect)
    union {
        std::int64_t offset = -1;  // read/write
        socklen_t* addrlen;        // accept
        prep_fn prep;              // custom
        const char* path;          // statx, renameat
    };
    std::uint32_t len = 0;         // bytes; connect: the address length
    int fd = -1;
    int flags = 0;                 // MSG_* (recv/send), SOCK_* (accept), POLL* (poll), SHUT_* (shutdown)
    op_code code = op_code::recv;
    // A background operation (the loop's wake-up read, a signal handler's read) never holds
    // a virtual clock (see holds_clock): it may wait forever and nothing is late for it.
    bool background = false;
    // The owner calls event_loop::forget_fd before it closes `fd`, so the epoll backend may
    // keep watching the descriptor for input between this operation's waits (a stream's
    // receive: no epoll_ctl per message; see the epoll backend's contracts).
    bool keep_watch = false;
    // The caller's own non-blocking try just found the descriptor full (a send that went out
    // in part): the epoll backend waits for readiness before its first try, which could only
    // find EAGAIN. io_uring has no such try to save here (the stream sends directly only on
    // epoll).
    bool wait_first = false;
    std::uint16_t buf_group = 0;   // recv_multishot: the provided-buffer group
    // The io_uring backend's state of a multishot receive (see "Streaming receives" in
    // detail/uring/backend.hpp): how it runs now, whether it streams, the length of its
    // current run of full (or, while streaming, short) receives, and whether its owner
    // asked to cancel it.
    std::uint8_t uring_state = 0;
    bool uring_streaming = true;
    std::uint8_t uring_run = 0;
    bool uring_cancel = false;

    void* backend_list = nullptr;  // the backend's list the operation is linked in, or null
    int backend_res = 0;           // a result waiting to be dispatched
    unsigned backend_flags = 0;
    std::uint32_t backend_done = 0;  // bytes already moved by a send that goes on (MSG_WAITALL)

    operation() noexcept = default;
    operation(const operation&) = delete;
    operation& operator=(const operation&) = delete;

    /// Sizes above 4 GiB are capped: one system call moves at most that much anyway.
    static std::uint32_t clamp(std::size_t n) noexcept {
        return n > std::numeric_limits<std::uint32_t>::max() ? std::numeric_limits<std::uint32_t>::max()
                                                             : static_cast<std::uint32_t>(n);
    }
    void set(op_code c, int f, void* b = nullptr, std::size_t n = 0, int fl = 0) noexcept {
        code = c;
        fd = f;
        buf = b;
        len = clamp(n);
        flags = fl;
        offset = -1;
    }
    void set_recv(int f, void* b, std::size_t n, int fl = 0) noexcept { set(op_code::recv, f, b, n, fl); }
    void set_send(int f, const void* b, std::size_t n, int fl) noexcept {
        set(op_code::send, f, const_cast<void*>(b), n, fl);  // never written through
    }
    void set_recvmsg(int f, msghdr* m, int fl = 0) noexcept { set(op_code::recvmsg, f, m, 0, fl); }
    void set_sendmsg(int f, const msghdr* m, int fl) noexcept { set(op_code::sendmsg, f, const_cast<msghdr*>(m), 0, fl); }
    void set_accept(int f, sockaddr* a, socklen_t* alen, int fl) noexcept {
        set(op_code::accept, f, a, 0, fl);
        addrlen = alen;
    }
    void set_connect(int f, const sockaddr* a, socklen_t alen) noexcept {
        set(op_code::connect, f, const_cast<sockaddr*>(a), alen);
    }
    void set_poll(int f, unsigned events) noexcept { set(op_code::poll, f, nullptr, 0, static_cast<int>(events)); }
    void set_read(int f, void* b, std::size_t n, std::int64_t off = -1) noexcept {
        set(op_code::read, f, b, n);
        offset = off;
    }
    void set_write(int f, const void* b, std::size_t n, std::int64_t off = -1) noexcept {
        set(op_code::write, f, const_cast<void*>(b), n);
        offset = off;
    }
    void set_recv_multishot(int f, std::uint16_t group) noexcept {
        set(op_code::recv_multishot, f);
        buf_group = group;
    }
    void set_accept_multishot(int f, int fl) noexcept { set(op_code::accept_multishot, f, nullptr, 0, fl); }
    void set_shutdown(int f, int how) noexcept { set(op_code::shutdown, f, nullptr, 0, how); }
    void set_cancel_fd(int f) noexcept { set(op_code::cancel_fd, f); }
    void set_openat(int dirfd, const char* p, int fl, unsigned mode) noexcept {
        set(op_code::openat, dirfd, const_cast<char*>(p), mode, fl);
    }
    void set_close(int f) noexcept { set(op_code::close, f); }
    void set_statx(int dirfd, const char* p, int fl, unsigned mask, void* statxbuf) noexcept {
        set(op_code::statx, dirfd, statxbuf, mask, fl);
        path = p;
    }
    void set_fsync(int f, int fl = 0) noexcept { set(op_code::fsync, f, nullptr, 0, fl); }
    void set_renameat(int dirfd, const char* from, const char* to) noexcept {
        set(op_code::renameat, dirfd, const_cast<char*>(from));
        path = to;
    }
    void set_custom(prep_fn p) noexcept {
        set(op_code::custom, -1);
        prep = p;
    }
};

/// True if a virtual clock (coio::clock_kind::virtual_time) must not jump while `op` is in
/// flight: an operation that completes on its own (a file operation, a read or write of a
/// descriptor, a send, a connect, a custom io_uring operation) and so would race a jump.
/// Operations that wait for a peer (receives, accepts, polls) do not hold it: a peer on the
/// same loop has done its part once the backend is quiet (loopback and Unix sockets deliver
/// inside the sender's system call), and one outside may never answer.
[[nodiscard]] inline bool holds_clock(const operation& op) noexcept {
    if (op.background) return false;
    switch (op.code) {
    case op_code::recv:
    case op_code::recv_multishot:
    case op_code::recvmsg:
    case op_code::accept:
    case op_code::accept_multishot:
    case op_code::poll: return false;
    default: return true;
    }
}

/// A list of operations (a backend's queue), linked through their own hook.
using op_list = intrusive_list<operation, operation>;

} // namespace coio::detail
