// coio/call_graph.hpp - coio::capture_call_graph, format_call_graph and print_call_graph
// (Python 3.14's asyncio.capture_call_graph / format_call_graph / print_call_graph).
//
// What a suspended task is doing, for debugging hangs: the chain of coroutines it is
// suspended in (innermost first), what its innermost await waits on, and the tasks that
// await it. event_loop::dump_tasks prints every pending task of a loop as a tree, and
// loop_options::dump_signal (or COIO_DUMP_SIGNAL=USR1) makes a running program print it
// on a signal.
#pragma once

#include <coio/detail/core.hpp>

#include <concepts>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace coio {

namespace detail {
class task_base;
}

/// One coroutine frame of a call graph's call stack.
///
/// `function` and `location` name the coroutine function, captured when the coroutine was
/// created (the location is its definition: with GCC the closing brace, with Clang the
/// declaration line). Neither is where inside the function the frame is suspended: C++
/// coroutines do not record that, and capturing it at every await would cost the hot path.
///
/// Example: `for (auto& f : g.call_stack) std::cout << f.function << '\n';`
struct call_frame {
    /// The coroutine function's unqualified name, e.g. "fetch_page".
    std::string function;
    /// The file and line of the coroutine function.
    coio::source_location location;
    /// True for an async_generator's body, false for a coro.
    bool async_generator = false;
};

/// A snapshot of one task: where it is suspended, on what, and who awaits it (Python's
/// asyncio.FutureCallGraph). A plain value: it stays valid after the task is gone.
///
/// Example:
/// @code
///   coio::call_graph g = coio::capture_call_graph(t);
///   if (g.waiting_on == "sleep") std::cout << g.name << " sleeps in " << g.call_stack[0].function;
/// @endcode
struct call_graph {
    /// Where the task stands.
    enum class state : std::uint8_t {
        pending,  ///< created, its coroutine has not started yet
        ready,    ///< scheduled to resume on the next loop iteration
        running,  ///< running now (the task that captured the graph); no call stack
        waiting,  ///< suspended in an await (waiting_on says which)
        done,     ///< finished, failed or cancelled
    };
    /// The task's name ("Task-N" unless set).
    std::string name;
    /// The task's number, unique on its thread (Python prints the object's address).
    std::uint32_t id = 0;
    /// Where the task was created (create_task's caller).
    coio::source_location created_at;
    /// See state.
    state status = state::pending;
    /// The kind of the innermost await: "sleep", "recv", "queue get", "lock", "event",
    /// "future" (a task or future), "gather", "task_group join", "dns lookup", ...; empty
    /// unless status is waiting.
    std::string waiting_on;
    /// Details of that await when it has some: "fd 7", "0.093 s left (of 10.000 s)",
    /// "task 'worker-1'", "3 children, 2 pending". May be empty.
    std::string wait_detail;
    /// The coroutines the task is suspended in, innermost first, down to the task's root
    /// coroutine. Empty while it runs or once it is done.
    std::vector<call_frame> call_stack;
    /// The tasks waiting for this one (through co_await of it, gather, task_group's join,
    /// shield, wait_for, ...), each with its own graph, recursively.
    std::vector<call_graph> awaited_by;
};

namespace detail {
/// Anything that names a task: coio::task<T>, coio::any_task.
template <class Task>
concept task_handle = requires(const Task& t) {
    { t.state() } -> std::convertible_to<const task_base*>;
};
[[nodiscard]] call_graph capture_graph(const task_base& t);
[[nodiscard]] call_graph capture_current_graph();
} // namespace detail

/// Captures the call graph of `t` (asyncio.capture_call_graph(t)).
///
/// Params: `t` - a task<T> or any_task, of the loop running on this thread (or of a loop
/// that is not running: then nothing changes under the walk either).
/// Returns: the graph; `call_stack` is empty when the task is running or done.
/// Throws: std::bad_alloc only. Never resumes or changes anything.
///
/// Cancellation: none; it does not suspend.
///
/// Example:
/// @code
///   auto t = coio::create_task(worker(), "worker-1");
///   co_await coio::sleep(100ms);
///   coio::call_graph g = coio::capture_call_graph(t);   // g.waiting_on == "sleep"
/// @endcode
template <detail::task_handle Task>
[[nodiscard]] call_graph capture_call_graph(const Task& t) {
    return detail::capture_graph(*t.state());
}

/// The call graph of the task calling it (asyncio.capture_call_graph()): its status is
/// running, so it has no call stack, but it says who awaits it.
///
/// Throws: invalid_state_error outside a task.
/// Cancellation: none; it does not suspend.
/// Example: `auto g = coio::capture_call_graph(); for (auto& p : g.awaited_by) log(p.name);`
[[nodiscard]] inline call_graph capture_call_graph() { return detail::capture_current_graph(); }

/// Renders `g` as Python 3.14's asyncio.format_call_graph does, with a line for the wait:
/// @code
///   * Task(name='worker-1', id=2)
///     + Created at: call_graph.cpp:64
///     + Waiting on: sleep (0.093 s left (of 10.000 s))
///     + Call stack:
///     |   File 'call_graph.cpp', line 24, in async fetch_page()
///     |   File 'call_graph.cpp', line 30, in async worker()
///     + Awaited by:
///         * Task(name='main', id=1)
///           ...
/// @endcode
/// Returns: the text, lines separated by '\n', without a final newline.
/// Throws: std::bad_alloc only.
/// Cancellation: none.
/// Example: `std::cerr << coio::format_call_graph(coio::capture_call_graph(t)) << '\n';`
[[nodiscard]] std::string format_call_graph(const call_graph& g);

/// Captures and renders the call graph of `t` (asyncio.format_call_graph(t)).
/// Returns / Throws / Cancellation: as capture_call_graph and format_call_graph(call_graph).
/// Example: `std::string s = coio::format_call_graph(t);`
template <detail::task_handle Task>
[[nodiscard]] std::string format_call_graph(const Task& t) {
    return format_call_graph(capture_call_graph(t));
}

/// Writes format_call_graph(t) and a newline to `os` (asyncio.print_call_graph(t)).
/// Params: `t` - the task; `os` - where to write.
/// Throws: what `os` throws, std::bad_alloc. Cancellation: none.
/// Example: `coio::print_call_graph(t, std::cerr);`
template <detail::task_handle Task>
void print_call_graph(const Task& t, std::ostream& os);

} // namespace coio

#include <coio/loop.hpp>
#include <coio/impl/call_graph.hpp>  // the bodies (header-only: already there with the loop's)

namespace coio {
template <detail::task_handle Task>
void print_call_graph(const Task& t, std::ostream& os) {
    os << format_call_graph(t) << '\n';
}
} // namespace coio
