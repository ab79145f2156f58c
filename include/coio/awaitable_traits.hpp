// coio/awaitable_traits.hpp - what coio's combinators accept: coros, tasks and futures.
#pragma once

#include <coio/coro.hpp>
#include <coio/future.hpp>
#include <coio/task.hpp>

#include <coroutine>
#include <type_traits>
#include <utility>

namespace coio {

/// An awaiter: has await_ready, await_suspend and await_resume.
template <class A>
concept awaiter = requires(A& a, std::coroutine_handle<> h) {
    a.await_ready();
    a.await_suspend(h);
    a.await_resume();
};

namespace detail {
template <class A> struct awaitable_info {};
template <class A>
    requires awaiter<A>
struct awaitable_info<A> { using value = decltype(std::declval<A&>().await_resume()); };
template <class T> struct awaitable_info<coro<T>> { using value = T; using state = task_state<T>; };
template <class T> struct awaitable_info<task<T>> { using value = T; using state = task_state<T>; };
template <class T> struct awaitable_info<future<T>> { using value = T; using state = future_state<T>; };

template <class A> inline constexpr bool is_coro_v = false;
template <class T> inline constexpr bool is_coro_v<coro<T>> = true;
} // namespace detail

/// True for the types coio's combinators (gather, as_completed, wait_for, shield) accept:
/// `coro<T>` (scheduled as a task, as asyncio's ensure_future does), `task<T>`, `future<T>`.
template <class A>
concept awaitable_handle = requires { typename detail::awaitable_info<std::remove_cvref_t<A>>::state; };

/// An awaitable_handle or an awaiter: what `wait_for` accepts.
template <class A>
concept awaitable = requires { typename detail::awaitable_info<std::remove_cvref_t<A>>::value; };

/// The result type of awaiting A.
template <class A>
using await_result_t = typename detail::awaitable_info<std::remove_cvref_t<A>>::value;

namespace detail {

template <class A>
using state_of = typename awaitable_info<std::remove_cvref_t<A>>::state;

/// The shared state behind an awaitable: a coro becomes a task on the running loop.
template <class T>
ref_ptr<task_state<T>> to_state(coro<T>&& c) {
    return ref_ptr<task_state<T>>(get_running_loop().create_task(std::move(c)).state());
}
template <class T>
ref_ptr<task_state<T>> to_state(coro<T>& c) { return to_state(std::move(c)); }
template <class T>
ref_ptr<task_state<T>> to_state(const task<T>& t) { return ref_ptr<task_state<T>>(t.state()); }
template <class T>
ref_ptr<future_state<T>> to_state(const future<T>& f) { return ref_ptr<future_state<T>>(f.state()); }

/// `T`, or std::monostate for void, so results fit in tuples and vectors.
template <class T>
using non_void_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class State>
auto take_non_void(State& s) {
    using T = decltype(s.take_for_await());
    if constexpr (std::is_void_v<T>) { s.take_for_await(); return std::monostate{}; }
    else return s.take_for_await();
}

} // namespace detail
} // namespace coio
