// coio/barrier.hpp - coio::barrier (asyncio.Barrier).
#pragma once

#include <coio/coro.hpp>
#include <coio/impl/waiter_list.hpp>
#include <coio/errors.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <utility>

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
/// Rounds do not overlap (asyncio's filling, draining, resetting and broken states): once a
/// round completes, the barrier drains, and a task that calls wait() before every party of
/// that round has resumed waits until they all have; only then does the next round fill. So a
/// fast task looping on wait() cannot join a round twice, and a reset() by the last task out
/// cannot break tasks that re-entered early.
///
/// Cancellation: a task cancelled while waiting withdraws its arrival (the round still needs
/// `parties` tasks) and throws cancelled_error (timeout_error under wait_for/timeout). A task
/// cancelled after its round completed but before it resumed throws too (as asyncio's does);
/// the round stays complete for the others.
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

    /// Waits until `parties` tasks are waiting (first, while the previous round drains or
    /// resets, until it has).
    /// Returns (from co_await): the arrival index in [0, parties).
    /// Throws: broken_barrier_error when the barrier is broken or is aborted/reset during the
    /// wait; cancelled_error / timeout_error (see the class comment); invalid_state_error
    /// outside a task or when the barrier is destroyed while waiting.
    /// Example: `auto i = co_await b.wait();`
    [[nodiscard]] inline coro<std::size_t> wait();

    /// Breaks the barrier: current and future waits throw broken_barrier_error until reset().
    void abort() noexcept {
        state_ = state::broken;
        arrivals_.wake_all(detail::wait_status::failed);
        blocked_.wake_all(detail::wait_status::failed);
    }
    /// Returns the barrier to its empty, unbroken state (asyncio's reset()): tasks waiting in
    /// the current round get broken_barrier_error, and the next round fills once every task of
    /// this one has resumed.
    void reset() noexcept {
        arrivals_.wake_all(detail::wait_status::failed);  // in the round until they resume
        if (in_round_ > 0) {
            state_ = state::resetting;
        } else {
            state_ = state::filling;
            blocked_.wake_all(detail::wait_status::granted);
        }
    }

    /// Tasks needed to pass the barrier.
    [[nodiscard]] std::size_t parties() const noexcept { return parties_; }
    /// Tasks waiting in the current round (0 while the barrier drains, resets or is broken).
    [[nodiscard]] std::size_t n_waiting() const noexcept { return state_ == state::filling ? arrivals_.size() : 0; }
    /// True after abort() (until reset()).
    [[nodiscard]] bool broken() const noexcept { return state_ == state::broken; }

private:
    enum class state : std::uint8_t {
        filling,    ///< tasks arrive for the next round
        draining,   ///< a round completed; its tasks have not all resumed yet
        resetting,  ///< reset() while tasks of a round had not all resumed
        broken,     ///< abort()
    };
    class arrive_awaiter;
    class block_awaiter;

    // A task of the round resumed (or withdrew): the last one out ends draining or resetting
    // and lets the blocked tasks in; each re-checks the state when it runs (as asyncio's do),
    // so a reset() by the last one out does not break them.
    void leave() noexcept {
        if (--in_round_ == 0 && (state_ == state::draining || state_ == state::resetting)) {
            state_ = state::filling;
            blocked_.wake_all(detail::wait_status::granted);
        }
    }

    std::size_t parties_;
    std::size_t in_round_ = 0;      // tasks of the current round that have not resumed
    state state_ = state::filling;
    detail::waiter_list arrivals_;  // the round filling now, in arrival order
    detail::waiter_list blocked_;   // came while the barrier drained or reset
};

// Arrives in the filling round: the last arrival releases it; the others wait for that.
class barrier::arrive_awaiter : detail::waiter {
public:
    explicit arrive_awaiter(barrier& b) noexcept : b_(&b) { what = "barrier"; }

    bool await_ready() noexcept {
        if (b_->state_ == state::broken) return true;  // await_resume throws
        if (b_->arrivals_.size() + 1 < b_->parties_) return false;
        // The last arrival: release the round in arrival order and go on without waiting.
        b_->state_ = state::draining;
        ++b_->in_round_;
        std::size_t i = 0;
        while (detail::waiter* w = b_->arrivals_.front()) {
            static_cast<arrive_awaiter*>(w)->index_ = i++;
            w->wake_with(detail::wait_status::granted);
        }
        index_ = i;
        tripped_ = true;
        return true;
    }
    bool await_suspend(std::coroutine_handle<> h) {
        on_cancel = [](detail::cancel_hook* c) noexcept {
            auto* self = static_cast<arrive_awaiter*>(c);
            self->wake_with(detail::wait_status::cancelled);
            self->b_->leave();  // the arrival is withdrawn
        };
        if (!detail::suspend_on(*this, b_->arrivals_, h)) return false;
        ++b_->in_round_;
        return true;
    }
    std::size_t await_resume() {
        switch (status) {
        case detail::wait_status::granted:  // the round completed
            b_->leave();
            if (task->cancel_pending()) task->throw_cancel();  // asyncio raises here too
            return index_;
        case detail::wait_status::cancelled: task->throw_cancel();
        case detail::wait_status::failed:  // reset() or abort() during the round
            b_->leave();
            throw broken_barrier_error();
        case detail::wait_status::orphaned: throw invalid_state_error("coio: barrier destroyed while a task waited on it");
        default:
            if (!tripped_) throw broken_barrier_error();
            b_->leave();
            return index_;
        }
    }

private:
    barrier* b_;
    std::size_t index_ = 0;
    bool tripped_ = false;
};

// Waits while the previous round drains or resets.
class barrier::block_awaiter : detail::waiter {
public:
    explicit block_awaiter(barrier& b) noexcept : b_(&b) { what = "barrier (draining)"; }
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) { return detail::suspend_on(*this, b_->blocked_, h); }
    void await_resume() {
        switch (status) {
        case detail::wait_status::granted:
            if (task->cancel_pending()) task->throw_cancel();
            return;
        case detail::wait_status::failed: throw broken_barrier_error();
        case detail::wait_status::orphaned: throw invalid_state_error("coio: barrier destroyed while a task waited on it");
        default: task->throw_cancel();
        }
    }

private:
    barrier* b_;
};

// A task let in after a drain re-checks the state: a reset() or abort() may have come first.
inline coro<std::size_t> barrier::wait() {
    while (state_ == state::draining || state_ == state::resetting) co_await block_awaiter(*this);
    co_return co_await arrive_awaiter(*this);
}

} // namespace coio
