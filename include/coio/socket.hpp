// coio/socket.hpp - coio::socket: an RAII socket whose I/O is io_uring operations (asyncio's
// loop.sock_* functions, as methods).
//
//   coio::socket s(AF_INET, SOCK_STREAM);
//   co_await s.connect(coio::endpoint("127.0.0.1", 8080));
//   co_await s.sendall("hello\n");
//   std::string reply = co_await s.recv(4096);
//
// Every awaitable here is one I/O operation whose state lives in the awaiting frame (no
// allocation) and which is cancellation-safe: a cancelled task resumes only after the kernel
// has returned the operation's completion, so buffers and socket addresses the kernel writes
// to stay valid until then. Sends use MSG_NOSIGNAL: a vanished peer is an EPIPE error, never a
// SIGPIPE. Failures are std::system_error with the errno (compare with std::errc) and a message
// naming the operation and the address.
#pragma once

#include <coio/coro.hpp>
#include <coio/detail/core.hpp>
#include <coio/endpoint.hpp>
#include <coio/errors.hpp>
#include <coio/impl/op_awaiter.hpp>
#include <coio/impl/socket_address.hpp>
#include <coio/loop.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace coio {

class socket;
struct accepted_connection;


/// An RAII socket (Python's `socket.socket`) whose operations are io_uring operations.
///
/// Move-only; the destructor closes the descriptor. Plain system calls (bind, listen,
/// setsockopt, getsockname) are ordinary methods; everything that may block is an awaitable
/// (`connect`, `accept`, `recv`, `recv_into`, `send`, `sendall`, `recvfrom`, `sendto`,
/// `shutdown`, `close`) that must be awaited inside a task on a coio loop.
///
/// Addresses: IPv4/IPv6 as coio::endpoint; Unix-domain sockets by path through bind_unix,
/// connect_unix, local_path and peer_path (a path starting with '\0' is a Linux abstract
/// name, as in Python).
///
/// Throws: std::system_error with the errno (compare `e.code()` with std::errc values, e.g.
/// std::errc::connection_refused) and a message naming the operation and the address.
///
/// Cancellation: each awaitable is cancellation-safe: cancelling the task cancels the kernel
/// operation and resumes the task (with cancelled_error) only after the kernel is done with
/// the buffers. A result that arrived in the meantime is returned instead, and the
/// cancellation is delivered at the task's next await.
///
/// Example:
/// @code
///   coio::socket listener(AF_INET, SOCK_STREAM);
///   listener.set_reuse_address(true);
///   listener.bind(coio::endpoint("127.0.0.1", 0));
///   listener.listen();
///   auto [conn, peer] = co_await listener.accept();
///   std::byte buf[4096];
///   std::size_t n = co_await conn.recv_into(buf);
///   co_await conn.sendall(std::span(buf, n));
/// @endcode
class socket {
public:
    /// An empty socket (no descriptor).
    socket() noexcept = default;
    /// Creates a socket (`::socket(family, type | SOCK_CLOEXEC, protocol)`).
    /// @param family   AF_INET, AF_INET6 or AF_UNIX.
    /// @param type     SOCK_STREAM or SOCK_DGRAM (flags such as SOCK_NONBLOCK may be or-ed in).
    /// @param protocol usually 0.
    /// Throws: std::system_error (e.g. EMFILE, EAFNOSUPPORT).
    socket(int family, int type, int protocol = 0) : family_(family), type_(type & 0xf) {
        fd_ = ::socket(family, type | SOCK_CLOEXEC, protocol);
        if (fd_ < 0) detail::throw_errno(errno, "socket()");
    }
    /// Takes ownership of an open socket descriptor (family and type are queried).
    /// Throws: std::system_error if `fd` is not a socket.
    [[nodiscard]] static socket from_fd(int fd) {
        socket s;
        s.fd_ = fd;
        s.family_ = s.getsockopt(SOL_SOCKET, SO_DOMAIN);
        s.type_ = s.getsockopt(SOL_SOCKET, SO_TYPE);
        return s;
    }
    /// Takes over `o`'s descriptor; `o` is left closed.
    socket(socket&& o) noexcept
        : fd_(std::exchange(o.fd_, -1)), family_(o.family_), type_(o.type_), unlink_path_(std::move(o.unlink_path_)) {}
    /// Closes the descriptor held, then takes over `o`'s; `o` is left closed.
    socket& operator=(socket&& o) noexcept {
        if (this != &o) {
            close_now();
            fd_ = std::exchange(o.fd_, -1);
            family_ = o.family_;
            type_ = o.type_;
            unlink_path_ = std::move(o.unlink_path_);
        }
        return *this;
    }
    socket(const socket&) = delete;
    socket& operator=(const socket&) = delete;
    /// Closes the descriptor (synchronously). Operations must not be in flight any more:
    /// await them (or cancel their tasks) first, or use `co_await close()`.
    ~socket() { close_now(); }

    /// The descriptor, or -1.
    [[nodiscard]] int fileno() const noexcept { return fd_; }
    /// True while the socket holds a descriptor.
    [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
    /// Same as is_open().
    explicit operator bool() const noexcept { return fd_ >= 0; }
    /// AF_INET, AF_INET6 or AF_UNIX.
    [[nodiscard]] int family() const noexcept { return family_; }
    /// SOCK_STREAM or SOCK_DGRAM.
    [[nodiscard]] int type() const noexcept { return type_; }
    /// Gives up ownership: returns the descriptor and leaves the socket empty.
    int release() noexcept { unlink_path_.clear(); return std::exchange(fd_, -1); }

    // ---- options -------------------------------------------------------------------------
    /// `setsockopt(level, name, &value, sizeof value)` for any option value type.
    /// Throws: std::system_error.
    template <class T>
    void setsockopt(int level, int name, const T& value) {
        if (::setsockopt(fd_, level, name, &value, sizeof value) != 0)
            detail::throw_errno(errno, "setsockopt(" + std::to_string(level) + ", " + std::to_string(name) + ")");
    }
    /// An integer option. Throws: std::system_error.
    [[nodiscard]] int getsockopt(int level, int name) const {
        int v = 0;
        socklen_t len = sizeof v;
        if (::getsockopt(fd_, level, name, &v, &len) != 0)
            detail::throw_errno(errno, "getsockopt(" + std::to_string(level) + ", " + std::to_string(name) + ")");
        return v;
    }
    /// SO_REUSEADDR: bind a port that has connections in TIME_WAIT.
    void set_reuse_address(bool on) { setsockopt(SOL_SOCKET, SO_REUSEADDR, int(on)); }
    /// SO_REUSEPORT: several sockets (one per thread/loop) share a port; the kernel spreads
    /// incoming connections over them.
    void set_reuse_port(bool on) { setsockopt(SOL_SOCKET, SO_REUSEPORT, int(on)); }
    /// TCP_NODELAY: send small writes at once (no Nagle delay). On by default for streams.
    void set_nodelay(bool on) { setsockopt(IPPROTO_TCP, TCP_NODELAY, int(on)); }
    /// SO_KEEPALIVE.
    void set_keepalive(bool on) { setsockopt(SOL_SOCKET, SO_KEEPALIVE, int(on)); }
    /// IPV6_V6ONLY (IPv6 sockets): do not accept IPv4-mapped connections.
    void set_v6only(bool on) { setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, int(on)); }
    /// SO_BROADCAST (datagram sockets).
    void set_broadcast(bool on) { setsockopt(SOL_SOCKET, SO_BROADCAST, int(on)); }
    /// SO_RCVBUF / SO_SNDBUF sizes in bytes.
    void set_receive_buffer_size(int bytes) { setsockopt(SOL_SOCKET, SO_RCVBUF, bytes); }
    /// See set_receive_buffer_size.
    void set_send_buffer_size(int bytes) { setsockopt(SOL_SOCKET, SO_SNDBUF, bytes); }

    // ---- addresses -----------------------------------------------------------------------
    /// Binds to an IPv4/IPv6 address. Throws: std::system_error naming the address (e.g.
    /// std::errc::address_in_use).
    void bind(const endpoint& ep) {
        if (::bind(fd_, ep.data(), ep.size()) != 0) detail::throw_errno(errno, "bind to " + ep.to_string());
    }
    /// Binds a Unix-domain socket to `path` (leading '\0': abstract name).
    /// Throws: std::system_error naming the path.
    void bind_unix(std::string_view path) {
        sockaddr_un sa;
        const socklen_t len = detail::make_unix_address(path, sa);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0)
            detail::throw_errno(errno, "bind to " + detail::printable_unix_path(path));
    }
    /// Starts listening. @param backlog the accept queue length. Throws: std::system_error.
    void listen(int backlog = SOMAXCONN) {
        if (::listen(fd_, backlog) != 0) detail::throw_errno(errno, "listen on " + detail::describe_fd(fd_, false));
    }
    /// The bound address (getsockname). Throws: std::system_error; std::invalid_argument
    /// for a Unix-domain socket (use local_path()).
    [[nodiscard]] endpoint local_address() const { return address(false); }
    /// The connected peer's address (getpeername). Throws: std::system_error (ENOTCONN);
    /// std::invalid_argument for a Unix-domain socket (use peer_path()).
    [[nodiscard]] endpoint peer_address() const { return address(true); }
    /// The bound path of a Unix-domain socket ("" when unbound).
    [[nodiscard]] std::string local_path() const { return path(false); }
    /// The peer's path of a connected Unix-domain socket ("" when the peer is unbound).
    [[nodiscard]] std::string peer_path() const { return path(true); }

    /// Internal (start_unix_server): unlink this filesystem path when the socket is closed.
    void set_unlink_on_close(std::string path) { unlink_path_ = std::move(path); }
    /// Internal: wraps a descriptor whose family and type are known.
    [[nodiscard]] static socket adopt(int fd, int family, int type) noexcept {
        socket s;
        s.fd_ = fd;
        s.family_ = family;
        s.type_ = type;
        return s;
    }

    // ---- awaitable operations ------------------------------------------------------------
    class connect_awaiter;
    class accept_awaiter;
    class recv_awaiter;
    class recv_into_awaiter;
    class send_awaiter;
    class recvfrom_awaiter;
    class recvfrom_into_awaiter;
    class sendto_awaiter;
    class shutdown_awaiter;
    class close_awaiter;

    /// Connects to `ep` (asyncio's loop.sock_connect).
    /// Returns: nothing. Throws: std::system_error naming the address (e.g.
    /// std::errc::connection_refused: "coio: connect to 127.0.0.1:1: Connection refused").
    /// Cancellation: the connect is cancelled in the kernel; the socket is then unusable.
    /// Example: `co_await s.connect(coio::endpoint("127.0.0.1", 80));`
    [[nodiscard]] connect_awaiter connect(const endpoint& ep) noexcept;
    /// Connects a Unix-domain socket to `path` (leading '\0': abstract name).
    /// Throws: std::system_error naming the path (ENOENT, ECONNREFUSED, ENAMETOOLONG).
    /// Cancellation: as connect(). Example: `co_await s.connect_unix("/tmp/app.sock");`
    [[nodiscard]] connect_awaiter connect_unix(std::string_view path);
    /// Accepts a connection (asyncio's loop.sock_accept); the new socket is close-on-exec.
    /// Returns: `accepted{socket, peer endpoint}` (the endpoint is empty for Unix sockets).
    /// Throws: std::system_error. Cancellation: the accept is cancelled in the kernel; a
    /// connection accepted meanwhile is returned, not lost.
    /// Example: `auto [conn, peer] = co_await listener.accept();`
    [[nodiscard]] accept_awaiter accept() noexcept;
    /// Receives up to `max_bytes` (asyncio's loop.sock_recv).
    /// Returns: the bytes; empty at end of stream. Throws: std::system_error (e.g.
    /// std::errc::connection_reset). Cancellation: cancellation-safe (see the class comment).
    /// Example: `std::string data = co_await s.recv(4096);`
    [[nodiscard]] recv_awaiter recv(std::size_t max_bytes);
    /// Receives into `buf` (asyncio's loop.sock_recv_into), with no copy.
    /// Returns: the byte count; 0 at end of stream. Throws: std::system_error.
    /// Cancellation: the task resumes only after the kernel stopped writing into `buf`.
    /// Example: `std::size_t n = co_await s.recv_into(buf);`
    [[nodiscard]] recv_into_awaiter recv_into(std::span<std::byte> buf) noexcept;
    /// Sends some of `data` with MSG_NOSIGNAL (one send(2)).
    /// Returns: bytes sent. Throws: std::system_error (std::errc::broken_pipe or
    /// connection_reset when the peer is gone; never SIGPIPE). Cancellation: cancellation-safe.
    /// Example: `std::size_t n = co_await s.send(data);`
    [[nodiscard]] send_awaiter send(std::span<const std::byte> data) noexcept;
    /// See send(std::span<const std::byte>).
    [[nodiscard]] send_awaiter send(std::string_view data) noexcept;
    /// Sends all of `data` (asyncio's loop.sock_sendall), resending after short sends.
    /// Throws: std::system_error as send(). Cancellation: stops between sends; how much was
    /// sent is then unknown (as in asyncio).
    /// Example: `co_await s.sendall("PING\r\n");`
    [[nodiscard]] coro<void> sendall(std::span<const std::byte> data);
    /// See sendall(std::span<const std::byte>). The characters must stay alive until done.
    [[nodiscard]] coro<void> sendall(std::string_view data);
    /// Receives one datagram of up to `max_bytes` (asyncio's loop.sock_recvfrom).
    /// Returns: {data, sender} (the sender is empty for Unix-domain sockets).
    /// Throws: std::system_error. Cancellation: cancellation-safe.
    /// Example: `auto [data, from] = co_await s.recvfrom(2048);`
    [[nodiscard]] recvfrom_awaiter recvfrom(std::size_t max_bytes = 65536);
    /// Receives one datagram into `buf` (asyncio's loop.sock_recvfrom_into).
    /// Returns: {byte count, sender}. A datagram larger than `buf` is truncated.
    /// Throws: std::system_error. Cancellation: cancellation-safe.
    /// Example: `auto [n, from] = co_await s.recvfrom_into(buf);`
    [[nodiscard]] recvfrom_into_awaiter recvfrom_into(std::span<std::byte> buf) noexcept;
    /// Sends one datagram to `to` (asyncio's loop.sock_sendto), MSG_NOSIGNAL.
    /// Returns: bytes sent. Throws: std::system_error naming the address.
    /// Cancellation: cancellation-safe. Example: `co_await s.sendto("ping", peer);`
    [[nodiscard]] sendto_awaiter sendto(std::span<const std::byte> data, const endpoint& to) noexcept;
    /// See sendto(std::span<const std::byte>, const endpoint&).
    [[nodiscard]] sendto_awaiter sendto(std::string_view data, const endpoint& to) noexcept;
    /// Shuts down reading (SHUT_RD), writing (SHUT_WR, sends FIN) or both (SHUT_RDWR).
    /// Throws: std::system_error (ENOTCONN). Cancellation: cancellation-safe.
    /// Example: `co_await s.shutdown(SHUT_WR);`
    [[nodiscard]] shutdown_awaiter shutdown(int how = SHUT_WR) noexcept;
    /// Cancels every operation still in flight on this socket (their tasks get an error
    /// std::errc::operation_canceled) and closes it through io_uring. Afterwards the socket
    /// is empty. Closing an empty socket does nothing.
    /// Throws: std::system_error from close(2) (rare: EIO). Cancellation: the close still
    /// completes (the descriptor is gone either way).
    /// Example: `co_await s.close();`
    [[nodiscard]] close_awaiter close() noexcept;

private:
    void close_now() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        if (!unlink_path_.empty()) ::unlink(unlink_path_.c_str());
        unlink_path_.clear();
    }
    endpoint address(bool peer) const {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        const int r = peer ? ::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len)
                           : ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
        if (r != 0) detail::throw_errno(errno, peer ? "getpeername" : "getsockname");
        return endpoint(reinterpret_cast<sockaddr*>(&ss), len);
    }
    std::string path(bool peer) const {
        sockaddr_un sa{};
        socklen_t len = sizeof sa;
        const int r = peer ? ::getpeername(fd_, reinterpret_cast<sockaddr*>(&sa), &len)
                           : ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
        if (r != 0) detail::throw_errno(errno, peer ? "getpeername" : "getsockname");
        if (sa.sun_family != AF_UNIX) throw std::invalid_argument("coio: not a Unix-domain socket");
        return detail::unix_path_of(sa, len);
    }

    int fd_ = -1;
    int family_ = AF_UNSPEC;
    int type_ = 0;
    std::string unlink_path_;  // start_unix_server removes its socket file on close
};

// ---- awaiter definitions -------------------------------------------------------------------

/// Awaiter of socket::connect / connect_unix (the address lives here until the CQE).
class socket::connect_awaiter : public detail::op_awaiter<connect_awaiter> {
public:
    connect_awaiter(int fd, const sockaddr* sa, socklen_t len) noexcept : op_awaiter("socket connect") {
        std::memcpy(&addr_, sa, len);
        set_connect(fd, reinterpret_cast<sockaddr*>(&addr_), len);
    }
    void result(int res) {
        if (res < 0) detail::throw_errno(-res, "connect to " + detail::describe_address(reinterpret_cast<sockaddr*>(&addr_), len));
    }

private:
    sockaddr_storage addr_{};
};

/// A connection returned by socket::accept(): the connected socket and the peer's address
/// (empty for Unix-domain sockets).
struct accepted_connection {
    coio::socket socket;  ///< the connected socket
    endpoint address;     ///< the peer's address (empty for Unix-domain sockets)
};

class socket::accept_awaiter : public detail::op_awaiter<accept_awaiter> {
public:
    accept_awaiter(int fd, int family, int type) noexcept : op_awaiter("socket accept"), family_(family), type_(type) {
        set_accept(fd, reinterpret_cast<sockaddr*>(&addr_), &addr_len_, SOCK_CLOEXEC);
    }
    accepted_connection result(int res) {
        if (res < 0) detail::throw_errno(-res, "accept on " + detail::describe_fd(fd, false));
        accepted_connection a;
        a.socket = socket::adopt(res, family_, type_);
        if (addr_.ss_family == AF_INET || addr_.ss_family == AF_INET6)
            a.address = endpoint(reinterpret_cast<sockaddr*>(&addr_), addr_len_);
        return a;
    }

private:
    int family_;
    int type_;
    socklen_t addr_len_ = sizeof(sockaddr_storage);
    sockaddr_storage addr_{};
};

class socket::recv_awaiter : public detail::op_awaiter<recv_awaiter> {
public:
    recv_awaiter(int fd, std::size_t max) : op_awaiter("socket recv"), buf_(max, '\0') { set_recv(fd, buf_.data(), buf_.size()); }
    std::string result(int res) {
        if (res < 0) detail::throw_errno(-res, "recv from " + detail::describe_fd(fd, true));
        buf_.resize(static_cast<std::size_t>(res));
        return std::move(buf_);
    }

private:
    std::string buf_;
};

class socket::recv_into_awaiter : public detail::op_awaiter<recv_into_awaiter> {
public:
    recv_into_awaiter(int fd, std::span<std::byte> buf) noexcept : op_awaiter("socket recv") {
        set_recv(fd, buf.data(), buf.size());
    }
    std::size_t result(int res) {
        if (res < 0) detail::throw_errno(-res, "recv from " + detail::describe_fd(fd, true));
        return static_cast<std::size_t>(res);
    }
};

class socket::send_awaiter : public detail::op_awaiter<send_awaiter> {
public:
    send_awaiter(int fd, std::span<const std::byte> data) noexcept : op_awaiter("socket send") {
        set_send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    }
    std::size_t result(int res) {
        if (res < 0) detail::throw_errno(-res, "send to " + detail::describe_fd(fd, true));
        return static_cast<std::size_t>(res);
    }
};

namespace detail {
/// What recvfrom and recvfrom_into share: one recvmsg with the sender's address.
template <class Result>
class recvfrom_base : public op_awaiter<Result> {
protected:
    recvfrom_base(int fd, void* p, std::size_t n) noexcept : op_awaiter<Result>("socket recvfrom") {
        iov_.iov_base = p;
        iov_.iov_len = n;
        msg_.msg_name = &addr_;
        msg_.msg_namelen = sizeof addr_;
        msg_.msg_iov = &iov_;
        msg_.msg_iovlen = 1;
        this->set_recvmsg(fd, &msg_);
    }
    std::size_t check(int res) {
        if (res < 0) throw_errno(-res, "recvfrom on " + describe_fd(this->fd, false));
        return static_cast<std::size_t>(res);
    }
    endpoint sender() const {
        if (addr_.ss_family == AF_INET || addr_.ss_family == AF_INET6)
            return endpoint(reinterpret_cast<const sockaddr*>(&addr_), msg_.msg_namelen);
        return endpoint();
    }
    iovec iov_{};
    msghdr msg_{};
    sockaddr_storage addr_{};
};
} // namespace detail

class socket::recvfrom_awaiter : public detail::recvfrom_base<recvfrom_awaiter> {
public:
    recvfrom_awaiter(int fd, std::size_t max) : recvfrom_base(fd, nullptr, 0), buf_(max, '\0') {
        iov_.iov_base = buf_.data();
        iov_.iov_len = buf_.size();
    }
    std::pair<std::string, endpoint> result(int res) {
        buf_.resize(check(res));
        return {std::move(buf_), sender()};
    }

private:
    std::string buf_;
};

class socket::recvfrom_into_awaiter : public detail::recvfrom_base<recvfrom_into_awaiter> {
public:
    recvfrom_into_awaiter(int fd, std::span<std::byte> buf) noexcept : recvfrom_base(fd, buf.data(), buf.size()) {}
    std::pair<std::size_t, endpoint> result(int res) {
        const std::size_t n = check(res);
        return {n, sender()};
    }
};

class socket::sendto_awaiter : public detail::op_awaiter<sendto_awaiter> {
public:
    sendto_awaiter(int fd, std::span<const std::byte> data, const endpoint& to) noexcept
        : op_awaiter("socket sendto"), to_(to) {
        iov_.iov_base = const_cast<std::byte*>(data.data());  // sendmsg does not write through it
        iov_.iov_len = data.size();
        msg_.msg_name = to_.data();
        msg_.msg_namelen = to_.size();
        msg_.msg_iov = &iov_;
        msg_.msg_iovlen = 1;
        set_sendmsg(fd, &msg_, MSG_NOSIGNAL);
    }
    std::size_t result(int res) {
        if (res < 0) detail::throw_errno(-res, "sendto " + to_.to_string());
        return static_cast<std::size_t>(res);
    }

private:
    endpoint to_;
    iovec iov_{};
    msghdr msg_{};
};

class socket::shutdown_awaiter : public detail::op_awaiter<shutdown_awaiter> {
public:
    shutdown_awaiter(int fd, int how) noexcept : op_awaiter("socket shutdown") { set_shutdown(fd, how); }
    void result(int res) {
        if (res < 0) detail::throw_errno(-res, "shutdown of " + detail::describe_fd(fd, true));
    }
};

class socket::close_awaiter : detail::cancel_hook, detail::operation {
public:
    explicit close_awaiter(socket& s) noexcept : sock_(&s) { what = "socket close"; }
    close_awaiter(const close_awaiter&) = delete;
    close_awaiter& operator=(const close_awaiter&) = delete;

    bool await_ready() const noexcept { return sock_->fd_ < 0; }
    bool await_suspend(std::coroutine_handle<> h) {
        task_ = &detail::require_current_task();
        // Uncancellable on purpose: the descriptor is closed whatever happens.
        task_->begin_wait_uncancellable(h, this);
        on_cancel = [](detail::cancel_hook*) noexcept {};
        complete = [](detail::operation* op, int, unsigned) noexcept { static_cast<close_awaiter*>(op)->task_->wake(); };
        set_cancel_fd(sock_->fd_);
        try {
            task_->loop()->submit(*this);
        } catch (...) {
            task_->abandon_wait();
            throw;
        }
        return true;
    }
    void await_resume() {
        // The cancellations are issued; operations still finishing hold their own reference
        // to the file, so closing the descriptor now is safe.
        const int fd = std::exchange(sock_->fd_, -1);
        if (fd < 0) return;
        const int r = ::close(fd);
        const int err = errno;
        if (!sock_->unlink_path_.empty()) ::unlink(sock_->unlink_path_.c_str());
        sock_->unlink_path_.clear();
        if (r != 0 && err != EINTR) detail::throw_errno(err, "close");
    }

private:
    socket* sock_;
    detail::task_base* task_ = nullptr;
};

// ---- socket members returning awaiters -----------------------------------------------------

inline socket::connect_awaiter socket::connect(const endpoint& ep) noexcept {
    return connect_awaiter(fd_, ep.data(), ep.size());
}
inline socket::connect_awaiter socket::connect_unix(std::string_view path) {
    sockaddr_un sa;
    const socklen_t len = detail::make_unix_address(path, sa);
    return connect_awaiter(fd_, reinterpret_cast<sockaddr*>(&sa), len);
}
inline socket::accept_awaiter socket::accept() noexcept { return accept_awaiter(fd_, family_, type_); }
inline socket::recv_awaiter socket::recv(std::size_t max_bytes) { return recv_awaiter(fd_, max_bytes); }
inline socket::recv_into_awaiter socket::recv_into(std::span<std::byte> buf) noexcept { return recv_into_awaiter(fd_, buf); }
inline socket::send_awaiter socket::send(std::span<const std::byte> data) noexcept { return send_awaiter(fd_, data); }
inline socket::send_awaiter socket::send(std::string_view data) noexcept {
    return send_awaiter(fd_, std::as_bytes(std::span(data.data(), data.size())));
}
inline coro<void> socket::sendall(std::span<const std::byte> data) {
    while (!data.empty()) {
        const std::size_t n = co_await send(data);
        data = data.subspan(n);
    }
}
inline coro<void> socket::sendall(std::string_view data) {
    return sendall(std::as_bytes(std::span(data.data(), data.size())));
}
inline socket::recvfrom_awaiter socket::recvfrom(std::size_t max_bytes) { return recvfrom_awaiter(fd_, max_bytes); }
inline socket::recvfrom_into_awaiter socket::recvfrom_into(std::span<std::byte> buf) noexcept {
    return recvfrom_into_awaiter(fd_, buf);
}
inline socket::sendto_awaiter socket::sendto(std::span<const std::byte> data, const endpoint& to) noexcept {
    return sendto_awaiter(fd_, data, to);
}
inline socket::sendto_awaiter socket::sendto(std::string_view data, const endpoint& to) noexcept {
    return sendto_awaiter(fd_, std::as_bytes(std::span(data.data(), data.size())), to);
}
inline socket::shutdown_awaiter socket::shutdown(int how) noexcept { return shutdown_awaiter(fd_, how); }
inline socket::close_awaiter socket::close() noexcept { return close_awaiter(*this); }

} // namespace coio
