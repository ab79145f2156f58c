// coio/task_group.hpp - coio::task_group (asyncio.TaskGroup) and coio::exception_group
// (Python's ExceptionGroup).
#pragma once

#include <coio/coro.hpp>
#include <coio/detail/intrusive_list.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/task.hpp>

#include <cxxabi.h>

#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace coio {

/// Several exceptions raised together (Python's ExceptionGroup): what a task_group throws
/// when its tasks (or its body) fail. Even a single failure is wrapped, as Python does, so
/// callers handle one type.
///
/// what() lists every exception: its type and its what(). Cancellations are never part of
/// a group. A group may hold groups (a task_group inside a task_group's task).
///
/// Python's `except*` is coio::handle_group (below); split<E>() and subgroup<E>() are
/// Python's methods of the same names.
///
/// Example:
/// @code
///   try { co_await coio::task_group::run(body); }
///   catch (const coio::exception_group& eg) {
///       for (const auto& e : eg.exceptions()) log(e);
///       if (auto* io = eg.find<std::system_error>()) retry_later(io->code());
///   }
/// @endcode
class exception_group : public error {
public:
    /// A group of `errors` (in the order they occurred) with a summary `message`.
    explicit exception_group(std::vector<std::exception_ptr> errors,
                             const std::string& message = "unhandled errors in a task_group")
        : error(describe(message, errors)), errors_(std::move(errors)), message_(message) {}

    /// The exceptions, in the order they occurred.
    [[nodiscard]] const std::vector<std::exception_ptr>& exceptions() const noexcept { return errors_; }
    /// How many exceptions the group holds (a nested group counts as one).
    [[nodiscard]] std::size_t size() const noexcept { return errors_.size(); }
    /// The summary message the group was made with (Python's `message`; what() adds the list).
    [[nodiscard]] const std::string& message() const noexcept { return message_; }
    /// The first exception of type E (or derived from it), or null. The pointer stays valid
    /// as long as the group.
    template <class E>
    [[nodiscard]] const E* find() const noexcept {
        for (const auto& p : errors_) {
            try {
                std::rethrow_exception(p);
            } catch (const E& e) {
                return &e;
            } catch (...) {
            }
        }
        return nullptr;
    }

    /// Splits the group by exception type (Python's `split`): `first` holds the exceptions
    /// of type E (or derived from it), `second` the others; either is empty (nullopt) when
    /// nothing is left for it. Both keep the message, the order and the nesting: a nested
    /// group is split the same way, and appears on each side that receives some of it.
    ///
    /// Groups are containers, not leaves: a group matches as a whole only when E is
    /// exception_group or derives from it (then `*this` itself may match). So split of
    /// std::runtime_error gives the runtime_errors inside, even though exception_group is
    /// itself a std::runtime_error (only so that what() works as usual).
    ///
    /// Example:
    /// @code
    ///   auto [io, rest] = eg.split<std::system_error>();
    ///   if (io) retry(*io);
    ///   if (rest) throw *rest;
    /// @endcode
    template <class E>
    [[nodiscard]] std::pair<std::optional<exception_group>, std::optional<exception_group>> split() const {
        if constexpr (std::is_same_v<E, exception_group>) {
            return {*this, std::nullopt};
        } else if constexpr (std::is_base_of_v<exception_group, E>) {
            if (dynamic_cast<const E*>(static_cast<const exception_group*>(this)) != nullptr) return {*this, std::nullopt};
        }
        std::vector<std::exception_ptr> match;
        std::vector<std::exception_ptr> rest;
        for (const auto& p : errors_) {
            if (matches<E>(p)) {
                match.push_back(p);
            } else if (const exception_group* g = as_group(p)) {
                auto [m, r] = g->split<E>();
                if (m) match.push_back(std::make_exception_ptr(std::move(*m)));
                if (r) rest.push_back(std::make_exception_ptr(std::move(*r)));
            } else {
                rest.push_back(p);
            }
        }
        auto group = [this](std::vector<std::exception_ptr>&& v) {
            return v.empty() ? std::nullopt : std::optional<exception_group>(std::in_place, std::move(v), message_);
        };
        return {group(std::move(match)), group(std::move(rest))};
    }
    /// The exceptions of type E (Python's `subgroup`): `split<E>().first`.
    /// Example: `if (auto io = eg.subgroup<std::system_error>()) log(io->what());`
    template <class E>
    [[nodiscard]] std::optional<exception_group> subgroup() const {
        return split<E>().first;
    }

    /// Internal: true when `p` holds an E, a group counting only for a group type E (see split).
    template <class E>
    [[nodiscard]] static bool matches(const std::exception_ptr& p) noexcept {
        try {
            std::rethrow_exception(p);
        } catch (const exception_group& g) {
            if constexpr (std::is_base_of_v<exception_group, E>) return dynamic_cast<const E*>(&g) != nullptr;
            else return false;
        } catch (...) {
        }
        if constexpr (std::is_base_of_v<exception_group, E>) {
            return false;
        } else {
            try {
                std::rethrow_exception(p);
            } catch (const E&) {
                return true;
            } catch (...) {
            }
            return false;
        }
    }
    /// Internal: the group `p` holds, or null. Valid as long as `p`.
    [[nodiscard]] static const exception_group* as_group(const std::exception_ptr& p) noexcept {
        try {
            std::rethrow_exception(p);
        } catch (const exception_group& g) {
            return &g;
        } catch (...) {
        }
        return nullptr;
    }

private:
    static std::string type_name(const std::type_info& t) {
        int status = 0;
        std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(t.name(), nullptr, nullptr, &status), std::free);
        return status == 0 && d ? std::string(d.get()) : std::string(t.name());
    }
    static std::string describe(const std::string& message, const std::vector<std::exception_ptr>& errors) {
        std::string s = message + " (" + std::to_string(errors.size()) +
                        (errors.size() == 1 ? " sub-exception)" : " sub-exceptions)");
        std::size_t i = 0;
        for (const auto& p : errors) {
            s += i == 0 ? ": " : "; ";
            s += "[" + std::to_string(++i) + "] ";
            try {
                std::rethrow_exception(p);
            } catch (const std::exception& e) {
                s += type_name(typeid(e)) + ": " + e.what();
            } catch (const cancelled_error& e) {
                s += e.what();
            } catch (...) {
                s += "unknown exception";
            }
        }
        return s;
    }

    std::vector<std::exception_ptr> errors_;
    std::string message_;
};

namespace detail {

/// The exception type a handle_group handler takes: E from `R (const E&)`.
/// (Generic lambdas have no single parameter type: handlers must name theirs.)
/// @cond
template <class F> struct handler_arg : handler_arg<decltype(&std::remove_cvref_t<F>::operator())> {};
template <class F> struct handler_arg<F*const> : handler_arg<F*> {};
template <class R, class A> struct handler_arg<R(A)> { using type = A; };
template <class R, class A> struct handler_arg<R(A) noexcept> { using type = A; };
template <class R, class A> struct handler_arg<R (*)(A)> { using type = A; };
template <class R, class A> struct handler_arg<R (*)(A) noexcept> { using type = A; };
template <class C, class R, class A> struct handler_arg<R (C::*)(A)> { using type = A; };
template <class C, class R, class A> struct handler_arg<R (C::*)(A) const> { using type = A; };
template <class C, class R, class A> struct handler_arg<R (C::*)(A) noexcept> { using type = A; };
template <class C, class R, class A> struct handler_arg<R (C::*)(A) const noexcept> { using type = A; };
/// @endcond

/// Calls `f(e)` for every E in `g` (nested groups walked in order).
template <class E, class F>
void for_each_in_group(const exception_group& g, F& f) {
    for (const auto& p : g.exceptions()) {
        if (exception_group::matches<E>(p)) {
            try {
                std::rethrow_exception(p);
            } catch (const E& e) {
                f(e);
            }
        } else if (const exception_group* inner = exception_group::as_group(p)) {
            for_each_in_group<E>(*inner, f);
        }
    }
}

/// One `except*` clause: takes the handler's exceptions out of `rest` and hands them to it,
/// one at a time; what the handler throws is collected in `raised`.
template <class H>
void handle_clause(std::optional<exception_group>& rest, std::vector<std::exception_ptr>& raised, H& handler) {
    using arg = typename handler_arg<H>::type;
    static_assert(std::is_reference_v<arg>, "coio::handle_group: a handler takes its exception by reference (const E&)");
    using E = std::remove_cvref_t<arg>;
    if (!rest) return;
    auto [match, left] = rest->template split<E>();
    rest = std::move(left);
    if (!match) return;
    auto call = [&](const E& e) {
        try {
            handler(const_cast<arg>(e));  // a handler may take E& (as `catch (E& e)` may)
        } catch (...) {
            raised.push_back(std::current_exception());
        }
    };
    for_each_in_group<E>(*match, call);
}

} // namespace detail

/// Handles the exceptions of a group by type, and rethrows what no handler took (Python's
/// `except*`): a failure of a kind nobody expected is never dropped by accident.
///
/// Each handler is a callable taking one exception by reference, `(const E&)`; they work as
/// `except*` clauses, in order: the first handler is called once for each exception of its
/// type E (or derived) in the group, nested groups included, then the second handler for each
/// of its type among those left, and so on. Groups are walked, not matched, unless a
/// handler's E is exception_group itself (see exception_group::split).
///
/// Then, as Python does: if every exception was handled and no handler threw, it returns.
/// Otherwise it throws an exception_group with `eg`'s message: the unhandled ones alone (same
/// order and nesting) if no handler threw; else what the handlers threw, followed by the
/// group of unhandled ones.
///
/// Throws: exception_group, as above.
///
/// Cancellation: not a suspension point; cancellations are never in a group.
///
/// Example:
/// @code
///   try { co_await coio::task_group::run(body); }
///   catch (const coio::exception_group& eg) {
///       coio::handle_group(eg,
///           [](const std::system_error& e) { log("I/O", e.code()); },
///           [](const std::invalid_argument& e) { log("bad input", e.what()); });
///       // anything else (a std::logic_error, a bug) is rethrown, in an exception_group
///   }
/// @endcode
template <class... Handlers>
void handle_group(const exception_group& eg, Handlers&&... handlers) {
    std::optional<exception_group> rest(eg);
    std::vector<std::exception_ptr> raised;
    (detail::handle_clause(rest, raised, handlers), ...);
    if (raised.empty()) {
        if (rest) throw *std::move(rest);
        return;
    }
    if (rest) raised.push_back(std::make_exception_ptr(*std::move(rest)));
    throw exception_group(std::move(raised), eg.message());
}

/// handle_group for any exception, as `catch (...)` gives it: a group is handled as above; a
/// single exception (Python's "naked" exception) goes to the first handler of its type, and
/// is rethrown unchanged if there is none (a cancelled_error, for instance).
///
/// Throws: the unhandled exception unchanged; exception_group when a handler threw (what it
/// threw), or as handle_group(const exception_group&, ...) for a group.
///
/// Example:
/// @code
///   catch (...) {
///       coio::handle_group(std::current_exception(),
///           [](const coio::timeout_error&) { std::puts("slow"); });
///   }
/// @endcode
template <class... Handlers>
void handle_group(const std::exception_ptr& e, Handlers&&... handlers) {
    if (const exception_group* g = exception_group::as_group(e)) return handle_group(*g, handlers...);
    if (!e) return;
    exception_group one({e}, "");
    std::optional<exception_group> rest(one);
    std::vector<std::exception_ptr> raised;
    (detail::handle_clause(rest, raised, handlers), ...);
    if (!raised.empty()) throw exception_group(std::move(raised), "");
    if (rest) std::rethrow_exception(e);
}

namespace detail {

/// Shared state of a task group: its children, their failures, the owner task. Reference
/// counted (non-atomic, one loop): held by task_group::run's frame and by every task_group
/// handle, so a handle kept past the join reports "finished" instead of dangling.
class task_group_state : public cancel_hook {
public:
    explicit task_group_state(task_base* owner) noexcept : owner_(owner) {
        what = "task_group join";
        inspect = [](const cancel_hook* h, wait_info& w) {
            auto* self = static_cast<const task_group_state*>(h);
            for (child* c = self->children_.front(); c; c = intrusive_list<child>::next(c))
                if (!c->task->done()) w.awaits.push_back(c->task.get());
            w.detail = std::to_string(w.awaits.size()) + " tasks";
        };
    }
    task_group_state(const task_group_state&) = delete;
    task_group_state& operator=(const task_group_state&) = delete;
    ~task_group_state() {
        // Normally empty: run() returns only after every child finished.
        while (child* c = children_.pop_front()) {
            c->task->remove_done_node(c);
            delete c;
        }
    }

    void add_ref() noexcept { ++refs_; }
    void release() noexcept { if (--refs_ == 0) delete this; }

    template <class T>
    task<T> create(coro<T> c, const task_options& options, coio::source_location where) {
        if (finished_) throw invalid_state_error("coio: this task_group is finished (used after its join)");
        if (aborting_) throw invalid_state_error("coio: this task_group is shutting down (a task failed or it was cancelled)");
        if (!owner_->loop()) throw invalid_state_error("coio: the event loop of this task_group is gone");
        auto node = std::make_unique<child>();  // before the task: no unsupervised child on bad_alloc
        task<T> t = owner_->loop()->create_task(std::move(c), options, where);
        child* ch = node.release();
        ch->group = this;
        ch->task = ref_ptr<future_base>(t.state());
        ch->on_done = [](done_node* n, future_base& f) noexcept {
            auto* c = static_cast<child*>(n);
            c->group->child_done(c, f);
        };
        children_.push_back(ch);
        // An eager task may be done already: it is accounted for now (asyncio's TaskGroup
        // does the same), as its done node would never fire.
        if (t.state()->done()) child_done(ch, *t.state());
        else t.state()->add_done_node(ch);
        return t;
    }

    /// Cancels every child still running (asyncio's _abort).
    void abort() noexcept {
        aborting_ = true;
        for (child* c = children_.front(); c; c = children_.next(c))
            if (!c->task->done()) c->task->cancel();
    }

    // ---- the join, awaited by run() ------------------------------------------------------
    bool await_ready() const noexcept { return children_.empty(); }
    /// Children not finished yet.
    [[nodiscard]] std::size_t size() const noexcept { return children_.size(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        // Uncancellable: children may still use what the owner lent them, so the owner waits
        // for all of them even when cancelled; a cancellation only aborts the children.
        on_cancel = [](cancel_hook* hook) noexcept {
            auto* self = static_cast<task_group_state*>(hook);
            self->owner_cancelled_ = true;
            self->abort();
        };
        owner_->begin_wait_uncancellable(h, this);
        waiting_ = true;
        // A cancellation that arrived before the join (and was not our own request) counts
        // as the owner being cancelled now.
        if (owner_->cancel_pending() && owner_->cancelling() > (parent_cancel_requested_ ? 1u : 0u)) {
            owner_cancelled_ = true;
            abort();
        }
        return true;
    }
    void await_resume() noexcept { waiting_ = false; }

    task_base* owner_;
    bool joining_ = false;
    bool finished_ = false;
    bool aborting_ = false;
    bool owner_cancelled_ = false;          // cancelled from outside during the join
    bool parent_cancel_requested_ = false;  // we cancelled the owner after a child failed
    std::vector<std::exception_ptr> errors_;
    std::exception_ptr base_error_;         // the first error that is rethrown as itself

    /// Errors that are not std::exceptions (nor cancellations) end the program's normal flow
    /// (keyboard_interrupt): they are rethrown as themselves, never wrapped in a group.
    static bool is_base_error(const std::exception_ptr& p) noexcept {
        try {
            std::rethrow_exception(p);
        } catch (const std::exception&) {
            return false;
        } catch (const cancelled_error&) {
            return false;
        } catch (...) {
            return true;
        }
    }

private:
    // A child is linked twice: in its task's subscribers (done_node) and in the group.
    struct child : done_node, list_hook<> {
        task_group_state* group = nullptr;
        ref_ptr<future_base> task;
    };

    // Runs inside the child's completion (never resumes anything inline).
    void child_done(child* c, future_base& f) noexcept {
        children_.remove(c);
        if (f.failed() && !f.is_cancelled()) {
            errors_.push_back(f.failure());  // retrieved: not reported as "never retrieved"
            if (!base_error_ && is_base_error(errors_.back())) base_error_ = errors_.back();
            if (!aborting_) {
                abort();
                // Interrupt whatever the owner's body is awaiting, as asyncio does; not when
                // the owner is already joining (it only waits for the children then).
                if (!joining_ && !parent_cancel_requested_) {
                    parent_cancel_requested_ = true;
                    owner_->cancel();
                }
            }
        }
        add_ref();  // deleting the node drops a task reference; keep ourselves alive meanwhile
        delete c;
        if (children_.empty() && waiting_) owner_->wake();
        release();
    }

    intrusive_list<child> children_;
    std::uint32_t refs_ = 0;
    bool waiting_ = false;
};

template <class C>
struct coro_value {};
template <class T>
struct coro_value<coro<T>> {
    using type = T;
};

} // namespace detail

/// Structured concurrency (asyncio.TaskGroup): tasks created in a group are all finished when
/// the group's scope ends, and the first failure cancels the rest.
///
/// A C++ destructor cannot co_await, so a group exists only inside task_group::run: the body
/// receives the group, and run() returns only after the body and every task of the group
/// have finished. Forgetting to join is therefore impossible, and nothing ever blocks in a
/// destructor or drops a running child.
///
/// Semantics, as asyncio.TaskGroup:
///  - The first task that fails (an exception other than a cancellation) cancels every other
///    task of the group and the owner's current await inside the body (which then throws
///    cancelled_error there); the group still waits for all of them.
///  - An exception escaping the body also counts as a failure and cancels the tasks.
///  - Then run() throws an exception_group holding every failure (tasks first, in the order
///    they failed, then the body's), even a single one.
///  - Cancelling the owner task cancels every task of the group; run() waits for them and then
///    throws cancelled_error (timeout_error when the cancellation came from a timeout, e.g.
///    `wait_for(task_group::run(...), 5s)`), unless tasks failed: errors take precedence.
///    Consequently a timeout_error escaping the body is treated like a cancellation too, not
///    wrapped in a group. When the owner was cancelled from outside and tasks failed, the
///    exception_group is thrown and the cancellation stays pending: the owner's next await
///    throws it (Python 3.13 re-arms it the same way).
///  - An exception that is not a std::exception nor a cancellation (coio::keyboard_interrupt,
///    or any such control exception of the program, like Python's KeyboardInterrupt and
///    SystemExit) is not wrapped: once every task has finished, run() rethrows the first one
///    as itself.
///  - Tasks may be created while the group runs, also from its tasks; after the join
///    (a task_group handle kept past run()) or while it is aborting, create_task throws
///    invalid_state_error.
///  - The loop holds each task strongly (no asyncio weak-reference pitfall).
///
/// task_group is a cheap copyable handle; not thread-safe.
///
/// Example:
/// @code
///   co_await coio::task_group::run([&](coio::task_group& tg) -> coio::coro<void> {
///       auto a = tg.create_task(fetch("a"));
///       tg.create_task(fetch("b"));
///       co_return;                               // run() waits for both
///   });
/// @endcode
class task_group {
public:
    /// Runs `body(group)` inline in the calling task, then waits for every task created in the
    /// group (asyncio's `async with TaskGroup() as tg:`).
    ///
    /// @param body  a callable taking `task_group&` and returning `coro<R>` (typically a
    ///              lambda); it is stored in run's frame, so a temporary lambda is safe.
    /// Returns (from co_await): the body's result.
    /// Throws: exception_group with every failure; cancelled_error / timeout_error when the
    /// owner was cancelled and no task failed; invalid_state_error outside a task.
    ///
    /// Cancellation: see the class comment; run() always waits for the group's tasks.
    ///
    /// Example: `int n = co_await coio::task_group::run([&](auto& tg) -> coio::coro<int> { ... co_return 3; });`
    template <class F>
    [[nodiscard]] static auto run(F body)
        -> coro<typename detail::coro_value<std::invoke_result_t<F&, task_group&>>::type> {
        using R = typename detail::coro_value<std::invoke_result_t<F&, task_group&>>::type;
        task_group tg(new detail::task_group_state(&detail::require_current_task()));
        detail::task_group_state& st = *tg.s_;
        std::exception_ptr body_error;
        bool body_cancelled = false;
        std::optional<std::conditional_t<std::is_void_v<R>, char, R>> result;
        try {
            if constexpr (std::is_void_v<R>) co_await body(tg);
            else result.emplace(co_await body(tg));
        } catch (const cancelled_error&) {
            body_error = std::current_exception();
            body_cancelled = true;
        } catch (const timeout_error&) {
            body_error = std::current_exception();
            body_cancelled = true;
        } catch (...) {
            body_error = std::current_exception();
        }
        st.joining_ = true;
        if (body_error && !st.aborting_) st.abort();
        co_await st;
        st.finished_ = true;

        bool propagate = body_cancelled || st.owner_cancelled_;
        if (st.parent_cancel_requested_) {
            // We cancelled the owner ourselves (asyncio's uncancel()): unless someone else
            // cancelled it too, our request is withdrawn, delivered or not.
            if (st.owner_->uncancel() == 0) {
                propagate = false;
                if (st.owner_->cancel_pending()) {
                    try {
                        st.owner_->throw_cancel();  // consumes the undelivered request
                    } catch (...) {
                    }
                }
            }
        }
        std::vector<std::exception_ptr> errors = std::move(st.errors_);
        if (body_error && !body_cancelled) {
            errors.push_back(body_error);
            if (!st.base_error_ && detail::task_group_state::is_base_error(body_error)) st.base_error_ = body_error;
        }
        if (st.base_error_) std::rethrow_exception(st.base_error_);
        if (!errors.empty()) {
            // Cancelled from outside too: the group's errors win, but the cancellation must
            // not be lost. Re-arm it (count unchanged) for the owner's next await.
            if (st.owner_->cancelling() > 0) {
                st.owner_->uncancel();
                st.owner_->cancel();
            }
            throw exception_group(std::move(errors));
        }
        if (propagate) {
            if (body_cancelled) std::rethrow_exception(body_error);
            st.owner_->throw_cancel();  // cancelled during the join: still pending
        }
        if constexpr (!std::is_void_v<R>) co_return std::move(*result);
    }

    /// Schedules `c` as a task of this group (asyncio's `tg.create_task`).
    /// Returns: the task handle (awaiting it is optional: the group waits anyway).
    /// Throws: invalid_state_error when the group is finished or shutting down (the coro is
    /// then destroyed without running).
    /// Example: `auto t = tg.create_task(fetch(url), "fetch");`
    template <class T, class Name>
        requires std::is_convertible_v<Name&&, std::string>
    task<T> create_task(coro<T> c, Name&& name, coio::source_location where = coio::source_location::current()) {
        return s_->create(std::move(c), task_options{std::string(std::forward<Name>(name)), std::nullopt}, where);
    }
    /// Creates a task in the group with `options` (a name, eager start: see
    /// coio::task_options). An eager task that fails before its first suspension cancels the
    /// group's other tasks and the body at once, as a failure would a moment later.
    /// Returns: the task. Throws: as the other overload.
    /// Cancellation: as the other overload.
    /// Example: `auto t = tg.create_task(probe(host), {.eager_start = true});`
    template <class T>
    task<T> create_task(coro<T> c, const task_options& options, coio::source_location where = coio::source_location::current()) {
        return s_->create(std::move(c), options, where);
    }
    /// Creates a task named "Task-N" in the group. Returns: the task. Throws, Cancellation:
    /// as the other overloads. Example: `tg.create_task(fetch(url));`
    template <class T>
    task<T> create_task(coro<T> c, coio::source_location where = coio::source_location::current()) {
        return s_->create(std::move(c), task_options{}, where);
    }

    /// Tasks of the group that have not finished yet.
    [[nodiscard]] std::size_t size() const noexcept { return s_->size(); }
    /// True once the group has been joined (create_task then throws).
    [[nodiscard]] bool finished() const noexcept { return s_->finished_; }

private:
    explicit task_group(detail::task_group_state* s) noexcept : s_(s) {}
    detail::ref_ptr<detail::task_group_state> s_;
};

} // namespace coio
