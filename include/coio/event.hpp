// coio/event.hpp - coio::event (asyncio.Event).
#pragma once

#include <coio/impl/waiter_list.hpp>
#include <coio/errors.hpp>

#include <coroutine>

namespace coio {

/// A flag tasks can wait for (asyncio.Event): `wait()` suspends until `set()` is called;
/// once set, waits return at once until `clear()`.
///
/// Not thread-safe: use it from the tasks of one loop (from another thread, call `set`
/// through `loop.call_soon_threadsafe`). Not copyable or movable (waiters point at it).
/// Destroying an event while tasks wait on it wakes them with invalid_state_error.
///
/// Cancellation: a task cancelled while waiting leaves the queue of waiters and throws
/// cancelled_error (timeout_error under `wait_for`/`timeout`). One that was woken by set() but
/// cancelled before it ran throws as well (as asyncio does); nothing is consumed either way.
///
/// Example:
/// @code
///   coio::event ready;
///   auto t = coio::create_task(waiter(ready));   // co_await ready.wait();
///   ready.set();
/// @endcode
class event {
public:
    /// A cleared event.
    event() noexcept = default;
    event(const event&) = delete;
    event& operator=(const event&) = delete;

    /// Sets the flag and wakes every waiting task (in the order they started waiting).
    void set() noexcept {
        if (set_) return;
        set_ = true;
        waiters_.wake_all(detail::wait_status::granted);
    }
    /// Clears the flag: later waits suspend again.
    void clear() noexcept { set_ = false; }
    /// True while the flag is set.
    [[nodiscard]] bool is_set() const noexcept { return set_; }

    class wait_awaiter;
    /// Waits until the flag is set (returns at once if it is).
    ///
    /// Throws (from co_await): cancelled_error / timeout_error as described above;
    /// invalid_state_error outside a task or when the event is destroyed meanwhile.
    ///
    /// Example: `co_await coio::wait_for(ev.wait(), 1s);`
    [[nodiscard]] wait_awaiter wait() noexcept;

private:
    bool set_ = false;
    detail::waiter_list waiters_;
};

/// The awaiter of event::wait() (await it at once; movable only before it is awaited).
class event::wait_awaiter : detail::waiter {
public:
    explicit wait_awaiter(event& e) noexcept : ev_(&e) { what = "event"; }
    bool await_ready() const noexcept { return ev_->set_; }
    bool await_suspend(std::coroutine_handle<> h) { return detail::suspend_on(*this, ev_->waiters_, h); }
    void await_resume() {
        switch (status) {
        case detail::wait_status::cancelled: task->throw_cancel();
        case detail::wait_status::orphaned: throw invalid_state_error("coio: event destroyed while a task waited on it");
        case detail::wait_status::granted:
            if (task->cancel_pending()) task->throw_cancel();  // nothing to hand on: asyncio raises too
            return;
        default: return;  // already set: no suspension
        }
    }

private:
    event* ev_;
};

inline event::wait_awaiter event::wait() noexcept { return wait_awaiter(*this); }

} // namespace coio
