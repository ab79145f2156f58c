// coio/scope_exit.hpp - coio::scope_exit: cleanup that runs on every way out of a scope
// (Python's `finally`), cancellation included.
//
//   coio::coro<void> serve(client& c, registry& r) {
//       r.add(&c);
//       coio::scope_exit unregister{[&] { r.remove(&c); }};   // runs on return, error, cancel
//       co_await c.talk();
//   }
#pragma once

#include <type_traits>
#include <utility>

namespace coio {

/// Runs a function when the scope that holds it ends, however it ends: a normal exit, a
/// `co_return`, an exception, and a cancellation (Python's `try: ... finally:`).
///
/// Why it matters in coio: cancellation arrives as coio::cancelled_error, which is on purpose
/// *not* a std::exception, so cleanup written in `catch (const std::exception&)` is skipped
/// when the task is cancelled (at shutdown, by a timeout, by a task_group whose sibling
/// failed). Destructors run on every path, so a scope guard cannot be skipped. It also runs
/// when the coroutine frame is destroyed without being resumed again (a pending coroutine
/// destroyed by its owner).
///
/// The function must not throw (it may run during unwinding) and cannot `co_await`: C++ has
/// no asynchronous destructors. For cleanup that must await, keep the error and await after
/// the try block (co_await is not allowed inside a catch handler):
/// @code
///   std::exception_ptr failure;
///   try { co_await work(); } catch (...) { failure = std::current_exception(); }  // cancelled_error too
///   co_await writer.wait_closed();   // asynchronous cleanup, on every path
///   if (failure) std::rethrow_exception(failure);
/// @endcode
///
/// @tparam F  a callable `void()`; a lambda is deduced: `coio::scope_exit g{[&] { ... }};`.
///
/// Cancellation: not an awaitable; it runs during the unwinding a cancellation causes.
///
/// Example:
/// @code
///   coio::coro<void> handle(coio::stream_reader r, coio::stream_writer w) {
///       ++connections;
///       coio::scope_exit count{[] { --connections; }};
///       while (!(co_await r.readline()).empty()) { ... }
///   }
/// @endcode
template <class F>
class [[nodiscard]] scope_exit {
    static_assert(std::is_nothrow_move_constructible_v<F> || std::is_copy_constructible_v<F>,
                  "coio::scope_exit: the function must be movable");

public:
    /// Holds `f` to be called when this object is destroyed.
    /// @param f  the cleanup; called at most once, with no arguments.
    explicit scope_exit(F f) noexcept(std::is_nothrow_move_constructible_v<F>) : f_(std::move(f)) {}
    /// Takes over `other`'s pending call (other is released).
    scope_exit(scope_exit&& other) noexcept(std::is_nothrow_move_constructible_v<F>)
        : f_(std::move(other.f_)), active_(std::exchange(other.active_, false)) {}
    scope_exit(const scope_exit&) = delete;
    scope_exit& operator=(const scope_exit&) = delete;
    scope_exit& operator=(scope_exit&&) = delete;
    /// Calls the function, unless release() was called.
    ~scope_exit() {
        if (active_) f_();
    }

    /// Cancels the call: the cleanup is no longer needed (a commit, for instance).
    /// Example: `guard.release();`
    void release() noexcept { active_ = false; }

private:
    F f_;
    bool active_ = true;
};

template <class F>
scope_exit(F) -> scope_exit<F>;

} // namespace coio
