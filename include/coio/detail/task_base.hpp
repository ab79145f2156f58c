// coio/detail/task_base.hpp - the untyped parts of future and task states. Not API.
//
// Contracts:
//  * A state is reference counted (non-atomic). While a task is pending the loop holds one
//    reference, so a task nobody keeps a handle to still runs to completion (unlike asyncio,
//    whose loop keeps only a weak reference).
//  * Completion fires the done-nodes synchronously; node functions only record and schedule,
//    they never resume a coroutine inline.
//  * A task suspends through begin_wait() and is resumed exactly once by wake().
#pragma once

#include <coio/detail/context_data.hpp>
#include <coio/detail/core.hpp>
#include <coio/detail/intrusive_list.hpp>
#include <coio/detail/wait_info.hpp>
#include <coio/errors.hpp>

#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>

namespace coio::detail {

class future_base;

/// A completion subscriber, linked into the state it waits on (no allocation). `on_done` is
/// called once: when the state completes, or, if the state is destroyed without completing
/// (a future nobody set), with the state still pending so the node can free itself.
struct done_node {
    done_node* next = nullptr;
    void (*on_done)(done_node*, future_base&) noexcept = nullptr;
};

/// Untyped shared state of coio::future<T> and coio::task<T>.
struct live_tag {};

/// Untyped shared state of coio::future<T> and coio::task<T>; linked in its loop's list of
/// live states (through list_hook<live_tag>) so the loop can find every task.
class future_base : public list_hook<live_tag> {
public:
    enum class status : std::uint8_t { pending, finished, cancelled };

    explicit future_base(event_loop* loop) noexcept;
    future_base(const future_base&) = delete;
    future_base& operator=(const future_base&) = delete;
    virtual ~future_base();

    void add_ref() noexcept { ++refs_; }
    void release() noexcept { if (--refs_ == 0) delete this; }

    [[nodiscard]] bool done() const noexcept { return status_ != status::pending; }
    [[nodiscard]] bool is_cancelled() const noexcept { return status_ == status::cancelled; }
    /// Future: cancels now. Task: requests cancellation of the coroutine. False when done.
    virtual bool cancel() noexcept;
    /// The exception the state ended with (cancelled_error for a cancelled state), marking it
    /// retrieved. Null when it has a value. Precondition: done().
    [[nodiscard]] std::exception_ptr failure() noexcept;
    [[nodiscard]] bool failed() const noexcept { return status_ == status::cancelled || has_error(); }

    void add_done_node(done_node* n) noexcept {
        n->next = nodes_;
        nodes_ = n;
    }
    /// Unlinks `n` if it is still linked. Singly linked on purpose (16-byte nodes): a state
    /// rarely has more than one or two subscribers, so the walk is short.
    void remove_done_node(done_node* n) noexcept {
        for (done_node** p = &nodes_; *p; p = &(*p)->next)
            if (*p == n) { *p = n->next; return; }
    }

    [[nodiscard]] event_loop* loop() const noexcept { return loop_; }
    [[nodiscard]] bool is_task() const noexcept { return is_task_; }

protected:
    /// Records the outcome and wakes every subscriber. Called once.
    void complete(status s) noexcept;
    [[nodiscard]] virtual bool has_error() const noexcept = 0;
    [[nodiscard]] virtual std::exception_ptr stored_error() const noexcept = 0;
    /// Reports an error nobody retrieved (asyncio: "exception was never retrieved").
    void report_unretrieved() noexcept;

public:  // shared with the typed states and awaiters in this namespace
    event_loop* loop_;
    done_node* nodes_ = nullptr;
    std::uint32_t refs_ = 0;
    status status_ = status::pending;
    bool retrieved_ = false;
    bool is_task_ = false;

private:
    friend class coio::event_loop;
};

/// A timeout scope as its task sees it (coio::timeout_scope derives from it): the task keeps
/// its live scopes in a list, newest first, to know which expired deadline a timeout_error
/// stands for.
struct timeout_link {
    enum class state : std::uint8_t {
        armed,      ///< not expired
        expired,    ///< expired; its timeout_error is not delivered yet
        delivered,  ///< expired, and a timeout_error (or a cancellation covering it) was thrown
    };
    timeout_link* prev = nullptr;
    timeout_link* next = nullptr;
    state st = state::armed;
};

/// What few tasks have, allocated on first need so that a task stays small: a name given by
/// the user, a context (coio::context_var) that is not empty.
struct task_extras {
    std::string name;
    bool named = false;
    ref_ptr<context_data> context;
};

/// Untyped state of a task: the coroutine it drives and the cancellation protocol.
///
/// Cancellation, as asyncio's Task: cancel() and expiring timeout scopes are *requests*
/// (counted by cancelling()); a pending request is *delivered* by the task's current or next
/// await, which throws it. The rules every awaitable follows, so that nothing is lost or
/// duplicated:
///  * A wait that has completed but whose task has not resumed yet when the request arrives
///    still throws it, after giving back what it was handed (a lock, a semaphore unit, a
///    queue item or slot, a condition notification) to the next waiter.
///  * Awaits whose result cannot be given back (bytes the kernel already moved into the
///    caller's buffer, a gather's results) return it instead; the request stays pending for
///    the next await. If the task returns before that, it finishes with its value: the request
///    came too late (asyncio's cancel() does not guarantee a cancellation either).
///  * Awaits that forward the request (awaiting a task or future: the target is cancelled)
///    report what the target ended with.
///  * A request made while the task runs (e.g. by itself) and still pending when its coroutine
///    returns makes the task end cancelled, as in asyncio.
class task_base : public future_base, public work_item {
public:
    friend void finish_task_root(task_base*, std::coroutine_handle<>) noexcept;
    /// `schedule` false: the task is not put on the ready queue; the creator starts it with
    /// start_eagerly() (or schedules it itself).
    task_base(event_loop* loop, std::coroutine_handle<> root, coio::source_location where, bool schedule = true) noexcept;
    /// Runs the task's first step now, inside the creator (an eager task, see task_options):
    /// until its first suspension, or to its end, when it is finished without ever having been
    /// scheduled. Precondition: created with schedule false, not started.
    void start_eagerly() noexcept { run_step(this); }

    /// Called by an awaitable's await_suspend. Returns false, without suspending, when a
    /// cancellation is pending: the awaitable must then throw it from await_resume.
    [[nodiscard]] bool begin_wait(std::coroutine_handle<> h, cancel_hook* hook) noexcept {
        if (must_cancel_) return false;
        resume_at_ = h;
        waiting_on_ = hook;
        return true;
    }
    /// For awaits that forward a cancellation to what they wait for (a task or future): a
    /// request that is already pending is forwarded at once, through `hook`, and the task
    /// suspends until the target is done (asyncio's Task.__step does the same with
    /// _must_cancel when the coroutine yields a future).
    void begin_wait_forwarding(std::coroutine_handle<> h, cancel_hook* hook) noexcept {
        resume_at_ = h;
        waiting_on_ = hook;
        if (must_cancel_) {
            waiting_on_ = nullptr;
            hook->on_cancel(hook);
        }
    }
    /// True when a request made while the task was running is pending: the task then ends
    /// cancelled even if its coroutine returns (asyncio's rule for a cancel in the last step).
    [[nodiscard]] bool cancel_requested_while_running() const noexcept {
        return must_cancel_ && (flags_ & requested_running) != 0;
    }
    /// event_loop::close() cancels each task once, as asyncio.run does: true the first time.
    bool first_shutdown_cancel() noexcept {
        const bool first = (flags_ & shutdown_cancelled) == 0;
        flags_ |= shutdown_cancelled;
        return first;
    }
    /// A forwarding hook that still waits after forwarding re-registers itself, so that a
    /// further cancel() is forwarded too. Precondition: the task was not woken meanwhile.
    void keep_waiting_on(cancel_hook* hook) noexcept { waiting_on_ = hook; }
    /// Undoes begin_wait when the awaitable could not start what it waits for after all (its
    /// await_suspend throws): the hook is gone, so a later cancel() must not reach it.
    void abandon_wait() noexcept { waiting_on_ = nullptr; }
    /// Suspends even though a cancellation may be pending: for awaitables that must wait for
    /// their children to finish before they report a cancellation (gather, task groups).
    void begin_wait_uncancellable(std::coroutine_handle<> h, cancel_hook* hook) noexcept {
        resume_at_ = h;
        waiting_on_ = hook;
    }
    /// Resumes the task at the handle given to begin_wait, on the next loop iteration.
    void wake() noexcept;

    /// asyncio's Task.cancel(): a request, delivered at the current or next await.
    bool cancel() noexcept override;
    /// A timeout scope's deadline passed: a request delivered as timeout_error (unless a
    /// cancel() is pending too, which wins, as a CancelledError does in asyncio).
    void expire_timeout(timeout_link* scope) noexcept;
    /// Delivers the pending cancellation: throws cancelled_error, or timeout_error when only
    /// timeouts are pending (the newest expired scope's; an older one stays pending and is
    /// delivered by the next await). With nothing pending: cancelled_error.
    [[noreturn]] void throw_cancel();
    /// The pending request was forwarded to a target that then ended normally: it is used up
    /// without being thrown (asyncio: the awaiter gets what the target ended with).
    void consume_cancel() noexcept;
    [[nodiscard]] bool cancel_pending() const noexcept { return must_cancel_; }
    /// A timeout scope begins (linked newest first) or ends. An ending scope that expired
    /// withdraws its request (asyncio's uncancel() in the timeout's __aexit__), delivered or
    /// not; an outer scope's expiry is unaffected.
    void enter_scope(timeout_link* s) noexcept {
        s->next = scopes_;
        if (scopes_) scopes_->prev = s;
        scopes_ = s;
    }
    void leave_scope(timeout_link* s) noexcept;
    [[nodiscard]] unsigned cancelling() const noexcept { return cancel_requests_; }
    /// Withdraws one cancellation request; when none is left, a cancellation not delivered
    /// yet is dropped too (Python 3.13's Task.uncancel).
    unsigned uncancel() noexcept {
        if (cancel_requests_ && --cancel_requests_ == 0) drop_pending();
        return cancel_requests_;
    }

    [[nodiscard]] std::string name() const;
    void set_name(std::string n) {
        extras().name = std::move(n);
        extras_->named = true;
    }
    /// The task's context (coio::context_var values), or null when it is empty.
    [[nodiscard]] context_data* context() const noexcept { return extras_ ? extras_->context.get() : nullptr; }
    /// The task's context, to replace (context_var::set). Allocates the extras.
    [[nodiscard]] ref_ptr<context_data>& context_slot() { return extras().context; }
    [[nodiscard]] coio::source_location where() const noexcept { return {where_file_, where_line_}; }
    [[nodiscard]] const char* waiting_on() const noexcept { return waiting_on_ ? waiting_on_->what : nullptr; }
    [[nodiscard]] std::uint32_t id() const noexcept { return id_; }
    /// For call graphs: the hook of the await the task is suspended in (null while it runs
    /// or is ready), the frame it resumes at (its root until it started), and whether it did.
    [[nodiscard]] const cancel_hook* wait_hook() const noexcept { return waiting_on_; }
    [[nodiscard]] std::coroutine_handle<> resume_point() const noexcept { return resume_at_; }
    [[nodiscard]] bool started() const noexcept { return started_; }
    /// True when `w` is a task's step (not a callback): debug mode names the task.
    [[nodiscard]] static bool is_task_step(const work_item* w) noexcept { return w->run == &run_step; }

    /// Tells the root coroutine which task it is the root of, just before its first step.
    /// Not done when the task is created: a gather of 100,000 coroutines would then touch
    /// every (by then cold) frame once more, only to write this pointer.
    virtual void bind_root() noexcept = 0;
    /// The root coroutine `root` returned, or never started: take its result, destroy it.
    virtual void finish_root(std::coroutine_handle<> root) noexcept = 0;

protected:
    /// Records the outcome, wakes subscribers, drops the loop's reference.
    void finish(status s) noexcept;
    static void run_step(work_item* w) noexcept;
    /// Forgets every pending request (user cancel and expired scopes), marking them delivered.
    void drop_pending() noexcept {
        user_cancel_ = false;
        flags_ &= static_cast<std::uint8_t>(~requested_running);
        for (timeout_link* s = scopes_; s; s = s->next)
            if (s->st == timeout_link::state::expired) s->st = timeout_link::state::delivered;
        must_cancel_ = false;
    }
    /// The newest scope whose expiry is not delivered yet, or null. Scopes nest, so the walk
    /// is as short as the nesting is deep.
    [[nodiscard]] timeout_link* expired_scope() const noexcept {
        for (timeout_link* s = scopes_; s; s = s->next)
            if (s->st == timeout_link::state::expired) return s;
        return nullptr;
    }

    std::coroutine_handle<> resume_at_;  // the root until started, then where it is suspended

private:
    // Laid out to keep a task small: a million pending tasks is a normal load.
    cancel_hook* waiting_on_ = nullptr;
    timeout_link* scopes_ = nullptr;      // live timeout scopes, newest first
    std::unique_ptr<task_extras> extras_;  // allocated only when a name or a context is given
    task_extras& extras() {
        if (!extras_) extras_ = std::make_unique<task_extras>();
        return *extras_;
    }
    const char* where_file_;
    std::uint32_t where_line_;
    std::uint32_t id_;
    std::uint32_t cancel_requests_ = 0;
    bool user_cancel_ = false;            // a cancel() not delivered yet

protected:
    bool must_cancel_ = false;            // user_cancel_ || expired_scope()
    bool started_ = false;

    // Rarely set; packed so that a task stays 128 bytes (a million pending tasks is a
    // normal load, and the frame pool's size classes are 16 bytes apart).
    static constexpr std::uint8_t requested_running = 1;  // a pending request came while it ran
    static constexpr std::uint8_t shutdown_cancelled = 2;  // close() has cancelled it once
    std::uint8_t flags_ = 0;
};

} // namespace coio::detail
