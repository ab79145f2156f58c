// coio/stream_reader.hpp - coio::stream_reader (asyncio.StreamReader).
//
//   auto [reader, writer] = co_await coio::open_connection("127.0.0.1", 8888);
//   std::string line = co_await reader.readline();
//   std::string hdr  = co_await reader.readexactly(16);
//   std::size_t n    = co_await reader.read_into(buf);   // zero copy into your memory
//   coio::stream_chunk c = co_await reader.read_chunk();  // zero copy: the receive buffer
#pragma once

#include <coio/async_generator.hpp>
#include <coio/coro.hpp>
#include <coio/impl/stream_state.hpp>
#include <coio/stream_chunk.hpp>
#include <coio/stream_errors.hpp>

#include <algorithm>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace coio {

/// The reading half of a stream connection (asyncio.StreamReader), made by open_connection,
/// open_unix_connection, or handed to a start_server callback.
///
/// Data is received by io_uring into an internal buffer (a multishot receive into the loop's
/// provided-buffer ring by default) and handed out by the read methods, with asyncio's
/// semantics: `read(n)` returns what is there (up to n), `readexactly(n)` exactly n or throws
/// incomplete_read_error, `readuntil(sep)` up to and including the separator, `readline()`
/// a line. `limit` (stream_options / server_options) bounds readuntil/readline, and the
/// buffer: receiving pauses at 2 x limit until the reader catches up.
///
/// Move-only handle to state shared with the stream_writer; the connection is closed when
/// both the reader and the writer are gone (or when the writer is closed). One task reads
/// at a time: a second concurrent read throws invalid_state_error.
///
/// Throws (every read): std::system_error when the connection failed (e.g.
/// std::errc::connection_reset), but only after every byte received before the failure has
/// been read; invalid_state_error for concurrent reads or a closed loop.
///
/// `read_chunk()` hands out received data without copying it: the chunk owns the buffer the
/// kernel received into (see stream_chunk), and stream_writer::write(stream_chunk) sends it
/// from there. Reads of both kinds can be mixed freely; bytes always come out in order.
///
/// Cancellation: every read is cancellation-safe: a cancelled read returns nothing and leaves
/// every byte received so far (including what it had gathered, as read() to EOF and
/// readexactly do) in the buffer for the next read; a read that already has its data when
/// the cancellation comes returns it, and the cancellation is raised at the next await.
/// `read_into` resumes only after the kernel stopped writing into the caller's span.
///
/// Example:
/// @code
///   coio::coro<void> handle(coio::stream_reader reader, coio::stream_writer writer) {
///       for (auto lines = reader.lines(); auto line = co_await lines.next();)
///           writer.write(*line);
///   }
/// @endcode
class stream_reader {
public:
    /// An empty reader (not connected).
    stream_reader() noexcept = default;
    /// Internal: a handle on `s`.
    explicit stream_reader(detail::stream_state* s) noexcept : s_(s) {
        if (s_) s_->add_handle();
    }
    /// Takes over `o`'s stream (`o` is left empty).
    stream_reader(stream_reader&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    /// Drops this reader's stream, then takes over `o`'s.
    stream_reader& operator=(stream_reader&& o) noexcept {
        if (this != &o) {
            reset();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    stream_reader(const stream_reader&) = delete;
    stream_reader& operator=(const stream_reader&) = delete;
    /// Drops the handle; the connection closes when the writer is gone too.
    ~stream_reader() { reset(); }

    /// True when the reader refers to a connection.
    explicit operator bool() const noexcept { return s_ != nullptr; }

    class read_into_awaiter;
    class read_chunk_awaiter;

    /// Reads up to `n` bytes; with `n < 0` (the default) reads until EOF (asyncio's read).
    /// @param n  maximum bytes, 0 for none, negative for everything until EOF.
    /// Returns: the bytes; empty only at EOF (or for n == 0).
    /// Throws: std::system_error when the connection failed and no data is left.
    /// Cancellation: safe; received bytes stay buffered.
    /// Example: `std::string chunk = co_await reader.read(4096);`
    [[nodiscard]] coro<std::string> read(std::ptrdiff_t n = -1) {
        detail::stream_state& s = state();
        if (n == 0) co_return std::string();
        if (n < 0) {
            s.prepare_copy_read();
            // Everything stays in the stream's buffer until EOF (never in a local string), so a
            // cancelled read() leaves every byte it had gathered for the next read.
            constexpr std::size_t everything = static_cast<std::size_t>(-1);
            while (!s.ended()) co_await detail::read_wait_awaiter(s, {}, everything);
            if (!s.buffered()) {
                s.check_read_error();
                co_return std::string();
            }
            co_return s.take(s.buffered());
        }
        s.prepare_read_into();  // copies straight from received buffers, as read_into
        if (!s.buffered() && !s.ended()) {
            if (s.streaming_on_demand()) {
                // Data streams in faster than it is read: receive straight into strings, not
                // through the stream's buffer. The strings are the ones write(std::string&&)
                // sent (no allocation, no fill); a new one costs a fill of its size, as much
                // as the copy it saves, so short messages (no streaming) keep the copy.
                s.keep_spare(true);
                const std::size_t size = std::min(static_cast<std::size_t>(n), direct_read_max);
                if (s.reads_ahead_into_strings()) {
                    // Several strings per readable socket, queued whole (see
                    // coio/impl/stream_receive.hpp, "Reading ahead into strings"). A small
                    // read gets its bytes copied out of a string of direct_read_max instead:
                    // strings of its own size would cost a recv per few bytes.
                    detail::read_wait_awaiter w(s, {});
                    w.string_size = size < string_read_min ? direct_read_max : size;
                    co_await w;
                } else {
                    // One recv into the string returned (plain mode, pipes).
                    std::string out = s.take_spare_string();
                    out.resize(size);
                    if (const std::size_t got = co_await detail::read_wait_awaiter(s, std::as_writable_bytes(std::span(out)))) {
                        out.resize(got);
                        co_return out;
                    }
                }
            } else {
                s.keep_spare(false);
                co_await detail::read_wait_awaiter(s, {});
            }
        }
        if (s.buffered()) co_return s.take_some(static_cast<std::size_t>(n));
        s.check_read_error();
        co_return std::string();
    }

    /// Reads one line, up to and including "\n" (asyncio's readline). At EOF returns the
    /// partial last line, or "" when nothing is left.
    /// Throws: limit_overrun_error when the line is longer than the limit (the line is
    /// discarded, as asyncio does, so reading can continue); std::system_error.
    /// Cancellation: safe. Example: `std::string line = co_await reader.readline();`
    [[nodiscard]] coro<std::string> readline() {
        try {
            co_return co_await readuntil("\n");
        } catch (incomplete_read_error& e) {
            co_return std::move(e.partial);
        } catch (const limit_overrun_error& e) {
            detail::stream_state& s = state();
            const std::string_view v = s.rview();
            if (e.consumed < v.size() && v[e.consumed] == '\n') s.consume(e.consumed + 1);
            else s.consume(s.buffered());
            throw;
        }
    }

    /// Reads exactly `n` bytes (asyncio's readexactly).
    /// Throws: incomplete_read_error when EOF comes first; its `partial` holds every byte that
    /// arrived and `expected` is n. std::system_error when the connection failed and no
    /// byte was received.
    /// Cancellation: safe; the bytes stay buffered. Example: `auto hdr = co_await reader.readexactly(8);`
    [[nodiscard]] coro<std::string> readexactly(std::size_t n) {
        detail::stream_state& s = state();
        s.prepare_copy_read();
        while (s.buffered() < n) {
            if (s.ended()) {
                std::string partial = s.take(s.buffered());
                if (partial.empty()) s.check_read_error();
                throw incomplete_read_error(std::move(partial), n);
            }
            co_await detail::read_wait_awaiter(s, {}, n);  // woken once n bytes are buffered
        }
        co_return s.take(n);
    }

    /// Reads up to and including `separator` (asyncio's readuntil).
    /// @param separator a non-empty byte string (default "\n").
    /// Returns: the data with the separator at its end.
    /// Throws: limit_overrun_error when the limit is reached without a separator, or the
    /// separator ends beyond the limit; the data stays in the buffer (nothing lost), and
    /// `consumed` says how much may be read. incomplete_read_error at EOF (the buffered bytes
    /// are in `partial`, `expected` is empty). std::invalid_argument for an empty separator.
    /// Cancellation: safe. Example: `auto head = co_await reader.readuntil("\r\n\r\n");`
    [[nodiscard]] coro<std::string> readuntil(std::string separator = "\n") {
        if (separator.empty()) throw std::invalid_argument("coio: readuntil: the separator must not be empty");
        detail::stream_state& s = state();
        s.prepare_copy_read();
        const std::size_t seplen = separator.size();
        std::size_t offset = 0;
        for (;;) {
            const std::string_view v = s.rview();
            if (v.size() >= offset + seplen) {
                const std::size_t pos = v.find(separator, offset);
                if (pos != std::string_view::npos) {
                    if (pos > s.limit())
                        throw limit_overrun_error("Separator is found, but chunk is longer than limit", pos);
                    co_return s.take(pos + seplen);
                }
                offset = v.size() + 1 - seplen;  // the separator may straddle the next chunk
                if (offset > s.limit())
                    throw limit_overrun_error("Separator is not found, and chunk exceed the limit", offset);
            }
            if (s.ended()) {
                std::string partial = s.take(s.buffered());
                if (partial.empty()) s.check_read_error();
                throw incomplete_read_error(std::move(partial), std::nullopt);
            }
            co_await detail::read_wait_awaiter(s, {});
        }
    }

    /// Reads up to buf.size() bytes into `buf` (zero copy when nothing is buffered: the
    /// kernel or the receive path writes straight into it). No allocation.
    /// Returns: the byte count; 0 at EOF (or for an empty span).
    /// Throws: std::system_error when the connection failed and nothing is buffered.
    /// Cancellation: resumes only after the kernel stopped writing into `buf`; bytes that
    /// arrived in the meantime are returned (the cancellation comes at the next await).
    /// Example: `std::size_t n = co_await reader.read_into(std::span(buf));`
    [[nodiscard]] read_into_awaiter read_into(std::span<std::byte> buf);

    /// Fills all of `buf` (readexactly into caller memory). The bytes gather in the stream's
    /// buffer and are copied into `buf` once they are all there (one copy; it is what makes
    /// a cancellation lose nothing).
    /// Throws: incomplete_read_error at EOF (`partial` holds the bytes that arrived, which
    /// are also at the front of `buf`); std::system_error when the connection failed and no
    /// byte was received.
    /// Cancellation: safe; `buf` is left alone and every received byte stays buffered.
    /// Example: `co_await reader.readexactly_into(std::as_writable_bytes(std::span(hdr)));`
    [[nodiscard]] coro<void> readexactly_into(std::span<std::byte> buf);

    /// Reads the next piece of received data without copying it (beyond asyncio): the chunk
    /// owns the memory the kernel received into (a buffer of the loop's ring), so it can be
    /// parsed in place or passed on to stream_writer::write(stream_chunk) and sent from
    /// there. Whatever read()/readline() left buffered comes out first, as a chunk of its
    /// own. No allocation in steady state.
    /// Returns: a non-empty chunk of at most one ring buffer (loop_options::receive_buffer_size
    /// bytes; any size when it carries bytes buffered earlier); an empty chunk at EOF.
    /// Throws: std::system_error when the connection failed and nothing is buffered;
    /// invalid_state_error when another task is reading or the loop is closed.
    /// Cancellation: safe: resumes with cancelled_error and leaves every received byte
    /// queued for the next read (data that arrived before the cancellation is returned
    /// first; the cancellation then comes at the next await).
    /// Release chunks soon (destroy, reset, or write them): while every ring buffer is held,
    /// the loop's streams receive through a slower copying path.
    /// Example: `while (auto c = co_await reader.read_chunk(); !c.empty()) writer.write(std::move(c));`
    [[nodiscard]] read_chunk_awaiter read_chunk();

    /// Lines until EOF, as an async generator (asyncio's `async for line in reader`).
    /// Each line ends with "\n" except possibly the last.
    /// Throws (from next()/++it): as readline(). Cancellation: as readline().
    /// Example: `for (auto g = reader.lines(); auto l = co_await g.next();) use(*l);`
    [[nodiscard]] async_generator<std::string> lines() {
        for (;;) {
            std::string line = co_await readline();
            if (line.empty()) co_return;
            co_yield std::move(line);
        }
    }

    /// True when EOF was received and the buffer is empty (asyncio's at_eof).
    [[nodiscard]] bool at_eof() const noexcept { return !s_ || s_->at_eof(); }
    /// Bytes received but not read yet.
    [[nodiscard]] std::size_t buffered() const noexcept { return s_ ? s_->buffered() : 0; }
    /// The buffer limit (stream_options::limit).
    [[nodiscard]] std::size_t limit() const noexcept { return s_ ? s_->limit() : 0; }

private:
    /// The most read(n) receives straight into its result string (asyncio's transport reads
    /// 64 KiB at a time too); a larger n may return less, as read(n) always may.
    static constexpr std::size_t direct_read_max = 64 * 1024;
    // Reads ahead into strings of a streaming read(n)'s own size from this size on (a
    // write(std::string&&) takes strings over from the same size).
    static constexpr std::size_t string_read_min = 16 * 1024;
    detail::stream_state& state() const {
        if (!s_) throw invalid_state_error("coio: stream_reader is empty (moved from or default-constructed)");
        return *s_;
    }
    void reset() noexcept {
        if (s_) std::exchange(s_, nullptr)->drop_handle();
    }
    detail::stream_state* s_ = nullptr;
};

/// Awaiter of stream_reader::read_into (no coroutine frame, no allocation).
class stream_reader::read_into_awaiter {
public:
    read_into_awaiter(detail::stream_state& s, std::span<std::byte> buf) noexcept : wait_(s, buf), st_(&s), buf_(buf) {}
    bool await_ready() {
        if (buf_.empty()) return true;
        st_->prepare_read_into();
        if (st_->buffered()) {
            n_ = st_->take_into(buf_);
            return true;
        }
        return st_->eof() || st_->is_closing();
    }
    bool await_suspend(std::coroutine_handle<> h) { return wait_.await_suspend(h); }
    std::size_t await_resume() {
        if (n_) return n_;
        if (buf_.empty()) return 0;
        if (waited_()) {
            if (std::size_t n = wait_.await_resume()) return n;
        }
        if (st_->buffered()) return st_->take_into(buf_);
        st_->check_read_error();
        return 0;
    }

private:
    bool waited_() const noexcept { return wait_.task != nullptr; }
    detail::read_wait_awaiter wait_;
    detail::stream_state* st_;
    std::span<std::byte> buf_;
    std::size_t n_ = 0;
};

/// Awaiter of stream_reader::read_chunk (no coroutine frame, no allocation; trivially
/// destructible, so g++ 12's double destruction of a throwing co_await's temporaries is
/// harmless).
class stream_reader::read_chunk_awaiter {
public:
    explicit read_chunk_awaiter(detail::stream_state& s) noexcept : wait_(s, {}), st_(&s) {}
    /// Movable until awaited (wait_for and friends take awaitables by value): the waiter
    /// node is registered only in await_suspend, so a fresh one is as good.
    read_chunk_awaiter(read_chunk_awaiter&& o) noexcept : read_chunk_awaiter(*o.st_) {}
    read_chunk_awaiter& operator=(read_chunk_awaiter&&) = delete;
    bool await_ready() {
        // Refused before anything changes: a copying read suspended in this stream counts
        // on every received byte landing in the stream's buffer.
        st_->check_single_reader();
        st_->prepare_chunk_read();  // from now on received buffers are queued, not copied
        return st_->buffered() || st_->eof() || st_->is_closing();
    }
    bool await_suspend(std::coroutine_handle<> h) { return wait_.await_suspend(h); }
    stream_chunk await_resume() {
        if (wait_.task) wait_.await_resume();  // cancelled_error: the data stays queued
        stream_chunk c = st_->next_chunk();
        if (c.empty()) st_->check_read_error();
        return c;
    }

private:
    detail::read_wait_awaiter wait_;
    detail::stream_state* st_;
};

inline stream_reader::read_chunk_awaiter stream_reader::read_chunk() { return read_chunk_awaiter(state()); }

inline stream_reader::read_into_awaiter stream_reader::read_into(std::span<std::byte> buf) {
    return read_into_awaiter(state(), buf);
}

inline coro<void> stream_reader::readexactly_into(std::span<std::byte> buf) {
    detail::stream_state& s = state();
    if (buf.empty()) co_return;
    s.prepare_copy_read();
    // Not read_into piece by piece: bytes copied into `buf` before a cancellation could not
    // be given back to the stream. They wait in the stream's buffer until all have arrived.
    while (s.buffered() < buf.size() && !s.ended()) co_await detail::read_wait_awaiter(s, {}, buf.size());
    if (s.buffered() >= buf.size()) {
        s.take_into(buf);
        co_return;
    }
    const std::size_t got = s.take_into(buf);
    if (got == 0) s.check_read_error();
    throw incomplete_read_error(std::string(reinterpret_cast<const char*>(buf.data()), got), buf.size());
}

} // namespace coio
