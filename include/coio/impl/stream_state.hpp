// coio/impl/stream_state.hpp - the connection state shared by a stream_reader and its
// stream_writer (what asyncio calls the transport plus the protocol). Not API.
//
// A stream_state is three parts, each in its own file:
//  * stream_core (impl/stream_core.hpp): the socket, the loop, the settings, the references
//    (one per user handle, one per operation in flight) and the closing flags;
//  * stream_receive (impl/stream_receive.hpp): the receive buffer, the one receive operation
//    and its state machine (recv_state), the waiting reader;
//  * stream_send (impl/stream_send.hpp): the write buffers and chunk queue, the one send
//    operation, drain and write_eof;
// and this file adds what needs both halves: construction and the close sequence.
//
// Contracts:
//  * Closing flushes what was written, cancels the receive, and closes the descriptor once
//    no operation is in flight (maybe_finish_close runs after every final completion while
//    closing). Dropping both handles closes the same way.
//  * Loop shutdown (abort) drops what is queued and cancels both operations; the loop then
//    runs until they completed. After that (detach) nothing touches the loop again.
#pragma once

#include <coio/backend.hpp>
#include <coio/impl/net_service.hpp>
#include <coio/impl/stream_core.hpp>
#include <coio/impl/stream_receive.hpp>
#include <coio/impl/stream_send.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/socket.hpp>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <span>
#include <string>
#include <utility>

namespace coio::detail {

class stream_state final : public stream_core, public stream_receive, public stream_send {
public:
    stream_state(net_service& svc, socket s, const stream_config& cfg) : stream_core(svc, std::move(s), cfg) {
        svc_->add(this);
        if (cfg_.pipe) {
            cfg_.multishot = false;  // a multishot receive needs a socket
            peer_text_ = "pipe (fd " + std::to_string(sock_.fileno()) + ")";
        } else if (sock_.is_open()) {
            peer_text_ = describe_fd(sock_.fileno(), true);
        }
        if (cfg_.multishot) {
            bufs_ = svc_->buffers();
            if (!bufs_) cfg_.multishot = false;  // no buffer rings on this kernel
        }
        direct_send_ = !cfg_.pipe && loop_->backend() == backend::epoll;
        start_eager_receive();  // multishot: read eagerly, as an asyncio transport does
    }
    ~stream_state() {
        stop_waiting_for_buffer();
        if (svc_) svc_->remove(this);
    }

    /// transport.write_eof: a socket half-closes once the buffered data is sent; a pipe has
    /// no half-close, so it closes (after flushing), as asyncio's write pipe transport does.
    void write_eof() {
        if (cfg_.pipe) close();
        else stream_send::write_eof();
    }
    /// True for a pipe or character device stream (stream_config::pipe).
    [[nodiscard]] bool is_pipe() const noexcept { return cfg_.pipe; }

    /// transport.close: flush, then close. Idempotent; never throws.
    void close() noexcept {
        if (closing_) return;
        closing_ = true;
        stop_waiting_for_buffer();
        cancel_recv();
        if (werr_ || !loop_) drop_write_buffers();
        maybe_finish_close();
        wake_reader_if_ready();
    }

    // ---- io_owner ----
    void abort() noexcept override {
        closing_ = true;
        stop_waiting_for_buffer();
        drop_write_buffers();
        cancel_recv();
        cancel_send();
        maybe_finish_close();
    }
    void detach() noexcept override {
        // The loop and its ring are gone (every operation was drained by shutdown()).
        stop_waiting_for_buffer();
        svc_ = nullptr;
        loop_ = nullptr;
        bufs_ = nullptr;
        closing_ = true;
        sock_ = socket();
        closed_ = true;
    }

private:
    friend class stream_core;

    /// Closes the descriptor once nothing is in flight any more, after flushing.
    void maybe_finish_close() noexcept {
        if (closed_ || recv_in_flight() || send_in_flight()) return;
        if (flush_before_close()) return;
        closed_ = true;
        receive_closed();
        if (loop_ && sock_.is_open()) loop_->forget_fd(sock_.fileno());  // see operation::keep_watch
        sock_ = socket();  // close(2): nothing of ours is in flight on it any more
        drain_waiters_.wake_all(wait_status::granted);
        close_waiters_.wake_all(wait_status::granted);
        wake_reader_if_ready();
    }
};

inline void stream_core::op_finished() noexcept {
    if (closing_) static_cast<stream_state*>(this)->maybe_finish_close();
    release();
}
inline stream_core& stream_receive::core() noexcept { return static_cast<stream_state&>(*this); }
inline const stream_core& stream_receive::core() const noexcept { return static_cast<const stream_state&>(*this); }
inline stream_core& stream_send::core() noexcept { return static_cast<stream_state&>(*this); }
inline const stream_core& stream_send::core() const noexcept { return static_cast<const stream_state&>(*this); }

/// Waits until the stream has buffered data or reached EOF / an error (read() and friends).
/// With a non-empty `target` (read_into), data may be delivered straight into it.
class read_wait_awaiter : public read_waiter {
public:
    /// @param t     read_into's span (empty otherwise).
    /// @param want  bytes that must be buffered before the reader is woken (see read_waiter).
    read_wait_awaiter(stream_state& s, std::span<std::byte> t, std::size_t want_bytes = 1) noexcept : st(&s) {
        target = t;
        want = want_bytes == 0 ? 1 : want_bytes;
        what = "stream read";
    }
    read_wait_awaiter(const read_wait_awaiter&) = delete;
    read_wait_awaiter& operator=(const read_wait_awaiter&) = delete;

    /// Waits for data beyond what is buffered now (readuntil/readexactly call it while the
    /// buffer does not satisfy them yet), until `want` bytes are buffered; ready at once only
    /// at EOF or when closing.
    bool await_ready() const noexcept { return st->eof() || st->is_closing(); }
    bool await_suspend(std::coroutine_handle<> h) {
        task = &require_current_task();
        st->check_can_read();  // throws before anything is registered
        if (!task->begin_wait(h, this)) return false;
        on_cancel = [](cancel_hook* c) noexcept {
            auto* self = static_cast<read_wait_awaiter*>(c);
            self->st->cancel_read_wait(self);
        };
        suspended = true;
        st->begin_read_wait(this);
        return true;
    }
    /// Returns: bytes delivered straight into the target (0 otherwise: look at the buffer).
    /// Throws: cancelled_error; the receive error when the stream failed and is drained.
    std::size_t await_resume() {
        if (cancelled) task->throw_cancel();
        if (!suspended && task && task->cancel_pending()) task->throw_cancel();
        if (delivered) return delivered;  // data first: a pending cancel waits for the next await
        if (suspended && !target.empty() && direct_res != 0) {
            if (direct_res > 0) return static_cast<std::size_t>(direct_res);
            if (direct_res == -ECANCELED && cancel_requested) task->throw_cancel();
        }
        if (cancel_requested && task->cancel_pending()) task->throw_cancel();
        return 0;
    }

    stream_state* st;
};

} // namespace coio::detail
