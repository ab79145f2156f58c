// coio/impl/net_service.hpp - per-loop bookkeeping of coio's sockets and streams. Not API.
//
// Contracts:
//  * Stream and server states own kernel operations that are not tied to any task (a
//    multishot receive, a flushing send, a multishot accept). Each such state registers here
//    as an io_owner; loop.close() calls shutdown() after every task has finished, which
//    aborts them (async-cancels their operations) and runs the loop until every CQE has
//    arrived, so no operation can still reach freed memory when the ring goes away.
//  * The loop's provided-buffer ring for multishot receives is owned here (created on first
//    use, unregistered at shutdown); it is freed when this service is gone and the last
//    stream_chunk holding one of its buffers is destroyed (chunks may outlive the loop).
//  * Waiter nodes live in the awaiting frames (no allocation per wait).
#pragma once

#include <coio/detail/uring/buf_ring.hpp>
#include <coio/detail/intrusive_list.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/impl/waiter_list.hpp>
#include <coio/loop.hpp>

#include <chrono>
#include <cstddef>

namespace coio::detail {

/// Something with kernel operations in flight that are not owned by a task.
struct io_owner : list_hook<io_owner> {
    /// Kernel operations of this owner whose final CQE has not arrived yet.
    unsigned ops_in_flight = 0;
    /// Cancels every operation and stops starting new ones (loop shutdown).
    virtual void abort() noexcept = 0;
    /// The loop is gone: never touch it again.
    virtual void detach() noexcept = 0;

protected:
    ~io_owner() = default;
};

/// A task waiting in a list (drain, wait_closed): unlinked and woken by the list owner, or by
/// its own cancellation.
class net_service final : public loop_service {
public:
    // The ring's buffer count and size come from loop_options (receive_buffers,
    // receive_buffer_size).
    static constexpr std::uint16_t ring_group = 0x6f69;  // "oi": unlikely to clash

    explicit net_service(event_loop& l) noexcept : loop_(&l) {}
    ~net_service() override {
        // After the ring is gone: owners still referenced by user handles must not call
        // into the loop any more.
        for (io_owner* o = owners_.front(); o; o = owners_.next(o)) o->detach();
        if (bufs_) bufs_->drop_owner();
    }

    [[nodiscard]] event_loop& loop() noexcept { return *loop_; }

    void add(io_owner* o) noexcept { owners_.push_front(o); }
    void remove(io_owner* o) noexcept { owners_.remove(o); }

    /// The buffer ring, set up on first use; null when the kernel has no buffer rings
    /// (callers then receive with plain recv).
    [[nodiscard]] provided_buffer_ring* buffers() noexcept {
        if (!ring_tried_) {
            ring_tried_ = true;
            bufs_ = provided_buffer_ring::create();
            if (bufs_ && loop_->setup_buffers(*bufs_, loop_->options().receive_buffers,
                                              loop_->options().receive_buffer_size, ring_group) != 0) {
                bufs_->drop_owner();
                bufs_ = nullptr;
            }
        }
        return bufs_ && bufs_->ready() ? bufs_ : nullptr;
    }

    /// True after shutdown(): no new operations may start.
    [[nodiscard]] bool shutting_down() const noexcept { return shutting_down_; }

    void shutdown() noexcept override {
        shutting_down_ = true;
        for (io_owner* o = owners_.front(); o; o = owners_.next(o)) o->abort();
        // Every operation was async-cancelled: their CQEs arrive within a few iterations.
        // Bounded anyway, so a kernel that never answers cannot hang loop.close().
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);  // real time, also under a virtual clock
        while (in_flight() && std::chrono::steady_clock::now() < deadline) {
            try {
                loop_->run_once();
            } catch (...) {
                break;
            }
        }
        if (bufs_) loop_->unregister_buffers(*bufs_);
    }

private:
    bool in_flight() const noexcept {
        for (io_owner* o = owners_.front(); o; o = owners_.next(o))
            if (o->ops_in_flight) return true;
        return false;
    }

    event_loop* loop_;
    intrusive_list<io_owner, io_owner> owners_;
    provided_buffer_ring* bufs_ = nullptr;  // owner reference (drop_owner in the destructor)
    bool ring_tried_ = false;
    bool shutting_down_ = false;
};

} // namespace coio::detail
