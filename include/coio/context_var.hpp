// coio/context_var.hpp - coio::context_var<T>: task-local values (Python's contextvars).
#pragma once

#include <coio/detail/context_data.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/task.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace coio {

/// context_var::get() of a variable with no value and no default (Python's LookupError).
/// Example: `try { use(depth.get()); } catch (const coio::lookup_error&) { use(0); }`
class lookup_error : public error {
public:
    using error::error;
};

/// A task-local variable (Python's `contextvars.ContextVar`), for what every function of a
/// task should see without passing it down: a request id for log lines, a deadline budget,
/// the user a request runs for.
///
/// Each task has its own context, a snapshot of its creator's taken at create_task (asyncio
/// copies the current context into every new task): a child sees the values its creator had
/// then, and what a task sets is seen by itself and by the tasks it creates afterwards, never
/// by its creator or by tasks that already exist. Coroutines awaited directly (`co_await
/// f()`, a coio::coro) run in their task's context, as Python's do: a value they set is seen
/// by their caller after they return (restore it with reset() to keep it local). A function
/// run by coio::to_thread (or run_in_executor) sees a copy of its caller's context, as
/// asyncio.to_thread's does. Other code outside any task (before run, in call_soon
/// callbacks) uses a context of its own thread, which tasks created there copy.
///
/// Costs: a task whose creator never set a variable carries no context (no allocation, no
/// copy); creating a task from one that did shares the context (a reference count), and the
/// first set() in the child copies it (one small vector per variable set). get() is a lookup
/// in that vector (see BM_context_var_get in benchmarks/core).
///
/// A context_var is usually a global (or static) object; it may be used from several loops
/// and threads, each task seeing its own value. The values are immutable once set: set()
/// stores a new one.
///
/// Example:
/// @code
///   coio::context_var<std::string> request_id("request_id", "-");
///   coio::coro<void> log(std::string_view what) { std::printf("[%s] %.*s\n", request_id.get().c_str(), ...); }
///   coio::coro<void> handle(std::string id) {
///       auto token = request_id.set(std::move(id));
///       co_await log("start");                       // [id] start
///       co_await coio::gather(step_a(), step_b());   // their tasks see id too
///       request_id.reset(token);
///   }
/// @endcode
template <class T>
class context_var {
public:
    static_assert(std::is_object_v<T> && !std::is_const_v<T>, "coio::context_var<T>: T must be a non-const object type");

    /// What set() returns, for reset(): the variable's previous value in that context.
    /// Move-only; usable once.
    class token {
    public:
        /// Move-only: a token is spent by one reset().
        token(token&&) noexcept = default;
        /// Move-only: a token is spent by one reset().
        token& operator=(token&&) noexcept = default;
        /// The variable this token belongs to.
        [[nodiscard]] const context_var& var() const noexcept { return *var_; }
        /// The value before set(), or null when it had none (Python's Token.MISSING).
        [[nodiscard]] const T* old_value() const noexcept { return static_cast<const T*>(old_.get()); }

    private:
        friend class context_var;
        token(const context_var* v, const void* owner, std::shared_ptr<const void> old) noexcept
            : var_(v), owner_(owner), old_(std::move(old)) {}
        const context_var* var_;
        const void* owner_;  // the task (or thread context) whose context set() changed
        std::shared_ptr<const void> old_;
        bool used_ = false;
    };

    /// A variable named `name` without a default: get() throws until it is set.
    /// Example: `coio::context_var<int> depth("depth");`
    explicit context_var(std::string name) : name_(std::move(name)), id_(next_id()) {}
    /// A variable named `name` whose get() gives `default_value` where it was never set.
    /// Example: `coio::context_var<std::string> user("user", "anonymous");`
    context_var(std::string name, T default_value)
        : name_(std::move(name)), id_(next_id()), default_(std::make_shared<const T>(std::move(default_value))) {}
    context_var(const context_var&) = delete;
    context_var& operator=(const context_var&) = delete;

    /// The name given at construction (Python's ContextVar.name).
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    /// The value in the current context (the running task's, or this thread's outside tasks).
    /// Returns: a reference valid until this variable is set or reset again in that context,
    /// or the task ends; the default when the variable has no value there.
    /// Throws: lookup_error when it has neither.
    /// Cancellation: not an await.
    /// Example: `std::string id = request_id.get();`
    [[nodiscard]] const T& get() const {
        if (const T* v = find()) return *v;
        if (default_) return *default_;
        throw lookup_error("coio: context_var '" + name_ + "' has no value in this context and no default");
    }
    /// The value in the current context, else `fallback` (Python's `get(default)`), which wins
    /// over the variable's own default.
    /// Returns: a copy of the value, or `fallback`. Never throws except what copying T throws.
    /// Example: `int depth = depth_var.get(0);`
    [[nodiscard]] T get(T fallback) const {
        if (const T* v = find()) return *v;
        return fallback;
    }

    /// Sets the variable in the current context: the running task (and the coroutines it
    /// awaits, and tasks it creates from now on) see `value`; its creator and other tasks do
    /// not.
    /// Returns: a token that reset() takes to restore the previous value.
    /// Throws: std::bad_alloc.
    /// Cancellation: not an await.
    /// Example: `auto token = user.set("alice");`
    [[nodiscard]] token set(T value) {
        auto [slot, owner] = current_slot();
        if (!slot) slot = detail::ref_ptr<detail::context_data>(new detail::context_data);
        else if (slot->shared()) slot = slot->clone();  // copy-on-write: others keep theirs
        std::shared_ptr<const void> old = slot->find_shared(id_);
        slot->assign(id_, std::make_shared<const T>(std::move(value)));
        return token(this, owner, std::move(old));
    }

    /// Restores the value the variable had before the set() that made `t` (or no value).
    /// Throws: std::invalid_argument when `t` belongs to another variable or was made in
    /// another context (another task); invalid_state_error when it was used already
    /// (Python raises ValueError and RuntimeError).
    /// Cancellation: not an await.
    /// Example: `user.reset(token);`
    void reset(token& t) {
        if (t.var_ != this) throw std::invalid_argument("coio: context_var::reset with a token of another variable");
        if (t.used_) throw invalid_state_error("coio: context_var::reset with a token that was used already");
        auto [slot, owner] = current_slot();
        if (t.owner_ != owner)
            throw std::invalid_argument("coio: context_var::reset with a token made in another context (another task)");
        if (!slot) slot = detail::ref_ptr<detail::context_data>(new detail::context_data);
        else if (slot->shared()) slot = slot->clone();
        slot->assign(id_, t.old_);
        t.used_ = true;
    }

private:
    struct slot_ref {
        detail::ref_ptr<detail::context_data>& slot;
        const void* owner;
    };
    static slot_ref current_slot() {
        event_loop* l = detail::running_loop;
        if (detail::task_base* t = l ? l->current_task_state() : nullptr) return {t->context_slot(), t};
        return {detail::thread_context, &detail::thread_context};
    }
    [[nodiscard]] const T* find() const noexcept {
        const detail::context_data* c = detail::current_context();
        return c ? static_cast<const T*>(c->find(id_)) : nullptr;
    }
    static std::uint64_t next_id() noexcept {
        static std::atomic<std::uint64_t> ids{0};
        return ids.fetch_add(1, std::memory_order_relaxed) + 1;
    }

    std::string name_;
    std::uint64_t id_;
    std::shared_ptr<const T> default_;
};

} // namespace coio
