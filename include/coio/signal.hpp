// coio/signal.hpp - Unix signals on the loop: coio::wait_signal, and (declared in loop.hpp)
// event_loop::add_signal_handler / remove_signal_handler (asyncio's names).
//
// Signals reach a loop through a signalfd read on the loop itself, never through a signal
// handler: the signals in use are blocked in the loop's thread and in every thread coio
// creates, so the kernel keeps them for the signalfd (see impl/signal_service.hpp).
#pragma once

#include <coio/detail/core.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/loop.hpp>

#include <signal.h>

#include <coroutine>
#include <cstdint>
#include <initializer_list>
#include <utility>

namespace coio {

class signal_wait;

/// A set of signal numbers, written as a braced list: `coio::wait_signal({SIGINT, SIGTERM})`
/// (or a single number). Up to eight signals in the list; add() takes more.
///
/// Why not std::initializer_list: g++ 12 cannot compile a braced initializer_list argument
/// inside a co_await expression ("array used as initializer"); a constructor of plain ints
/// compiles everywhere and reads the same.
///
/// Example: `coio::signal_set s{SIGINT, SIGTERM}; s.add(SIGHUP);`
class signal_set {
public:
    /// The signals s1, s2, ... (0 stands for "none" in the optional places).
    /// Throws: std::invalid_argument for a signal a loop cannot handle (see
    /// event_loop::add_signal_handler), including 0 as the first.
    signal_set(int s1, int s2 = 0, int s3 = 0, int s4 = 0, int s5 = 0, int s6 = 0, int s7 = 0, int s8 = 0) {  // NOLINT: implicit on purpose
        add(s1);
        for (int sig : {s2, s3, s4, s5, s6, s7, s8})
            if (sig != 0) add(sig);
    }
    /// Adds `sig`. Throws: std::invalid_argument as the constructor.
    void add(int sig) {
        detail::check_handleable_signal(sig);
        bits_ |= std::uint64_t{1} << (sig - 1);
    }
    /// True if `sig` is in the set.
    [[nodiscard]] bool contains(int sig) const noexcept {
        return sig > 0 && sig < NSIG && (bits_ & (std::uint64_t{1} << (sig - 1))) != 0;
    }
    /// The set as a bit mask: bit sig - 1 for each signal sig.
    [[nodiscard]] std::uint64_t bits() const noexcept { return bits_; }

private:
    std::uint64_t bits_ = 0;
};

/// Waits for one of `signals` to arrive and returns its number:
/// `int sig = co_await coio::wait_signal({SIGINT, SIGTERM});`.
///
/// The signals are taken from the moment wait_signal() is called, not from the co_await:
/// a signal that arrives in between is not lost, so a program can announce that it is ready
/// after the call and before awaiting. While the returned object lives, its signals are
/// blocked in the loop's thread and read by the loop (as for event_loop::add_signal_handler);
/// when it is destroyed and nothing else uses them, they are unblocked again. Several
/// wait_signal objects and a handler of the same signal all see each arrival.
///
/// @param signals  the signal numbers to wait for, e.g. `{SIGINT, SIGTERM}` (see signal_set).
/// Returns: an awaitable object (not movable) whose co_await yields the first of `signals`
/// that arrived; awaiting it again yields the same number.
/// Throws: std::invalid_argument for an invalid signal (see add_signal_handler);
/// invalid_state_error outside a running loop; std::system_error when the signalfd cannot
/// be created.
///
/// Cancellation: cancelling the awaiting task throws cancelled_error from the co_await; the
/// registration ends with the object (at the end of the co_await's full expression), so the
/// signals are unblocked again. A signal that arrived before the cancellation was delivered
/// is returned instead, and the cancellation is delivered by the task's next await.
///
/// Example:
/// @code
///   auto signals = coio::wait_signal({SIGINT, SIGTERM});
///   std::puts("ready");
///   int sig = co_await signals;   // SIGINT or SIGTERM
/// @endcode
[[nodiscard]] signal_wait wait_signal(signal_set signals);

/// The awaitable of coio::wait_signal (see there). Neither copyable nor movable: it is
/// registered with the loop by address from its construction to its destruction.
class [[nodiscard]] signal_wait : detail::cancel_hook, detail::signal_waiter {
public:
    /// Registers for `signals` on the running loop (see wait_signal for the throws).
    explicit signal_wait(signal_set signals) : loop_(&get_running_loop()) {
        wanted = signals.bits();
        what = "wait_signal";
        on_arrival = [](detail::signal_waiter* w) noexcept {
            auto* self = static_cast<signal_wait*>(w);
            if (auto* t = std::exchange(self->task_, nullptr)) t->wake();
        };
        on_cancel = [](detail::cancel_hook* c) noexcept {
            auto* self = static_cast<signal_wait*>(c);
            if (auto* t = std::exchange(self->task_, nullptr)) t->wake();
        };
        loop_->service<detail::signal_service>().add_waiter(*this);
    }
    signal_wait(const signal_wait&) = delete;
    signal_wait& operator=(const signal_wait&) = delete;
    /// Ends the registration: the signals are unblocked if nothing else uses them.
    ~signal_wait() {
        if (!loop_->is_closed()) loop_->service<detail::signal_service>().remove_waiter(*this);
    }

    /// Ready when a signal already arrived.
    [[nodiscard]] bool await_ready() const noexcept { return got != 0; }
    /// Suspends the task until a signal arrives or the task is cancelled.
    bool await_suspend(std::coroutine_handle<> h) {
        detail::task_base& t = detail::require_current_task();
        if (!t.begin_wait(h, this)) return false;  // a cancellation is pending: await_resume throws it
        task_ = &t;
        return true;
    }
    /// The signal that arrived. Throws: cancelled_error (or timeout_error) when the task was
    /// cancelled before one arrived.
    int await_resume() {
        task_ = nullptr;
        if (got != 0) return got;
        detail::require_current_task().throw_cancel();
    }

private:
    event_loop* loop_;
    detail::task_base* task_ = nullptr;  // the suspended task, until woken
};

inline signal_wait wait_signal(signal_set signals) { return signal_wait(signals); }

} // namespace coio
