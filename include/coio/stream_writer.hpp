// coio/stream_writer.hpp - coio::stream_writer (asyncio.StreamWriter).
//
//   writer.write("HELLO\n");
//   co_await writer.drain();      // flow control: waits only when the buffer is over the mark
//   writer.close();
//   co_await writer.wait_closed();
#pragma once

#include <coio/coro.hpp>
#include <coio/impl/net_service.hpp>
#include <coio/impl/stream_state.hpp>
#include <coio/endpoint.hpp>
#include <coio/socket.hpp>
#include <coio/stream_chunk.hpp>

#include <any>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <utility>

namespace coio {

// TLS (defined in <coio/tls.hpp>, target coio::tls): declared here so that start_tls reads as
// in asyncio, without making this header depend on OpenSSL.
class ssl_context;
struct start_tls_options;
class ssl_stream_reader;
class ssl_stream_writer;
// Files (defined in <coio/file.hpp>, which also defines stream_writer::sendfile).
class file;

/// The writing half of a stream connection (asyncio.StreamWriter).
///
/// `write()` copies the bytes into the connection's buffer and starts a send at once (the
/// caller's memory is free as soon as write returns; the buffers keep their capacity, so
/// steady-state writes do not allocate). `drain()` is the flow control: it returns at once
/// while less than the high-water mark (64 KiB by default) is buffered, and otherwise waits
/// until the buffer is down to the low-water mark (high / 4), so a fast writer cannot grow
/// memory without bound. As in asyncio, "buffered" means not yet handed to the kernel: the
/// bytes of the one send in flight do not count (asyncio's write sends at once and counts
/// only what the socket refused), so at most one send's worth plus the high-water mark is
/// held in memory. TCP_NODELAY is on by default, as in asyncio.
/// `write(stream_chunk)` queues received data without copying it (zero-copy echo/proxy).
///
/// Move-only handle to state shared with the stream_reader. `close()` flushes what was
/// written, then closes the socket; `wait_closed()` waits for that. Dropping both the reader
/// and the writer closes the connection the same way.
///
/// Throws: drain() throws std::system_error when the connection failed (std::errc::broken_pipe
/// or connection_reset when the peer has gone; SIGPIPE never happens); write() after
/// close() or write_eof() throws invalid_state_error; writes after a failure are discarded
/// (drain() reports the failure), as in asyncio.
///
/// Cancellation: drain() and wait_closed() are cancellation points that leave the buffered
/// data to be sent; cancelling them loses nothing.
///
/// Example:
/// @code
///   writer.write("GET / HTTP/1.0\r\n\r\n");
///   co_await writer.drain();
///   writer.close();
///   co_await writer.wait_closed();
/// @endcode
class stream_writer {
public:
    /// An empty writer (not connected).
    stream_writer() noexcept = default;
    /// Internal: a handle on `s`.
    explicit stream_writer(detail::stream_state* s) noexcept : s_(s) {
        if (s_) s_->add_handle();
    }
    /// Takes over `o`'s handle; `o` becomes empty.
    stream_writer(stream_writer&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    /// Drops the handle held (see ~stream_writer), then takes over `o`'s.
    stream_writer& operator=(stream_writer&& o) noexcept {
        if (this != &o) {
            reset();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    stream_writer(const stream_writer&) = delete;
    stream_writer& operator=(const stream_writer&) = delete;
    /// Drops the handle; the connection closes (after flushing) when the reader is gone too.
    ~stream_writer() { reset(); }

    /// True when the writer refers to a connection.
    explicit operator bool() const noexcept { return s_ != nullptr; }

    /// Buffers `data` and starts sending it. Never blocks or suspends.
    /// Throws: invalid_state_error after close() or write_eof().
    /// Cancellation: not a suspension point. Example: `writer.write(std::span(buf, n));`
    void write(std::span<const std::byte> data) { state().write(data); }
    /// Queues a received chunk (from stream_reader::read_chunk) and sends it straight from
    /// its memory: no copy (beyond asyncio). The chunk is released (its ring buffer goes
    /// back to the kernel) once sent, or when the connection fails or is aborted. Bytes
    /// written before are sent before it, bytes written after, after it; drain() counts its
    /// size like any written bytes. An empty chunk is ignored.
    /// @param chunk  taken over by the writer (also when write throws).
    /// Throws: invalid_state_error after close() or write_eof(). After a connection failure
    /// the chunk is dropped and drain() reports the error, as for write(bytes).
    /// Cancellation: not a suspension point.
    /// Example: `auto c = co_await reader.read_chunk(); writer.write(std::move(c));`
    void write(stream_chunk chunk) { state().write(std::move(chunk)); }
    /// Takes over a string and sends it from its own memory when it is large (16 KiB or
    /// more: no copy, as for a chunk), else buffers its characters as write(string_view)
    /// does. Only for a std::string passed as an rvalue; an lvalue is copied by
    /// write(string_view). Bytes written before are sent before it.
    /// Throws: invalid_state_error after close() or write_eof().
    /// Cancellation: not a suspension point.
    /// Example: `std::string s = co_await reader.read(65536); writer.write(std::move(s));`
    template <class S>
        requires std::same_as<S, std::string>
    void write(S&& data) {
        state().write(std::move(data));
    }
    /// Buffers the characters of `data`. See write(std::span<const std::byte>).
    /// Example: `writer.write("hello\n");`
    void write(std::string_view data) { state().write(std::as_bytes(std::span(data.data(), data.size()))); }
    /// Writes every element of `lines` (anything convertible to std::string_view), in order
    /// (asyncio's writelines: no separators are added).
    /// Throws: as write(). Example: `writer.writelines(std::vector<std::string>{"a\n", "b\n"});`
    template <class Range>
    void writelines(const Range& lines) {
        for (const auto& l : lines) write(std::string_view(l));
    }

    class drain_awaiter;
    class wait_closed_awaiter;

    /// Flow control (asyncio's drain): waits while more than the high-water mark is buffered,
    /// until the buffer is at the low-water mark. Returns at once otherwise.
    /// Throws: std::system_error when the connection failed (broken pipe, reset), naming the
    /// peer. Cancellation: a cancellation point; buffered data is still sent.
    /// Example: `writer.write(block); co_await writer.drain();`
    [[nodiscard]] drain_awaiter drain();

    /// Sends `count` bytes of `f` from `offset` (or up to its end) on this stream without
    /// copying them through user space (asyncio's loop.sendfile(transport, file, offset,
    /// count)). What was written before is sent first; write() throws invalid_state_error
    /// while sendfile runs. io_uring: splice from the file into a private pipe and from it
    /// into the socket (into a pipe stream: one splice); epoll: sendfile(2) on readiness. The
    /// file's own position is not used or moved. splice and sendfile(2) cannot suppress
    /// SIGPIPE per call, so SIGPIPE is set to "ignore" if it is at its default (as for pipe
    /// streams, see coio/pipe.hpp): a vanished peer is an exception, not the process's end.
    /// Defined in <coio/file.hpp>.
    /// @param f       an open coio::file (a regular file).
    /// @param offset  where to start in the file.
    /// @param count   bytes to send; std::nullopt: up to the end of the file.
    /// Returns: the bytes sent (fewer than `count` only when the file ended first).
    /// Throws: std::system_error naming the file and the peer (a broken connection fails the
    /// stream, as a failed write; a file that cannot be read does not); invalid_state_error
    /// after close() or write_eof(), or during another sendfile.
    /// Cancellation: the splice or wait in flight is cancelled in the kernel and the task
    /// resumes after its completion; the bytes sent so far stay sent and the stream stays
    /// usable (its byte order is intact), but how many went is not reported.
    /// Example: `std::size_t n = co_await writer.sendfile(f);`
    [[nodiscard]] coro<std::size_t> sendfile(const file& f, std::uint64_t offset = 0,
                                             std::optional<std::size_t> count = std::nullopt);

    /// Half-closes: sends FIN once the buffered data is out (asyncio's write_eof). Reading
    /// continues. On a pipe (connect_write_pipe, a subprocess's stdin) it closes the pipe
    /// once the buffered data is out, as asyncio's pipe transport does: the reader at the
    /// other end sees EOF. Cancellation: not a suspension point. Example: `writer.write_eof();`
    void write_eof() { state().write_eof(); }
    /// True: TCP and Unix stream sockets and pipes support write_eof.
    [[nodiscard]] bool can_write_eof() const noexcept { return true; }
    /// Closes the connection after the buffered data is sent (asyncio's close). Idempotent.
    /// Pending and later reads see EOF. Cancellation: not a suspension point.
    /// Example: `writer.close(); co_await writer.wait_closed();`
    void close() noexcept {
        if (s_) s_->close();
    }
    /// True once close() was called (or the connection is being shut down).
    [[nodiscard]] bool is_closing() const noexcept { return !s_ || s_->is_closing(); }
    /// Waits until the socket is closed (after close()).
    /// Cancellation: a cancellation point; the close still goes on.
    /// Example: `co_await writer.wait_closed();`
    [[nodiscard]] wait_closed_awaiter wait_closed();

    /// The peer's address (asyncio's get_extra_info("peername")).
    /// Throws: std::system_error when not connected; std::invalid_argument for Unix sockets.
    [[nodiscard]] endpoint peername() const { return socket().peer_address(); }
    /// The local address (asyncio's get_extra_info("sockname")).
    /// Throws: as peername().
    [[nodiscard]] endpoint sockname() const { return socket().local_address(); }
    /// asyncio's `writer.get_extra_info(name, default=None)`: information about the
    /// connection by name, or `default_value` (empty, asyncio's None) for a name it does not
    /// know or a value the socket cannot give (e.g. it was closed).
    ///
    /// | name | type held by the std::any |
    /// | --- | --- |
    /// | `"peername"` | coio::endpoint (TCP), std::string path (Unix socket) |
    /// | `"sockname"` | coio::endpoint (TCP), std::string path (Unix socket) |
    /// | `"socket"` | `const coio::socket*` |
    /// | `"pipe"` | int: the descriptor of a pipe stream (connect_write_pipe); absent otherwise |
    ///
    /// The typed accessors peername(), sockname() and socket() say the same without a cast.
    /// @param name           the key, as in asyncio.
    /// @param default_value  returned when there is no such information.
    /// Returns: the value, in a std::any. Throws: invalid_state_error on an empty writer.
    /// Cancellation: not a suspension point.
    /// Example:
    /// @code
    ///   std::any peer = writer.get_extra_info("peername");
    ///   if (auto* ep = std::any_cast<coio::endpoint>(&peer)) std::cout << *ep << '\n';
    /// @endcode
    [[nodiscard]] std::any get_extra_info(std::string_view name, std::any default_value = {}) const {
        const coio::socket& sock = state().sock();
        if (name == "pipe") return state().is_pipe() && sock.is_open() ? std::any(sock.fileno()) : default_value;
        if (state().is_pipe()) return default_value;  // no socket, no addresses
        if (name == "socket") return &sock;
        const bool peer = name == "peername";
        if (!peer && name != "sockname") return default_value;
        try {
            if (sock.family() == AF_UNIX) return peer ? sock.peer_path() : sock.local_path();
            return peer ? sock.peer_address() : sock.local_address();
        } catch (const std::exception&) {
            return default_value;  // closed, or an address family endpoint cannot hold
        }
    }
    /// The underlying socket (asyncio's get_extra_info("socket")), e.g. to set options.
    /// Do not read or write through it while the stream uses it.
    [[nodiscard]] const coio::socket& socket() const { return state().sock(); }
    /// Bytes written but not yet handed to the kernel (asyncio's
    /// transport.get_write_buffer_size): the send in flight does not count.
    [[nodiscard]] std::size_t write_buffer_size() const noexcept { return s_ ? s_->write_buffer_size() : 0; }
    /// Sets the high- and low-water marks of drain() (asyncio's set_write_buffer_limits).
    /// @param high  drain() waits above this many buffered bytes.
    /// @param low   ... until the buffer is at most this; default high / 4.
    void set_write_buffer_limits(std::size_t high, std::size_t low) { state().set_write_buffer_limits(high, low); }
    /// See set_write_buffer_limits(std::size_t, std::size_t); low = high / 4.
    void set_write_buffer_limits(std::size_t high) { state().set_write_buffer_limits(high, high / 4); }

    /// Upgrades the connection to TLS (asyncio's StreamWriter.start_tls, for STARTTLS):
    /// runs the handshake as a client or a server, as `ctx` says. Needs <coio/tls.hpp> and
    /// the coio::tls target.
    /// @param ctx      the TLS context (ssl_protocol::tls_client or tls_server).
    /// The overload with `start_tls_options` takes `{.server_hostname = ...,
    /// .ssl_handshake_timeout = ...}`; the host name defaults to the peer's address.
    /// Returns: the TLS reader/writer pair; this writer is left empty, and its reader must
    /// not be used again (the TLS reader takes over what it had buffered).
    /// Throws: ssl_error, ssl_cert_verification_error, std::system_error (see coio::start_tls).
    /// Cancellation: the connection is closed.
    /// Example: `auto [tr, tw] = co_await writer.start_tls(ctx, {.server_hostname = "localhost"});`
    [[nodiscard]] coro<std::pair<ssl_stream_reader, ssl_stream_writer>> start_tls(ssl_context ctx);
    /// See start_tls(ssl_context); `options` as described there.
    [[nodiscard]] coro<std::pair<ssl_stream_reader, ssl_stream_writer>> start_tls(ssl_context ctx, start_tls_options options);

    /// Internal: the shared state, for a layer over the stream (TLS) that needs a second
    /// handle on the same connection (`stream_reader(writer.state_ptr())`).
    [[nodiscard]] detail::stream_state* state_ptr() const noexcept { return s_; }

private:
    detail::stream_state& state() const {
        if (!s_) throw invalid_state_error("coio: stream_writer is empty (moved from or default-constructed)");
        return *s_;
    }
    void reset() noexcept {
        if (s_) std::exchange(s_, nullptr)->drop_handle();
    }
    detail::stream_state* s_ = nullptr;
};

/// Awaiter of stream_writer::drain.
class stream_writer::drain_awaiter : detail::list_wait_awaiter {
public:
    explicit drain_awaiter(detail::stream_state& s) noexcept : list_wait_awaiter(s.drain_waiters(), "stream drain"), st_(&s) {}
    bool await_ready() const noexcept { return !st_->must_drain(); }
    using list_wait_awaiter::await_suspend;
    void await_resume() {
        list_wait_awaiter::await_resume();
        if (const int e = st_->write_error()) detail::throw_errno(e, "send to " + st_->peer_text());
    }

private:
    detail::stream_state* st_;
};

/// Awaiter of stream_writer::wait_closed.
class stream_writer::wait_closed_awaiter : detail::list_wait_awaiter {
public:
    explicit wait_closed_awaiter(detail::stream_state& s) noexcept
        : list_wait_awaiter(s.close_waiters(), "stream wait_closed"), st_(&s) {}
    bool await_ready() const noexcept { return st_->is_closed(); }
    using list_wait_awaiter::await_suspend;
    using list_wait_awaiter::await_resume;

private:
    detail::stream_state* st_;
};

inline stream_writer::drain_awaiter stream_writer::drain() { return drain_awaiter(state()); }
inline stream_writer::wait_closed_awaiter stream_writer::wait_closed() { return wait_closed_awaiter(state()); }

} // namespace coio
