// coio/impl/stream_core.hpp - what both halves of a stream connection share: the socket,
// the loop, the settings, the references and the closing flags. Not API.
//
// A connection's state (stream_state, impl/stream_state.hpp) is this core plus its receive
// half (stream_receive, impl/stream_receive.hpp) plus its send half (stream_send,
// impl/stream_send.hpp). The halves never call each other; what needs both (closing) is
// stream_state's.
//
// Contracts:
//  * Heap-allocated once per connection, reference counted (non-atomic): one reference per
//    user handle (reader, writer) and one per kernel operation in flight, so the state, its
//    buffers and its operations outlive every operation the kernel may still complete.
//  * An operation of either half is started with op_started() after the backend accepted it,
//    and its final completion ends with op_finished(): a close that waited for the last
//    operation in flight goes on from there, and the operation's reference is dropped.
#pragma once

#include <coio/detail/handle_counted.hpp>
#include <coio/impl/net_service.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/socket.hpp>
#include <coio/stream_chunk.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace coio::detail {

/// Settings of one connection (from stream_options / server_options).
struct stream_config {
    std::size_t limit = 64 * 1024;
    std::size_t high_water = 64 * 1024;
    std::size_t low_water = 16 * 1024;
    bool multishot = true;
    /// The descriptor is a pipe or a character device, not a socket (connect_read_pipe,
    /// connect_write_pipe, subprocess pipes): receive and send with read(2)/write(2) at the
    /// current position (op_code::read / write, offset -1), one plain read at a time (a
    /// multishot receive needs a socket), and write_eof closes (a pipe has no half-close).
    /// Chosen once per stream, so the socket path pays one predictable branch.
    bool pipe = false;
};

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
    /// Makes sure the next push() does not allocate (so it cannot throw).
    /// Throws: std::bad_alloc.
    void reserve_one() {
        if (v_.size() == v_.capacity()) v_.reserve(v_.size() + 1 > 8 ? v_.size() * 2 : 8);
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

class stream_state;
class stream_receive;
class stream_send;

/// The shared part of a connection (see the contracts at the top). Its references
/// (handle_counted) delete the whole stream_state.
class stream_core : public io_owner, public handle_counted<stream_state> {
public:
    stream_core(const stream_core&) = delete;
    stream_core& operator=(const stream_core&) = delete;

    [[nodiscard]] const socket& sock() const noexcept { return sock_; }
    [[nodiscard]] std::size_t limit() const noexcept { return cfg_.limit; }
    [[nodiscard]] bool is_closing() const noexcept { return closing_; }
    [[nodiscard]] bool is_closed() const noexcept { return closed_; }
    [[nodiscard]] waiter_list& close_waiters() noexcept { return close_waiters_; }
    /// The peer's address as text, for error messages (captured when the stream was made,
    /// because getpeername fails once the connection is reset).
    [[nodiscard]] const std::string& peer_text() const noexcept { return peer_text_; }
    void check_loop() const {
        if (!loop_) throw invalid_state_error("coio: the event loop of this stream is closed");
    }

protected:
    friend class stream_receive;
    friend class stream_send;

    stream_core(net_service& svc, socket s, const stream_config& cfg)
        : svc_(&svc), loop_(&svc.loop()), sock_(std::move(s)), cfg_(cfg) {
        if (cfg_.low_water > cfg_.high_water) cfg_.low_water = cfg_.high_water;
    }
    ~stream_core() = default;

    /// An operation was handed to the backend: it holds a reference until its final completion.
    void op_started() noexcept {
        ++ops_in_flight;
        add_ref();
    }
    /// The final completion of an operation has been handled (defined in stream_state.hpp).
    void op_finished() noexcept;
    /// Asks the backend to cancel `op` (asynchronous: `op` still completes).
    void cancel_op(operation& op) noexcept {
        if (loop_) loop_->cancel(op);
    }

    /// A sent string's memory, offered for reuse (see take_spare_string): kept if spares are
    /// wanted, fewer than max_spare_strings are kept, and its capacity suits a read(n).
    void offer_spare_string(std::string&& s) noexcept {
        if (!keep_spare_ || spare_strings_.size() >= max_spare_strings) return;
        if (s.capacity() < spare_min || s.capacity() > spare_max) return;
        if (spare_strings_.capacity() == 0) {
            try {
                spare_strings_.reserve(max_spare_strings);
            } catch (...) {
                return;
            }
        }
        spare_strings_.push_back(std::move(s));  // within the reserved capacity: no throw
    }

public:
    /// A string a write(std::string&&) has sent, kept for read(n) to receive into (an echo or
    /// proxy then allocates and fills nothing per message), while keep_spare(true); an
    /// empty string if none is kept.
    [[nodiscard]] std::string take_spare_string() noexcept {
        if (spare_strings_.empty()) return {};
        std::string s = std::move(spare_strings_.back());
        spare_strings_.pop_back();
        return s;
    }
    /// Whether sent strings are kept for take_spare_string: read(n) turns it on while it
    /// receives into strings and off otherwise, so a connection not streaming holds no spare.
    void keep_spare(bool on) noexcept {
        if (keep_spare_ == on) return;
        keep_spare_ = on;
        if (!on) std::vector<std::string>().swap(spare_strings_);
    }

protected:
    net_service* svc_;
    event_loop* loop_;
    socket sock_;
    stream_config cfg_;
    std::string peer_text_;
    bool closing_ = false;  // close() or abort() was called: no new operation starts
    bool closed_ = false;   // the descriptor is closed (after every operation completed)
    waiter_list close_waiters_;

private:
    // Spare strings (see take_spare_string). One string in flight per stage of an echo:
    // received ahead (at most 2 x limit), read by the handler, queued or being sent.
    static constexpr std::size_t max_spare_strings = 4;
    // Smaller strings are not worth keeping, larger ones hold too much for a read of at most
    // 64 KiB.
    static constexpr std::size_t spare_min = 4096;
    static constexpr std::size_t spare_max = 256 * 1024;
    std::vector<std::string> spare_strings_;
    bool keep_spare_ = false;
};

} // namespace coio::detail
