// coio/detail/uring/buf_ring.hpp - a provided-buffer ring for multishot receives. Not API.
//
// liburing 2.3 (Debian 12) has io_uring_register_buf_ring and the io_uring_buf_ring_add /
// _advance inlines but not io_uring_setup_buf_ring (2.4), so the ring memory is mapped here
// and registered by hand: an anonymous mapping is page aligned, as the kernel requires.
//
// Contracts:
//  * A buffer the kernel picked (CQE flag IORING_CQE_F_BUFFER, id in the upper flag bits)
//    belongs to us from take() until give_back(); the kernel never touches it meanwhile.
//    Readers that copy (read, read_into) give it back at once; a coio::stream_chunk keeps it
//    until the chunk is destroyed (zero-copy receive and send).
//  * Lifetime: chunks may outlive the stream, the server and the event loop, so the ring is
//    heap-allocated and freed when its owner (the loop's net_service) has dropped it AND
//    every buffer is back: the buffers stay mapped as long as a chunk points into them.
//    Counts are plain integers: like every coio object, a chunk is used (and destroyed) on
//    the thread of its loop.
//  * Once unregistered (loop shutdown) give_back only does the bookkeeping: the kernel ring
//    may be gone.
//  * Hot buffers first: the kernel takes buffers from its ring oldest first, so a ring holding
//    every buffer hands out the one returned longest ago, long gone from the CPU's caches
//    (one stream streamed 15-30% slower for it). The kernel ring therefore holds at most
//    `depth_` buffers (16 at first); the others wait in `spare_`, and each time the kernel
//    consumes one, the most recently returned spare goes in. When the kernel finds the ring
//    empty (-ENOBUFS, reported through ran_dry()) while spares wait, the depth doubles, up to
//    every buffer: it follows the most buffers one loop iteration's receives took. Only
//    receives made in user space shrink it (want_spares, below).
//    available() counts spares too: they are the kernel's as soon as it needs them.
//  * A receive made in user space (receive(): every receive of the epoll backend, whose pool
//    has no kernel ring, and the io_uring backend's readiness-style receive of a streaming
//    connection) takes the most recently returned spare itself, one at a time: its
//    completion take()s it like any other. When an io_uring one finds none, the depth halves
//    (want_spares): the kernel ring then refills less, and returned buffers wait in user
//    space, where such receives find them.
//  * When the ring runs dry the kernel ends a multishot receive with -ENOBUFS. Such a stream
//    waits here (buffer_waiter, FIFO) and is offered a buffer as soon as one comes back, one
//    waiter per buffer, so a dry ring never makes anyone spin and a returned buffer wakes
//    one receive, not a thundering herd.
#pragma once

#include <coio/detail/intrusive_list.hpp>

#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

namespace coio::detail {

/// A stream waiting for a buffer to come back to the ring (intrusive FIFO node).
struct buffer_waiter : list_hook<> {
    bool linked = false;
    /// Called (unlinked already) when a buffer came back; returns false when the waiter has
    /// no use for it any more (closing, paused), so the next waiter is offered the buffer.
    bool (*on_buffer)(buffer_waiter*) noexcept = nullptr;
};

class provided_buffer_ring {
public:
    /// A new, unregistered ring; the caller holds the owner reference (drop_owner()).
    /// Returns null when out of memory.
    static provided_buffer_ring* create() noexcept { return new (std::nothrow) provided_buffer_ring(); }
    provided_buffer_ring(const provided_buffer_ring&) = delete;
    provided_buffer_ring& operator=(const provided_buffer_ring&) = delete;

    /// Maps `entries` (a power of two, <= 32768) buffers of `size` bytes and registers them as
    /// group `bgid` of `ring`. Returns 0 or -errno (-EINVAL on kernels without buffer rings).
    /// Without a ring (the epoll backend) the pool is kept in user space: every buffer waits
    /// in `spare_` and the backend receives into one itself (receive()) instead of the kernel.
    int setup(io_uring* ring, unsigned entries, unsigned size, std::uint16_t bgid) noexcept {
        if (entries == 0 || entries > 32768 || (entries & (entries - 1)) != 0) return -EINVAL;
        entries_ = entries;
        size_ = size;
        bgid_ = bgid;
        if (!ring) {
            data_bytes_ = static_cast<std::size_t>(entries) * size;
            void* d = ::mmap(nullptr, data_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
            if (d == MAP_FAILED) return -errno;
            base_ = static_cast<std::byte*>(d);
            try {
                spare_.reserve(entries);  // give_back never allocates
            } catch (...) {
                unmap();
                return -ENOMEM;
            }
            for (unsigned i = entries; i > 0; --i) spare_.push_back(static_cast<std::uint16_t>(i - 1));
            user_space_ = true;
            registered_ = true;
            return 0;
        }
        try {
            spare_.reserve(entries);  // give_back never allocates
        } catch (...) {
            return -ENOMEM;
        }
        mask_ = io_uring_buf_ring_mask(entries);
        ring_bytes_ = entries * sizeof(io_uring_buf);
        void* r = ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (r == MAP_FAILED) return -errno;
        br_ = static_cast<io_uring_buf_ring*>(r);
        data_bytes_ = static_cast<std::size_t>(entries) * size;
        void* d = ::mmap(nullptr, data_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (d == MAP_FAILED) {
            const int e = -errno;
            unmap();
            return e;
        }
        base_ = static_cast<std::byte*>(d);
        io_uring_buf_reg reg;
        std::memset(&reg, 0, sizeof reg);
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(br_);
        reg.ring_entries = entries;
        reg.bgid = bgid;
        const int ret = io_uring_register_buf_ring(ring, &reg, 0);
        if (ret != 0) {
            unmap();
            return ret;
        }
        registered_ = true;
        io_uring_buf_ring_init(br_);
        // Only `depth_` buffers go to the kernel now; the others wait in spare_, lowest id on
        // top (see "Hot buffers first" at the top).
        depth_ = std::min(entries, initial_depth);
        for (unsigned i = entries; i > 0; --i) spare_.push_back(static_cast<std::uint16_t>(i - 1));
        top_up();
        return 0;
    }

    /// Unregisters the group (the io_uring must still exist) and forgets the waiters. Memory
    /// stays mapped until the owner is gone and every buffer is back.
    void unregister(io_uring* ring) noexcept {
        if (registered_ && !user_space_) io_uring_unregister_buf_ring(ring, bgid_);
        registered_ = false;
        while (buffer_waiter* w = waiters_.front()) unlink(w);
    }

    /// The owner (net_service) lets go; the ring is freed now or when the last chunk is.
    void drop_owner() noexcept {
        registered_ = false;
        while (buffer_waiter* w = waiters_.front()) unlink(w);
        owned_ = false;
        maybe_free();
    }

    [[nodiscard]] bool ready() const noexcept { return registered_; }
    [[nodiscard]] std::uint16_t group() const noexcept { return bgid_; }
    [[nodiscard]] unsigned buffer_size() const noexcept { return size_; }
    [[nodiscard]] std::byte* data(unsigned bid) const noexcept { return base_ + static_cast<std::size_t>(bid) * size_; }

    /// Buffers the kernel may still pick (those not held by us). Exact between loop
    /// iterations; during one, completions not yet seen may have taken a few more.
    [[nodiscard]] unsigned available() const noexcept { return entries_ - out_; }

    /// A receive made in user space (see the contracts): one non-blocking recv(2) on `fd`
    /// (`flags` | MSG_DONTWAIT) into the most recently returned spare. Returns the bytes
    /// received, the buffer in `bid` (the completion that carries it take()s it); or 0 (end of
    /// stream) or -errno with no buffer used: -ENOBUFS when no spare waits, -EAGAIN when the
    /// socket has nothing.
    int receive(int fd, int flags, unsigned& bid) noexcept {
        if (!registered_ || spare_.empty() || picked_ >= 0) return -ENOBUFS;
        const std::uint16_t b = spare_.back();
        int r;
        do r = static_cast<int>(::recv(fd, data(b), size_, flags | MSG_DONTWAIT));
        while (r < 0 && errno == EINTR);
        if (r <= 0) return r < 0 ? -errno : 0;
        spare_.pop_back();
        picked_ = b;
        bid = b;
        return r;
    }
    /// True when a receive() would find a spare buffer.
    [[nodiscard]] bool has_spare() const noexcept { return registered_ && !spare_.empty(); }
    /// A receive made in user space found no spare: the kernel ring keeps half as many buffers
    /// from now on (at least the initial depth), so the ones coming back stay in user space.
    /// ran_dry() doubles it again if the kernel's own receives need them.
    void want_spares() noexcept {
        if (!user_space_) depth_ = std::max(std::min(entries_, initial_depth), depth_ / 2);
    }

    /// A completion carried buffer `bid`: it is ours until give_back(bid).
    std::byte* take(unsigned bid) noexcept {
        ++out_;
        if (picked_ == static_cast<int>(bid)) picked_ = -1;  // picked in user space: not the kernel's
        else if (!user_space_ && registered_) top_up();      // the kernel consumed one: replace it
        return data(bid);
    }

    /// The kernel ended a receive with -ENOBUFS: the ring ran dry. If that was the depth's
    /// doing (buffers were waiting in user space), the kernel ring keeps twice as many from
    /// now on and is filled up at once, so the receive can be re-armed; if every buffer is
    /// held by its user, nothing changes.
    void ran_dry() noexcept {
        if (user_space_ || !registered_ || spare_.empty() || depth_ >= entries_) return;
        depth_ = std::min(entries_, depth_ * 2);
        top_up();
    }

    /// Hands buffer `bid` back to the kernel (visible at once: one release store) and offers
    /// it to the first waiter. May free the ring (after the owner dropped it): do not touch
    /// the ring after this call unless you hold another buffer or are the owner.
    void give_back(unsigned bid) noexcept {
        --out_;
        if (registered_) {
            spare_.push_back(static_cast<std::uint16_t>(bid));
            if (!user_space_) top_up();
            while (buffer_waiter* w = waiters_.front()) {
                unlink(w);
                if (w->on_buffer(w)) break;
            }
        }
        maybe_free();
    }

    /// Queues `w` until a buffer comes back (no-op if queued already).
    void wait_for_buffer(buffer_waiter* w) noexcept {
        if (w->linked || !registered_) return;
        waiters_.push_back(w);
        w->linked = true;
    }
    /// Removes `w` from the queue, if it is there.
    void stop_waiting(buffer_waiter* w) noexcept {
        if (w->linked) unlink(w);
    }

private:
    provided_buffer_ring() = default;
    ~provided_buffer_ring() { unmap(); }

    /// Moves buffers from spare_ (most recently returned first) to the kernel ring until it
    /// holds depth_ of them; one release store publishes them all.
    void top_up() noexcept {
        int added = 0;
        // Every buffer is taken (out_), spare, picked (on its way to being taken), or in the
        // kernel ring.
        const unsigned picked = picked_ >= 0 ? 1 : 0;
        while (entries_ - out_ - picked - spare_.size() < depth_ && !spare_.empty()) {
            const std::uint16_t bid = spare_.back();
            spare_.pop_back();
            io_uring_buf_ring_add(br_, data(bid), size_, bid, mask_, added++);
        }
        if (added > 0) io_uring_buf_ring_advance(br_, added);
    }

    void maybe_free() noexcept {
        if (!owned_ && out_ == 0) delete this;
    }
    void unlink(buffer_waiter* w) noexcept {
        waiters_.remove(w);
        w->linked = false;
    }

    void unmap() noexcept {
        if (base_) ::munmap(base_, data_bytes_);
        if (br_) ::munmap(br_, ring_bytes_);
        base_ = nullptr;
        br_ = nullptr;
    }

    io_uring_buf_ring* br_ = nullptr;
    std::byte* base_ = nullptr;
    std::size_t ring_bytes_ = 0;
    std::size_t data_bytes_ = 0;
    unsigned entries_ = 0;
    unsigned size_ = 0;
    int mask_ = 0;
    std::uint16_t bgid_ = 0;
    bool registered_ = false;
    bool user_space_ = false;  // no kernel ring: every free buffer waits in spare_
    // Returned buffers not handed to the kernel (see "Hot buffers first"), the most recently
    // returned last; how many the kernel ring holds at most.
    std::vector<std::uint16_t> spare_;
    static constexpr unsigned initial_depth = 16;
    unsigned depth_ = 0;
    bool owned_ = true;
    unsigned out_ = 0;  // buffers taken and not given back yet
    int picked_ = -1;   // the spare receive() filled and no completion took yet
    intrusive_list<buffer_waiter> waiters_;
};

} // namespace coio::detail
