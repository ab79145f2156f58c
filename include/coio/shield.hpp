// coio/shield.hpp - coio::shield (asyncio.shield).
#pragma once

#include <coio/awaitable_traits.hpp>
#include <coio/future.hpp>

#include <utility>

namespace coio {

/// Awaits `aw` but protects it from the awaiting task's cancellation (asyncio.shield).
///
/// A coro is scheduled as a task. If the awaiting task is cancelled, the `co_await` throws
/// cancelled_error at once while the shielded task keeps running to completion; awaiting it
/// again (keep a task handle) gets its result.
///
/// Returns: aw's result. Throws: aw's exception; cancelled_error as described.
///
/// Example:
/// @code
///   auto save = coio::create_task(write_journal());
///   co_await coio::shield(save);   // a cancel of this task does not interrupt the write
/// @endcode
template <class A>
    requires awaitable_handle<A>
[[nodiscard]] auto shield(A&& aw) {
    using S = detail::state_of<A>;
    return detail::state_awaiter<await_result_t<A>, S, true>(detail::to_state(std::forward<A>(aw)));
}

} // namespace coio
