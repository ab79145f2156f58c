// coio/impl/waiter_list.hpp - the intrusive FIFO of suspended waiters that every
// synchronization primitive (event, lock, semaphore, condition, barrier, queues) is built on.
// Not API.
//
// Contracts:
//  * A waiter node lives in the awaiter, i.e. in the suspended coroutine's frame: waiting
//    never allocates. A node is linked in at most one list at a time and must not move while
//    linked (awaiters are moved only before they are awaited).
//  * Primitives wake waiters through grant()/fail(); both unlink the node and push its task on
//    the ready queue (never resume inline). The default cancel hook unlinks the node and wakes
//    the task with status cancelled, so a cancelled waiter never consumes a wake-up meant for
//    another: it is simply no longer in the list when the primitive picks the next one.
//  * The hook runs only while the task is still suspended on the node (task_base clears it on
//    wake), so "granted, then cancelled before it ran" is seen in await_resume as
//    status == granted with task->cancel_pending(): each primitive decides there whether to
//    hand the grant on (lock, semaphore, condition) or to complete (queue, barrier).
#pragma once

#include <coio/detail/core.hpp>
#include <coio/detail/intrusive_list.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/loop.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace coio::detail {

class waiter_list;

/// How a wait ended (set by the primitive or by the cancel hook before the task is woken).
enum class wait_status : std::uint8_t {
    idle,       ///< not waiting (yet), or satisfied without suspending
    waiting,    ///< linked in a list, task suspended
    granted,    ///< woken with success (lock handed over, item delivered, event set, ...)
    cancelled,  ///< the task was cancelled while waiting; node unlinked, nothing granted
    failed,     ///< woken with the primitive's error (broken barrier, queue shut down)
    orphaned,   ///< the primitive was destroyed while the task waited on it
};

/// A suspended task's entry in a primitive's FIFO.
struct waiter : cancel_hook, list_hook<> {
    waiter_list* list = nullptr;  // the list the node is linked in, or null
    task_base* task = nullptr;
    wait_status status = wait_status::idle;

    waiter() noexcept = default;
    // Awaiters are moved (e.g. into wait_for's frame) only before they are awaited, when the
    // node is not linked: copying the unlinked state is all a move needs to do.
    waiter(const waiter&) noexcept = default;
    waiter& operator=(const waiter&) = delete;

    [[nodiscard]] bool linked() const noexcept { return list != nullptr; }

    /// Unlinks the node and wakes its task with `s` (granted or failed).
    inline void wake_with(wait_status s) noexcept;
};

/// Intrusive FIFO of waiters: O(1) push, pop and unlink, no allocation; knows which nodes
/// are its own (waiter::list), so unlinking a node that already left is harmless.
class waiter_list {
public:
    waiter_list() noexcept = default;
    waiter_list(const waiter_list&) = delete;
    waiter_list& operator=(const waiter_list&) = delete;
    /// Waiters still linked when their primitive dies are woken with status orphaned: their
    /// await_resume throws instead of touching the dead primitive, and nobody dangles.
    ~waiter_list() { wake_all(wait_status::orphaned); }

    void push_back(waiter* w) noexcept {
        w->list = this;
        nodes_.push_back(w);
    }
    void remove(waiter* w) noexcept {
        if (w->list != this) return;
        nodes_.remove(w);
        w->list = nullptr;
    }
    [[nodiscard]] waiter* front() const noexcept { return nodes_.front(); }
    [[nodiscard]] bool empty() const noexcept { return nodes_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }

    /// Wakes every waiter with status `s`, in FIFO order.
    void wake_all(wait_status s) noexcept {
        while (waiter* w = nodes_.front()) w->wake_with(s);
    }

private:
    intrusive_list<waiter> nodes_;
};

inline void waiter::wake_with(wait_status s) noexcept {
    if (list) list->remove(this);
    status = s;
    task->wake();
}

/// The cancel hook most waits use: leave the list, wake up cancelled.
inline void cancel_waiter(cancel_hook* c) noexcept {
    auto* w = static_cast<waiter*>(c);
    w->wake_with(wait_status::cancelled);
}

/// Suspends the current task on `w`, appended to `list`. Returns false (do not suspend) when
/// a cancellation is already pending; the node is then not linked and status is cancelled.
/// Throws: invalid_state_error outside a task (before anything changed).
inline bool suspend_on(waiter& w, waiter_list& list, std::coroutine_handle<> h) {
    w.task = &require_current_task();
    if (!w.on_cancel) w.on_cancel = &cancel_waiter;
    if (!w.task->begin_wait(h, &w)) {
        w.status = wait_status::cancelled;
        return false;
    }
    w.status = wait_status::waiting;
    list.push_back(&w);
    return true;
}

/// Waits on `list` until its owner wakes it with status granted, e.g. until a stream's write
/// buffer has drained: for conditions the owner tracks and the awaiter re-checks itself.
/// Throws (await_resume): the task's cancellation, also one that arrived after the wake-up
/// (nothing was handed over, so nothing is lost); invalid_state_error when the owner died.
class list_wait_awaiter : public waiter {
public:
    list_wait_awaiter(waiter_list& l, const char* name) noexcept : target_(&l) { what = name; }
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) { return suspend_on(*this, *target_, h); }
    void await_resume() {
        switch (status) {
        case wait_status::idle: return;  // the derived awaiter was ready without waiting
        case wait_status::granted:
            if (task->cancel_pending()) task->throw_cancel();
            return;
        case wait_status::orphaned: throw invalid_state_error("coio: the object a task waited on was destroyed");
        default: task->throw_cancel();
        }
    }

private:
    waiter_list* target_;
};

} // namespace coio::detail
