// coio/uring.hpp - a generic awaitable io_uring operation, for operations coio does not wrap.
#pragma once

#include <coio/impl/op_awaiter.hpp>
#include <coio/loop.hpp>

#include <liburing.h>

#include <type_traits>
#include <utility>

namespace coio {

namespace detail {

/// The awaiter of uring_op: an operation whose SQE `Prep` prepares (op_code::custom).
template <class Prep>
class uring_awaiter : public op_awaiter<uring_awaiter<Prep>> {
public:
    explicit uring_awaiter(Prep prep) noexcept(std::is_nothrow_move_constructible_v<Prep>)
        : op_awaiter<uring_awaiter<Prep>>("uring op"), prep_(std::move(prep)) {
        this->set_custom([](operation* op, void* sqe) {
            static_cast<uring_awaiter*>(op)->prep_(static_cast<io_uring_sqe*>(sqe));
        });
    }
    int result(int res) noexcept { return res; }
    /// The CQE's flags (IORING_CQE_F_*), valid after resumption.
    [[nodiscard]] unsigned cqe_flags() const noexcept { return this->completion_flags(); }

private:
    Prep prep_;
};

} // namespace detail

/// Awaits one io_uring operation that `prep(sqe)` prepares (any `io_uring_prep_*` call), on
/// the running loop's ring: the way to reach io_uring features coio does not wrap. It follows
/// the protocol of every coio I/O awaitable (impl/op_awaiter.hpp).
///
/// @param prep  callable `void(io_uring_sqe*)`; must not set user_data.
/// Returns: the completion's `res` (>= 0 on success, `-errno` on failure; it does not throw
/// for a failed operation).
/// Throws: cancelled_error when the task is cancelled and the kernel confirms the operation
/// was cancelled; invalid_state_error outside a task; std::system_error when the ring is
/// broken.
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
