// coio/condition.hpp - coio::condition (asyncio.Condition).
#pragma once

#include <coio/coro.hpp>
#include <coio/impl/waiter_list.hpp>
#include <coio/errors.hpp>
#include <coio/lock.hpp>

#include <coroutine>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <utility>

namespace coio {

/// A condition variable for tasks (asyncio.Condition): tasks holding the associated lock
/// wait() until another task notify()s them.
///
/// wait() releases the lock, sleeps until notified, and re-acquires the lock before it
/// returns (also when it throws). Notified waiters are moved straight onto the lock's queue
/// (no extra wake-up), in FIFO order behind tasks already waiting for the lock.
///
/// Cancellation: a task cancelled in wait() re-acquires the lock first (the wait must end
/// with the lock held, as in asyncio), then throws cancelled_error (timeout_error under
/// wait_for/timeout). If it had been notified, the notification is passed to the next waiter,
/// so a cancellation never swallows a notify. Waiting never allocates.
///
/// Not thread-safe (one loop); not copyable or movable. Destroying a condition while tasks
/// wait on it wakes them with invalid_state_error (without the lock).
///
/// Example:
/// @code
///   coio::condition cv;
///   std::deque<int> items;
///   // consumer
///   auto g = co_await cv.scoped();
///   co_await cv.wait_for([&] { return !items.empty(); });
///   int v = items.front(); items.pop_front();
///   // producer
///   { auto g = co_await cv.scoped(); items.push_back(1); cv.notify(); }
/// @endcode
class condition {
public:
    /// A condition with its own lock.
    condition() noexcept : lock_(&own_) {}
    /// A condition sharing `l` (which must outlive it), as asyncio.Condition(lock).
    explicit condition(coio::lock& l) noexcept : lock_(&l) {}
    condition(const condition&) = delete;
    condition& operator=(const condition&) = delete;

    class wait_awaiter;

    /// Acquires the underlying lock (see lock::acquire).
    [[nodiscard]] lock::acquire_awaiter acquire() noexcept { return lock_->acquire(); }
    /// Acquires the underlying lock and returns a guard (see lock::scoped).
    [[nodiscard]] lock::scoped_awaiter scoped() noexcept { return lock_->scoped(); }
    /// Releases the underlying lock. Throws: invalid_state_error when it is not held.
    void release() { lock_->release(); }
    /// True while the underlying lock is held.
    [[nodiscard]] bool locked() const noexcept { return lock_->locked(); }
    /// The underlying lock.
    [[nodiscard]] coio::lock& get_lock() const noexcept { return *lock_; }

    /// Releases the lock, waits to be notified, re-acquires the lock (asyncio's wait()).
    ///
    /// Throws (from co_await): invalid_state_error when the lock is not held (asyncio raises
    /// RuntimeError) or when the condition is destroyed while waiting; cancelled_error /
    /// timeout_error after re-acquiring the lock (see the class comment).
    ///
    /// Example: `while (!ready) co_await cv.wait();`
    [[nodiscard]] wait_awaiter wait() noexcept;

    /// Waits until `pred()` is true (asyncio's wait_for): checks it first, then after each
    /// notification, with the lock held. The caller must hold the lock.
    ///
    /// Returns: the predicate's last value. Throws: as wait(), and whatever pred throws.
    /// Cancellation: as wait(); the lock is held when it throws. (The coroutine frame of
    /// wait_for is allocated once per call; the individual waits do not allocate.)
    ///
    /// Example: `co_await cv.wait_for([&] { return !items.empty(); });`
    template <class P>
    [[nodiscard]] coro<std::decay_t<std::invoke_result_t<P&>>> wait_for(P pred);

    /// Wakes up to `n` waiting tasks (they run once they re-acquire the lock).
    /// Throws: invalid_state_error when the lock is not held (asyncio raises RuntimeError).
    void notify(std::size_t n = 1) {
        if (!lock_->locked()) throw invalid_state_error("coio: cannot notify on an un-acquired lock");
        wake(n);
    }
    /// Wakes every waiting task. Throws: as notify().
    void notify_all() { notify(std::numeric_limits<std::size_t>::max()); }

    /// Tasks waiting to be notified.
    [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

private:
    inline void wake(std::size_t n) noexcept;
    // Puts a node that must hold the lock again on the lock's queue, or grants the lock now.
    void relock(detail::waiter* w) noexcept {
        if (lock_->try_acquire()) {
            w->wake_with(detail::wait_status::granted);
        } else {
            lock_->waiters_.push_back(w);
        }
    }

    coio::lock own_;
    coio::lock* lock_;
    detail::waiter_list waiters_;
};

/// The awaiter of condition::wait() (await it at once; movable only before it is awaited).
class condition::wait_awaiter : detail::waiter {
public:
    explicit wait_awaiter(condition& c) noexcept : cond_(&c) { what = "condition"; }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        if (!cond_->lock_->locked()) throw invalid_state_error("coio: cannot wait on an un-acquired lock");
        on_cancel = [](detail::cancel_hook* c) noexcept {
            auto* self = static_cast<wait_awaiter*>(c);
            self->cancelled_ = true;
            if (self->list == &self->cond_->waiters_) {
                // Not notified yet: stop waiting for a notify, but get the lock back first.
                self->cond_->waiters_.remove(self);
                self->cond_->relock(self);
            }
            // Already on the lock's queue (notified): keep waiting for the lock.
        };
        if (!detail::suspend_on(*this, cond_->waiters_, h)) return false;  // lock still held
        cond_->lock_->hand_over();                                          // release
        return true;
    }
    void await_resume() {
        switch (status) {
        case detail::wait_status::orphaned:
            throw invalid_state_error("coio: condition or lock destroyed while a task waited on it");
        case detail::wait_status::granted:  // holding the lock again
            if (cancelled_ || task->cancel_pending()) {
                if (notified_) cond_->wake(1);  // never swallow a notification
                task->throw_cancel();
            }
            return;
        default:  // cancelled before suspending: the lock was never released
            task->throw_cancel();
        }
    }

private:
    friend class condition;
    condition* cond_;
    bool notified_ = false;
    bool cancelled_ = false;
};

inline condition::wait_awaiter condition::wait() noexcept { return wait_awaiter(*this); }

template <class P>
coro<std::decay_t<std::invoke_result_t<P&>>> condition::wait_for(P pred) {
    auto r = pred();
    while (!r) {
        co_await wait();
        r = pred();
    }
    co_return r;
}

inline void condition::wake(std::size_t n) noexcept {
    for (; n > 0 && !waiters_.empty(); --n) {
        auto* w = static_cast<wait_awaiter*>(waiters_.front());
        waiters_.remove(w);
        w->notified_ = true;
        relock(w);
    }
}

} // namespace coio
