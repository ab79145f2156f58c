// coio/stream_chunk.hpp - coio::stream_chunk: received bytes handed out without a copy.
//
//   for (;;) {
//       coio::stream_chunk chunk = co_await reader.read_chunk();  // owns a receive buffer
//       if (chunk.empty()) break;                                  // EOF
//       writer.write(std::move(chunk));                            // sent from that buffer
//       co_await writer.drain();
//   }
#pragma once

#include <coio/detail/uring/buf_ring.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coio {

/// A piece of received stream data that owns the memory it lives in (beyond asyncio, which
/// has no zero-copy reads): usually one buffer of the event loop's provided-buffer ring, the
/// very memory the kernel received into, otherwise (bytes that were already buffered by
/// read()/readline(), or a receive without the ring) a heap buffer of its own.
///
/// Made by stream_reader::read_chunk(); an empty chunk means EOF. Pass it to
/// stream_writer::write(stream_chunk) to send it without copying (echo, proxy), or read it
/// through data()/size()/bytes()/view(). Move-only; destroying it (or reset()) returns the
/// ring buffer to the kernel.
///
/// Hold chunks briefly: the ring has a fixed number of buffers shared by every connection of
/// the loop (loop_options::receive_buffers x receive_buffer_size). While they are all held, streams
/// receive with a plain recv into their own buffer (still correct, just slower), and streams
/// without a waiting reader pause until a buffer comes back.
///
/// Lifetime: a chunk may outlive its stream, server and event loop (the buffers stay mapped
/// until the last chunk is gone). Like every coio object it is used and destroyed on the
/// thread that runs (or ran) its loop: the buffer goes back to that loop's ring.
///
/// Throws: nothing (every member is noexcept).
/// Cancellation: not an awaitable; see stream_reader::read_chunk.
///
/// Example:
/// @code
///   coio::stream_chunk c = co_await reader.read_chunk();
///   std::string_view text = c.view();      // valid while `c` lives
///   if (text.starts_with("PING")) writer.write(std::move(c));
/// @endcode
class stream_chunk {
public:
    /// An empty chunk (what read_chunk returns at EOF).
    stream_chunk() noexcept = default;
    /// Takes over `o`'s memory; `o` becomes empty.
    stream_chunk(stream_chunk&& o) noexcept { take(o); }
    /// Releases this chunk's memory, then takes over `o`'s.
    stream_chunk& operator=(stream_chunk&& o) noexcept {
        if (this != &o) {
            reset();
            take(o);
        }
        return *this;
    }
    stream_chunk(const stream_chunk&) = delete;
    stream_chunk& operator=(const stream_chunk&) = delete;
    /// Returns the ring buffer to the kernel (or frees the heap buffer).
    ~stream_chunk() { reset(); }

    /// The first byte (null when empty).
    [[nodiscard]] const std::byte* data() const noexcept { return data_; }
    /// The byte count; 0 only for an empty chunk (EOF, moved from, reset).
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// True when the chunk holds no bytes.
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    /// The bytes, valid while the chunk lives and is not moved from.
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
    /// The bytes as characters, valid while the chunk lives and is not moved from.
    [[nodiscard]] std::string_view view() const noexcept {
        return {reinterpret_cast<const char*>(data_), size_};
    }

    /// Drops the first `n` bytes (a parser consumed them) without copying; the memory is
    /// released only with the whole chunk. Precondition: n <= size().
    /// Example: `c.remove_prefix(header_size); writer.write(std::move(c));`
    void remove_prefix(std::size_t n) noexcept {
        data_ += n;
        size_ -= n;
    }

    /// Releases the memory now (the ring buffer goes back to the kernel); the chunk is empty.
    void reset() noexcept {
        data_ = nullptr;
        size_ = 0;
        if (auto* r = std::exchange(ring_, nullptr)) r->give_back(bid_);
        owned_ = {};
        owned_str_ = {};
    }

    /// Internal: takes buffer `bid` of `ring`, holding `n` received bytes.
    [[nodiscard]] static stream_chunk from_ring(detail::provided_buffer_ring& ring, unsigned bid, std::size_t n) noexcept {
        stream_chunk c;
        c.data_ = ring.take(bid);
        c.size_ = n;
        c.ring_ = &ring;
        c.bid_ = bid;
        return c;
    }
    /// Internal: owns `v`, whose bytes [off, off + n) are the data.
    [[nodiscard]] static stream_chunk from_vector(std::vector<std::byte> v, std::size_t off, std::size_t n) noexcept {
        stream_chunk c;
        c.owned_ = std::move(v);
        c.data_ = c.owned_.data() + off;
        c.size_ = n;
        return c;
    }
    /// Internal: true when the chunk holds all of a from_string chunk's string (nothing
    /// removed from its front), so take_string() returns exactly its bytes.
    [[nodiscard]] bool whole_string() const noexcept {
        return !owned_str_.empty() && size_ == owned_str_.size() &&
               data_ == reinterpret_cast<const std::byte*>(owned_str_.data());
    }
    /// Internal: the string of a from_string chunk, taken out for reuse (an empty string for
    /// any other chunk); the chunk is left empty.
    [[nodiscard]] std::string take_string() noexcept {
        std::string s = std::exchange(owned_str_, {});
        reset();
        return s;
    }
    /// Internal: owns `s` (stream_writer::write(std::string&&)); its bytes are the data.
    [[nodiscard]] static stream_chunk from_string(std::string s) noexcept {
        stream_chunk c;
        c.owned_str_ = std::move(s);
        c.data_ = reinterpret_cast<const std::byte*>(c.owned_str_.data());
        c.size_ = c.owned_str_.size();
        return c;
    }

private:
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    detail::provided_buffer_ring* ring_ = nullptr;  // set: we hold buffer bid_ of ring_
    unsigned bid_ = 0;
    std::vector<std::byte> owned_;  // the memory when not a ring buffer
    std::string owned_str_;         // or a string written with write(std::string&&)

    void take(stream_chunk& o) noexcept {
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
        ring_ = std::exchange(o.ring_, nullptr);
        bid_ = o.bid_;
        owned_ = std::move(o.owned_);
        if (!o.owned_str_.empty()) {
            // A short string keeps its bytes inside itself: find them again after the move.
            const auto off = data_ - reinterpret_cast<const std::byte*>(o.owned_str_.data());
            owned_str_ = std::move(o.owned_str_);
            o.owned_str_.clear();
            data_ = reinterpret_cast<const std::byte*>(owned_str_.data()) + off;
        }
    }
};

} // namespace coio
