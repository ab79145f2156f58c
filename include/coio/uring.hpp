// coio/uring.hpp - a generic awaitable io_uring operation, for operations coio does not wrap.
#pragma once

#include <coio/detail/core.hpp>
#include <coio/loop.hpp>

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <utility>

namespace coio {

namespace detail {

/// One io_uring operation owned by the awaiting frame. user_data points at it, and it is
/// resumed exactly once, from its own CQE.
///
/// Cancellation submits IORING_OP_ASYNC_CANCEL for our user_data and keeps waiting: the task
/// resumes only after the ORIGINAL operation's CQE has arrived, because until then the kernel
/// may still write into memory this frame owns (a read buffer, a sockaddr). If the operation
/// completed anyway (the cancel lost the race), its result is returned and the cancellation
/// stays pending for the next await, so no data is lost.
template <class Prep>
class uring_awaiter : cancel_hook, op_base {
public:
    explicit uring_awaiter(Prep prep) noexcept(std::is_nothrow_move_constructible_v<Prep>)
        : prep_(std::move(prep)) {
        what = "uring op";
    }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        task_ = &require_current_task();
        if (!task_->begin_wait(h, this)) return false;
        io_uring_sqe* sqe = task_->loop()->get_sqe();
        prep_(sqe);
        io_uring_sqe_set_data(sqe, static_cast<op_base*>(this));
        complete = [](op_base* op, int res, unsigned flags) noexcept {
            auto* self = static_cast<uring_awaiter*>(op);
            self->res_ = res;
            self->flags_ = flags;
            self->task_->wake();
        };
        on_cancel = [](cancel_hook* c) noexcept {
            auto* self = static_cast<uring_awaiter*>(c);
            self->cancel_sent_ = true;
            try {
                io_uring_sqe* sqe = self->task_->loop()->get_sqe();
                io_uring_prep_cancel64(sqe, reinterpret_cast<std::uintptr_t>(static_cast<op_base*>(self)), 0);
                io_uring_sqe_set_data64(sqe, 0);  // nobody waits for the cancel's own CQE
            } catch (...) {
                // Could not even submit the cancel: the operation completes on its own and
                // the pending cancellation is delivered at the next await.
            }
        };
        return true;
    }
    /// The CQE's `res`: a byte count or similar when >= 0, `-errno` on failure.
    int await_resume() {
        if (!cancel_sent_ && task_->cancel_pending() && res_ == unset) task_->throw_cancel();  // never suspended
        if (cancel_sent_ && (res_ == -ECANCELED || res_ == -EINTR)) task_->throw_cancel();
        return res_;
    }
    /// The CQE's flags (IORING_CQE_F_*), valid after resumption.
    [[nodiscard]] unsigned cqe_flags() const noexcept { return flags_; }

private:
    static constexpr int unset = -0x7fffffff;
    Prep prep_;
    task_base* task_ = nullptr;
    int res_ = unset;
    unsigned flags_ = 0;
    bool cancel_sent_ = false;
};

} // namespace detail

/// Awaits one io_uring operation that `prep(sqe)` prepares (any `io_uring_prep_*` call), on
/// the running loop's ring. The building block of coio's sockets, files and DNS polling, and
/// the way to reach io_uring features coio does not wrap.
///
/// @param prep  callable `void(io_uring_sqe*)`; must not set user_data.
/// Returns: the completion's `res` (>= 0 on success, `-errno` on failure; it does not throw
/// for a failed operation).
/// Throws: cancelled_error when the task is cancelled and the kernel confirms the operation
/// was cancelled; invalid_state_error outside a task.
///
/// Cancellation: an IORING_OP_ASYNC_CANCEL is submitted and the task resumes only after the
/// operation's own completion arrived, so buffers the kernel writes to stay valid until then.
///
/// Example:
/// @code
///   char buf[64];
///   int n = co_await coio::uring_op([&](io_uring_sqe* sqe) {
///       io_uring_prep_read(sqe, fd, buf, sizeof buf, 0);
///   });
///   if (n < 0) throw std::system_error(-n, std::system_category(), "read");
/// @endcode
template <class Prep>
[[nodiscard]] detail::uring_awaiter<Prep> uring_op(Prep prep) {
    return detail::uring_awaiter<Prep>(std::move(prep));
}

} // namespace coio
