// coio/lock.hpp - coio::lock (asyncio.Lock).
#pragma once

#include <coio/detail/hold.hpp>
#include <coio/impl/waiter_list.hpp>
#include <coio/errors.hpp>

#include <coroutine>
#include <utility>

namespace coio {

class condition;

/// A mutual-exclusion lock for tasks (asyncio.Lock). Not reentrant; not tied to an owner
/// (any task may release it, as in asyncio).
///
/// Fair: waiting tasks get the lock in the order they asked for it. release() hands the lock
/// straight to the first waiter, so a task that did not wait cannot overtake the queue.
/// Waiting never allocates.
///
/// Prefer the RAII form, which cannot forget to release:
/// @code
///   coio::lock lk;
///   {
///       auto guard = co_await lk.scoped();   // released when guard goes out of scope
///       co_await write_record(file);
///   }
/// @endcode
///
/// Cancellation: a task cancelled while waiting leaves the queue and throws cancelled_error
/// (timeout_error under wait_for/timeout) without the lock. If the lock had already been
/// handed to it but the task was cancelled before it ran, the lock is passed on to the next
/// waiter (or released) and the task throws: a cancelled acquire never holds the lock.
///
/// Not thread-safe (one loop); not copyable or movable. Destroying a lock while tasks wait on
/// it wakes them with invalid_state_error.
class lock {
public:
    /// An unlocked lock.
    lock() noexcept = default;
    lock(const lock&) = delete;
    lock& operator=(const lock&) = delete;

    class acquire_awaiter;
    class guard;
    /// The awaiter of scoped(): acquires, then returns a lock::guard.
    using scoped_awaiter = detail::scoped_acquire<lock, guard>;

    /// Acquires the lock, waiting if it is held (asyncio's `await lock.acquire()`).
    /// Returns at once, without yielding, when the lock is free and nobody waits.
    ///
    /// Throws (from co_await): cancelled_error / timeout_error (see the class comment);
    /// invalid_state_error outside a task, or when the lock is destroyed while waiting.
    ///
    /// Example: `co_await lk.acquire(); ...; lk.release();`
    [[nodiscard]] acquire_awaiter acquire() noexcept;

    /// Acquires the lock and returns a guard that releases it when destroyed.
    /// Throws: as acquire(). Example: `auto g = co_await lk.scoped();`
    [[nodiscard]] scoped_awaiter scoped() noexcept;

    /// Takes the lock if it is free and nobody waits. Returns: true on success.
    [[nodiscard]] bool try_acquire() noexcept {
        if (locked_) return false;
        locked_ = true;
        return true;
    }

    /// Releases the lock; the first waiting task (if any) gets it.
    /// Throws: invalid_state_error when the lock is not held (asyncio raises RuntimeError).
    void release() {
        if (!locked_) throw invalid_state_error("coio: release of an unlocked lock");
        hand_over();
    }

    /// True while some task holds the lock.
    [[nodiscard]] bool locked() const noexcept { return locked_; }

private:
    friend class condition;
    friend class detail::hold<lock>;

    // Invariant: waiters_ is non-empty only while locked_ (release hands over instead of
    // unlocking when someone waits), so the fast path checks locked_ alone.
    void hand_over() noexcept {
        if (detail::waiter* w = waiters_.front()) w->wake_with(detail::wait_status::granted);
        else locked_ = false;
    }

    bool locked_ = false;
    detail::waiter_list waiters_;
};

/// The awaiter of lock::acquire() (await it at once; movable only before it is awaited).
class lock::acquire_awaiter : detail::waiter {
public:
    explicit acquire_awaiter(lock& l) noexcept : lock_(&l) { what = "lock"; }
    bool await_ready() noexcept { return lock_->try_acquire(); }
    bool await_suspend(std::coroutine_handle<> h) { return detail::suspend_on(*this, lock_->waiters_, h); }
    void await_resume() {
        switch (status) {
        case detail::wait_status::cancelled: task->throw_cancel();
        case detail::wait_status::orphaned: throw invalid_state_error("coio: lock destroyed while a task waited on it");
        case detail::wait_status::granted:
            if (task->cancel_pending()) {
                // Handed the lock, then cancelled before running: pass it on, then raise.
                lock_->hand_over();
                task->throw_cancel();
            }
            return;
        default: return;  // taken without waiting
        }
    }

private:
    lock* lock_;
};

/// Owns an acquired lock and releases it on destruction (move-only).
///
/// Example: `{ auto g = co_await lk.scoped(); co_await use(); }  // released here`
class lock::guard : public detail::hold<lock> {
public:
    /// A guard that owns nothing; `guard(lk)` adopts `lk`, which the caller holds.
    using hold::hold;
    /// Releases the lock now (no effect when nothing is owned).
    void unlock() noexcept { drop(); }
    /// True while the guard owns the lock.
    [[nodiscard]] bool owns_lock() const noexcept { return holds(); }
};

inline lock::acquire_awaiter lock::acquire() noexcept { return acquire_awaiter(*this); }
inline lock::scoped_awaiter lock::scoped() noexcept { return scoped_awaiter(*this); }

} // namespace coio
