// coio/task_options.hpp - coio::task_options: how create_task starts a task (asyncio's
// create_task(name=..., eager_start=...)).
#pragma once

#include <optional>
#include <string>

namespace coio {

/// Options of `create_task` (and `event_loop::create_task`, `task_group::create_task`), with
/// designated initializers: `coio::create_task(fetch(url), {.name = "fetch", .eager_start = true})`.
///
/// Eager start (asyncio 3.12's eager tasks): the task's coroutine runs at once, inside
/// create_task, until its first suspension; create_task then returns the task, pending (it
/// goes on from that await like any task) or already done when the coroutine finished
/// without suspending, in which case the loop never scheduled it at all. Worth it where many
/// tasks finish without waiting (a cache hit, a tree of tasks whose leaves mostly have their
/// answer): no trip through the ready queue, and the result is there before the creator
/// resumes. The creator is paused meanwhile, and the task's code runs before the line after
/// create_task, which lazy tasks never do: code that relies on "the new task has not started
/// yet" must not use it.
///
/// Semantics, as asyncio's: current_task() is the new task while it runs eagerly; an
/// exception in the eager part is stored in the task (create_task does not throw it); a
/// loop that is not running (loop.create_task before run_until_complete) starts the task
/// lazily anyway. Cancellation: the task can be cancelled as soon as create_task returns;
/// one that is already done ignores cancel() (returns false).
///
/// With g++ 12, pass braced options to create_task in a statement of its own (`auto t =
/// coio::create_task(c, {...}); co_await t;`), not inside a co_await expression: g++ 12
/// destroys such a braced temporary twice there (a compiler bug; clang is not affected).
struct task_options {
    /// The task's name; empty: "Task-N".
    std::string name{};
    /// true: start eagerly; false: schedule it (the next loop iteration runs it); unset: the
    /// loop's default, loop_options::eager_tasks (asyncio's eager_task_factory).
    std::optional<bool> eager_start{};
};

} // namespace coio
