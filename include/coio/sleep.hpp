// coio/sleep.hpp - coio::sleep (asyncio.sleep).
#pragma once

#include <coio/detail/core.hpp>
#include <coio/loop.hpp>

#include <chrono>
#include <coroutine>
#include <type_traits>
#include <utility>

namespace coio {

namespace detail {

/// A sleep is a node in the loop's timer heap, living in the awaiting frame: no allocation,
/// no SQE, O(log n) to cancel.
class sleep_awaiter : cancel_hook, timer_node {
public:
    explicit sleep_awaiter(clock::duration d) noexcept : delay_(d) {
        what = "sleep";
        inspect = &inspect_wait;
    }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        task_ = &require_current_task();
        if (!task_->begin_wait(h, this)) return false;  // a cancellation is pending
        on_cancel = [](cancel_hook* c) noexcept {
            auto* self = static_cast<sleep_awaiter*>(c);
            if (self->queued()) {
                self->task_->loop()->remove_timer(self);
                self->task_->wake();
            }
            // sleep(0): the task is already on the ready queue; await_resume delivers it.
        };
        if (delay_ <= clock::duration::zero()) {
            // sleep(0) yields exactly one loop iteration; the hook stays registered so a
            // cancel() in between is delivered here, as asyncio does.
            task_->loop()->schedule(task_);
            return true;
        }
        deadline = clock::now() + delay_;
        on_expire = [](timer_node* n) noexcept { static_cast<sleep_awaiter*>(n)->task_->wake(); };
        task_->loop()->add_timer(this);
        return true;
    }
    void await_resume() {
        // A sleep has no result to lose: a cancellation that arrived before we were resumed
        // is delivered now.
        if (task_->cancel_pending()) task_->throw_cancel();
    }

private:
    static void inspect_wait(const cancel_hook* c, wait_info& w) {
        auto* self = static_cast<const sleep_awaiter*>(c);
        w.detail = self->queued() ? format_seconds(self->deadline - clock::now()) + " left (of " +
                                        format_seconds(self->delay_) + ")"
                                  : "one loop iteration";
    }
    clock::duration delay_;
    task_base* task_ = nullptr;
};

/// sleep(delay, result): a sleep that hands back `result` when it ends. The value lives in
/// the awaiter (in the awaiting frame), so this allocates nothing either.
template <class T>
class sleep_result_awaiter : public sleep_awaiter {
public:
    sleep_result_awaiter(clock::duration d, T value) noexcept(std::is_nothrow_move_constructible_v<T>)
        : sleep_awaiter(d), value_(std::move(value)) {}
    T await_resume() {
        sleep_awaiter::await_resume();  // delivers a pending cancellation; the value is dropped
        return std::move(value_);
    }

private:
    T value_;
};

} // namespace detail

/// Suspends the calling task for at least `delay` (asyncio.sleep).
///
/// `sleep(0)` (or any non-positive delay) yields to the loop for exactly one iteration,
/// letting every other ready task run. Timers never fire early; they are kept in a userspace
/// heap and the loop waits in the kernel only until the earliest one.
///
/// Throws: cancelled_error when the task is cancelled while sleeping (the timer is removed);
/// invalid_state_error outside a task.
///
/// Example: `co_await coio::sleep(250ms);`
template <class Rep, class Period>
[[nodiscard]] detail::sleep_awaiter sleep(std::chrono::duration<Rep, Period> delay) noexcept {
    return detail::sleep_awaiter(std::chrono::ceil<clock::duration>(delay));
}

/// Suspends the calling task for at least `seconds` (a plain number, as in Python).
/// Example: `co_await coio::sleep(0.5);`
[[nodiscard]] inline detail::sleep_awaiter sleep(double seconds) noexcept {
    return sleep(std::chrono::duration<double>(seconds));
}

/// Suspends the calling task for at least `delay`, then returns `result`
/// (asyncio.sleep(delay, result)).
///
/// `result` is moved into the awaiter and moved out to the caller (no copy; move-only types
/// work). Same timing as sleep(delay): a non-positive delay yields one loop iteration.
///
/// Returns: `result`, as `std::decay_t<T>`.
/// Throws: cancelled_error (or timeout_error, inside a timeout) when the task is cancelled
/// while sleeping: the value is then destroyed, not returned; invalid_state_error outside a task.
///
/// Cancellation: as sleep(delay): the timer is removed at once.
///
/// Example: `std::string s = co_await coio::sleep(10ms, std::string("done"));`
template <class Rep, class Period, class T>
[[nodiscard]] detail::sleep_result_awaiter<std::decay_t<T>> sleep(std::chrono::duration<Rep, Period> delay, T&& result) noexcept(
    std::is_nothrow_constructible_v<std::decay_t<T>, T&&>) {
    return detail::sleep_result_awaiter<std::decay_t<T>>(std::chrono::ceil<clock::duration>(delay), std::forward<T>(result));
}

/// sleep(delay, result) with the delay in seconds.
/// Example: `int v = co_await coio::sleep(0.01, 42);`
template <class T>
[[nodiscard]] detail::sleep_result_awaiter<std::decay_t<T>> sleep(double seconds, T&& result) noexcept(
    std::is_nothrow_constructible_v<std::decay_t<T>, T&&>) {
    return sleep(std::chrono::duration<double>(seconds), std::forward<T>(result));
}

} // namespace coio
