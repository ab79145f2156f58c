// coio/impl/stream_send.hpp - the send half of a stream connection: its write buffers, its
// one send operation, flow control (drain) and the half-close (write_eof). Not API.
//
// Contracts:
//  * Writes are copied into `wbuf_` (so the caller's memory is free at once, as asyncio's
//    transport.write promises); one send is in flight at a time, from `wsend_`, and the two
//    buffers swap when it completes. Their capacity is kept: no allocation per write in
//    steady state.
//  * Written chunks queue in `wq_`, after the bytes of wsend_/wbuf_ (a byte write while
//    chunks are queued becomes a chunk of its own, so order holds); up to max_iov of them
//    are sent by one sendmsg straight from their memory, and each is released (its ring
//    buffer recycled) once the send covering its last byte completed.
//  * A failed send (or an aborted one) drops what is queued, except memory a send in flight
//    still reads; drain() reports the error, later writes are discarded, as in asyncio.
//  * Flow control counts what is not yet handed to the kernel (write_buffer_size): the bytes
//    of the send in flight are left out. asyncio's write sends synchronously and buffers only
//    what the socket refused; counting an io_uring send in flight as buffered made drain()
//    wait for every completion (one loop iteration each), so a streaming handler sent one
//    chunk per iteration. Memory stays bounded: one send (<= max_iov chunks, or what was
//    buffered when it started) plus the high-water mark.
//
// The send operation's state (send_state): idle -> sending (start_send) -> idle (its
// completion, which starts the next send if anything is queued); sending -> cancelling
// (abort: the loop shuts down) -> idle (its completion, which starts nothing more). The
// half-close (write_end): open -> fin_pending (write_eof) -> fin_sent (the buffer is empty
// and no send is in flight: shutdown(SHUT_WR) queued the FIN).
#pragma once

#include <coio/impl/stream_core.hpp>
#include <coio/stream_chunk.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

namespace coio::detail {

/// What the one send operation of a stream is doing (see the top of this file).
enum class send_state : std::uint8_t { idle, sending, cancelling };
/// How far the half-close (write_eof) has gone (see the top of this file).
enum class write_end : std::uint8_t { open, fin_pending, fin_sent };

/// The send half of a stream_state (see the contracts at the top).
class stream_send {
public:
    stream_send(const stream_send&) = delete;
    stream_send& operator=(const stream_send&) = delete;

    /// Bytes written but not yet handed to the kernel: everything unsent except what the
    /// send in flight carries (see "Flow control" at the top).
    [[nodiscard]] std::size_t write_buffer_size() const noexcept { return unsent_bytes() - inflight_bytes_; }
    [[nodiscard]] int write_error() const noexcept { return werr_; }
    [[nodiscard]] std::size_t high_water() const noexcept { return core().cfg_.high_water; }
    void set_write_buffer_limits(std::size_t high, std::size_t low) noexcept {
        stream_config& cfg = core().cfg_;
        cfg.high_water = high;
        cfg.low_water = std::min(low, high);
        if (write_buffer_size() <= cfg.low_water) drain_waiters_.wake_all(wait_status::granted);
    }

    /// transport.write: buffers `data` and starts sending. Throws: invalid_state_error after
    /// close() or write_eof().
    void write(std::span<const std::byte> data) {
        check_can_write();
        if (werr_ || data.empty()) return;  // connection lost: drain() reports it, as in asyncio
        if (!wq_.empty()) {
            // Chunks are queued: these bytes go after them, as a chunk of their own.
            wq_.push(stream_chunk::from_vector(std::vector<std::byte>(data.begin(), data.end()), 0, data.size()));
            wq_bytes_ += data.size();
        } else if (sstate_ == send_state::idle) {
            // Idle: on epoll, a large write goes to the socket from the caller's memory first
            // (see direct_send_min); what it refuses, or a small write, is sent from wsend_
            // in this loop iteration's submission.
            if (data.size() >= direct_send_min && direct_send_) {
                bool full = false;
                data = data.subspan(send_now(data, full));
                if (data.empty()) return;
                // The socket is full: the send operation waits for room first instead of
                // trying again at once, only to find EAGAIN (an error is left to its try).
                send_op_.wait_first = full;
            }
            wsend_.assign(data.begin(), data.end());
            wsent_ = 0;
            start_send();
        } else {
            wbuf_.insert(wbuf_.end(), data.begin(), data.end());
        }
    }
    /// write(std::string&&): a large string is taken over and sent from its own memory, as
    /// a chunk (no copy, so nothing for a direct send to save); a small one is copied as
    /// write(bytes) does, where it joins the other small writes in one send.
    /// Throws: as write(bytes).
    void write(std::string&& s) {
        if (s.size() < direct_send_min) write(std::as_bytes(std::span(s.data(), s.size())));
        else write(stream_chunk::from_string(std::move(s)));
    }
    /// write(chunk): queues the chunk itself; it is sent from its own memory and released
    /// when sent (or when the connection fails or is aborted). Throws: as write(bytes).
    void write(stream_chunk c) {
        check_can_write();
        if (werr_ || c.empty()) return;  // connection lost: drain() reports it, as in asyncio
        wq_bytes_ += c.size();
        wq_.push(std::move(c));
        if (sstate_ == send_state::idle) start_send();
    }

    /// True when a writer must wait in drain().
    [[nodiscard]] bool must_drain() const noexcept {
        return !werr_ && write_buffer_size() > core().cfg_.high_water && !core().closed_;
    }
    [[nodiscard]] waiter_list& drain_waiters() noexcept { return drain_waiters_; }

    /// transport.write_eof: half-closes once the buffered data is sent.
    void write_eof() {
        if (core().closing_ || wend_ != write_end::open) return;
        wend_ = write_end::fin_pending;
        maybe_shutdown_write();
    }

    /// stream_writer::sendfile starts: the send half is taken over by an operation of its
    /// own (counted as the send in flight, so a close waits for it). Precondition: nothing
    /// is buffered and no send is in flight. Throws: as write().
    void begin_external_send() {
        check_can_write();
        if (werr_) throw_errno(werr_, "send to " + core().peer_text());
        if (!send_idle()) throw invalid_state_error("coio: stream_writer: sendfile() while data is still being sent");
        sstate_ = send_state::sending;
        external_send_ = true;
        core().op_started();
    }
    /// stream_writer::sendfile ends; `err` (an errno, or 0) fails the connection as a send
    /// error would.
    void end_external_send(int err) noexcept {
        stream_core& c = core();
        sstate_ = send_state::idle;
        external_send_ = false;
        --c.ops_in_flight;
        if (err) {
            werr_ = err;
            drop_write_buffers();
        }
        drain_waiters_.wake_all(wait_status::granted);
        maybe_shutdown_write();
        c.op_finished();
    }
    /// True when everything written has been sent and no send is in flight (sendfile may
    /// take over the send half).
    [[nodiscard]] bool send_idle() const noexcept { return sstate_ == send_state::idle && unsent_bytes() == 0; }
    /// True while sendfile runs.
    [[nodiscard]] bool external_send() const noexcept { return external_send_; }

protected:
    stream_send() noexcept {
        send_op_.self = this;
        send_op_.complete = &stream_send::on_send;
    }
    ~stream_send() = default;

    /// Large writes try a send(2) first (see direct_send_min); set once at construction.
    bool direct_send_ = false;

    // ---- for the close sequence (stream_state) ----
    [[nodiscard]] bool send_in_flight() const noexcept { return sstate_ != send_state::idle; }
    /// Cancels the send in flight, if any (once).
    void cancel_send() noexcept {
        if (sstate_ == send_state::sending) {
            sstate_ = send_state::cancelling;
            core().cancel_op(send_op_);
        }
    }
    /// Closing: sends what is still queued (unless the connection failed). Returns true when
    /// a send is in flight (the close goes on after its completion).
    bool flush_before_close() noexcept {
        stream_core& c = core();
        if (!werr_ && unsent_bytes() > 0 && c.loop_) {
            try {
                start_send();
            } catch (...) {
                werr_ = EIO;
            }
            return send_in_flight();
        }
        return false;
    }

    /// Forgets what is queued for sending, except memory a send in flight still reads.
    void drop_write_buffers() noexcept {
        wbuf_.clear();
        const bool in_flight = send_in_flight();
        if (!in_flight) {
            wsend_.clear();
            wsent_ = 0;
        }
        const std::size_t keep = in_flight ? send_chunks_ : 0;
        wq_.truncate(keep);
        wq_bytes_ = 0;
        for (std::size_t i = 0; i < keep; ++i) wq_bytes_ += wq_[i].size();
    }

    waiter_list drain_waiters_;
    int werr_ = 0;

private:
    /// Everything written and not yet sent, the send in flight included.
    [[nodiscard]] std::size_t unsent_bytes() const noexcept {
        return wbuf_.size() + (wsend_.size() - wsent_) + wq_bytes_;
    }

    struct send_op_t : operation {
        stream_send* self = nullptr;
    };
    /// Chunks gathered into one sendmsg (as the reference liburing echo server does).
    static constexpr unsigned max_iov = 64;
    /// On the epoll backend, writes at least this big, made while nothing is queued or in
    /// flight, are tried with a non-blocking send(2) from the caller's memory before anything
    /// is copied, as asyncio's transport.write does: the send operation would make that same
    /// system call, from a copy. Not on io_uring, where the operation's send goes out in the
    /// loop's one submission: in the echo benchmark's read(65536)/write/drain server, a
    /// send(2) per write cost more than the copy it saved (2.41 against 2.54 GB/s, same run).
    /// Not for a pipe either: it has no send(2), and on io_uring it may be blocking.
    static constexpr std::size_t direct_send_min = 16 * 1024;

    // The connection this half belongs to (defined in stream_state.hpp).
    stream_core& core() noexcept;
    const stream_core& core() const noexcept;

    void check_can_write() const {
        if (core().closing_) throw invalid_state_error("coio: stream_writer: write() after close()");
        if (external_send_)
            throw invalid_state_error("coio: stream_writer: write() while sendfile() is in progress");
        if (wend_ != write_end::open) throw invalid_state_error("coio: stream_writer: write() after write_eof()");
        core().check_loop();
    }

    /// The non-blocking send of a large write (see direct_send_min). Returns the bytes the
    /// socket took: 0 when it took none or failed, in which case the bytes go through the
    /// send operation, which reports the error as every other send does. `full`: the socket
    /// took less than all of it without an error (no room left).
    std::size_t send_now(std::span<const std::byte> data, bool& full) noexcept {
        const int fd = core().sock_.fileno();
        ssize_t r;
        do r = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        while (r < 0 && errno == EINTR);
        full = r >= 0 ? static_cast<std::size_t>(r) < data.size() : errno == EAGAIN || errno == EWOULDBLOCK;
        return r > 0 ? static_cast<std::size_t>(r) : 0;
    }

    /// Sends what is queued next: the rest of wsend_, else wbuf_ (swapped in), else up to
    /// max_iov chunks. Precondition: no send in flight, something queued.
    void start_send() {
        if (wsent_ >= wsend_.size() && !wbuf_.empty()) {
            wsend_.clear();
            wsent_ = 0;
            std::swap(wsend_, wbuf_);
        }
        stream_core& c = core();
        const int fd = c.sock_.fileno();
        // MSG_WAITALL: the kernel itself retries short sends on a stream socket.
        // MSG_NOSIGNAL: a vanished peer is EPIPE, never SIGPIPE.
        constexpr int flags = MSG_NOSIGNAL | MSG_WAITALL;
        send_chunks_ = 0;
        if (c.cfg_.pipe) {
            // A pipe: write(2) at the current position, one buffer at a time (no MSG_WAITALL:
            // send_done goes on from a short write). EPIPE instead of SIGPIPE needs SIGPIPE
            // ignored, which connect_write_pipe makes sure of (see coio/pipe.hpp).
            if (wsent_ < wsend_.size()) {
                inflight_bytes_ = wsend_.size() - wsent_;
                send_op_.set_write(fd, wsend_.data() + wsent_, inflight_bytes_);
            } else {
                send_chunks_ = 1;
                inflight_bytes_ = wq_[0].size();
                send_op_.set_write(fd, wq_[0].data(), wq_[0].size());
            }
        } else if (wsent_ < wsend_.size()) {
            inflight_bytes_ = wsend_.size() - wsent_;
            send_op_.set_send(fd, wsend_.data() + wsent_, inflight_bytes_, flags);
        } else if (wq_.size() == 1) {
            send_chunks_ = 1;  // one chunk (the echo case): a plain send, no msghdr
            inflight_bytes_ = wq_[0].size();
            send_op_.set_send(fd, wq_[0].data(), wq_[0].size(), flags);
        } else {
            // The iovecs and msghdr live in the state: the kernel may read them after this
            // submission (the backend may read them when the operation starts, later).
            send_chunks_ = static_cast<unsigned>(std::min<std::size_t>(wq_.size(), max_iov));
            inflight_bytes_ = 0;
            for (unsigned i = 0; i < send_chunks_; ++i) {
                iov_[i].iov_base = const_cast<std::byte*>(wq_[i].data());
                iov_[i].iov_len = wq_[i].size();
                inflight_bytes_ += wq_[i].size();
            }
            std::memset(&msg_, 0, sizeof msg_);
            msg_.msg_iov = iov_;
            msg_.msg_iovlen = send_chunks_;
            send_op_.set_sendmsg(fd, &msg_, flags);
        }
        c.loop_->submit(send_op_);
        send_op_.wait_first = false;  // once: set by write() after a direct send came back short
        sstate_ = send_state::sending;
        c.op_started();
    }

    static void on_send(operation* op, int res, unsigned) noexcept {
        static_cast<send_op_t*>(op)->self->send_done(res);
    }

    void send_done(int res) noexcept {
        stream_core& c = core();
        const bool cancelled = sstate_ == send_state::cancelling;  // abort: start nothing more
        sstate_ = send_state::idle;
        inflight_bytes_ = 0;
        --c.ops_in_flight;
        if (res < 0) {
            werr_ = res == -ECANCELED ? ECONNABORTED : -res;
            drop_write_buffers();
        } else if (send_chunks_ == 0) {
            wsent_ += static_cast<std::size_t>(res);
            if (wsent_ >= wsend_.size()) {
                wsend_.clear();
                wsent_ = 0;
            }
        } else {
            // Release every chunk whose last byte has been sent (its ring buffer goes back).
            auto sent = static_cast<std::size_t>(res);
            while (sent > 0 && !wq_.empty()) {
                const std::size_t n = wq_[0].size();
                if (sent < n) {
                    wq_[0].remove_prefix(sent);
                    wq_bytes_ -= sent;
                    break;
                }
                sent -= n;
                wq_bytes_ -= n;
                stream_chunk done = wq_.pop();
                c.offer_spare_string(done.take_string());  // read(n) may receive into it
            }
        }
        send_chunks_ = 0;
        if (!werr_ && unsent_bytes() > 0 && c.loop_ && !cancelled) {
            try {
                start_send();
            } catch (...) {
                werr_ = EIO;
                drop_write_buffers();
            }
        }
        if (werr_ || write_buffer_size() <= c.cfg_.low_water) drain_waiters_.wake_all(wait_status::granted);
        maybe_shutdown_write();
        c.op_finished();
    }

    void maybe_shutdown_write() noexcept {
        const stream_core& c = core();
        if (wend_ == write_end::fin_pending && sstate_ == send_state::idle && unsent_bytes() == 0 &&
            c.sock_.is_open() && !c.cfg_.pipe) {
            wend_ = write_end::fin_sent;
            ::shutdown(c.sock_.fileno(), SHUT_WR);  // non-blocking: queues a FIN
        }
    }

    std::vector<std::byte> wbuf_;   // written while a send is in flight
    std::vector<std::byte> wsend_;  // being sent
    std::size_t wsent_ = 0;
    chunk_fifo wq_;               // chunks written, sent after wsend_ and wbuf_
    std::size_t wq_bytes_ = 0;    // their unsent bytes
    unsigned send_chunks_ = 0;    // chunks covered by the send in flight (0: from wsend_)
    std::size_t inflight_bytes_ = 0;  // bytes the send in flight carries (0: none in flight)
    iovec iov_[max_iov];
    msghdr msg_{};
    send_op_t send_op_;
    send_state sstate_ = send_state::idle;
    write_end wend_ = write_end::open;
    bool external_send_ = false;  // sendfile owns the send half (sstate_ is `sending`)
};

} // namespace coio::detail
