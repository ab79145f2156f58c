// coio/impl/loop.hpp - the bodies of event_loop, future_base and task_base, behind
// coio/loop.hpp (which includes this file at its end, unless COIO_SEPARATE_COMPILATION is
// defined: then <coio/src.hpp> includes it in one source file; see detail/decl.hpp). Not
// API: include <coio/loop.hpp>.
// (event_loop::create_task and run_until_complete are defined in <coio/task.hpp>.)
#pragma once

#include <coio/detail/decl.hpp>
#include <coio/loop.hpp>

#include <cxxabi.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <exception>
#include <ostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <typeinfo>
#include <utility>
#include <vector>

namespace coio {


COIO_DECL void handle::cancel() noexcept {
    if (!p_ || p_->cancelled) return;
    p_->cancelled = true;
    if (p_->queued() && p_->loop) {
        p_->loop->timers_.remove(p_.get());
        p_->release();  // the loop's reference; it was not on the ready queue
    }
}

namespace detail {
/// `typeid(x).name()` as a person writes it ("std::runtime_error", not "St13runtime_error").
inline std::string demangle(const char* mangled) {
    int status = 0;
    char* s = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
    std::string out = status == 0 && s ? std::string(s) : std::string(mangled);
    std::free(s);
    return out;
}

// Checked before the ring exists: an invalid option is the caller's error, not the kernel's.
COIO_DECL const loop_options& validated(const loop_options& o) {
    const unsigned nbufs = o.receive_buffers;
    if (nbufs == 0 || nbufs > 32768 || (nbufs & (nbufs - 1)) != 0 || o.receive_buffer_size == 0)
        throw std::invalid_argument("coio: loop_options.receive_buffers must be a power of two from 1 to 32768, "
                                    "and receive_buffer_size more than 0");
    return o;
}
} // namespace detail

COIO_DECL event_loop::event_loop(loop_options options)
    : options_(detail::validated(options)),
      backend_(options_.backend, options_.entries, options_.cq_entries,
               [](void* self) noexcept { static_cast<event_loop*>(self)->on_wake(); }, this),
      virtual_now_(std::chrono::steady_clock::now()) {
    init_introspection();
}

COIO_DECL event_loop::~event_loop() {
    try {
        close();
    } catch (...) {
        // close() only throws when the loop is running, which a destructor cannot fix.
    }
    // States that outlive the loop (a task handle kept past run()) must not call back into it.
    for (auto* s = live_.front(); s; s = live_list::next(s)) s->loop_ = nullptr;
}

COIO_DECL void event_loop::on_wake() noexcept {
    if (closed_) return;
    std::vector<detail::callback_base*> items;
    {
        std::lock_guard lock(inbox_mutex_);
        items.swap(inbox_);
    }
    for (auto* c : items) ready_.push(c);
    if (detail::sigint_count.load(std::memory_order_relaxed) > 0 && main_task_ && !interrupted_) {
        interrupted_ = true;
        main_task_->cancel();
    }
}

// The wait of an iteration under a virtual clock (the rule is documented at clock_kind).
// Called with nothing ready. Time stands still while tasks run. The backend is polled without
// blocking; if that completes nothing, leaves nothing to submit or dispatch, and no operation
// that completes on its own (holds_clock) nor a to_thread call is in flight, the clock jumps to
// the earliest timer. Polling first is what makes tests deterministic: a peer task of this
// loop that wrote to a loopback or Unix socket, or connected, did so inside its own system
// call, so the poll sees the result before any timer can race it. Receives and accepts do not
// hold the clock (a test idling on a server socket must not hang or take real time). Work that
// does hold it is waited for in real time, at most until the earliest timer, and the clock
// then advances by the real time waited: a file operation or a worker thread finishes before
// a timer that would race it, and one that never finishes cannot hang the loop.
COIO_DECL void event_loop::wait_virtual() {
    const auto may_jump = [this] { return clock_holds_ == 0 && backend_.holding() == 0; };
    if (!timers_.empty() && may_jump()) {
        backend_.wait(false, nullptr);
        // Anything the poll started or woke gets its iteration first; the next one polls again.
        if (ready_.empty() && may_jump() && backend_.quiet() && !timers_.empty() &&
            timers_.top_deadline() > virtual_now_)
            virtual_now_ = timers_.top_deadline();
        return;
    }
    const auto start = std::chrono::steady_clock::now();
    if (!timers_.empty()) {
        auto d = timers_.top_deadline() - virtual_now_;
        if (d < clock::duration::zero()) d = clock::duration::zero();
        backend_.wait(true, &d);
    } else {
        backend_.wait(true, nullptr);
    }
    virtual_now_ += std::chrono::steady_clock::now() - start;
}

COIO_DECL void event_loop::run_once() {
    // The one system call of the iteration: submit what was prepared, collect completions,
    // and sleep only when nothing is ready (until the nearest timer, if any).
    // Work ready: the same under either clock, and checked first, so a virtual clock costs
    // the hot path (task switches, sleep(0)) nothing.
    if (!ready_.empty() || stopping_) {
        backend_.wait(false, nullptr);
    } else if (options_.clock == clock_kind::virtual_time) {
        wait_virtual();
    } else if (!timers_.empty()) {
        auto d = timers_.top_deadline() - std::chrono::steady_clock::now();
        if (d < clock::duration::zero()) d = clock::duration::zero();
        backend_.wait(true, &d);
    } else {
        backend_.wait(true, nullptr);
    }

    if (!timers_.empty()) {
        const auto now = this->now();
        while (!timers_.empty() && timers_.top_deadline() <= now) {
            detail::timer_node* t = timers_.pop();
            t->on_expire(t);
        }
    }

    // Only what is ready now runs in this iteration; work scheduled by it waits for the
    // next one (asyncio's rule, and what makes sleep(0) yield exactly one iteration).
    const bool timed = options_.debug;  // debug mode times each step
    for (std::size_t n = ready_.size(); n > 0; --n) {
        detail::work_item* w = ready_.pop();
        if (timed) [[unlikely]] run_timed(w);
        else w->run(w);
    }
}

COIO_DECL void event_loop::enter_running() {
    if (closed_) throw invalid_state_error("coio: the event loop is closed");
    if (running_) throw invalid_state_error("coio: this event loop is already running");
    if (detail::running_loop)
        throw invalid_state_error("coio: cannot run an event loop while another loop is running in the same thread");
    running_ = true;
    detail::running_loop = this;
    if (options_.clock == clock_kind::virtual_time) detail::virtual_now = &virtual_now_;
}

COIO_DECL void event_loop::leave_running() noexcept {
    running_ = false;
    stopping_ = false;
    detail::running_loop = nullptr;
    detail::virtual_now = nullptr;
}

COIO_DECL void event_loop::run_forever() {
    enter_running();
    struct guard { event_loop* l; ~guard() { l->leave_running(); } } g{this};
    while (!stopping_) run_once();
}

COIO_DECL void event_loop::run_until_done(detail::future_base& f) {
    enter_running();
    struct guard { event_loop* l; ~guard() { l->leave_running(); } } g{this};
    while (!f.done()) {
        if (stopping_) throw invalid_state_error("coio: event loop stopped before the future completed");
        run_once();
    }
}

COIO_DECL void event_loop::shutdown_tasks() {
    enter_running();
    struct guard { event_loop* l; ~guard() { l->leave_running(); } } g{this};
    while (pending_tasks_ > 0) {
        // Cancel each pending task once, as asyncio.run does: a task may catch the cancellation
        // and await its cleanup. Tasks started during shutdown are cancelled in the next round.
        for (auto* s = live_.front(); s; s = live_list::next(s)) {
            if (!s->is_task_ || s->done()) continue;
            auto* t = static_cast<detail::task_base*>(s);
            if (t->first_shutdown_cancel()) t->cancel();
        }
        run_once();
    }
}

COIO_DECL void event_loop::close() {
    if (closed_) return;
    if (running_) throw invalid_state_error("coio: cannot close a running event loop");
    if (options_.debug && pending_tasks_ > 0) report_pending_at_close();
    shutdown_tasks();
    for (auto it = services_.rbegin(); it != services_.rend(); ++it) it->second->shutdown();
    closed_ = true;
    // Callbacks still scheduled will never run: drop the loop's references.
    while (!ready_.empty()) {
        detail::work_item* w = ready_.pop();
        w->run = nullptr;
        static_cast<detail::callback_base*>(w)->release();  // tasks are all done: only callbacks remain
    }
    while (!timers_.empty()) static_cast<detail::callback_base*>(timers_.pop())->release();
    {
        std::lock_guard lock(inbox_mutex_);
        inbox_closed_ = true;
        for (auto* c : inbox_) c->release();
        inbox_.clear();
    }
    backend_.close();
    services_.clear();  // after the ring: no kernel operation can still reach their memory
}

COIO_DECL void event_loop::call_exception_handler(const exception_context& ctx) noexcept {
    try {
        if (handler_) { handler_(*this, ctx); return; }
    } catch (...) {
        std::fputs("coio: exception in the exception handler\n", stderr);
    }
    default_exception_handler(ctx);
}

COIO_DECL void event_loop::default_exception_handler(const exception_context& ctx) noexcept {
    std::string line = "coio: " + ctx.message;
    if (!ctx.task_name.empty()) line += " (task '" + ctx.task_name + "'";
    if (!ctx.task_created_at.empty()) line += ", created at " + ctx.task_created_at;
    if (!ctx.task_name.empty()) line += ")";
    if (ctx.exception) {
        try {
            std::rethrow_exception(ctx.exception);
        } catch (const std::exception& e) {
            line += ": ";
            line += detail::demangle(typeid(e).name());
            line += ": ";
            line += e.what();
        } catch (const cancelled_error& e) {
            line += ": ";
            line += e.what();
        } catch (...) {
            line += ": unknown exception";
        }
    }
    line += '\n';
    std::fputs(line.c_str(), stderr);
}

// ---- future_base / task_base (need the complete event_loop) --------------------------

namespace detail {

COIO_DECL future_base::future_base(event_loop* loop) noexcept : loop_(loop) {
    // Appended: all_tasks(), dump_tasks() and shutdown see tasks in creation order.
    loop->live_.push_back(this);
}

COIO_DECL future_base::~future_base() {
    // Subscribers of a future that never completed (allocated done-callbacks): on_done with the
    // state still pending tells them to free themselves.
    while (done_node* n = nodes_) {
        nodes_ = n->next;
        n->on_done(n, *this);
    }
    if (!loop_) return;
    loop_->live_.remove(this);
}

COIO_DECL bool future_base::cancel() noexcept {
    if (done()) return false;
    complete(status::cancelled);
    return true;
}

COIO_DECL std::exception_ptr future_base::failure() noexcept {
    retrieved_ = true;
    if (status_ == status::cancelled) return std::make_exception_ptr(cancelled_error{});
    return stored_error();
}

COIO_DECL void future_base::complete(status s) noexcept {
    status_ = s;
    add_ref();  // a subscriber may drop the last handle while we walk the list
    // Subscribers are pushed at the head (no tail pointer in every state); reversed once
    // here, they run in the order they subscribed, as asyncio runs done callbacks.
    done_node* fifo = nullptr;
    while (done_node* n = nodes_) {
        nodes_ = n->next;
        n->next = fifo;
        fifo = n;
    }
    nodes_ = fifo;
    while (done_node* n = nodes_) {
        nodes_ = n->next;
        n->on_done(n, *this);
    }
    release();
}

COIO_DECL void future_base::report_unretrieved() noexcept {
    if (retrieved_ || !has_error()) return;
    exception_context ctx;
    ctx.message = is_task_ ? "Task exception was never retrieved" : "Future exception was never retrieved";
    ctx.exception = stored_error();
    if (is_task_) {
        auto* t = static_cast<task_base*>(this);
        ctx.task_name = t->name();
        ctx.task_created_at = std::string(t->where().file_name()) + ":" + std::to_string(t->where().line());
    }
    if (loop_) loop_->call_exception_handler(ctx);
    else event_loop::default_exception_handler(ctx);
}

COIO_DECL std::uint32_t next_task_id() noexcept {
    static thread_local std::uint32_t id = 0;
    return ++id;
}

COIO_DECL task_base::task_base(event_loop* loop, std::coroutine_handle<> root, coio::source_location where, bool schedule) noexcept
    : future_base(loop), resume_at_(root), where_file_(where.file_name()), where_line_(where.line()), id_(next_task_id()) {
    is_task_ = true;
    run = &task_base::run_step;
    ++loop->pending_tasks_;
    add_ref();  // the loop's reference, dropped when the task is done
    if (schedule) loop->ready_.push(this);
}

/// The task running now. Throws invalid_state_error outside a task: coio's awaitables
/// suspend tasks, so they can only be awaited by code that a task runs.
COIO_DECL task_base& require_current_task() {
    event_loop* l = running_loop;
    task_base* t = l ? l->current_task_state() : nullptr;
    if (!t)
        throw invalid_state_error("coio: this must be awaited inside a task (a coroutine run by coio::run, "
                                  "create_task or run_until_complete)");
    return *t;
}

COIO_DECL void task_base::finish(status s) noexcept {
    --loop_->pending_tasks_;
    complete(s);
    release();  // the loop's reference
}

COIO_DECL void task_base::wake() noexcept {
    waiting_on_ = nullptr;
    loop_->ready_.push(this);
}

COIO_DECL bool task_base::cancel() noexcept {
    if (done()) return false;
    ++cancel_requests_;
    user_cancel_ = true;
    must_cancel_ = true;
    if (loop_->current_ == this) flags_ |= requested_running;
    if (cancel_hook* h = std::exchange(waiting_on_, nullptr)) h->on_cancel(h);
    return true;
}

COIO_DECL void task_base::expire_timeout(timeout_link* scope) noexcept {
    if (done()) return;
    ++cancel_requests_;
    scope->st = timeout_link::state::expired;
    must_cancel_ = true;
    if (loop_->current_ == this) flags_ |= requested_running;
    if (cancel_hook* h = std::exchange(waiting_on_, nullptr)) h->on_cancel(h);
}

COIO_DECL void task_base::throw_cancel() {
    if (!user_cancel_) {
        // The newest expired scope is the innermost: its timeout_error unwinds to it first;
        // an older one stays pending for the next await.
        if (timeout_link* s = expired_scope()) {
            s->st = timeout_link::state::delivered;
            must_cancel_ = expired_scope() != nullptr;
            throw timeout_error();
        }
    }
    // A cancelled_error unwinds through every scope: it stands for their expiries too.
    drop_pending();
    throw cancelled_error();
}

COIO_DECL void task_base::consume_cancel() noexcept { drop_pending(); }

COIO_DECL void task_base::leave_scope(timeout_link* s) noexcept {
    if (s->prev) s->prev->next = s->next; else scopes_ = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = nullptr;
    if (s->st == timeout_link::state::armed) return;
    if (s->st == timeout_link::state::expired) {
        // Leaving before its timeout_error was thrown (another exception, or a return right
        // after the deadline passed): the scope is over, and so is its request.
        s->st = timeout_link::state::delivered;
        must_cancel_ = user_cancel_ || expired_scope() != nullptr;
    }
    uncancel();
}

COIO_DECL std::string task_base::name() const {
    if (extras_ && extras_->named) return extras_->name;
    return "Task-" + std::to_string(id_);
}

COIO_DECL void task_base::run_step(work_item* w) noexcept {
    auto* t = static_cast<task_base*>(w);
    if (!t->started_) {
        // Cancelled before it ever ran: like asyncio, the coroutine body never starts (and
        // started_ stays false, which tells finish_root so).
        if (t->must_cancel_) { t->finish_root(t->resume_at_); return; }
        t->started_ = true;
        t->bind_root();
    }
    t->waiting_on_ = nullptr;  // running, so no longer waiting on anything
    event_loop* loop = t->loop_;
    detail::task_base* outer = loop->current_;
    loop->current_ = t;
    detail::resume(t->resume_at_);  // may complete and destroy t
    loop->current_ = outer;
}

} // namespace detail
} // namespace coio
