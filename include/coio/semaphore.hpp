// coio/semaphore.hpp - coio::semaphore and coio::bounded_semaphore (asyncio.Semaphore,
// asyncio.BoundedSemaphore).
#pragma once

#include <coio/detail/hold.hpp>
#include <coio/impl/waiter_list.hpp>
#include <coio/errors.hpp>

#include <coroutine>
#include <cstddef>
#include <utility>

namespace coio {

/// A counter of available units (asyncio.Semaphore): acquire() takes one, waiting while none
/// is left; release() gives one back. Typical use: limit how many tasks do something at once.
///
/// Fair: waiters are served in FIFO order, and release() hands the unit straight to the first
/// waiter, so a task that did not wait cannot overtake the queue. Waiting never allocates.
///
/// Cancellation: a task cancelled while waiting leaves the queue and throws cancelled_error
/// (timeout_error under wait_for/timeout) without a unit. If a unit had already been handed
/// to it but the task was cancelled before it ran, the unit passes to the next waiter (or back
/// to the counter) and the task throws: a cancelled acquire never holds a unit.
///
/// Not thread-safe (one loop); not copyable or movable. Destroying a semaphore while tasks
/// wait on it wakes them with invalid_state_error.
///
/// Example:
/// @code
///   coio::semaphore slots(10);                 // at most 10 downloads at a time
///   coio::coro<void> download(std::string url) {
///       auto unit = co_await slots.scoped();
///       co_await fetch(url);
///   }
/// @endcode
class semaphore {
public:
    /// A semaphore with `value` units available.
    explicit semaphore(std::size_t value = 1) noexcept : value_(value) {}
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;
    virtual ~semaphore() = default;

    class acquire_awaiter;
    class guard;
    /// The awaiter of scoped(): acquires, then returns a semaphore::guard.
    using scoped_awaiter = detail::scoped_acquire<semaphore, guard>;

    /// Takes a unit, waiting while none is available (asyncio's `await sem.acquire()`).
    /// Returns at once, without yielding, when a unit is free and nobody waits.
    /// Throws (from co_await): cancelled_error / timeout_error (see the class comment);
    /// invalid_state_error outside a task or when the semaphore is destroyed while waiting.
    /// Example: `co_await sem.acquire(); ...; sem.release();`
    [[nodiscard]] acquire_awaiter acquire() noexcept;

    /// Takes a unit and returns a guard that gives it back when destroyed.
    /// Throws: as acquire(). Example: `auto unit = co_await sem.scoped();`
    [[nodiscard]] scoped_awaiter scoped() noexcept;

    /// Takes a unit if one is free and nobody waits. Returns: true on success.
    [[nodiscard]] bool try_acquire() noexcept {
        if (value_ == 0) return false;  // value_ > 0 implies no waiters (release hands over)
        --value_;
        return true;
    }

    /// Gives a unit back; the first waiting task (if any) gets it.
    /// Throws: bounded_semaphore only, see there.
    virtual void release() { hand_over(); }

    /// True when acquire() would wait (asyncio's `locked()`).
    [[nodiscard]] bool locked() const noexcept { return value_ == 0; }
    /// Units available now.
    [[nodiscard]] std::size_t value() const noexcept { return value_; }
    /// Tasks waiting for a unit.
    [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

protected:
    friend class detail::hold<semaphore>;
    // Invariant: waiters exist only while value_ == 0, since a released unit goes straight to
    // the first waiter instead of the counter.
    void hand_over() noexcept {
        if (detail::waiter* w = waiters_.front()) w->wake_with(detail::wait_status::granted);
        else ++value_;
    }

    std::size_t value_;
    detail::waiter_list waiters_;
};

/// A semaphore that refuses to be released more often than acquired
/// (asyncio.BoundedSemaphore): release() past the initial value throws, which catches
/// double-release bugs early.
///
/// Cancellation: as semaphore.
///
/// Example:
/// @code
///   coio::bounded_semaphore sem(2);
///   sem.release();   // throws invalid_state_error: nothing was acquired
/// @endcode
class bounded_semaphore : public semaphore {
public:
    /// A bounded semaphore with `value` units, which is also its upper bound.
    explicit bounded_semaphore(std::size_t value = 1) noexcept : semaphore(value), bound_(value) {}

    /// Gives a unit back.
    /// Throws: invalid_state_error when that would exceed the initial value (asyncio raises
    /// ValueError).
    void release() override {
        if (value_ >= bound_) throw invalid_state_error("coio: bounded_semaphore released too many times");
        hand_over();
    }

private:
    std::size_t bound_;
};

/// The awaiter of semaphore::acquire() (await it at once; movable only before it is awaited).
class semaphore::acquire_awaiter : detail::waiter {
public:
    explicit acquire_awaiter(semaphore& s) noexcept : sem_(&s) { what = "semaphore"; }
    bool await_ready() noexcept { return sem_->try_acquire(); }
    bool await_suspend(std::coroutine_handle<> h) { return detail::suspend_on(*this, sem_->waiters_, h); }
    void await_resume() {
        switch (status) {
        case detail::wait_status::cancelled: task->throw_cancel();
        case detail::wait_status::orphaned:
            throw invalid_state_error("coio: semaphore destroyed while a task waited on it");
        case detail::wait_status::granted:
            if (task->cancel_pending()) {
                // Handed a unit, then cancelled before running: pass it on, then raise.
                sem_->hand_over();
                task->throw_cancel();
            }
            return;
        default: return;
        }
    }

private:
    semaphore* sem_;
};

/// Owns one unit of a semaphore and releases it on destruction (move-only).
///
/// Example: `{ auto unit = co_await sem.scoped(); co_await work(); }  // released here`
class semaphore::guard : public detail::hold<semaphore> {
public:
    /// A guard that owns nothing; `guard(sem)` adopts a unit of `sem` the caller acquired.
    using hold::hold;
    /// Gives the unit back now (no effect when nothing is owned). Never throws: the unit was
    /// acquired, so even a bounded semaphore accepts it.
    void release() noexcept { drop(); }
    /// True while the guard owns a unit.
    [[nodiscard]] bool owns() const noexcept { return holds(); }
};

inline semaphore::acquire_awaiter semaphore::acquire() noexcept { return acquire_awaiter(*this); }
inline semaphore::scoped_awaiter semaphore::scoped() noexcept { return scoped_awaiter(*this); }

} // namespace coio
