// coio/pipe.hpp - coio::connect_read_pipe / connect_write_pipe (asyncio's
// loop.connect_read_pipe / loop.connect_write_pipe): any pipe or character device as a
// coio stream_reader or stream_writer.
//
//   int fds[2];
//   ::pipe2(fds, O_CLOEXEC);
//   coio::stream_reader r = coio::connect_read_pipe(fds[0]);
//   coio::stream_writer w = coio::connect_write_pipe(fds[1]);
//   w.write("hello\n");
//   std::string line = co_await r.readline();
#pragma once

#include <coio/detail/signal_mask.hpp>
#include <coio/impl/net_service.hpp>
#include <coio/impl/stream_state.hpp>
#include <coio/backend.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/socket.hpp>
#include <coio/stream_reader.hpp>
#include <coio/stream_writer.hpp>
#include <coio/streams.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <stdexcept>
#include <string>

namespace coio {

namespace detail {

/// The stream state of a pipe end (or of a socket handed to the pipe functions, which gets
/// the ordinary socket path). Takes `fd` only when it returns.
/// Throws: std::invalid_argument for a negative fd or a regular file / directory;
/// std::system_error when fstat fails; invalid_state_error / std::runtime_error without a
/// running loop.
inline stream_state* make_pipe_state(int fd, const stream_options& o, const char* who) {
    if (fd < 0) throw std::invalid_argument(std::string("coio: ") + who + ": invalid file descriptor " + std::to_string(fd));
    stream_config cfg = make_stream_config(o.limit, o.write_high_water, o.write_low_water, o.multishot_recv);
    event_loop& loop = get_running_loop();
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno(errno, std::string(who) + " (fd " + std::to_string(fd) + ")");
    socket s;
    if (S_ISSOCK(st.st_mode)) {
        s = socket::from_fd(fd);
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        cfg.pipe = true;
        // io_uring honours O_NONBLOCK by failing a read or write on an empty (full) pipe with
        // -EAGAIN instead of waiting for it, so the descriptor must block there; the epoll
        // backend sets O_NONBLOCK itself before its first read or write.
        if (loop.backend() == backend::io_uring) {
            const int fl = ::fcntl(fd, F_GETFL);
            if (fl >= 0 && (fl & O_NONBLOCK)) ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        }
        ignore_sigpipe_if_default();  // EPIPE, not death, when the other end is gone
        s = socket::adopt(fd, AF_UNSPEC, 0);
    } else {
        throw std::invalid_argument(std::string("coio: ") + who + ": fd " + std::to_string(fd) +
                                    " is not a pipe, a socket or a character device");
    }
    return new stream_state(loop.service<net_service>(), std::move(s), cfg);
}

} // namespace detail

/// Reads a pipe, a character device (a terminal, /dev/zero) or a socket as a stream
/// (asyncio's `loop.connect_read_pipe`, which also makes the StreamReader).
///
/// The descriptor is read with read(2) at its current position, one read at a time when a
/// reader waits (io_uring: IORING_OP_READ; epoll: the descriptor is made non-blocking and
/// read on readiness). A socket gets the socket stream's receive path. The reader owns the
/// descriptor from then on and closes it when it is dropped (pass `::dup(fd)` to keep
/// yours). On io_uring a pipe's O_NONBLOCK flag is cleared (io_uring waits for data itself);
/// on epoll it is set, as asyncio does.
///
/// Making a pipe stream sets SIGPIPE to "ignore" if its disposition is the default (as
/// Python does at startup), so that a write to a pipe whose reader is gone fails with
/// EPIPE instead of killing the process; a handler or disposition the program set is kept.
///
/// @param fd       an open descriptor of a pipe, character device or socket; taken over.
/// @param options  `.limit` (asyncio's limit: readline/readuntil bound, and the buffer size
///                 at which reading pauses); the other fields do not apply.
/// Returns: the reader. Reads see EOF when every writer of the pipe has closed it.
/// Throws: std::invalid_argument for a negative fd, a regular file or a directory (use
/// coio::file); std::system_error when fstat fails; without a running loop, as
/// get_running_loop(). On a throw the descriptor is not taken (the caller still owns it).
/// Cancellation: not a suspension point; the reads on the reader are cancellation-safe as
/// on any stream (a cancelled read keeps every byte read so far for the next read).
///
/// Example:
/// @code
///   coio::stream_reader in = coio::connect_read_pipe(::dup(STDIN_FILENO));
///   while (auto line = co_await in.readline(); !line.empty()) std::cout << line;
/// @endcode
[[nodiscard]] inline stream_reader connect_read_pipe(int fd, stream_options options = {}) {
    return stream_reader(detail::make_pipe_state(fd, options, "connect_read_pipe"));
}

/// Writes a pipe, a character device or a socket as a stream (asyncio's
/// `loop.connect_write_pipe`, with the StreamWriter).
///
/// write() copies the bytes and starts a write(2) at once; drain() is the flow control
/// (high-water mark 64 KiB by default); write_eof() and close() close the pipe once what was
/// written is out, so the reader at the other end sees EOF. The writer owns the descriptor.
/// SIGPIPE: see connect_read_pipe; a vanished reader makes drain() throw
/// std::system_error(std::errc::broken_pipe).
///
/// @param fd       an open descriptor of a pipe, character device or socket; taken over.
/// @param options  `.write_high_water`, `.write_low_water` (drain's marks); the others do
///                 not apply.
/// Returns: the writer.
/// Throws: as connect_read_pipe.
/// Cancellation: not a suspension point; drain() and wait_closed() are cancellation points
/// that leave the buffered data to be written.
///
/// Example:
/// @code
///   coio::stream_writer out = coio::connect_write_pipe(::dup(STDOUT_FILENO));
///   out.write("hello\n");
///   co_await out.drain();
///   out.close();
///   co_await out.wait_closed();
/// @endcode
[[nodiscard]] inline stream_writer connect_write_pipe(int fd, stream_options options = {}) {
    return stream_writer(detail::make_pipe_state(fd, options, "connect_write_pipe"));
}

} // namespace coio
