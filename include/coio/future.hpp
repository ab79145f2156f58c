// coio/future.hpp - coio::future<T>: a result that will be set later (asyncio.Future).
#pragma once

#include <coio/detail/task_base.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/outcome.hpp>

#include <coroutine>
#include <cstddef>
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
        inspect = &inspect_wait;
    }
    static void inspect_wait(const cancel_hook* c, wait_info& w) {
        auto* self = static_cast<const state_awaiter*>(c);
        w.awaits.push_back(self->state.get());
        if (self->state->is_task())
            w.detail = "task '" + static_cast<const task_base*>(static_cast<const future_base*>(self->state.get()))->name() + "'";
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

/// A done callback, linked into its state like any subscriber. One on_done for every
/// callback type, so remove_done_callback can tell callback nodes from the other subscribers
/// (awaiters, gathers) linked into the same list; the typed part is behind a virtual.
struct callback_node : done_node {
    callback_node() noexcept : id(next_id()) { on_done = &callback_node::fire; }
    callback_node(const callback_node&) = delete;
    callback_node& operator=(const callback_node&) = delete;
    virtual ~callback_node() = default;
    /// Schedules the callback with call_soon. `st` is done.
    virtual void schedule(future_base& st) = 0;

    static void fire(done_node* dn, future_base& st) noexcept {
        auto* self = static_cast<callback_node*>(dn);
        if (st.done()) {  // else the future died unset: nothing to call
            try {
                self->schedule(st);
            } catch (...) {
                st.loop()->call_exception_handler({"cannot schedule a done callback", std::current_exception(), {}, {}});
            }
        }
        delete self;
    }
    /// Ids tell a removed callback's handle from a later callback allocated at the same
    /// address. Per thread, as a state is used on its loop's thread only.
    static std::uint64_t next_id() noexcept {
        static thread_local std::uint64_t id = 0;
        return ++id;
    }

    std::uint64_t id;
};

} // namespace detail

/// Identifies one done callback, for remove_done_callback: what add_done_callback returns.
///
/// asyncio removes callbacks by equality (`remove_done_callback(fn)`); C++ lambdas cannot be
/// compared, so each registration gets its own handle instead. A handle is a plain value
/// (copyable, comparable); it owns nothing, and using it after the callback ran, was removed,
/// or on another future is harmless (remove_done_callback then returns 0).
///
/// Example:
/// @code
///   auto h = t.add_done_callback([](coio::task<int> t) { log(t.result()); });
///   if (t.remove_done_callback(h) == 1) { /* it will not run */ }
/// @endcode
class done_callback_handle {
public:
    /// A handle that identifies no callback.
    done_callback_handle() noexcept = default;
    /// Same registration.
    friend bool operator==(const done_callback_handle&, const done_callback_handle&) noexcept = default;

    /// Internal: the node and its id (null and 0 for a callback scheduled at once).
    done_callback_handle(const detail::done_node* node, std::uint64_t id) noexcept : node_(node), id_(id) {}
    /// Internal: the node it was given for (never dereferenced unless still linked).
    [[nodiscard]] const detail::done_node* node() const noexcept { return node_; }
    /// Internal: the registration's id.
    [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

private:
    const detail::done_node* node_ = nullptr;
    std::uint64_t id_ = 0;
};

namespace detail {

/// add_done_callback for futures and tasks: `f(handle)` is scheduled with call_soon when
/// the state completes, as asyncio does; at once if it is done already (that registration
/// cannot be removed: the callback is already scheduled, as in asyncio).
template <class Handle, class State, class F>
done_callback_handle add_done_callback(State* s, F f) {
    event_loop* loop = s->loop();
    if (!loop) throw invalid_state_error("coio: the event loop of this future is gone");
    if (s->done()) {
        loop->call_soon([f = std::move(f), h = Handle(s)]() mutable { f(h); });
        return {};
    }
    struct node final : callback_node {
        explicit node(F&& fn) : f(std::move(fn)) {}
        void schedule(future_base& st) override {
            st.loop()->call_soon([f = std::move(f), h = Handle(static_cast<State*>(&st))]() mutable { f(h); });
        }
        F f;
    };
    auto* n = new node(std::move(f));
    s->add_done_node(n);
    return done_callback_handle(n, n->id);
}

/// remove_done_callback for futures and tasks: unlinks and frees the callback `h` names if
/// it is still linked to `s` (not yet scheduled). Returns how many were removed: 0 or 1.
inline std::size_t remove_done_callback(future_base* s, done_callback_handle h) noexcept {
    for (done_node* n = s->nodes_; n; n = n->next) {
        // Compare the address first: only a node still linked here is ever dereferenced.
        if (n != h.node() || n->on_done != &callback_node::fire) continue;
        auto* c = static_cast<callback_node*>(n);
        if (c->id != h.id()) return 0;  // a later callback reusing a freed node's address
        s->remove_done_node(n);
        delete c;
        return 1;
    }
    return 0;
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
    /// Schedules `f(future)` (with call_soon) once the future is done; at once if it is done.
    /// Callbacks run in the order they were added. A future destroyed unset frees its
    /// callbacks without calling them.
    /// Returns: a handle for remove_done_callback (it may be ignored).
    /// Example: `auto h = f.add_done_callback([](coio::future<int> f) { use(f.result()); });`
    template <class F>
    done_callback_handle add_done_callback(F f) { return detail::add_done_callback<future>(s_.get(), std::move(f)); }
    /// Removes the callback `h` names, unless it was already scheduled (the future is done)
    /// or removed (asyncio's remove_done_callback, with a handle for the callable: see
    /// done_callback_handle). The callback and what it captured are freed at once.
    /// Returns: the number of callbacks removed, 0 or 1.
    /// Example: `if (f.remove_done_callback(h) == 0) { /* it ran or will run */ }`
    std::size_t remove_done_callback(done_callback_handle h) noexcept { return detail::remove_done_callback(s_.get(), h); }

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
