// coio/barrier.hpp - coio::barrier (asyncio.Barrier).
#pragma once

#include <coio/detail/waiter_list.hpp>
#include <coio/errors.hpp>

#include <coroutine>
#include <cstddef>
#include <stdexcept>

namespace coio {

/// The barrier was aborted or reset while a task waited on it, or is broken
/// (asyncio.BrokenBarrierError).
class broken_barrier_error : public error {
public:
    broken_barrier_error() : error("coio: broken barrier") {}
    using error::error;
};

/// A rendezvous for a fixed number of tasks (asyncio.Barrier): each wait() suspends until
/// `parties` tasks are waiting, then all of them continue together and the barrier is ready
/// for the next round (it is cyclic).
///
/// wait() returns the arrival index, 0 for the first task of the round to arrive and
/// `parties - 1` for the last (indices are unique within a round).
///
/// Cancellation: a task cancelled while waiting withdraws its arrival (the round still needs
/// `parties` tasks) and throws cancelled_error (timeout_error under wait_for/timeout). Once
/// the round has completed the wait has succeeded: a cancellation arriving after that is
/// delivered at the task's next await and wait() returns its index.
///
/// Not thread-safe (one loop); not copyable or movable. Destroying a barrier while tasks wait
/// on it wakes them with invalid_state_error.
///
/// Example:
/// @code
///   coio::barrier b(3);
///   // in each of 3 tasks:
///   std::size_t i = co_await b.wait();
///   if (i == 0) std::puts("everyone arrived");
/// @endcode
class barrier {
public:
    /// A barrier for `parties` tasks. Throws: std::invalid_argument when parties is 0.
    explicit barrier(std::size_t parties) : parties_(parties) {
        if (parties == 0) throw std::invalid_argument("coio: a barrier needs at least one party");
    }
    barrier(const barrier&) = delete;
    barrier& operator=(const barrier&) = delete;

    class wait_awaiter;

    /// Waits until `parties` tasks are waiting.
    /// Returns (from co_await): the arrival index in [0, parties).
    /// Throws: broken_barrier_error when the barrier is broken or is aborted/reset during the
    /// wait; cancelled_error / timeout_error (see the class comment); invalid_state_error
    /// outside a task or when the barrier is destroyed while waiting.
    /// Example: `auto i = co_await b.wait();`
    [[nodiscard]] wait_awaiter wait() noexcept;

    /// Breaks the barrier: current and future waits throw broken_barrier_error until reset().
    void abort() noexcept {
        broken_ = true;
        waiters_.wake_all(detail::wait_status::failed);
    }
    /// Returns the barrier to its empty, unbroken state; tasks waiting now get
    /// broken_barrier_error (asyncio's reset()).
    void reset() noexcept {
        waiters_.wake_all(detail::wait_status::failed);
        broken_ = false;
    }

    /// Tasks needed to pass the barrier.
    [[nodiscard]] std::size_t parties() const noexcept { return parties_; }
    /// Tasks waiting in the current round.
    [[nodiscard]] std::size_t n_waiting() const noexcept { return waiters_.size(); }
    /// True after abort() (until reset()).
    [[nodiscard]] bool broken() const noexcept { return broken_; }

private:
    std::size_t parties_;
    bool broken_ = false;
    detail::waiter_list waiters_;  // arrival order of the current round
};

/// The awaiter of barrier::wait() (await it at once; movable only before it is awaited).
class barrier::wait_awaiter : detail::waiter {
public:
    explicit wait_awaiter(barrier& b) noexcept : b_(&b) { what = "barrier"; }

    bool await_ready() noexcept {
        if (b_->broken_) return true;                       // await_resume throws
        if (b_->waiters_.size() + 1 < b_->parties_) return false;
        // The last arrival: release the round, in arrival order, then go on without waiting.
        std::size_t i = 0;
        while (detail::waiter* w = b_->waiters_.front()) {
            static_cast<wait_awaiter*>(w)->index_ = i++;
            w->wake_with(detail::wait_status::granted);
        }
        index_ = i;
        tripped_ = true;
        return true;
    }
    bool await_suspend(std::coroutine_handle<> h) { return detail::suspend_on(*this, b_->waiters_, h); }
    std::size_t await_resume() {
        switch (status) {
        case detail::wait_status::granted: return index_;  // passed: the round is complete
        case detail::wait_status::cancelled: task->throw_cancel();
        case detail::wait_status::failed: throw broken_barrier_error();
        case detail::wait_status::orphaned: throw invalid_state_error("coio: barrier destroyed while a task waited on it");
        default:
            if (tripped_) return index_;
            throw broken_barrier_error();
        }
    }

private:
    friend class barrier;
    barrier* b_;
    std::size_t index_ = 0;
    bool tripped_ = false;
};

inline barrier::wait_awaiter barrier::wait() noexcept { return wait_awaiter(*this); }

} // namespace coio
