// coio/impl/stream_receive.hpp - the receive half of a stream connection: its buffer, its
// one receive operation and the reader waiting for data. Not API.
//
// Contracts:
//  * Receiving: either a multishot receive into the loop's provided-buffer ring (armed as
//    long as the connection is open and the buffer is below 2 x limit, as asyncio's transport
//    reads eagerly and pauses at 2 x limit), or, in plain mode, one recv at a time, issued
//    only when a reader needs data, into rbuf_ or straight into the caller's span
//    (read_into). rbuf_ is never reallocated or compacted while a recv writes into it.
//  * A reader's task is woken only when there is something to report (as much data as it
//    waits for, EOF, error), so an awaiter never has to wait twice.
//  * Cancellation never loses data: a read gathers what it needs in rbuf_ (read_waiter::want)
//    and takes it out only once it can return, so a cancelled read leaves every received byte
//    buffered for the next one.
//  * Zero copy (read_chunk): once a reader asked for chunks, received ring buffers are
//    queued as they are (`rq_`, stream_chunks) instead of being copied into `rbuf_`, and
//    handed out one by one. The received data is always `rbuf_` followed by `rq_`; a
//    copying read (read, readline, readuntil...) first appends `rq_` to `rbuf_` (flatten),
//    and from then on receives by copy again, so the byte order never changes.
//  * One copy (read_into): a read_into consumer copies from `rbuf_` and then from the queued
//    chunks (take_into), so received buffers are queued too, except behind bytes already
//    in `rbuf_` with nothing queued (appending there keeps the order). Copying them into
//    `rbuf_` first cost a second copy of every byte, and memmoves to compact `rbuf_`: the
//    read_into/write/drain echo server spent a third of its CPU in memmove. Pausing at
//    2 x limit bounds the ring buffers one stream holds, as for read_chunk.
//  * On demand (`on_demand_`): plain mode always receives only when a reader needs data;
//    multishot mode does too for a copying consumer (read, read_into, readline...) whose
//    stream outran it: where it would pause at 2 x limit, it cancels the multishot receive
//    and from then on issues one recv per read that finds nothing buffered, into rbuf_ or
//    the read_into span. Reading ahead into the ring there cost a third copy from memory
//    gone cold (one io_uring_enter can fill megabytes of ring buffers) and halved the
//    read(65536)/write/drain echo server's streaming (1.50 -> 2.4-2.6 GB/s, Asio's epoll
//    server 2.6-2.8 in the same runs). A recv that comes back short (the socket ran dry)
//    re-arms the multishot receive: between bursts an armed multishot waits for data more
//    cheaply than a recv per read, and the stream reads eagerly again. A chunk consumer
//    keeps the multishot receive (its ring buffers are the data it is handed).
//  * Reading ahead into strings (multishot mode, on demand, a read(n) waits with nothing
//    buffered): the stream waits until the socket is readable (a one-shot poll), then
//    receives with recv(2) into strings of the read's size (read_waiter::string_size; the
//    spare strings its writer has sent, see stream_core::take_spare_string) until the socket
//    runs dry or 2 x limit is buffered, and queues them as chunks; read(n) hands such a
//    string over whole (take_some), so each byte is copied once, by the kernel. With one
//    recv per read, each read waited for a loop iteration of its own and the socket was
//    drained 64 KiB per iteration: the read(65536)/write/drain echo server streamed at
//    0.89x the reference liburing server with BBR; reading ahead, 1.10x (1.06x on epoll;
//    level with libuv, the fastest peer, with cubic). Every other consumer takes these
//    chunks as it takes ring buffers; a copying read (which looks at rbuf_ only) that starts
//    while the poll is in flight gets a plain recv instead. A first recv that comes back
//    short goes back to the multishot receive, as above.
//  * Ring dry: the kernel ends the multishot receive with -ENOBUFS. The stream then receives
//    with one plain recv (into `rbuf_`, or the reader's span) if a reader is waiting
//    (progress even when the user holds every buffer), else waits on the ring for a buffer
//    to come back. It never re-arms blindly (that would spin while buffers are held).
#pragma once

#include <coio/impl/stream_core.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/stream_chunk.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coio::detail {

/// A task waiting for readable data (one at a time per stream, as in asyncio).
struct read_waiter : cancel_hook {
    task_base* task = nullptr;
    std::span<std::byte> target{};  // read_into: data may be delivered straight here
    std::size_t delivered = 0;      // bytes delivered into target
    // Wake the reader once this many bytes are buffered (or at EOF / an error / close). 1 is
    // "any data"; readexactly(n) waits for n and read() to EOF for everything, so a read
    // that must gather data keeps it in the stream's buffer while it waits, where a
    // cancellation leaves it for the next read (a local accumulator would lose it).
    std::size_t want = 1;
    // read(n) while streaming: receive ahead into strings of this size (see the contract
    // "Reading ahead into strings"); 0 for any other read.
    std::size_t string_size = 0;
    int direct_res = 0;             // on demand: the res of the recv into target
    bool direct = false;            // on demand: a recv writes into target right now
    bool cancel_requested = false;
    bool cancelled = false;
    bool suspended = false;
};

/// What the one receive operation of a stream is doing. Exactly one at a time.
///
///   idle                nothing in flight. On demand rests here between reads; multishot
///                       mode passes through it (re-armed at once) unless the ring is dry.
///   multishot           a multishot receive into the ring is armed.
///   polling             on demand, for a read(n): a one-shot poll for readability is in
///                       flight; its completion reads ahead into strings (see the contract
///                       "Reading ahead into strings").
///   plain               a one-shot recv into rbuf_ is in flight (on demand, or the
///                       dry-ring fallback of multishot mode for a waiting reader).
///   direct              a one-shot recv into the waiting read_into's span is in flight
///                       (on demand, or the dry-ring fallback); the reader stays registered
///                       until it completes.
///   pausing             a multishot receive was cancelled to pause (2 x limit buffered);
///                       its final completion leads to `paused`.
///   cancelling          the operation in flight was cancelled (close, abort, a cancelled
///                       read_into, or a pause called off before its completion). What is in
///                       flight is recv_op_.code: a one-shot recv writes into the caller's
///                       span if reader_->direct, else into rbuf_.
///   waiting_for_buffer  multishot mode, the ring is dry and no reader waits: queued on the
///                       ring (buf_waiter_) until a buffer comes back.
///   paused              multishot mode, 2 x limit buffered: nothing in flight until the
///                       reader has consumed down to `limit`.
///   ended               EOF, an error, or the stream closed: nothing is received any more.
///
/// Transitions:
///   idle -> plain | direct | polling   on demand: a reader starts waiting
///   idle | waiting_for_buffer -> multishot
///                                      multishot mode: start, a final completion that
///                                      did not end the stream, a buffer came back, a reader
///   idle -> plain                      multishot mode, ring dry, a reader waits
///   idle -> waiting_for_buffer         multishot mode, ring dry, nobody waits
///   waiting_for_buffer -> idle         close, or the ring offered a buffer we cannot use
///   multishot -> pausing               more than 2 x limit buffered and the reader does
///                                      not wait for more than that (cancel sent)
///   multishot | polling | plain | direct -> cancelling   close, abort, a read_into cancelled
///   pausing -> cancelling              the reader caught up or waits before the final
///                                      completion (that completion then re-arms)
///   cancelling -> pausing              a late completion pushed the buffer over 2 x limit
///   pausing -> paused                  its final completion (-> idle when the pause
///                                      switched the stream to on demand)
///   idle -> paused                     a final completion the kernel ended on its own left
///                                      more than 2 x limit buffered (nothing to cancel)
///   multishot | polling | plain | direct | cancelling -> idle   final completion (re-armed at
///                                      once in multishot mode, see idle)
///   paused -> idle                     the buffer is down to limit, or a reader waits
///   any final completion -> ended      EOF, an error, or the stream is closing
///   (nothing in flight) -> ended       a failure to start a receive; the close completes
///
/// Orthogonal to the operation's state: `consumer_` (how the reader consumes: whether ring
/// buffers are queued instead of copied), `nobufs_retried_` (since the last data, a
/// multishot was re-armed once after -ENOBUFS), `rerr_` (the receive error; set together
/// with `ended`, or, when received data could not be stored while a multishot receive is
/// still in flight, before it: eof() is true from then on, `ended` follows at the final
/// completion).
///
/// The order of the values is chosen so that the frequent questions are one range check:
/// can a receive start (idle, waiting_for_buffer), is one in flight (multishot .. pausing),
/// was it cancelled (cancelling, pausing), is reading paused (pausing, paused).
enum class recv_state : std::uint8_t {
    idle,
    waiting_for_buffer,
    multishot,
    polling,
    direct,
    plain,
    cancelling,
    pausing,
    paused,
    ended,
};

/// The receive half of a stream_state (see the contracts at the top).
class stream_receive {
public:
    stream_receive(const stream_receive&) = delete;
    stream_receive& operator=(const stream_receive&) = delete;

    /// Bytes received and not read yet (rbuf_ and queued chunks).
    [[nodiscard]] std::size_t buffered() const noexcept { return rbuffered() + rq_bytes_; }
    /// Bytes in rbuf_ (what rview/take see; all of buffered() after prepare_copy_read()).
    [[nodiscard]] std::size_t rbuffered() const noexcept { return rend_ - rbegin_; }
    [[nodiscard]] const std::byte* rdata() const noexcept { return rbuf_.data() + rbegin_; }
    [[nodiscard]] std::string_view rview() const noexcept {
        return {reinterpret_cast<const char*>(rbuf_.data() + rbegin_), rbuffered()};
    }
    /// True once no more data will be received: EOF or an error.
    [[nodiscard]] bool eof() const noexcept { return rstate_ == recv_state::ended || rerr_ != 0; }
    /// True when no more data will arrive: EOF, an error, or the stream is closing (its
    /// receive is being cancelled; a read must not wait for that completion in a busy loop).
    [[nodiscard]] bool ended() const noexcept { return eof() || core().closing_; }
    [[nodiscard]] bool at_eof() const noexcept { return eof() && buffered() == 0; }

    /// Throws the receive error, if the connection failed (after every buffered byte was read).
    void check_read_error() const {
        if (rerr_) throw_errno(rerr_, "recv from " + core().peer_text());
    }

    /// A copying read starts: queued chunks are appended to rbuf_ (their buffers go back to
    /// the ring) and later receives are copied into rbuf_ again.
    /// Throws: std::bad_alloc.
    void prepare_copy_read() {
        consumer_ = consumer_kind::copy;
        while (!rq_.empty()) {
            stream_chunk c = rq_.pop();
            rq_bytes_ -= c.size();
            append(c.data(), c.size());
        }
    }

    /// A chunk read starts: later receives keep their ring buffers, so a multishot-mode
    /// stream that was receiving on demand for a copying reader goes back to the ring.
    void prepare_chunk_read() noexcept {
        consumer_ = consumer_kind::chunks;
        if (on_demand_ && core().cfg_.multishot) on_demand_ = false;
    }
    /// A read_into or read(n) starts: it copies from rbuf_ and the queue (take_into,
    /// take_some), so nothing is flattened, and later receives are queued unless appending to
    /// rbuf_ keeps the order.
    void prepare_read_into() noexcept {
        if (consumer_ == consumer_kind::copy) consumer_ = consumer_kind::copy_into;
    }

    /// Takes the oldest received data as a chunk (rbuf_ first, then the queue); empty when
    /// nothing is buffered. Throws: std::bad_alloc (only when rbuf_ must be copied).
    stream_chunk next_chunk() {
        stream_chunk c;
        if (const std::size_t n = rbuffered()) {
            if (recv_in_flight_into_buffer() || n < rbuf_.size() / 2) {
                // Copy the data out and keep the buffer: the kernel writes behind the data,
                // or the data is small next to the buffer. Handing a 64 KiB buffer over for
                // a 64-byte message made the next recv allocate and zero-fill a new one: the
                // plain-mode chunk echo server spent a fifth of its time in that memset and
                // answered ping-pong at a third of the multishot mode's rate.
                std::vector<std::byte> v(rdata(), rdata() + n);
                c = stream_chunk::from_vector(std::move(v), 0, n);
                consume(n);
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
    /// Copies up to out.size() buffered bytes into `out`, from rbuf_ and then from the queued
    /// chunks (whose buffers go back as they empty); returns the count.
    std::size_t take_into(std::span<std::byte> out) noexcept {
        std::byte* to = out.data();
        return take_pieces(out.size(), [&to](const std::byte* p, std::size_t k) noexcept {
            std::memcpy(to, p, k);
            to += k;
        });
    }
    /// Takes min(n, buffered()) bytes as a string, from rbuf_ and the queued chunks (read(n)).
    std::string take_some(std::size_t n) {
        if (rbuffered() == 0 && !rq_.empty() && rq_[0].whole_string() && rq_[0].size() <= n) {
            // Received ahead into a string (see the contract "Reading ahead"): hand it over.
            rq_bytes_ -= rq_[0].size();
            std::string s = rq_.pop().take_string();
            consume(0);
            return s;
        }
        n = std::min(n, buffered());
        if (n <= rbuffered()) return take(n);
        if (rbuffered() == 0 && rq_[0].size() >= n) {
            // The common case: the first queued chunk has it all.
            std::string s(reinterpret_cast<const char*>(rq_[0].data()), n);
            rq_bytes_ -= n;
            if (n == rq_[0].size()) rq_.pop();
            else rq_[0].remove_prefix(n);
            consume(0);
            return s;
        }
        std::string s;
        s.reserve(n);  // appended piece by piece: no fill of bytes about to be overwritten
        take_pieces(n, [&s](const std::byte* p, std::size_t k) noexcept { s.append(reinterpret_cast<const char*>(p), k); });
        return s;
    }
    /// Hands up to `max` buffered bytes to put(pointer, count), piece by piece: rbuf_, then the
    /// queued chunks (whose buffers go back as they empty). Returns the count. `put` must not
    /// throw (the bytes are removed as they are handed over).
    template <class Put>
    std::size_t take_pieces(std::size_t max, Put put) noexcept {
        std::size_t n = std::min(max, rbuffered());
        if (n) put(rdata(), n);
        rbegin_ += n;
        while (n < max && !rq_.empty()) {
            stream_chunk& c = rq_[0];
            const std::size_t k = std::min(max - n, c.size());
            put(c.data(), k);
            n += k;
            rq_bytes_ -= k;
            if (k == c.size()) rq_.pop();
            else c.remove_prefix(k);
        }
        consume(0);
        return n;
    }
    /// Takes `n` buffered bytes as a string.
    std::string take(std::size_t n) {
        std::string s(reinterpret_cast<const char*>(rdata()), n);
        consume(n);
        return s;
    }

    /// True while a copying consumer receives on demand and data streams in (multishot mode:
    /// see the contract "On demand"; plain mode: the last recv filled all it asked for): the
    /// next recv will most likely fill what it asks too.
    [[nodiscard]] bool streaming_on_demand() const noexcept {
        return on_demand_ && (core().cfg_.multishot || last_full_);
    }

    /// True when a streaming read(n) reads ahead into strings (multishot mode; see the
    /// contract "Reading ahead into strings"), false when it receives into its own string.
    [[nodiscard]] bool reads_ahead_into_strings() const noexcept { return core().cfg_.multishot; }

    /// Throws invalid_state_error if another task is reading or the loop is closed.
    void check_can_read() const {
        check_single_reader();
        core().check_loop();
    }
    /// Throws invalid_state_error if another task is waiting to read (asyncio's rule).
    void check_single_reader() const {
        if (reader_) throw invalid_state_error("coio: stream_reader: another task is already waiting to read from this stream");
    }
    /// Registers `w` as the waiting reader and makes sure data is on its way. Precondition:
    /// not at EOF, not closing, no other reader.
    void begin_read_wait(read_waiter* w) {
        reader_ = w;
        if (!on_demand_) {
            // A reader that needs more than 2 x limit (readexactly of a large block) must not
            // stay paused: resume reading while someone waits, as asyncio's _wait_for_data does.
            if (rstate_ >= recv_state::pausing) unpause();  // one comparison in the usual case
        }
        start_receiving();
    }

    /// The waiting reader's task was cancelled.
    void cancel_read_wait(read_waiter* w) noexcept {
        w->cancel_requested = true;
        if (w->direct) {
            // The kernel may be writing into the caller's memory: cancel the recv and keep the
            // task suspended until its completion arrived (on_recv_plain wakes it).
            cancel_recv();
            return;
        }
        // Data keeps arriving into our own buffer; the reader just stops waiting for it.
        reader_ = nullptr;
        w->cancelled = true;
        w->task->wake();
    }

protected:
    stream_receive() noexcept {
        recv_op_.self = this;
        recv_op_.complete = &stream_receive::on_recv;
        recv_op_.keep_watch = true;  // stream_state calls forget_fd before it closes
        buf_waiter_.self = this;
        buf_waiter_.on_buffer = &stream_receive::on_buffer_back;
    }
    ~stream_receive() = default;

    // ---- for construction and the close sequence (stream_state) ----
    /// At construction: multishot mode arms the multishot receive (reading eagerly, as an
    /// asyncio transport does); plain mode receives on demand.
    void start_eager_receive() {
        if (core().cfg_.multishot) arm_multishot();
        else on_demand_ = true;
    }
    [[nodiscard]] bool recv_in_flight() const noexcept {
        return rstate_ >= recv_state::multishot && rstate_ <= recv_state::pausing;
    }
    /// Leaves the ring's queue of streams waiting for a buffer.
    void stop_waiting_for_buffer() noexcept {
        if (bufs_) bufs_->stop_waiting(&buf_waiter_);
        if (rstate_ == recv_state::waiting_for_buffer) rstate_ = recv_state::idle;
    }
    /// Cancels the operation in flight, if any (once).
    void cancel_recv() noexcept {
        if (rstate_ >= recv_state::multishot && rstate_ <= recv_state::plain) {  // not cancelled yet
            rstate_ = recv_state::cancelling;
            core().cancel_op(recv_op_);
        }
    }
    /// The descriptor is closed (nothing in flight): nothing more will be received.
    void receive_closed() noexcept { rstate_ = recv_state::ended; }

    void wake_reader_if_ready() noexcept {
        read_waiter* w = reader_;
        if (!w || w->direct) return;
        if (w->delivered || buffered() >= w->want || eof() || core().closing_) {
            reader_ = nullptr;
            w->task->wake();
        }
    }

    /// Receives (again) as the mode says: on demand, one recv for a waiting reader; else
    /// multishot while the ring has buffers (see the contract at the top for a dry ring).
    void start_receiving() {
        if (!can_receive()) return;
        if (on_demand_) {
            receive_for_reader();
            return;
        }
        if (bufs_ && bufs_->available() > 0) arm_multishot();
        else receive_without_buffers();
    }

    provided_buffer_ring* bufs_ = nullptr;

private:
    struct recv_op_t : operation {
        stream_receive* self = nullptr;
    };
    struct recv_buffer_waiter : buffer_waiter {
        stream_receive* self = nullptr;
    };

    // The connection this half belongs to (both are parts of one stream_state; defined in
    // stream_state.hpp, where that class is complete).
    stream_core& core() noexcept;
    const stream_core& core() const noexcept;

    [[nodiscard]] bool recv_in_flight_into_buffer() const noexcept {
        if (rstate_ < recv_state::plain || rstate_ > recv_state::cancelling) return false;  // the usual case
        return rstate_ == recv_state::plain ||
               ((recv_op_.code == op_code::recv || recv_op_.code == op_code::read) && !(reader_ && reader_->direct));
    }
    [[nodiscard]] bool can_receive() const noexcept {
        const stream_core& c = core();
        return rstate_ <= recv_state::waiting_for_buffer && !c.closing_ && c.loop_ && !c.svc_->shutting_down();
    }
    /// eof() when no receive is in flight (then an error always comes with `ended`): one
    /// comparison on the completion paths instead of two.
    [[nodiscard]] bool stopped() const noexcept { return rstate_ == recv_state::ended; }
    [[nodiscard]] bool paused_or_pausing() const noexcept {
        return rstate_ >= recv_state::pausing && rstate_ <= recv_state::paused;
    }
    /// A receive failed to start, or its data could not be stored: the stream ends with
    /// `err` (at once if nothing is in flight, else at the operation's final completion).
    void fail(int err) noexcept {
        rerr_ = err;
        if (!recv_in_flight()) rstate_ = recv_state::ended;
    }
    /// A pause is called off (the reader caught up or waits): re-arm, now or once the
    /// cancelled multishot has completed.
    void unpause() noexcept {
        if (rstate_ == recv_state::pausing) rstate_ = recv_state::cancelling;
        else if (rstate_ == recv_state::paused) rstate_ = recv_state::idle;
    }

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

    /// Starts a one-shot recv into [p, p + n) (`to`: plain for rbuf_, direct for a span).
    void start_recv(void* p, std::size_t n, recv_state to) {
        stream_core& c = core();
        if (c.cfg_.pipe) recv_op_.set_read(c.sock_.fileno(), p, n);  // read(2) at the current position
        else recv_op_.set_recv(c.sock_.fileno(), p, n);
        c.loop_->submit(recv_op_);
        rstate_ = to;
        recv_asked_ = n;
        c.op_started();
    }

    /// One recv for the waiting reader (on demand, or the ring is dry; a registered reader
    /// always waits for more than is buffered: callers wake a satisfied one first): straight
    /// into its span (read_into, read(n)) when nothing is buffered, else into rbuf_.
    void receive_for_reader() {
        read_waiter* w = reader_;
        if (!w || w->delivered || !can_receive()) return;
        stop_waiting_for_buffer();
        if (w->string_size && buffered() == 0 && core().cfg_.multishot) {
            // read(n) while streaming: wait for readability, then read ahead into strings.
            stream_core& c = core();
            string_size_ = w->string_size;
            recv_op_.set_poll(c.sock_.fileno(), POLLIN);
            c.loop_->submit(recv_op_);
            rstate_ = recv_state::polling;
            c.op_started();
            return;
        }
        if (!w->target.empty() && buffered() == 0) {
            // Zero copy: the kernel writes straight into the caller's span.
            w->direct = true;
            start_recv(w->target.data(), w->target.size(), recv_state::direct);
        } else {
            reserve_tail();
            start_recv(rbuf_.data() + rend_, rbuf_.size() - rend_, recv_state::plain);
        }
    }

    /// The ring is dry: a waiting reader gets one recv (receive_for_reader); otherwise wait
    /// until a buffer comes back (on_buffer_back).
    void receive_without_buffers() {
        if (!can_receive()) return;
        if (reader_) {
            receive_for_reader();
        } else if (bufs_) {
            bufs_->wait_for_buffer(&buf_waiter_);
            rstate_ = recv_state::waiting_for_buffer;
        }
    }
    static bool on_buffer_back(buffer_waiter* bw) noexcept {
        stream_receive* self = static_cast<recv_buffer_waiter*>(bw)->self;
        // The ring unlinked the waiter before this call.
        if (self->rstate_ == recv_state::waiting_for_buffer) self->rstate_ = recv_state::idle;
        if (self->on_demand_ || !self->can_receive()) return false;
        try {
            self->arm_multishot();
        } catch (...) {
            return false;  // submit failed (ring broken): let the next waiter try
        }
        return true;
    }

    void arm_multishot() {
        if (!can_receive()) return;
        stop_waiting_for_buffer();
        stream_core& c = core();
        recv_op_.set_recv_multishot(c.sock_.fileno(), bufs_->group());
        c.loop_->submit(recv_op_);
        rstate_ = recv_state::multishot;
        c.op_started();
    }

    /// Pauses reading (asyncio's pause_reading): the consumer is slow.
    void pause() noexcept {
        switch (rstate_) {
        case recv_state::multishot:
            rstate_ = recv_state::pausing;
            core().cancel_op(recv_op_);
            break;
        case recv_state::cancelling: rstate_ = recv_state::pausing; break;  // cancel sent already
        case recv_state::idle:  // final completion seen (on demand, nothing to pause)
            if (!on_demand_) rstate_ = recv_state::paused;
            break;
        default: break;
        }
    }

    void maybe_resume_reading() noexcept {
        if (paused_or_pausing() && buffered() <= core().cfg_.limit) {
            unpause();
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

    static void on_recv(operation* op, int res, unsigned flags) noexcept {
        auto* self = static_cast<recv_op_t*>(op)->self;
        if (op->code == op_code::recv_multishot) self->on_recv_multishot(res, flags);
        else if (op->code == op_code::poll) self->on_readable(res);
        else self->on_recv_plain(res);
    }

    void on_recv_plain(int res) noexcept {
        stream_core& c = core();
        const bool cancelled = rstate_ == recv_state::cancelling;
        rstate_ = recv_state::idle;
        --c.ops_in_flight;
        if (res >= 0) note_received(static_cast<std::size_t>(res));
        read_waiter* w = reader_;
        if (w && w->direct) {
            w->direct = false;
            w->direct_res = res;
            reader_ = nullptr;
            if (res == 0) rstate_ = recv_state::ended;
            else if (res < 0 && !(res == -ECANCELED && cancelled)) fail(-res);
            else if (res == -ECANCELED && c.closing_) rstate_ = recv_state::ended;
            w->task->wake();
        } else {
            if (res > 0) rend_ += static_cast<std::size_t>(res);
            else if (res == 0) rstate_ = recv_state::ended;
            else if (!(res == -ECANCELED && cancelled)) fail(-res);
            if (c.closing_) rstate_ = recv_state::ended;
            wake_reader_if_ready();
        }
        // Nothing is in flight here, so eof() is just `rstate_ == ended` (see stopped()). On
        // demand: one more recv if the reader still waits for more (its `want`). Multishot
        // (a dry-ring fallback recv, or back from on demand): to the ring if it has buffers,
        // else wait for one (the reader was just woken: no speculative recv).
        continue_receiving(on_demand_ ? ENOMEM : EIO);
        c.op_finished();
    }

    /// After a one-shot completion (nothing in flight): receives again as the mode says
    /// (start_receiving) unless the stream ended or is closing; a receive that cannot start
    /// ends the stream with `err`.
    void continue_receiving(int err) noexcept {
        const stream_core& c = core();
        if (stopped() || c.closing_ || !c.loop_) return;
        try {
            start_receiving();
        } catch (...) {
            fail(err);
            wake_reader_if_ready();
        }
    }

    /// The poll of `polling` completed: the socket is readable (res: its events), or the poll
    /// was cancelled or failed (res < 0). Reads ahead (see the contract "Reading ahead").
    void on_readable(int res) noexcept {
        stream_core& c = core();
        const bool cancelled = rstate_ == recv_state::cancelling;
        rstate_ = recv_state::idle;
        --c.ops_in_flight;
        if (res < 0) {
            if (!(res == -ECANCELED && cancelled)) fail(-res);
        } else if (!c.closing_ && consumer_ != consumer_kind::copy) {
            // (A copying read that started after the read(n) was cancelled finds its data in
            // rbuf_ only: it gets a plain recv below instead.)
            read_ahead();
        }
        if (c.closing_) rstate_ = recv_state::ended;
        wake_reader_if_ready();
        // Still on demand with a reader waiting: the poll woke for nothing (another process
        // took the data, or only an error is pending and recv said EAGAIN): poll again.
        continue_receiving(EIO);
        c.op_finished();
    }

    /// Receives into strings of string_size_ bytes with recv(2) until the socket runs dry
    /// (EAGAIN or a short recv), 2 x limit is buffered, EOF or an error; queues them as chunks.
    void read_ahead() noexcept {
        stream_core& c = core();
        const int fd = c.sock_.fileno();
        for (bool first = true; buffered() < 2 * c.cfg_.limit; first = false) {
            std::string str = c.take_spare_string();
            try {
                str.resize(string_size_);  // a sent spare has this size already: no fill
                rq_.reserve_one();
            } catch (...) {
                fail(ENOMEM);
                return;
            }
            ssize_t r;
            do r = ::recv(fd, str.data(), str.size(), MSG_DONTWAIT);
            while (r < 0 && errno == EINTR);
            if (r == 0) {
                rstate_ = recv_state::ended;
                return;
            }
            if (r < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK) fail(errno);
                return;
            }
            const auto got = static_cast<std::size_t>(r);
            const bool full = got == str.size();
            str.resize(got);
            rq_.push(stream_chunk::from_string(std::move(str)));  // reserved above: no throw
            rq_bytes_ += got;
            if (!full) {
                // The socket ran dry: a first recv already short means the data no longer
                // streams, and the multishot receive waits for it more cheaply.
                if (first) on_demand_ = false;
                return;
            }
        }
    }

    /// A one-shot recv of recv_asked_ bytes returned `got`. A short one says the socket ran
    /// dry: a copying consumer on demand in multishot mode goes back to the multishot
    /// receive, which waits for the next burst more cheaply than a recv per read (see the
    /// contract "On demand" at the top).
    void note_received(std::size_t got) noexcept {
        last_full_ = got == recv_asked_;
        if (!last_full_ && on_demand_ && core().cfg_.multishot) on_demand_ = false;
    }

    void on_recv_multishot(int res, unsigned flags) noexcept {
        stream_core& c = core();
        if ((flags & op_buffer) && bufs_) {
            const unsigned bid = flags >> op_buffer_shift;
            if (res > 0) nobufs_retried_ = false;
            if (res > 0 && (consumer_ == consumer_kind::chunks ||
                            (consumer_ == consumer_kind::copy_into && !into_waiting() &&
                             (rbuffered() == 0 || !rq_.empty())))) {
                // Zero copy: the buffer itself is queued (and handed out by read_chunk).
                try {
                    rq_.push(stream_chunk::from_ring(*bufs_, bid, static_cast<std::size_t>(res)));
                    rq_bytes_ += static_cast<std::size_t>(res);
                } catch (...) {  // the chunk (pushed or not) owns the buffer: nothing leaks
                    fail(ENOMEM);
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
                        fail(ENOMEM);
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
            // The final completion: -ECANCELED is no error when we cancelled (pause, close).
            const bool cancelled = rstate_ >= recv_state::cancelling;  // cancelling or pausing
            rstate_ = rstate_ == recv_state::pausing && !on_demand_ ? recv_state::paused : recv_state::idle;
            --c.ops_in_flight;
            if (res == 0) rstate_ = recv_state::ended;
            else if (res < 0 && res != -ENOBUFS && !(res == -ECANCELED && cancelled)) fail(-res);
            if (c.closing_ || rerr_) rstate_ = recv_state::ended;
        }
        if (buffered() > 2 * c.cfg_.limit && !eof() && !paused_or_pausing() &&
            !(reader_ && buffered() < reader_->want)) {
            // asyncio's pause_reading: the consumer is slow; stop receiving until it catches up.
            // Not while a reader waits for more (readexactly of a large block, read() to EOF):
            // pausing then would only cancel and re-arm the receive once per buffer. A copying
            // consumer receives on demand from now on (see the contract "On demand").
            if (consumer_ != consumer_kind::chunks) on_demand_ = true;
            pause();
        }
        if (!more && !stopped() && !c.closing_) {
            wake_reader_if_ready();  // on demand, a satisfied reader must not get a recv
            try {
                if (res == -ENOBUFS && bufs_) bufs_->ran_dry();
                if (on_demand_ || res != -ENOBUFS) {
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
                fail(EIO);
            }
        }
        wake_reader_if_ready();
        if (!more) c.op_finished();
    }

    std::vector<std::byte> rbuf_;
    std::size_t rbegin_ = 0;
    std::size_t rend_ = 0;
    read_waiter* reader_ = nullptr;
    chunk_fifo rq_;               // received ring buffers not read yet (after rbuf_)
    std::size_t rq_bytes_ = 0;
    recv_buffer_waiter buf_waiter_;  // queued on the ring while it is dry
    recv_op_t recv_op_;
    int rerr_ = 0;
    recv_state rstate_ = recv_state::idle;
    /// How the last read consumed data, which decides where received ring buffers go: copied
    /// into rbuf_ (copy), queued as chunks (chunks), or queued unless appending keeps the
    /// order (copy_into; see the contracts at the top).
    enum class consumer_kind : std::uint8_t { copy, copy_into, chunks };
    consumer_kind consumer_ = consumer_kind::copy;
    /// A read_into waits with nothing buffered: received bytes go straight into its span.
    [[nodiscard]] bool into_waiting() const noexcept {
        return reader_ && !reader_->target.empty() && buffered() == 0 && !reader_->delivered;
    }
    bool nobufs_retried_ = false;  // re-armed once after -ENOBUFS, no data since
    /// Receive only when a reader needs data (plain mode always; multishot mode for a
    /// copying consumer while data streams in; see the contract "On demand").
    bool on_demand_ = false;
    std::size_t recv_asked_ = 0;    // bytes the one-shot recv in flight (or the last) asked for
    bool last_full_ = false;        // the last one-shot recv filled all it asked for
    std::size_t string_size_ = 0;   // polling: the reader's string size (see read_ahead)
};

} // namespace coio::detail
