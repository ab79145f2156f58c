// coio/task.hpp - coio::task<T>: a coroutine scheduled on the loop (asyncio.Task).
#pragma once

#include <coio/coro.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/future.hpp>
#include <coio/loop.hpp>

#include <cstddef>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace coio {

namespace detail {

template <class T>
class task_state final : public result_state<T, task_base> {
public:
    using handle_type = typename coro<T>::handle_type;

    task_state(event_loop* loop, handle_type h, coio::source_location where, bool schedule = true) noexcept
        : result_state<T, task_base>(loop, h, where, schedule) {}

    static void* operator new(std::size_t n) { return frame_pool::allocate(n); }
    static void operator delete(void* p, std::size_t n) noexcept { frame_pool::deallocate(p, n); }

    void bind_root() noexcept override {
        handle_type::from_address(this->resume_at_.address()).promise().bind_root(this);
    }

    void finish_root(std::coroutine_handle<> root) noexcept override {
        handle_type h = handle_type::from_address(root.address());
        auto& slot = h.promise().result;
        auto s = future_base::status::finished;
        // Never started: still at its initial suspend point (not done). The slot cannot tell:
        // result_slot<void> has no empty state.
        if (!h.done() || slot.empty() || this->cancel_requested_while_running()) {
            // Never started, or cancelled during its last step: asyncio marks such a task
            // cancelled even when the coroutine returned. A request that arrived while it
            // was suspended, and that its last await could not deliver without losing a
            // result (see task_base), came too late: the task keeps its value.
            s = future_base::status::cancelled;
        } else if (slot.has_exception()) {
            try {
                std::rethrow_exception(slot.exception());
            } catch (const cancelled_error&) {
                s = future_base::status::cancelled;
            } catch (...) {
            }
        }
        if (s == future_base::status::finished) this->result_ = std::move(slot);
        h.destroy();
        this->finish(s);
    }
};


/// The context in effect here: the running task's, else this thread's own (null: empty).
inline context_data* current_context() noexcept {
    event_loop* l = running_loop;
    if (task_base* t = l ? l->current_task_state() : nullptr) return t->context();
    return thread_context.get();
}
} // namespace detail

/// A coroutine running concurrently on the loop (asyncio.Task), created by
/// `coio::create_task` or `loop.create_task`.
///
/// A copyable handle to shared state. The loop keeps every pending task alive, so dropping
/// all handles does not stop or lose the task (no asyncio weak-reference pitfall). Any number
/// of tasks can `co_await` it; each gets a copy of the result (move-only results go to the
/// first awaiter).
///
/// Throws (co_await / result()): the task's exception; cancelled_error if it was cancelled;
/// result() and exception() throw invalid_state_error while it is not done.
///
/// Cancellation: `cancel()` makes the task's current await throw cancelled_error (the timer
/// is removed, the kernel operation cancelled, the queue waiter unlinked). The coroutine may
/// catch it to clean up. Cancelling a task that awaits this task cancels this task too.
///
/// Example:
/// @code
///   auto t = coio::create_task(take_order("Alice"), "alice");
///   co_await coio::sleep(100ms);
///   if (!t.done()) t.cancel();
///   try { co_await t; } catch (const coio::cancelled_error&) { std::puts("cancelled"); }
/// @endcode
template <class T = void>
class task {
public:
    /// An empty handle.
    task() noexcept = default;

    /// True when the task has finished (with a value, an exception, or cancelled).
    [[nodiscard]] bool done() const noexcept { return s_->done(); }
    /// True when the task ended cancelled.
    [[nodiscard]] bool cancelled() const noexcept { return s_->is_cancelled(); }
    /// Requests cancellation. Returns false, doing nothing, when the task is already done.
    bool cancel() noexcept { return s_->cancel(); }
    /// Number of pending cancellation requests (asyncio's `cancelling()`).
    [[nodiscard]] unsigned cancelling() const noexcept { return s_->cancelling(); }
    /// Decrements cancelling() (asyncio's `uncancel()`); returns the new count.
    unsigned uncancel() noexcept { return s_->uncancel(); }
    /// The value (a reference into the task's state; void for task<void>).
    /// Throws: see the class comment.
    decltype(auto) result() const { return s_->get_result(); }
    /// The exception the task ended with, or null.
    /// Throws: invalid_state_error if not done, cancelled_error if cancelled.
    [[nodiscard]] std::exception_ptr exception() const { return s_->get_exception(); }
    /// Schedules `f(task)` (with call_soon) once the task is done; at once if it is done.
    /// Callbacks run in the order they were added.
    /// Returns: a handle for remove_done_callback (it may be ignored).
    /// Example: `auto h = t.add_done_callback([](coio::task<int> t) { use(t.result()); });`
    template <class F>
    done_callback_handle add_done_callback(F f) { return detail::add_done_callback<task>(s_.get(), std::move(f)); }
    /// Removes the callback `h` names, unless it was already scheduled (the task is done) or
    /// removed (asyncio's remove_done_callback, with a handle for the callable: see
    /// done_callback_handle). The callback and what it captured are freed at once.
    /// Returns: the number of callbacks removed, 0 or 1.
    /// Example: `t.remove_done_callback(h);`
    std::size_t remove_done_callback(done_callback_handle h) noexcept { return detail::remove_done_callback(s_.get(), h); }
    /// The name ("Task-N" unless set).
    [[nodiscard]] std::string get_name() const { return s_->name(); }
    /// Renames the task.
    void set_name(std::string name) { s_->set_name(std::move(name)); }
    /// Where the task was created.
    [[nodiscard]] coio::source_location created_at() const noexcept { return s_->where(); }

    /// Waits for the task; gives its result or rethrows its exception.
    auto operator co_await() const noexcept { return detail::state_awaiter<T, detail::task_state<T>>(s_); }

    /// True when the handle refers to a task.
    explicit operator bool() const noexcept { return static_cast<bool>(s_); }
    /// True when both handles refer to the same task.
    friend bool operator==(const task& a, const task& b) noexcept { return a.s_ == b.s_; }

    /// Internal: the shared state.
    [[nodiscard]] detail::task_state<T>* state() const noexcept { return s_.get(); }
    /// Internal: wraps a state.
    explicit task(detail::task_state<T>* s) noexcept : s_(s) {}

private:
    detail::ref_ptr<detail::task_state<T>> s_;
};

namespace detail {

/// Awaits a task of any result type: the same protocol as state_awaiter (the awaiting task's
/// cancellation is forwarded to the target, and the await reports what the target ends with),
/// with the value dropped. Only await_resume differs, as the result slot's type is unknown:
/// keep it in step with state_awaiter::await_resume.
struct any_task_awaiter : state_awaiter<void, task_base> {
    using state_awaiter::state_awaiter;
    void await_resume() {
        if (state->is_cancelled()) {
            if (waiter && waiter->cancel_pending()) waiter->throw_cancel();
            throw cancelled_error();
        }
        if (waiter && waiter->cancel_pending()) {
            if (waiter->cancelling() > requests_at_done) waiter->throw_cancel();
            waiter->consume_cancel();
        }
        if (std::exception_ptr e = state->failure()) std::rethrow_exception(e);  // marks it retrieved
    }
};

} // namespace detail

/// A task of any result type: what `current_task()` and `all_tasks()` return.
///
/// It does what asyncio code does with a task whose type it does not know: inspect, name,
/// cancel, add done callbacks, and `co_await` it (the value is dropped; the exception or
/// cancellation is rethrown). Where a typed `task<T>` is expected (a `std::vector<task<void>>`
/// of clients, a `task<void>` parameter), it converts implicitly to `task<T>`, checked: the
/// task's coroutine must return exactly T (else invalid_state_error), as C++ keeps the result
/// type in the task's state, which asyncio does not have to. Templates that deduce their
/// argument's type (`gather(t)`, `wait_for(t, d)`, `shield(t)`) do not take an any_task,
/// whose result type is unknown: give them `coio::task<void>(t)`, or a range of task<T>.
///
/// Example:
/// @code
///   for (auto& t : coio::all_tasks()) std::cout << t.get_name() << '\n';
///   clients.push_back(coio::current_task());     // in each client: std::vector<coio::task<void>>
///   co_await coio::gather(clients);              // in their owner
/// @endcode
class any_task {
public:
    /// An empty handle (current_task() outside a task).
    any_task() noexcept = default;
    /// From a typed task.
    template <class T>
    any_task(const task<T>& t) noexcept : s_(t.state()) {}  // NOLINT: implicit on purpose
    /// Internal: wraps a state.
    explicit any_task(detail::task_base* s) noexcept : s_(s) {}

    /// The same task as a `task<T>`: implicit, so current_task() goes where a task<void> is
    /// expected. An empty handle gives an empty task.
    /// Throws: invalid_state_error when the task's coroutine does not return T.
    /// Example: `coio::task<void> me = coio::current_task();`
    template <class T>
    operator task<T>() const {  // NOLINT: implicit on purpose
        if (!s_) return task<T>();
        auto* typed = dynamic_cast<detail::task_state<T>*>(s_.get());
        if (!typed)
            throw invalid_state_error("coio: task '" + s_->name() +
                                      "' converted to a task<T> whose T is not its coroutine's result type");
        return task<T>(typed);
    }

    /// See task::done.
    [[nodiscard]] bool done() const noexcept { return s_->done(); }
    /// See task::cancelled.
    [[nodiscard]] bool cancelled() const noexcept { return s_->is_cancelled(); }
    /// See task::cancel.
    bool cancel() noexcept { return s_->cancel(); }
    /// See task::cancelling.
    [[nodiscard]] unsigned cancelling() const noexcept { return s_->cancelling(); }
    /// See task::uncancel.
    unsigned uncancel() noexcept { return s_->uncancel(); }
    /// See task::get_name.
    [[nodiscard]] std::string get_name() const { return s_->name(); }
    /// See task::set_name.
    void set_name(std::string name) { s_->set_name(std::move(name)); }
    /// See task::created_at.
    [[nodiscard]] coio::source_location created_at() const noexcept { return s_->where(); }
    /// What the task is suspended on ("sleep", "uring op", ...), or null when not waiting.
    [[nodiscard]] const char* waiting_on() const noexcept { return s_->waiting_on(); }
    /// The exception the task ended with, or null (marks it retrieved).
    /// Throws: invalid_state_error if not done, cancelled_error if cancelled.
    [[nodiscard]] std::exception_ptr exception() const {
        if (!s_->done()) throw invalid_state_error("coio: result is not set yet (the future/task is not done)");
        if (s_->is_cancelled()) throw cancelled_error();
        return s_->failure();
    }
    /// See task::add_done_callback; `f` is called with this any_task.
    template <class F>
    done_callback_handle add_done_callback(F f) { return detail::add_done_callback<any_task>(s_.get(), std::move(f)); }
    /// See task::remove_done_callback.
    std::size_t remove_done_callback(done_callback_handle h) noexcept { return detail::remove_done_callback(s_.get(), h); }

    /// Waits for the task; rethrows its exception, drops its value (convert to task<T> to
    /// get it). Awaiting the current task from itself never finishes.
    /// Throws: the task's exception; cancelled_error if it was cancelled.
    /// Cancellation: as awaiting a task<T>: cancelling the awaiting task cancels this one.
    /// Example: `for (auto& t : others) co_await t;`
    auto operator co_await() const noexcept { return detail::any_task_awaiter(s_); }

    /// True when the handle refers to a task.
    explicit operator bool() const noexcept { return static_cast<bool>(s_); }
    /// True when both handles refer to the same task.
    friend bool operator==(const any_task& a, const any_task& b) noexcept { return a.s_ == b.s_; }
    /// Same task (exact, so neither side has to convert).
    template <class T>
    friend bool operator==(const any_task& a, const task<T>& b) noexcept { return a.s_.get() == b.state(); }
    /// Internal: the shared state.
    [[nodiscard]] detail::task_base* state() const noexcept { return s_.get(); }

private:
    detail::ref_ptr<detail::task_base> s_;
};

/// Schedules `c` to run concurrently on the running loop (asyncio.create_task).
///
/// The task starts on the next loop iteration (or at once, with loop_options::eager_tasks:
/// see the task_options overload). `name` defaults to "Task-N"; it is anything a std::string
/// can be made from.
/// Returns: the task handle.
/// Throws: invalid_state_error with no running loop, or when `c` is empty or already awaited.
///
/// Cancellation: `task::cancel()`; a task cancelled before it started never runs its body.
///
/// Example: `auto t = coio::create_task(fetch(url), "fetch");`
template <class T, class Name>
    requires std::is_convertible_v<Name&&, std::string>
task<T> create_task(coro<T> c, Name&& name, coio::source_location where = coio::source_location::current()) {
    return get_running_loop().create_task(std::move(c), std::forward<Name>(name), where);
}

/// Creates a task from `c` on the running loop with `options`: a name, and eager start
/// (asyncio 3.12's `create_task(coro, eager_start=True)`; see coio::task_options).
///
/// With `.eager_start = true` the coroutine runs now, until its first suspension; when it
/// finishes without suspending, the returned task is already done and was never scheduled.
/// Returns: the task handle (done or pending).
/// Throws: invalid_state_error with no running loop, or when `c` is empty or already awaited.
/// An exception of the coroutine, even in its eager part, is stored in the task.
///
/// Cancellation: as any task's, once create_task has returned.
///
/// Example:
/// @code
///   auto t = coio::create_task(cached_lookup(key), {.name = "lookup", .eager_start = true});
///   if (t.done()) use(t.result());   // a cache hit: no loop iteration needed
/// @endcode
template <class T>
task<T> create_task(coro<T> c, const task_options& options, coio::source_location where = coio::source_location::current()) {
    return get_running_loop().create_task(std::move(c), options, where);
}

/// create_task(c) with default options: a task named "Task-N", started on the next loop
/// iteration (or eagerly, with loop_options::eager_tasks).
/// Returns: the task handle. Throws: as the other overloads. Cancellation: task::cancel().
/// Example: `auto t = coio::create_task(fetch(url));`
template <class T>
task<T> create_task(coro<T> c, coio::source_location where = coio::source_location::current()) {
    return get_running_loop().create_task(std::move(c), task_options{}, where);
}
/// The task running now, or an empty any_task outside a task (asyncio.current_task).
///
/// An any_task: the running coroutine's result type is not known here. It converts to the
/// task<T> it is (see any_task), e.g. `coio::task<void> me = coio::current_task();`.
[[nodiscard]] inline any_task current_task() noexcept {
    event_loop* l = detail::running_loop;
    return l && l->current_task_state() ? any_task(l->current_task_state()) : any_task();
}

/// Every task of the running loop that is not done yet (asyncio.all_tasks).
/// Throws: invalid_state_error with no running loop.
[[nodiscard]] inline std::vector<any_task> all_tasks() {
    event_loop& loop = get_running_loop();
    std::vector<any_task> out;
    for (auto* s = loop.live_states().front(); s; s = event_loop::live_list::next(s))
        if (s->is_task() && !s->done()) out.emplace_back(static_cast<detail::task_base*>(s));
    return out;
}

// ---- event_loop members that need task<T> ------------------------------------------

template <class T>
task<T> event_loop::create_task(coro<T> c, const task_options& options, coio::source_location where) {
    if (closed_) throw invalid_state_error("coio: create_task on a closed event loop");
    if (!c.valid()) throw invalid_state_error("coio: create_task of an empty or already awaited coro");
    // Eager only on the running loop's thread, as asyncio: a loop that does not run yet (or
    // another thread's) schedules it, and its first step runs on the loop as usual.
    const bool here = running_ && detail::running_loop == this;
    const bool eager = here && options.eager_start.value_or(options_.eager_tasks);
    // The creator's context (coio::context_var), shared copy-on-write: asyncio copies the
    // current context into every new task. In the common case (a task of this loop creates
    // it) one load from the running task, which is hot.
    detail::context_data* ctx = here && current_ ? current_->context() : detail::current_context();
    auto* s = new detail::task_state<T>(this, c.release(), where, !eager);
    task<T> t(s);
    try {
        if (!options.name.empty()) s->set_name(options.name);
        if (ctx) s->context_slot() = detail::ref_ptr<detail::context_data>(ctx);
    } catch (...) {
        if (eager) schedule(s);  // out of memory: it must still run (and be joined by close)
        throw;
    }
    if (eager) s->start_eagerly();
    return t;
}

template <class T>
T event_loop::run_until_complete(task<T> t) {
    run_until_done(*t.state());
    return t.state()->take_for_await();  // rethrows its exception / cancelled_error
}

template <class T>
T event_loop::run_until_complete(coro<T> c) {
    // Check before creating the task: a task left behind on a loop that cannot run leaks.
    if (closed_) throw invalid_state_error("coio: the event loop is closed");
    if (running_) throw invalid_state_error("coio: this event loop is already running");
    if (detail::running_loop)
        throw invalid_state_error("coio: cannot run an event loop while another loop is running in the same thread");
    return run_until_complete(create_task(std::move(c)));
}

namespace detail {
inline void finish_task_root(task_base* owner, std::coroutine_handle<> root) noexcept { owner->finish_root(root); }
} // namespace detail

} // namespace coio
