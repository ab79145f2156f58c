// coio/coro.hpp - coio::coro<T>: a lazy coroutine (asyncio's coroutine object).
#pragma once

#include <coio/detail/core.hpp>
#include <coio/detail/frame_info.hpp>
#include <coio/errors.hpp>
#include <coio/outcome.hpp>

#include <coroutine>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

namespace coio {

namespace detail {
class task_base;

template <class T>
struct coro_result {
    result_slot<T> result;
    template <class U = T>
        requires std::is_convertible_v<U&&, T>
    void return_value(U&& v) { result.set_value(std::forward<U>(v)); }
};
template <class T>
struct coro_result<T&> {
    result_slot<T&> result;
    void return_value(T& v) noexcept { result.set_value(v); }
};
template <>
struct coro_result<void> {
    result_slot<void> result;
    void return_void() noexcept { result.set_value(); }
};

/// Why a coro cannot be awaited (kept out of line: the await of a ready coro is hot).
[[noreturn, gnu::noinline, gnu::cold]] inline void throw_bad_await(bool has_frame) {
    if (!has_frame) throw invalid_state_error("coio: awaiting an empty coro (moved from or default-constructed)");
    throw invalid_state_error("coio: a coro can be awaited only once");
}

/// Called by the final awaiter of a task's root coroutine (defined in task.hpp).
void finish_task_root(task_base* owner, std::coroutine_handle<> root) noexcept;
} // namespace detail

/// A coroutine returning T: asyncio's *coroutine object*.
///
/// Calling a function declared `coio::coro<T> f()` creates the coroutine but runs nothing
/// (it is lazy). `co_await f()` runs it inline, in the awaiting task, and gives its result
/// or rethrows its exception; `coio::create_task(f())` runs it concurrently as a task.
/// Control passes in and out by symmetric transfer, so chains of a million nested or
/// sequential awaits use no stack.
///
/// Move-only. A coro can be awaited (or turned into a task) once.
///
/// Throws (from `co_await`): invalid_state_error when the coro is empty (moved from) or was
/// already awaited; otherwise whatever the coroutine throws.
///
/// Cancellation: a coro has no cancellation of its own; it runs inside a task, and the
/// operation it is suspended in throws cancelled_error when that task is cancelled.
///
/// Example:
/// @code
///   coio::coro<int> answer() { co_await coio::sleep(10ms); co_return 42; }
///   coio::coro<void> main_() { int v = co_await answer(); }
/// @endcode
template <class T = void>
class [[nodiscard]] coro {
public:
    /// The type `co_await` produces.
    using value_type = T;

    /// The coroutine promise (not for direct use).
    struct promise_type : detail::frame_info, detail::coro_result<T> {
#if COIO_INTROSPECTION
        // The default arguments are evaluated where the compiler constructs the promise,
        // inside the coroutine: they name the coroutine function (see detail::frame_info).
        explicit promise_type(detail::frame_site_key = {}, const char* fn = __builtin_FUNCTION(),
                              const char* file = __builtin_FILE(), unsigned line = __builtin_LINE()) noexcept
            : frame_info(alignof(promise_type) <= 16 ? magic_coro : 0, fn, file, line) {}
#endif
        coro get_return_object() noexcept { return coro(handle_type::from_promise(*this)); }
        std::suspend_always initial_suspend() noexcept { return {}; }
        struct final_awaiter {
            bool await_ready() const noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
                const std::uintptr_t link = h.promise().link;
                if (link & root_tag) [[unlikely]] {  // the root of a task: it takes the result, frees the frame
                    detail::finish_task_root(reinterpret_cast<detail::task_base*>(link & ~root_tag), h);
                    return std::noop_coroutine();
                }
                return detail::transfer(std::coroutine_handle<>::from_address(reinterpret_cast<void*>(link)));
            }
            void await_resume() const noexcept {}
        };
        final_awaiter final_suspend() noexcept { return {}; }
        void unhandled_exception() noexcept { this->result.set_exception(std::current_exception()); }
        // Frames come from coio's recycling pool (see detail::frame_pool).
        static void* operator new(std::size_t n) { return detail::frame_pool::allocate(n); }
        static void operator delete(void* p, std::size_t n) noexcept { detail::frame_pool::deallocate(p, n); }

        /// Makes this frame the root of `task`: at its end the task takes the result.
        void bind_root(detail::task_base* task) noexcept { link = reinterpret_cast<std::uintptr_t>(task) | root_tag; }
        /// True once awaited (or bound to a task): a coro runs once.
        [[nodiscard]] bool started() const noexcept { return link != 0; }

        // `link` (in frame_info) is where control goes at the end, in one word (the frame of
        // every await carries it): 0 before the coro is awaited, then the awaiting coroutine's
        // frame address (the noop coroutine's once released), or, for the root of a task, the
        // task's address tagged with root_tag. Frames and task states are at least 8-byte
        // aligned: the low bit is free. It is also how a call graph walks up the frames.
    };
    /// The coroutine handle type.
    using handle_type = std::coroutine_handle<promise_type>;

    /// An empty coro (awaiting it throws invalid_state_error).
    coro() noexcept = default;
    /// Takes over `o`'s coroutine; `o` becomes empty.
    coro(coro&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    /// Takes over `o`'s coroutine, destroying the one held before (if never run, unstarted).
    coro& operator=(coro o) noexcept { std::swap(h_, o.h_); return *this; }
    ~coro() {
        if (h_) {
#if COIO_INTROSPECTION
            // Never awaited nor made a task: debug mode reports it (asyncio's "coroutine ...
            // was never awaited"). One load of a word the frame's owner touches anyway.
            if (!h_.promise().started()) [[unlikely]]
                if (auto report = detail::never_awaited_hook.load(std::memory_order_relaxed)) report(h_.promise());
#endif
            h_.destroy();
        }
    }

    /// True when the coro holds a coroutine that has not been awaited yet.
    [[nodiscard]] bool valid() const noexcept { return h_ && !h_.promise().started(); }

    /// The awaiter: runs the coroutine inline, resuming the awaiter when it finishes.
    struct awaiter {
        handle_type h;  ///< The coroutine to run.
        bool await_ready() const {
            if (!h || h.promise().started()) [[unlikely]] detail::throw_bad_await(static_cast<bool>(h));
            return false;
        }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
            h.promise().link = reinterpret_cast<std::uintptr_t>(awaiting.address());
            return detail::transfer(h);  // no stack growth however deep the chain
        }
        T await_resume() { return h.promise().result.take(); }
    };
    /// `co_await c` / `co_await f()`: runs it; gives its result or rethrows.
    awaiter operator co_await() & noexcept { return awaiter{h_}; }
    /// `co_await std::move(c)`: the same.
    awaiter operator co_await() && noexcept { return awaiter{h_}; }

    /// Gives up ownership of the frame (used by create_task). Whoever resumes the handle gets
    /// control back when the coroutine ends, and must destroy() it then.
    [[nodiscard]] handle_type release() noexcept {
        if (h_ && !h_.promise().started())
            h_.promise().link = reinterpret_cast<std::uintptr_t>(std::noop_coroutine().address());
        return std::exchange(h_, {});
    }

private:
    explicit coro(handle_type h) noexcept : h_(h) {}
    handle_type h_;
};

} // namespace coio
