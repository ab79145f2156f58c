// coio/impl/op_awaiter.hpp - the awaiter of one I/O operation, the base of every I/O
// awaitable (socket operations, coio::uring_op). Not API.
//
// Contracts:
//  * The operation lives in the awaiter, i.e. in the suspended coroutine's frame: no
//    allocation, and the awaiter never moves once awaited (factories return prvalues).
//  * The task is resumed exactly once, from the operation's own completion.
//  * Cancellation asks the backend to cancel the operation and keeps waiting: the task resumes
//    only after the operation completed, because until then the kernel may still write into
//    memory the frame owns (a receive buffer, a socket address). An operation cancelled in
//    time throws the cancellation; one whose result won the race returns it (received bytes
//    are never dropped), and the cancellation is delivered by the task's next await.
#pragma once

#include <coio/detail/operation.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/loop.hpp>

#include <cerrno>
#include <coroutine>
#include <string>

namespace coio::detail {

/// Derived (CRTP) describes its operation in its constructor (the operation's set_* calls)
/// and maps the completion's result with `R result(int res)` (a value, or throws).
template <class Derived>
class op_awaiter : cancel_hook, protected operation {
public:
    explicit op_awaiter(const char* name) noexcept {
        what = name;
        inspect = &inspect_wait;
    }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        task_ = &require_current_task();
        if (!task_->begin_wait(h, this)) return false;  // a cancellation is pending
        complete = [](operation* op, int res, unsigned fl) noexcept {
            auto* self = static_cast<op_awaiter*>(op);
            self->res_ = res;
            self->flags_ = fl;
            self->task_->wake();
        };
        on_cancel = [](cancel_hook* c) noexcept {
            auto* self = static_cast<op_awaiter*>(c);
            self->cancel_sent_ = true;
            self->task_->loop()->cancel(*self);
        };
        try {
            task_->loop()->submit(*this);
        } catch (...) {
            task_->abandon_wait();  // not suspended after all: nothing may cancel us later
            throw;
        }
        return true;
    }
    decltype(auto) await_resume() {
        if (res_ == unset && task_->cancel_pending()) task_->throw_cancel();  // never suspended
        if (cancel_sent_ && (res_ == -ECANCELED || res_ == -EINTR)) task_->throw_cancel();
        return static_cast<Derived*>(this)->result(res_);
    }
    /// The completion's flags (op_buffer, op_more, ...), valid after resumption.
    [[nodiscard]] unsigned completion_flags() const noexcept { return flags_; }

private:
    static void inspect_wait(const cancel_hook* c, wait_info& w) {
        auto* self = static_cast<const op_awaiter*>(c);
        if (self->fd >= 0) w.detail = "fd " + std::to_string(self->fd);
    }
    static constexpr int unset = -0x7fffffff;
    task_base* task_ = nullptr;
    int res_ = unset;
    unsigned flags_ = 0;
    bool cancel_sent_ = false;
};

} // namespace coio::detail
