// coio/detail/net_service.hpp - per-loop bookkeeping of coio's sockets and streams. Not API.
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
#include <coio/detail/task_base.hpp>
#include <coio/loop.hpp>

#include <chrono>
#include <cstddef>

namespace coio::detail {

/// Something with kernel operations in flight that are not owned by a task.
struct io_owner {
    io_owner* owner_prev = nullptr;
    io_owner* owner_next = nullptr;
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
struct net_waiter : cancel_hook {
    net_waiter* prev = nullptr;
    net_waiter* next = nullptr;
    task_base* task = nullptr;
    struct net_waiter_list* list = nullptr;
    bool cancelled = false;
};

/// Intrusive FIFO of net_waiters.
struct net_waiter_list {
    net_waiter* head = nullptr;
    net_waiter* tail = nullptr;

    void push(net_waiter* w) noexcept {
        w->prev = tail;
        w->next = nullptr;
        if (tail) tail->next = w; else head = w;
        tail = w;
        w->list = this;
    }
    void remove(net_waiter* w) noexcept {
        if (w->list != this) return;
        if (w->prev) w->prev->next = w->next; else head = w->next;
        if (w->next) w->next->prev = w->prev; else tail = w->prev;
        w->list = nullptr;
    }
    void wake_all() noexcept {
        while (net_waiter* w = head) {
            remove(w);
            w->task->wake();
        }
    }
    [[nodiscard]] bool empty() const noexcept { return head == nullptr; }
};

/// Suspends the current task on `list` until woken or cancelled. `what` names the wait.
struct net_wait_awaiter : net_waiter {
    net_wait_awaiter(net_waiter_list& l, const char* name) noexcept : target(&l) { what = name; }
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        task = &require_current_task();
        if (!task->begin_wait(h, this)) { cancelled = true; return false; }
        on_cancel = [](cancel_hook* c) noexcept {
            auto* self = static_cast<net_wait_awaiter*>(c);
            if (self->list) self->list->remove(self);
            self->cancelled = true;
            self->task->wake();
        };
        target->push(this);
        return true;
    }
    void await_resume() {
        if (cancelled) task->throw_cancel();
    }
    net_waiter_list* target;
};

/// Per-loop: the list of io_owners and the provided-buffer ring.
class net_service final : public loop_service {
public:
    // The ring's buffer count and size come from loop_options (receive_buffers,
    // receive_buffer_size).
    static constexpr std::uint16_t ring_group = 0x6f69;  // "oi": unlikely to clash

    explicit net_service(event_loop& l) noexcept : loop_(&l) {}
    ~net_service() override {
        // After the ring is gone: owners still referenced by user handles must not call
        // into the loop any more.
        for (io_owner* o = owners_; o; o = o->owner_next) o->detach();
        if (bufs_) bufs_->drop_owner();
    }

    [[nodiscard]] event_loop& loop() noexcept { return *loop_; }

    void add(io_owner* o) noexcept {
        o->owner_prev = nullptr;
        o->owner_next = owners_;
        if (owners_) owners_->owner_prev = o;
        owners_ = o;
    }
    void remove(io_owner* o) noexcept {
        if (o->owner_prev) o->owner_prev->owner_next = o->owner_next; else if (owners_ == o) owners_ = o->owner_next;
        if (o->owner_next) o->owner_next->owner_prev = o->owner_prev;
        o->owner_prev = o->owner_next = nullptr;
    }

    /// The buffer ring, set up on first use; null when the kernel has no buffer rings
    /// (callers then receive with plain recv).
    [[nodiscard]] provided_buffer_ring* buffers() noexcept {
        if (!ring_tried_) {
            ring_tried_ = true;
            bufs_ = provided_buffer_ring::create();
            if (bufs_ && bufs_->setup(loop_->ring(), loop_->options().receive_buffers, loop_->options().receive_buffer_size, ring_group) != 0) {
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
        for (io_owner* o = owners_; o; o = o->owner_next) o->abort();
        // Every operation was async-cancelled: their CQEs arrive within a few iterations.
        // Bounded anyway, so a kernel that never answers cannot hang loop.close().
        const auto deadline = clock::now() + std::chrono::seconds(5);
        while (in_flight() && clock::now() < deadline) {
            try {
                loop_->run_once();
            } catch (...) {
                break;
            }
        }
        if (bufs_) bufs_->unregister(loop_->ring());
    }

private:
    bool in_flight() const noexcept {
        for (io_owner* o = owners_; o; o = o->owner_next)
            if (o->ops_in_flight) return true;
        return false;
    }

    event_loop* loop_;
    io_owner* owners_ = nullptr;
    provided_buffer_ring* bufs_ = nullptr;  // owner reference (drop_owner in the destructor)
    bool ring_tried_ = false;
    bool shutting_down_ = false;
};

} // namespace coio::detail
