// coio/timeout.hpp - coio::timeout, timeout_at (asyncio.timeout) and wait_for (asyncio.wait_for).
#pragma once

#include <coio/awaitable_traits.hpp>
#include <coio/coro.hpp>
#include <coio/detail/core.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>

#include <chrono>
#include <optional>
#include <type_traits>
#include <utility>

namespace coio {

/// A deadline over the code that follows it in the current task (asyncio.timeout).
///
/// Create it with `coio::timeout(delay)` or `coio::timeout_at(when)` as a local variable;
/// the deadline covers every await in the task until the variable goes out of scope. When it
/// passes, the task's current await throws timeout_error (inside the guarded code, where
/// asyncio would throw CancelledError and convert it at the block's end). If that
/// timeout_error escapes the scope, the scope ends like asyncio's block: with timeout_error.
/// A deadline that has already passed when the scope is created (or rescheduled) expires at
/// once: the first await that suspends throws.
///
/// Nested scopes: each expiry is delivered once, innermost first. When an inner and an
/// outer deadline both pass before the task resumes, the inner block's await throws the
/// inner timeout_error; if the inner block catches it, the outer deadline is still pending
/// and the next await throws it. A cancel() pending at the same time wins: cancelled_error
/// is thrown, and it stands for every expired scope it unwinds through.
///
/// cancelling(): an expiry counts as a cancellation request while the scope lives; the scope
/// withdraws it when it ends (asyncio's uncancel() in the timeout's exit), so after a caught
/// timeout the task's cancelling() is back where it was.
///
/// Bound to the task that creates it; neither copyable nor movable.
///
/// Throws (constructor): invalid_state_error outside a task.
///
/// Cancellation: a cancel() of the task is not changed into timeout_error; it passes through
/// the scope as cancelled_error.
///
/// Example:
/// @code
///   try {
///       auto deadline = coio::timeout(2s);
///       co_await fetch();
///       deadline.reschedule(coio::clock::now() + 1s);   // move the deadline
///       co_await fetch_more();
///   } catch (const coio::timeout_error&) { std::puts("too slow"); }
/// @endcode
class [[nodiscard]] timeout_scope : detail::timer_node, detail::timeout_link {
public:
    /// A scope with deadline `when` (nullopt: no deadline yet).
    explicit timeout_scope(std::optional<clock::time_point> when) : task_(&detail::require_current_task()) {
        on_expire = [](detail::timer_node* n) noexcept {
            auto* self = static_cast<timeout_scope*>(n);
            self->task_->expire_timeout(self);
        };
        task_->enter_scope(this);
        if (when) arm(*when);
    }
    timeout_scope(const timeout_scope&) = delete;
    timeout_scope& operator=(const timeout_scope&) = delete;
    /// Disarms the deadline; an expiry not delivered yet is withdrawn, and an expired scope
    /// withdraws its cancellation request (cancelling() goes back down).
    ~timeout_scope() {
        if (queued()) task_->loop()->remove_timer(this);
        task_->leave_scope(this);
    }

    /// Moves the deadline (nullopt: no deadline). A deadline in the past expires at once.
    /// Throws: invalid_state_error once the scope has expired (as asyncio does).
    void reschedule(std::optional<clock::time_point> when) {
        if (expired()) throw invalid_state_error("coio: cannot reschedule an expired timeout");
        if (queued()) task_->loop()->remove_timer(this);
        when_ = when;
        if (when) arm(*when);
    }
    /// The current deadline, or nullopt.
    [[nodiscard]] std::optional<clock::time_point> when() const noexcept { return when_; }
    /// True once the deadline passed.
    [[nodiscard]] bool expired() const noexcept { return st != state::armed; }

private:
    void arm(clock::time_point when) {
        when_ = when;
        if (when <= clock::now()) {
            task_->expire_timeout(this);  // the task is running: delivered by its next await
            return;
        }
        deadline = when;
        task_->loop()->add_timer(this);
    }
    detail::task_base* task_;
    std::optional<clock::time_point> when_;
};

/// A timeout_scope expiring `delay` from now. Example: `auto t = coio::timeout(500ms);`
template <class Rep, class Period>
[[nodiscard]] timeout_scope timeout(std::chrono::duration<Rep, Period> delay) {
    return timeout_scope(clock::now() + std::chrono::ceil<clock::duration>(delay));
}
/// A timeout_scope expiring `seconds` from now.
[[nodiscard]] inline timeout_scope timeout(double seconds) {
    return timeout(std::chrono::duration<double>(seconds));
}
/// A timeout_scope with no deadline yet (asyncio.timeout(None)); see reschedule().
[[nodiscard]] inline timeout_scope timeout(std::nullopt_t) { return timeout_scope(std::nullopt); }
/// A timeout_scope expiring at `when` on the loop's clock (asyncio.timeout_at).
[[nodiscard]] inline timeout_scope timeout_at(clock::time_point when) { return timeout_scope(when); }

/// Awaits `aw` with a time limit (asyncio.wait_for).
///
/// A coro, or any awaiter (e.g. `shield(t)`), runs inline in the calling task; a task or
/// future is awaited.
/// Returns: aw's result.
/// Throws: timeout_error when `timeout` passes first, after `aw` was cancelled (a coro's
/// current await throws inside it; a task is cancelled and waited for); aw's own exception.
/// A timeout of zero or less: a coro is not started at all; a task or future that is done
/// gives its result, one that is not is cancelled and waited for (as asyncio does).
///
/// Cancellation: cancelling the calling task cancels `aw` and throws cancelled_error.
///
/// Example: `auto page = co_await coio::wait_for(fetch(url), 5s);`
template <class A, class Rep, class Period>
    requires awaitable<A>
[[nodiscard]] coro<await_result_t<A>> wait_for(A aw, std::chrono::duration<Rep, Period> timeout) {
    if constexpr (detail::is_coro_v<A>) {
        if (timeout <= timeout.zero()) throw timeout_error();  // asyncio never starts it
    }
    auto scope = coio::timeout(timeout);
    if constexpr (std::is_void_v<await_result_t<A>>) co_await std::move(aw);
    else co_return co_await std::move(aw);
}

/// wait_for without a time limit (asyncio's `wait_for(aw, None)`): awaits `aw`.
/// Returns: aw's result. Throws: aw's exception. Cancellation: as the timed form.
/// Example: `auto v = co_await coio::wait_for(fetch(url), std::nullopt);`
template <class A>
    requires awaitable<A>
[[nodiscard]] coro<await_result_t<A>> wait_for(A aw, std::nullopt_t) {
    if constexpr (std::is_void_v<await_result_t<A>>) co_await std::move(aw);
    else co_return co_await std::move(aw);
}

/// wait_for with the limit in seconds.
template <class A>
    requires awaitable<A>
[[nodiscard]] coro<await_result_t<A>> wait_for(A aw, double timeout_seconds) {
    return wait_for(std::move(aw), std::chrono::duration<double>(timeout_seconds));
}

} // namespace coio
