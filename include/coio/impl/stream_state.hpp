// coio/impl/stream_state.hpp - the connection state shared by a stream_reader and its
// stream_writer (what asyncio calls the transport plus the protocol). Not API.
//
// Contracts:
//  * Heap-allocated once per connection, reference counted (non-atomic): one reference per
//    user handle (reader, writer) and one per kernel operation in flight, so the state, its
//    buffers and its operations outlive every operation the kernel may still complete.
//  * Receiving: either a multishot receive into the loop's provided-buffer ring (armed as
//    long as the connection is open and the buffer is below 2 x limit, as asyncio's transport
//    reads eagerly and pauses at 2 x limit), or, in plain mode, one recv at a time, issued
//    only when a reader needs data, into the state's buffer or straight into the caller's
//    span (read_into). The buffer is never reallocated while a recv writes into it.
//  * A reader's task is woken only when there is something to report (as much data as it
//    waits for, EOF, error), so an awaiter never has to wait twice.
//  * Cancellation never loses data: a read gathers what it needs in rbuf_ (read_waiter::want)
//    and takes it out only once it can return, so a cancelled read leaves every received byte
//    buffered for the next one.
//  * Zero copy (read_chunk): once a reader asked for chunks, received ring buffers are
//    queued as they are (`rq_`, stream_chunks) instead of being copied into `rbuf_`, and
//    handed out one by one. The received data is always `rbuf_` followed by `rq_`; a
//    copying read (read, readline, read_into...) first appends `rq_` to `rbuf_` (flatten),
//    and from then on receives by copy again, so the byte order never changes.
//  * Ring dry: the kernel ends the multishot receive with -ENOBUFS. The stream then receives
//    with one plain recv into `rbuf_` if a reader is waiting (progress even when the user
//    holds every buffer), else waits on the ring for a buffer to come back. It never
//    re-arms blindly (that would spin while buffers are held).
//  * Sending: writes are copied into `wbuf_` (so the caller's memory is free at once, as
//    asyncio's transport.write promises); one send is in flight at a time, from `wsend_`,
//    and the two buffers swap when it completes. Their capacity is kept: no allocation per
//    write in steady state. Written chunks queue in `wq_`, after the bytes of wsend_/wbuf_
//    (a byte write while chunks are queued becomes a chunk of its own, so order holds);
//    up to max_iov of them are sent by one sendmsg straight from their memory, and each is
//    released (its ring buffer recycled) once the send covering its last byte completed.
//  * Closing flushes what was written, cancels the receive, and closes the descriptor once
//    no operation is in flight.
#pragma once

#include <coio/impl/net_service.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/socket.hpp>
#include <coio/stream_chunk.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace coio::detail {

/// Settings of one connection (from stream_options / server_options).
struct stream_config {
    std::size_t limit = 64 * 1024;
    std::size_t high_water = 64 * 1024;
    std::size_t low_water = 16 * 1024;
    bool multishot = true;
};

class stream_state;

/// A FIFO of chunks without allocation in steady state (a vector and a head index).
class chunk_fifo {
public:
    [[nodiscard]] bool empty() const noexcept { return head_ == v_.size(); }
    [[nodiscard]] std::size_t size() const noexcept { return v_.size() - head_; }
    [[nodiscard]] stream_chunk& operator[](std::size_t i) noexcept { return v_[head_ + i]; }
    void push(stream_chunk c) {
        if (head_ > 16 && head_ * 2 > v_.size()) {  // compact: amortized O(1), bounded memory
            v_.erase(v_.begin(), v_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
        v_.push_back(std::move(c));
    }
    stream_chunk pop() noexcept {
        stream_chunk c = std::move(v_[head_++]);
        if (head_ == v_.size()) {
            v_.clear();
            head_ = 0;
        }
        return c;
    }
    /// Releases the chunks from index `keep` on. (A released buffer may re-arm a stream's
    /// receive, never touch a write queue: destroying them in place is safe.)
    void truncate(std::size_t keep) noexcept {
        v_.erase(v_.begin() + static_cast<std::ptrdiff_t>(head_ + keep), v_.end());
        if (head_ == v_.size()) {
            v_.clear();
            head_ = 0;
        }
    }

private:
    std::vector<stream_chunk> v_;
    std::size_t head_ = 0;
};

/// A task waiting for readable data (one at a time per stream, as in asyncio).
struct read_waiter : cancel_hook {
    stream_state* st = nullptr;
    task_base* task = nullptr;
    std::span<std::byte> target{};  // read_into: data may be delivered straight here
    std::size_t delivered = 0;      // bytes delivered into target
    // Wake the reader once this many bytes are buffered (or at EOF / an error / close). 1 is
    // "any data"; readexactly(n) waits for n and read() to EOF for everything, so a read
    // that must gather data keeps it in the stream's buffer while it waits, where a
    // cancellation leaves it for the next read (a local accumulator would lose it).
    std::size_t want = 1;
    int direct_res = 0;             // plain mode: the res of the recv into target
    bool direct = false;            // plain mode: a recv writes into target right now
    bool cancel_requested = false;
    bool cancelled = false;
    bool suspended = false;
};

class stream_state final : public io_owner {
public:
    stream_state(net_service& svc, socket s, const stream_config& cfg)
        : svc_(&svc), loop_(&svc.loop()), sock_(std::move(s)), cfg_(cfg) {
        if (cfg_.low_water > cfg_.high_water) cfg_.low_water = cfg_.high_water;
        recv_op_.self = this;
        recv_op_.complete = &stream_state::on_recv;
        send_op_.self = this;
        send_op_.complete = &stream_state::on_send;
        buf_waiter_.self = this;
        buf_waiter_.on_buffer = &stream_state::on_buffer_back;
        svc_->add(this);
        if (sock_.is_open()) peer_text_ = describe_fd(sock_.fileno(), true);
        if (cfg_.multishot) {
            bufs_ = svc_->buffers();
            if (!bufs_) cfg_.multishot = false;  // no buffer rings on this kernel
        }
        if (cfg_.multishot) arm_multishot();  // read eagerly, as an asyncio transport does
    }
    stream_state(const stream_state&) = delete;
    stream_state& operator=(const stream_state&) = delete;
    ~stream_state() {
        if (bufs_) bufs_->stop_waiting(&buf_waiter_);
        if (svc_) svc_->remove(this);
    }

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0) delete this;
    }
    /// A user handle (reader or writer) appears / disappears; the last one closes.
    void add_handle() noexcept { ++handles_; add_ref(); }
    void drop_handle() noexcept {
        if (--handles_ == 0) close();
        release();
    }

    [[nodiscard]] const socket& sock() const noexcept { return sock_; }
    [[nodiscard]] std::size_t limit() const noexcept { return cfg_.limit; }

    // ================================ reading ==============================================

    /// Bytes received and not read yet (rbuf_ and queued chunks).
    [[nodiscard]] std::size_t buffered() const noexcept { return rbuffered() + rq_bytes_; }
    /// Bytes in rbuf_ (what rview/take see; all of buffered() after prepare_copy_read()).
    [[nodiscard]] std::size_t rbuffered() const noexcept { return rend_ - rbegin_; }
    [[nodiscard]] const std::byte* rdata() const noexcept { return rbuf_.data() + rbegin_; }
    [[nodiscard]] std::string_view rview() const noexcept {
        return {reinterpret_cast<const char*>(rbuf_.data() + rbegin_), rbuffered()};
    }
    [[nodiscard]] bool eof() const noexcept { return eof_; }
    /// True when no more data will arrive: EOF, an error, or the stream is closing (its
    /// receive is being cancelled; a read must not wait for that CQE in a busy loop).
    [[nodiscard]] bool ended() const noexcept { return eof_ || closing_; }
    [[nodiscard]] bool at_eof() const noexcept { return eof_ && buffered() == 0; }

    /// Throws the receive error, if the connection failed (after every buffered byte was read).
    void check_read_error() const {
        if (rerr_) throw_errno(rerr_, "recv from " + peer_text());
    }
    void check_loop() const {
        if (!loop_) throw invalid_state_error("coio: the event loop of this stream is closed");
    }

    /// A copying read starts: queued chunks are appended to rbuf_ (their buffers go back to
    /// the ring) and later receives are copied into rbuf_ again.
    /// Throws: std::bad_alloc.
    void prepare_copy_read() {
        chunked_ = false;
        while (!rq_.empty()) {
            stream_chunk c = rq_.pop();
            rq_bytes_ -= c.size();
            append(c.data(), c.size());
        }
    }

    /// A chunk read starts: later receives keep their ring buffers.
    void prepare_chunk_read() noexcept { chunked_ = true; }

    /// Takes the oldest received data as a chunk (rbuf_ first, then the queue); empty when
    /// nothing is buffered. Throws: std::bad_alloc (only when rbuf_ must be copied).
    stream_chunk next_chunk() {
        stream_chunk c;
        if (const std::size_t n = rbuffered()) {
            if (recv_in_flight_into_buffer()) {
                // The kernel writes behind the data: copy the data out, keep the buffer.
                std::vector<std::byte> v(rdata(), rdata() + n);
                c = stream_chunk::from_vector(std::move(v), 0, n);
                rbegin_ += n;
            } else {
                // Nothing writes into rbuf_: hand the vector itself over (no copy).
                c = stream_chunk::from_vector(std::exchange(rbuf_, {}), rbegin_, n);
                rbegin_ = rend_ = 0;
            }
        } else if (!rq_.empty()) {
            c = rq_.pop();
            rq_bytes_ -= c.size();
        }
        maybe_resume_reading();
        return c;
    }

    /// Removes `n` buffered bytes (they have been copied out).
    void consume(std::size_t n) noexcept {
        rbegin_ += n;
        if (rbegin_ == rend_ && !recv_in_flight_into_buffer()) rbegin_ = rend_ = 0;
        maybe_resume_reading();
    }
    /// Copies up to out.size() buffered bytes into `out`; returns the count.
    std::size_t take_into(std::span<std::byte> out) noexcept {
        const std::size_t n = std::min(out.size(), rbuffered());
        if (n) std::memcpy(out.data(), rdata(), n);
        consume(n);
        return n;
    }
    /// Takes `n` buffered bytes as a string.
    std::string take(std::size_t n) {
        std::string s(reinterpret_cast<const char*>(rdata()), n);
        consume(n);
        return s;
    }

    /// Registers `w` as the waiting reader and makes sure data is on its way. Precondition:
    /// nothing buffered, not at EOF. Throws: invalid_state_error if another task is reading.
    void check_can_read() const {
        check_single_reader();
        check_loop();
    }
    /// Throws invalid_state_error if another task is waiting to read (asyncio's rule).
    void check_single_reader() const {
        if (reader_) throw invalid_state_error("coio: stream_reader: another task is already waiting to read from this stream");
    }
    void begin_read_wait(read_waiter* w) {
        reader_ = w;
        if (cfg_.multishot) {
            // A reader that needs more than 2 x limit (readexactly of a large block) must not
            // stay paused: resume reading while someone waits, as asyncio's _wait_for_data does.
            paused_ = false;
            start_receiving();
        } else if (!recv_in_flight_) {
            if (!w->target.empty()) {
                // Zero copy: the kernel writes straight into the caller's span.
                w->direct = true;
                start_recv(w->target.data(), w->target.size());
            } else {
                reserve_tail();
                start_recv(rbuf_.data() + rend_, rbuf_.size() - rend_);
            }
        }
    }
    /// The waiting reader's task was cancelled.
    void cancel_read_wait(read_waiter* w) noexcept {
        w->cancel_requested = true;
        if (w->direct) {
            // The kernel may be writing into the caller's memory: cancel the recv and keep the
            // task suspended until its CQE arrived (on_recv wakes it).
            cancel_recv();
            return;
        }
        // Data keeps arriving into our own buffer; the reader just stops waiting for it.
        reader_ = nullptr;
        w->cancelled = true;
        w->task->wake();
    }

    // ================================ writing ==============================================

    [[nodiscard]] std::size_t write_buffer_size() const noexcept {
        return wbuf_.size() + (wsend_.size() - wsent_) + wq_bytes_;
    }
    [[nodiscard]] bool is_closing() const noexcept { return closing_; }
    [[nodiscard]] bool is_closed() const noexcept { return closed_; }
    [[nodiscard]] int write_error() const noexcept { return werr_; }
    [[nodiscard]] std::size_t high_water() const noexcept { return cfg_.high_water; }
    void set_write_buffer_limits(std::size_t high, std::size_t low) noexcept {
        cfg_.high_water = high;
        cfg_.low_water = std::min(low, high);
        if (write_buffer_size() <= cfg_.low_water) drain_waiters_.wake_all(wait_status::granted);
    }

    /// transport.write: buffers `data` and starts sending. Throws: invalid_state_error after
    /// close() or write_eof().
    void write(std::span<const std::byte> data) {
        if (closing_) throw invalid_state_error("coio: stream_writer: write() after close()");
        if (eof_requested_) throw invalid_state_error("coio: stream_writer: write() after write_eof()");
        check_loop();
        if (werr_ || data.empty()) return;  // connection lost: drain() reports it, as in asyncio
        if (!wq_.empty()) {
            // Chunks are queued: these bytes go after them, as a chunk of their own.
            wq_.push(stream_chunk::from_vector(std::vector<std::byte>(data.begin(), data.end()), 0, data.size()));
            wq_bytes_ += data.size();
        } else if (!send_in_flight_) {
            // Idle: send from wsend_ right away (in this loop iteration's submission).
            wsend_.assign(data.begin(), data.end());
            wsent_ = 0;
            start_send();
        } else {
            wbuf_.insert(wbuf_.end(), data.begin(), data.end());
        }
    }
    /// write(chunk): queues the chunk itself; it is sent from its own memory and released
    /// when sent (or when the connection fails or is aborted). Throws: as write(bytes).
    void write(stream_chunk c) {
        if (closing_) throw invalid_state_error("coio: stream_writer: write() after close()");
        if (eof_requested_) throw invalid_state_error("coio: stream_writer: write() after write_eof()");
        check_loop();
        if (werr_ || c.empty()) return;  // connection lost: drain() reports it, as in asyncio
        wq_bytes_ += c.size();
        wq_.push(std::move(c));
        if (!send_in_flight_) start_send();
    }

    /// True when a writer must wait in drain().
    [[nodiscard]] bool must_drain() const noexcept { return !werr_ && write_buffer_size() > cfg_.high_water && !closed_; }
    [[nodiscard]] waiter_list& drain_waiters() noexcept { return drain_waiters_; }
    [[nodiscard]] waiter_list& close_waiters() noexcept { return close_waiters_; }

    /// transport.write_eof: half-closes once the buffered data is sent.
    void write_eof() {
        if (closing_ || eof_requested_) return;
        eof_requested_ = true;
        maybe_shutdown_write();
    }

    /// transport.close: flush, then close. Idempotent; never throws.
    void close() noexcept {
        if (closing_) return;
        closing_ = true;
        if (bufs_) bufs_->stop_waiting(&buf_waiter_);
        cancel_recv();
        if (werr_ || !loop_) drop_write_buffers();
        maybe_finish_close();
        wake_reader_if_ready();
    }

    /// The peer's address as text, for error messages (captured when the stream was made,
    /// because getpeername fails once the connection is reset).
    [[nodiscard]] const std::string& peer_text() const noexcept { return peer_text_; }
    void set_peer_text(std::string t) noexcept { peer_text_ = std::move(t); }

    // ---- io_owner ----
    void abort() noexcept override {
        closing_ = true;
        if (bufs_) bufs_->stop_waiting(&buf_waiter_);
        drop_write_buffers();
        cancel_recv();
        if (send_in_flight_ && !send_cancel_sent_) {
            send_cancel_sent_ = true;
            submit_cancel(&send_op_);
        }
        maybe_finish_close();
    }
    void detach() noexcept override {
        // The loop and its ring are gone (every operation was drained by shutdown()).
        if (bufs_) bufs_->stop_waiting(&buf_waiter_);
        svc_ = nullptr;
        loop_ = nullptr;
        bufs_ = nullptr;
        closing_ = true;
        sock_ = socket();
        closed_ = true;
    }

private:
    struct state_op : operation {
        stream_state* self = nullptr;
    };
    struct state_buffer_waiter : buffer_waiter {
        stream_state* self = nullptr;
    };
    /// Chunks gathered into one sendmsg (as the reference liburing echo server does).
    static constexpr unsigned max_iov = 64;

    [[nodiscard]] bool recv_in_flight_into_buffer() const noexcept {
        return recv_in_flight_ && recv_plain_ && !(reader_ && reader_->direct);
    }

    void submit_cancel(operation* op) noexcept {
        if (loop_) loop_->cancel(*op);
    }

    // ---- receive ----
    void reserve_tail() {
        constexpr std::size_t chunk = 64 * 1024;
        if (rbegin_ == rend_) rbegin_ = rend_ = 0;
        if (rbuf_.size() - rend_ >= chunk) return;
        if (rbegin_ > 0) {  // compact (nothing is in flight into the buffer here)
            std::memmove(rbuf_.data(), rbuf_.data() + rbegin_, rend_ - rbegin_);
            rend_ -= rbegin_;
            rbegin_ = 0;
        }
        if (rbuf_.size() - rend_ < chunk) rbuf_.resize(rend_ + chunk);
    }

    void start_recv(void* p, std::size_t n) {
        recv_op_.set_recv(sock_.fileno(), p, n);
        loop_->submit(recv_op_);
        recv_in_flight_ = true;
        recv_plain_ = true;
        recv_cancel_sent_ = false;
        ++ops_in_flight;
        add_ref();
    }

    /// Multishot configuration: receives again (multishot while the ring has buffers, see
    /// the contract at the top for a dry ring).
    void start_receiving() {
        if (!can_receive()) return;
        if (bufs_ && bufs_->available() > 0) arm_multishot();
        else receive_without_buffers();
    }
    [[nodiscard]] bool can_receive() const noexcept {
        return !recv_in_flight_ && !eof_ && !closing_ && !paused_ && loop_ && !svc_->shutting_down();
    }
    /// The ring is dry: a waiting reader gets one plain recv into rbuf_; otherwise wait until
    /// a buffer comes back (on_buffer_back).
    void receive_without_buffers() {
        if (!can_receive()) return;
        if (reader_) {
            if (bufs_) bufs_->stop_waiting(&buf_waiter_);
            reserve_tail();
            start_recv(rbuf_.data() + rend_, rbuf_.size() - rend_);
        } else if (bufs_) {
            bufs_->wait_for_buffer(&buf_waiter_);
        }
    }
    static bool on_buffer_back(buffer_waiter* bw) noexcept {
        stream_state* self = static_cast<state_buffer_waiter*>(bw)->self;
        if (!self->can_receive()) return false;
        try {
            self->arm_multishot();
        } catch (...) {
            return false;  // submit failed (ring broken): let the next waiter try
        }
        return true;
    }

    void arm_multishot() {
        if (!can_receive()) return;
        bufs_->stop_waiting(&buf_waiter_);
        recv_op_.set_recv_multishot(sock_.fileno(), bufs_->group());
        loop_->submit(recv_op_);
        recv_in_flight_ = true;
        recv_plain_ = false;
        recv_cancel_sent_ = false;
        ++ops_in_flight;
        add_ref();
    }

    void cancel_recv() noexcept {
        if (recv_in_flight_ && !recv_cancel_sent_) {
            recv_cancel_sent_ = true;
            submit_cancel(&recv_op_);
        }
    }

    void maybe_resume_reading() noexcept {
        if (paused_ && buffered() <= cfg_.limit) {
            paused_ = false;
            try {
                start_receiving();
            } catch (...) {
                // submit failed (ring broken): reading stops; the next read reports nothing new.
            }
        }
    }

    /// Appends received bytes to the buffer (multishot mode, never while a plain recv writes
    /// into rbuf_: the two are never in flight together).
    void append(const std::byte* p, std::size_t n) {
        if (rbuf_.size() - rend_ < n) {
            if (rbegin_ > 0) {
                std::memmove(rbuf_.data(), rbuf_.data() + rbegin_, rend_ - rbegin_);
                rend_ -= rbegin_;
                rbegin_ = 0;
            }
            if (rbuf_.size() - rend_ < n) rbuf_.resize(std::max(rend_ + n, rbuf_.size() * 2));
        }
        std::memcpy(rbuf_.data() + rend_, p, n);
        rend_ += n;
    }

    void wake_reader_if_ready() noexcept {
        read_waiter* w = reader_;
        if (!w || w->direct) return;
        if (w->delivered || buffered() >= w->want || eof_ || closing_) {
            reader_ = nullptr;
            w->task->wake();
        }
    }

    static void on_recv(operation* op, int res, unsigned flags) noexcept {
        auto* self = static_cast<state_op*>(op)->self;
        if (self->recv_plain_) self->on_recv_plain(res);
        else self->on_recv_multishot(res, flags);
    }

    void on_recv_plain(int res) noexcept {
        recv_in_flight_ = false;
        --ops_in_flight;
        read_waiter* w = reader_;
        if (w && w->direct) {
            w->direct = false;
            w->direct_res = res;
            reader_ = nullptr;
            if (res == 0) eof_ = true;
            else if (res < 0 && !(res == -ECANCELED && recv_cancel_sent_)) { rerr_ = -res; eof_ = true; }
            else if (res == -ECANCELED && closing_) eof_ = true;
            w->task->wake();
        } else {
            if (res > 0) rend_ += static_cast<std::size_t>(res);
            else if (res == 0) eof_ = true;
            else if (!(res == -ECANCELED && recv_cancel_sent_)) { rerr_ = -res; eof_ = true; }
            if (closing_) eof_ = true;
            wake_reader_if_ready();
            if (!cfg_.multishot && reader_ && !eof_ && !closing_ && loop_) {
                // The reader still waits for more (its `want`): one more recv into rbuf_.
                try {
                    reserve_tail();
                    start_recv(rbuf_.data() + rend_, rbuf_.size() - rend_);
                } catch (...) {
                    rerr_ = ENOMEM;
                    eof_ = true;
                    wake_reader_if_ready();
                }
            } else if (cfg_.multishot && !eof_) {
                // A dry-ring fallback recv completed: back to the ring if it has buffers, else
                // wait for one (the reader was just woken: no speculative second recv).
                try {
                    start_receiving();
                } catch (...) {
                    rerr_ = EIO;
                    eof_ = true;
                    wake_reader_if_ready();
                }
            }
        }
        if (closing_) maybe_finish_close();
        release();
    }

    void on_recv_multishot(int res, unsigned flags) noexcept {
        if ((flags & op_buffer) && bufs_) {
            const unsigned bid = flags >> op_buffer_shift;
            if (res > 0) nobufs_retried_ = false;
            if (res > 0 && chunked_) {
                // Zero copy: the buffer itself is queued (and handed out by read_chunk).
                try {
                    rq_.push(stream_chunk::from_ring(*bufs_, bid, static_cast<std::size_t>(res)));
                    rq_bytes_ += static_cast<std::size_t>(res);
                } catch (...) {  // the chunk (pushed or not) owns the buffer: nothing leaks
                    rerr_ = ENOMEM;
                    eof_ = true;
                }
            } else if (res > 0) {
                const std::byte* p = bufs_->take(bid);
                std::size_t n = static_cast<std::size_t>(res);
                read_waiter* w = reader_;
                if (w && !w->target.empty() && buffered() == 0 && !w->delivered) {
                    // A read_into is waiting: hand the bytes straight to it.
                    const std::size_t k = std::min(n, w->target.size());
                    std::memcpy(w->target.data(), p, k);
                    w->delivered = k;
                    p += k;
                    n -= k;
                }
                if (n) {
                    try {
                        append(p, n);
                    } catch (...) {
                        rerr_ = ENOMEM;
                        eof_ = true;
                    }
                }
                bufs_->give_back(bid);
            } else {
                bufs_->take(bid);  // defensive: a buffer on an empty or failed receive
                bufs_->give_back(bid);
            }
        }
        const bool more = (flags & op_more) != 0;
        if (!more) {
            recv_in_flight_ = false;
            --ops_in_flight;
            if (res == 0) {
                eof_ = true;
            } else if (res < 0 && res != -ENOBUFS && !(res == -ECANCELED && recv_cancel_sent_)) {
                rerr_ = -res;
                eof_ = true;
            }
            if (closing_) eof_ = true;
        }
        if (!eof_ && !paused_ && buffered() > 2 * cfg_.limit && !(reader_ && buffered() < reader_->want)) {
            // asyncio's pause_reading: the consumer is slow; stop receiving until it catches up.
            // Not while a reader waits for more (readexactly of a large block, read() to EOF):
            // pausing then would only cancel and re-arm the receive once per buffer.
            paused_ = true;
            cancel_recv();
        }
        if (!more && !eof_ && !closing_) {
            try {
                if (res != -ENOBUFS) {
                    start_receiving();  // the kernel ended the multishot (CQ pressure): keep going
                } else if (bufs_ && bufs_->available() > 0 && !nobufs_retried_) {
                    // Buffers came back after the kernel found the ring empty: retry once. A
                    // second -ENOBUFS without data in between waits instead (never spins).
                    nobufs_retried_ = true;
                    arm_multishot();
                } else {
                    receive_without_buffers();
                }
            } catch (...) {
                rerr_ = EIO;
                eof_ = true;
            }
        }
        wake_reader_if_ready();
        if (!more) {
            if (closing_) maybe_finish_close();
            release();
        }
    }

    // ---- send ----
    /// Sends what is queued next: the rest of wsend_, else wbuf_ (swapped in), else up to
    /// max_iov chunks. Precondition: no send in flight, something queued.
    void start_send() {
        if (wsent_ >= wsend_.size() && !wbuf_.empty()) {
            wsend_.clear();
            wsent_ = 0;
            std::swap(wsend_, wbuf_);
        }
        // MSG_WAITALL: the kernel itself retries short sends on a stream socket.
        // MSG_NOSIGNAL: a vanished peer is EPIPE, never SIGPIPE.
        constexpr int flags = MSG_NOSIGNAL | MSG_WAITALL;
        send_chunks_ = 0;
        if (wsent_ < wsend_.size()) {
            send_op_.set_send(sock_.fileno(), wsend_.data() + wsent_, wsend_.size() - wsent_, flags);
        } else if (wq_.size() == 1) {
            send_chunks_ = 1;  // one chunk (the echo case): a plain send, no msghdr
            send_op_.set_send(sock_.fileno(), wq_[0].data(), wq_[0].size(), flags);
        } else {
            // The iovecs and msghdr live in the state: the kernel may read them after this
            // submission (the backend may read them when the operation starts, later).
            send_chunks_ = static_cast<unsigned>(std::min<std::size_t>(wq_.size(), max_iov));
            for (unsigned i = 0; i < send_chunks_; ++i) {
                iov_[i].iov_base = const_cast<std::byte*>(wq_[i].data());
                iov_[i].iov_len = wq_[i].size();
            }
            std::memset(&msg_, 0, sizeof msg_);
            msg_.msg_iov = iov_;
            msg_.msg_iovlen = send_chunks_;
            send_op_.set_sendmsg(sock_.fileno(), &msg_, flags);
        }
        loop_->submit(send_op_);
        send_in_flight_ = true;
        send_cancel_sent_ = false;
        ++ops_in_flight;
        add_ref();
    }

    static void on_send(operation* op, int res, unsigned) noexcept {
        auto* self = static_cast<state_op*>(op)->self;
        self->send_done(res);
    }

    void send_done(int res) noexcept {
        send_in_flight_ = false;
        --ops_in_flight;
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
                wq_.pop();  // the popped chunk is destroyed here
            }
        }
        send_chunks_ = 0;
        if (!werr_ && write_buffer_size() > 0 && loop_ && !send_cancel_sent_) {
            try {
                start_send();
            } catch (...) {
                werr_ = EIO;
                drop_write_buffers();
            }
        }
        if (werr_ || write_buffer_size() <= cfg_.low_water) drain_waiters_.wake_all(wait_status::granted);
        maybe_shutdown_write();
        if (closing_) maybe_finish_close();
        release();
    }

    /// Forgets what is queued for sending, except memory a send in flight still reads.
    void drop_write_buffers() noexcept {
        wbuf_.clear();
        if (!send_in_flight_) {
            wsend_.clear();
            wsent_ = 0;
        }
        const std::size_t keep = send_in_flight_ ? send_chunks_ : 0;
        wq_.truncate(keep);
        wq_bytes_ = 0;
        for (std::size_t i = 0; i < keep; ++i) wq_bytes_ += wq_[i].size();
    }

    void maybe_shutdown_write() noexcept {
        if (eof_requested_ && !eof_sent_ && !send_in_flight_ && write_buffer_size() == 0 && sock_.is_open()) {
            eof_sent_ = true;
            ::shutdown(sock_.fileno(), SHUT_WR);  // non-blocking: queues a FIN
        }
    }

    void maybe_finish_close() noexcept {
        if (closed_ || recv_in_flight_ || send_in_flight_) return;
        if (!werr_ && write_buffer_size() > 0 && loop_) {
            try {
                start_send();
            } catch (...) {
                werr_ = EIO;
            }
            if (send_in_flight_) return;
        }
        closed_ = true;
        eof_ = true;
        sock_ = socket();  // close(2): nothing of ours is in flight on it any more
        drain_waiters_.wake_all(wait_status::granted);
        close_waiters_.wake_all(wait_status::granted);
        wake_reader_if_ready();
    }

    net_service* svc_;
    event_loop* loop_;
    provided_buffer_ring* bufs_ = nullptr;
    socket sock_;
    stream_config cfg_;
    std::uint32_t refs_ = 0;
    std::uint32_t handles_ = 0;
    std::string peer_text_;

    // read side
    std::vector<std::byte> rbuf_;
    std::size_t rbegin_ = 0;
    std::size_t rend_ = 0;
    read_waiter* reader_ = nullptr;
    chunk_fifo rq_;               // received ring buffers not read yet (after rbuf_)
    std::size_t rq_bytes_ = 0;
    state_buffer_waiter buf_waiter_;  // queued on the ring while it is dry
    state_op recv_op_;
    int rerr_ = 0;
    bool eof_ = false;
    bool recv_in_flight_ = false;
    bool recv_cancel_sent_ = false;
    bool recv_plain_ = false;      // the recv in flight is a one-shot recv (plain mode or dry ring)
    bool chunked_ = false;         // the last read was read_chunk: keep ring buffers as chunks
    bool nobufs_retried_ = false;  // re-armed once after -ENOBUFS, no data since
    bool paused_ = false;

    // write side
    std::vector<std::byte> wbuf_;   // written while a send is in flight
    std::vector<std::byte> wsend_;  // being sent
    std::size_t wsent_ = 0;
    chunk_fifo wq_;               // chunks written, sent after wsend_ and wbuf_
    std::size_t wq_bytes_ = 0;    // their unsent bytes
    unsigned send_chunks_ = 0;    // chunks covered by the send in flight (0: from wsend_)
    iovec iov_[max_iov];
    msghdr msg_{};
    state_op send_op_;
    int werr_ = 0;
    bool send_in_flight_ = false;
    bool send_cancel_sent_ = false;
    bool eof_requested_ = false;
    bool eof_sent_ = false;
    bool closing_ = false;
    bool closed_ = false;
    waiter_list drain_waiters_;
    waiter_list close_waiters_;
};

/// Waits until the stream has buffered data or reached EOF / an error (read() and friends).
/// With a non-empty `target` (read_into), data may be delivered straight into it.
class read_wait_awaiter : public read_waiter {
public:
    /// @param t     read_into's span (empty otherwise).
    /// @param want  bytes that must be buffered before the reader is woken (see read_waiter).
    read_wait_awaiter(stream_state& s, std::span<std::byte> t, std::size_t want_bytes = 1) noexcept {
        st = &s;
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
};

} // namespace coio::detail
