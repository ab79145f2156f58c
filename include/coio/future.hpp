// coio/future.hpp - coio::future<T>: a result that will be set later (asyncio.Future).
#pragma once

#include <coio/detail/task_base.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/outcome.hpp>

#include <coroutine>
#include <cstdint>
#include <exception>
#include <utility>

namespace coio {

template <class T = void> class future;

namespace detail {

/// A future or task state with its typed result slot.
template <class T, class Base>
class result_state : public Base {
public:
    using Base::Base;
    ~result_state() override { this->report_unretrieved(); }

    bool has_error() const noexcept override { return result_.has_exception(); }
    std::exception_ptr stored_error() const noexcept override { return result_.exception(); }

    /// asyncio's `result()`: a reference to the value, or throws.
    decltype(auto) get_result() {
        check_done();
        if (this->is_cancelled()) throw cancelled_error();
        this->retrieved_ = true;
        return result_.get();
    }
    /// asyncio's `exception()`.
    std::exception_ptr get_exception() {
        check_done();
        if (this->is_cancelled()) throw cancelled_error();
        this->retrieved_ = true;
        return result_.exception();
    }
    /// The result for one awaiter: copied when T is copyable, moved out otherwise.
    T take_for_await() {
        if (this->is_cancelled()) throw cancelled_error();
        this->retrieved_ = true;
        return result_.copy_or_take();
    }
    /// The result as an outcome (for gather with return_exceptions).
    outcome<T> take_outcome() {
        if (auto e = this->failure()) return outcome<T>(std::move(e));
        if constexpr (std::is_void_v<T>) return outcome<void>();
        else return outcome<T>(result_.copy_or_take());
    }

    result_slot<T> result_;

private:
    void check_done() const {
        if (!this->done()) throw invalid_state_error("coio: result is not set yet (the future/task is not done)");
    }
};

template <class T>
class future_state final : public result_state<T, future_base> {
public:
    using result_state<T, future_base>::result_state;
    void finish(future_base::status s) noexcept { this->complete(s); }
};

/// Awaits a future or task state. `Shield`: cancelling the awaiting task abandons the wait
/// (asyncio.shield) instead of cancelling the awaited state.
///
/// Without Shield the awaiting task's cancellation is forwarded (asyncio's Task.cancel() on a
/// task waiting for a future): the target is cancelled, and the await reports what the target
/// then ends with. Cancelled: the awaiting task's own request is delivered (timeout_error when
/// it was a timeout). A value or an exception: it is returned or rethrown, and the forwarded
/// request is used up. A request that arrives after the target was done (the task was woken
/// but had not resumed yet) is thrown here; the target keeps its result.
template <class T, class State, bool Shield = false>
struct state_awaiter : cancel_hook, done_node {
    explicit state_awaiter(ref_ptr<State> s) noexcept : state(std::move(s)) {
        what = Shield ? "shielded future" : "future";
    }

    bool await_ready() const noexcept { return state->done(); }

    bool await_suspend(std::coroutine_handle<> h) {
        waiter = &require_current_task();
        on_done = [](done_node* n, future_base&) noexcept {
            auto* self = static_cast<state_awaiter*>(n);
            self->requests_at_done = self->waiter->cancelling();
            self->waiter->wake();
        };
        if constexpr (Shield) {
            if (!waiter->begin_wait(h, this)) { cancelled = true; return false; }
            on_cancel = [](cancel_hook* c) noexcept {
                auto* self = static_cast<state_awaiter*>(c);
                self->state->remove_done_node(self);
                self->cancelled = true;
                self->waiter->wake();
            };
            state->add_done_node(this);
        } else {
            on_cancel = [](cancel_hook* c) noexcept {
                auto* self = static_cast<state_awaiter*>(c);
                self->state->cancel();
                // Still waiting (a task finishes later; a future is done at once and has
                // woken us): a further cancel() must reach the target too.
                if (!self->state->done()) self->waiter->keep_waiting_on(self);
            };
            state->add_done_node(this);                // before: forwarding may complete it
            waiter->begin_wait_forwarding(h, this);
        }
        return true;
    }

    T await_resume() {
        if (cancelled) waiter->throw_cancel();  // shield: the wait was abandoned
        if (state->is_cancelled()) {
            // Cancelled because we were: deliver our own cancellation (maybe a timeout).
            if (waiter && waiter->cancel_pending()) waiter->throw_cancel();
            throw cancelled_error();
        }
        if (waiter && waiter->cancel_pending()) {
            if (waiter->cancelling() > requests_at_done) waiter->throw_cancel();  // came after
            waiter->consume_cancel();  // forwarded, and the target was not cancelled by it
        }
        return state->take_for_await();
    }

    ref_ptr<State> state;
    task_base* waiter = nullptr;
    std::uint32_t requests_at_done = 0;
    bool cancelled = false;
};

/// add_done_callback for futures and tasks: `f(handle)` is scheduled with call_soon when
/// the state completes, as asyncio does.
template <class Handle, class State, class F>
void add_done_callback(State* s, F f) {
    event_loop* loop = s->loop();
    if (!loop) throw invalid_state_error("coio: the event loop of this future is gone");
    if (s->done()) {
        loop->call_soon([f = std::move(f), h = Handle(s)]() mutable { f(h); });
        return;
    }
    struct node : done_node {
        explicit node(F&& fn) : f(std::move(fn)) {}
        F f;
    };
    auto* n = new node(std::move(f));
    n->on_done = [](done_node* dn, future_base& st) noexcept {
        auto* self = static_cast<node*>(dn);
        if (!st.done()) { delete self; return; }  // the future died unset: nothing to call
        try {
            st.loop()->call_soon([f = std::move(self->f), h = Handle(static_cast<State*>(&st))]() mutable { f(h); });
        } catch (...) {
            st.loop()->call_exception_handler({"cannot schedule a done callback", std::current_exception(), {}, {}});
        }
        delete self;
    };
    s->add_done_node(n);
}

} // namespace detail

/// A result that will be set later by someone else (asyncio.Future): the low-level bridge
/// between callback-style code and coroutines.
///
/// A copyable handle to shared state; any number of tasks may `co_await` it. Bound to one
/// loop and not thread-safe (from another thread use `loop.call_soon_threadsafe` to set it).
///
/// Throws (from `co_await` or `result()`): the exception set with set_exception;
/// cancelled_error if the future was cancelled; result() throws invalid_state_error when the
/// future is not done.
///
/// Cancellation: cancelling a task that awaits a future cancels the future (as asyncio does;
/// use `coio::shield` to prevent it).
///
/// Example:
/// @code
///   coio::future<int> f;                       // on the running loop
///   loop.call_later(0.1, [f]() mutable { f.set_result(7); });
///   int v = co_await f;                        // 7
/// @endcode
template <class T>
class future {
public:
    /// A pending future on the running loop. Throws: invalid_state_error with no running loop.
    future() : future(get_running_loop()) {}
    /// A pending future on `loop`.
    explicit future(event_loop& loop) : s_(new detail::future_state<T>(&loop)) {}

    /// Sets the value and wakes every awaiter. Throws: invalid_state_error if already done.
    template <class... U>
    void set_result(U&&... value) {
        check_pending();
        s_->result_.set_value(std::forward<U>(value)...);
        s_->finish(detail::future_base::status::finished);
    }
    /// Sets an exception and wakes every awaiter. Throws: invalid_state_error if already done.
    void set_exception(std::exception_ptr e) {
        check_pending();
        s_->result_.set_exception(std::move(e));
        s_->finish(detail::future_base::status::finished);
    }
    /// Cancels the future. Returns false if it was already done.
    bool cancel() noexcept { return s_->cancel(); }
    /// True once a result, an exception or a cancellation is set.
    [[nodiscard]] bool done() const noexcept { return s_->done(); }
    /// True when cancelled.
    [[nodiscard]] bool cancelled() const noexcept { return s_->is_cancelled(); }
    /// The value (a reference for non-void T). Throws: see the class comment.
    decltype(auto) result() const { return s_->get_result(); }
    /// The exception, or null. Throws: invalid_state_error if not done, cancelled_error if cancelled.
    [[nodiscard]] std::exception_ptr exception() const { return s_->get_exception(); }
    /// Schedules `f(future)` (with call_soon) once the future is done.
    template <class F>
    void add_done_callback(F f) { detail::add_done_callback<future>(s_.get(), std::move(f)); }

    /// Waits for the future; gives a copy of its value (moves it out if T is move-only).
    auto operator co_await() const noexcept { return detail::state_awaiter<T, detail::future_state<T>>(s_); }

    /// Internal: the shared state.
    [[nodiscard]] detail::future_state<T>* state() const noexcept { return s_.get(); }
    /// Internal: wraps a state.
    explicit future(detail::future_state<T>* s) noexcept : s_(s) {}

private:
    void check_pending() const {
        if (s_->done()) throw invalid_state_error("coio: the future is already done");
    }
    detail::ref_ptr<detail::future_state<T>> s_;
};

} // namespace coio
