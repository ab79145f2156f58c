// coio/thread.hpp - threads: coio::to_thread (asyncio.to_thread), coio::thread_pool and
// run_in_executor (loop.run_in_executor), run_coroutine_threadsafe
// (asyncio.run_coroutine_threadsafe).
//
// Thread safety in coio, in one place: an event_loop and everything on it (tasks, futures,
// events, locks, queues, ...) belongs to the loop's thread. The ONLY entry points that may be
// called from another thread are
//   - event_loop::call_soon_threadsafe(f)         (loop.hpp)
//   - coio::run_coroutine_threadsafe(coro, loop)  (this header)
//   - coio::thread_pool's members                 (this header; a pool is not a loop object)
// and the target loop must be alive and not closed. Everything else crosses threads through
// them: to_thread/run_in_executor deliver results back with call_soon_threadsafe.
#pragma once

#include <coio/coro.hpp>
#include <coio/detail/signal_mask.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/outcome.hpp>
#include <coio/task.hpp>

#include <algorithm>
#include <atomic>
#include <concepts>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace coio {

/// A pool of worker threads for blocking calls (concurrent.futures.ThreadPoolExecutor): the
/// executor of run_in_executor, and the type of every loop's default executor (to_thread).
///
/// Threads are started on demand, up to `max_threads`, and kept until shutdown. All members
/// are thread-safe. The destructor shuts the pool down and joins its threads (it waits for
/// the jobs already submitted, as Python's executor does at exit).
///
/// Cancellation: a pool knows nothing about tasks; a job that has started always runs to the
/// end (a thread cannot be interrupted safely). run_in_executor skips jobs whose awaiting task
/// was cancelled before they started.
///
/// Example:
/// @code
///   coio::thread_pool pool(4);
///   int n = co_await coio::run_in_executor(pool, count_lines, "big.txt");
/// @endcode
class thread_pool {
public:
    /// A pool of at most `max_threads` threads; 0 means asyncio's default, min(32, cores + 4).
    explicit thread_pool(std::size_t max_threads = 0)
        : max_(max_threads ? max_threads
                           : std::min<std::size_t>(32, std::max(1u, std::thread::hardware_concurrency()) + 4)) {}
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    /// Shuts down and joins every thread (waits for submitted jobs).
    ~thread_pool() { shutdown(true); }

    /// Runs `f()` on a pool thread, in submission order. Callable from any thread.
    /// `f` runs in a noexcept context: an exception escaping it terminates the program (use
    /// run_in_executor to get exceptions back).
    /// Throws: invalid_state_error after shutdown(); std::system_error if a thread cannot start.
    /// Example: `pool.submit([] { compress(file); });`
    template <class F>
    void submit(F&& f) {
        auto j = std::make_unique<job_impl<std::decay_t<F>>>(std::forward<F>(f));
        std::lock_guard lk(m_);
        if (stop_) throw invalid_state_error("coio: submit to a thread_pool that is shut down");
        jobs_.push_back(std::move(j));
        if (jobs_.size() > idle_ && threads_.size() < max_) {
            // The worker starts with every asynchronous signal blocked, so a signal the loop
            // handles (add_signal_handler, wait_signal, Ctrl-C) is never delivered to it.
            detail::block_signals_for_new_threads blocked;
            threads_.emplace_back([this] { work(); });
        } else {
            cv_.notify_one();
        }
    }

    /// Stops accepting jobs; the threads finish the jobs already submitted, then exit.
    /// With `wait`, blocks until they have (joins them). Idempotent; not from a pool thread.
    void shutdown(bool wait = true) {
        std::vector<std::thread> threads;
        {
            std::lock_guard lk(m_);
            stop_ = true;
            if (wait) threads.swap(threads_);
        }
        cv_.notify_all();
        for (auto& t : threads) t.join();
    }

    /// The most threads the pool starts.
    [[nodiscard]] std::size_t max_threads() const noexcept { return max_; }
    /// Threads started so far.
    [[nodiscard]] std::size_t threads() const {
        std::lock_guard lk(m_);
        return threads_.size();
    }

private:
    struct job {
        virtual ~job() = default;
        virtual void run() noexcept = 0;
    };
    template <class F>
    struct job_impl final : job {
        explicit job_impl(F&& fn) : f(std::move(fn)) {}
        explicit job_impl(const F& fn) : f(fn) {}
        void run() noexcept override { f(); }
        F f;
    };

    void work() {
        std::unique_lock lk(m_);
        for (;;) {
            while (jobs_.empty() && !stop_) {
                ++idle_;
                cv_.wait(lk);
                --idle_;
            }
            if (jobs_.empty()) return;  // stopping and drained
            std::unique_ptr<job> j = std::move(jobs_.front());
            jobs_.pop_front();
            lk.unlock();
            j->run();
            j.reset();  // the job's captures die on this thread, outside the lock
            lk.lock();
        }
    }

    const std::size_t max_;
    mutable std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<job>> jobs_;
    std::vector<std::thread> threads_;
    std::size_t idle_ = 0;
    bool stop_ = false;
};

namespace detail {

/// A thread-safe, reference-counted way back to a loop: worker threads post completions
/// through it, and the loop cuts it when it closes, so a job finishing after its loop is gone
/// drops its completion instead of touching a dead loop.
class loop_link {
public:
    explicit loop_link(event_loop& l) noexcept : loop_(&l) {}
    /// Posts `f` with call_soon_threadsafe. Returns false when the loop is closed (f dropped).
    template <class F>
    bool post(F&& f) noexcept {
        std::lock_guard lk(m_);
        if (!loop_) return false;
        try {
            loop_->call_soon_threadsafe(std::forward<F>(f));
            return true;
        } catch (...) {
            return false;  // out of memory: the result is dropped, like a closed loop
        }
    }
    void close() noexcept {
        std::lock_guard lk(m_);
        loop_ = nullptr;
    }

private:
    std::mutex m_;
    event_loop* loop_;
};

/// Loop service owning the loop's link. Created before any executor service, so it is shut
/// down after them (services shut down in reverse order): completions posted while an
/// executor drains still reach the loop's inbox, and none can arrive afterwards.
class thread_bridge final : public loop_service {
public:
    explicit thread_bridge(event_loop& l) : link_(std::make_shared<loop_link>(l)) {}
    void shutdown() noexcept override { link_->close(); }
    [[nodiscard]] const std::shared_ptr<loop_link>& link() const noexcept { return link_; }

private:
    std::shared_ptr<loop_link> link_;
};

/// Loop service: the default executor (to_thread), sized by loop_options::executor_threads.
class default_executor_service final : public loop_service {
public:
    explicit default_executor_service(event_loop& l) : pool_(l.options().executor_threads) {
        (void)l.service<thread_bridge>();  // see thread_bridge: must exist before us
    }
    /// asyncio.run's shutdown_default_executor: wait for running jobs before the loop closes.
    void shutdown() noexcept override { pool_.shutdown(true); }
    [[nodiscard]] thread_pool& pool() noexcept { return pool_; }

private:
    thread_pool pool_;
};

/// Shared between the awaiting task and the worker. Only `phase` is touched by both threads;
/// `result` is written by the worker before it posts the completion (the inbox mutex orders
/// it) and is destroyed on the loop thread (unless the loop is gone); `task` and `completed`
/// belong to the loop thread.
template <class R>
struct thread_call_state {
    enum : int { queued, started, abandoned };
    std::atomic<int> phase{queued};
    result_slot<R> result;
    task_base* task = nullptr;  // null once the awaiter gave up (cancelled)
    bool completed = false;
};

/// Submits `fn` to `pool` and suspends until its result is back on the loop thread.
/// Cancellation abandons the call: the task resumes at once, a job not started yet never
/// runs, and a running job's result is dropped when it arrives (the frame is not touched).
template <class R, class Fn>
class thread_call_awaiter : cancel_hook {
public:
    thread_call_awaiter(thread_pool& pool, Fn fn) : pool_(&pool), fn_(std::move(fn)) { what = "to_thread"; }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        task_ = &require_current_task();
        if (task_->cancel_pending()) return false;  // cancelled before starting: submit nothing
        st_ = std::make_shared<thread_call_state<R>>();
        std::shared_ptr<loop_link> link = task_->loop()->template service<thread_bridge>().link();
        // asyncio's to_thread runs the function in a copy of the caller's context
        // (coio::context_var): a private copy, made here on the loop's thread, so that only
        // the worker touches its (non-atomic) reference count; the values are immutable.
        ref_ptr<context_data> ctx;
        if (const context_data* c = current_context()) ctx = c->clone();
        pool_->submit([st = st_, link = std::move(link), fn = std::move(fn_), ctx = std::move(ctx)]() mutable {
            int expected = thread_call_state<R>::queued;
            if (!st->phase.compare_exchange_strong(expected, thread_call_state<R>::started)) return;
            struct context_scope {
                ref_ptr<context_data> saved;
                ~context_scope() { thread_context = std::move(saved); }
            } scope{std::exchange(thread_context, std::move(ctx))};
            try {
                if constexpr (std::is_void_v<R>) {
                    std::move(fn)();
                    st->result.set_value();
                } else {
                    st->result.set_value(std::move(fn)());
                }
            } catch (...) {
                st->result.set_exception(std::current_exception());
            }
            // The worker hands its reference over to the completion, so the state (and the
            // result or exception in it) is destroyed on the loop's thread, never here.
            link->post([st = std::move(st)]() noexcept {
                if (st->task) {
                    st->completed = true;
                    st->task->wake();
                }
            });
        });  // throws (pool shut down): nothing is suspended yet, the exception propagates
        st_->task = task_;
        on_cancel = [](cancel_hook* c) noexcept {
            auto* self = static_cast<thread_call_awaiter*>(c);
            int expected = thread_call_state<R>::queued;
            self->st_->phase.compare_exchange_strong(expected, thread_call_state<R>::abandoned);
            self->st_->task = nullptr;  // a late completion finds nobody and drops the result
            self->task_->wake();
        };
        (void)task_->begin_wait(h, this);  // cannot fail: no cancellation was pending above
        // A virtual clock must not jump while the worker computes the result: the caller
        // resumes (completed or cancelled) before the clock may move again.
        task_->loop()->hold_clock();
        holds_clock_ = true;
        return true;
    }
    R await_resume() {
        if (std::exchange(holds_clock_, false)) task_->loop()->release_clock();
        if (!st_ || !st_->completed) task_->throw_cancel();
        return st_->result.take();
    }

private:
    thread_pool* pool_;
    Fn fn_;
    task_base* task_ = nullptr;
    std::shared_ptr<thread_call_state<R>> st_;
    bool holds_clock_ = false;
};

template <class R, class Fn>
coro<R> call_in_pool(thread_pool* pool, Fn fn) {
    if (!pool) pool = &get_running_loop().service<default_executor_service>().pool();
    // A named awaiter, not a temporary in the co_await expression: g++ 12 destroys such
    // temporaries (with their captured state) twice in some co_return co_await forms.
    thread_call_awaiter<R, Fn> call(*pool, std::move(fn));
    if constexpr (std::is_void_v<R>) co_await call;
    else co_return co_await call;
}

template <class F, class... A>
auto bind_call(F&& f, A&&... args) {
    // Decay-copies like std::thread: the call owns its function and arguments.
    return [f = std::forward<F>(f), ... args = std::forward<A>(args)]() mutable -> decltype(auto) {
        return std::invoke(std::move(f), std::move(args)...);
    };
}

template <class F, class... A>
using call_result_t = std::invoke_result_t<std::decay_t<F>, std::decay_t<A>...>;

template <class T>
coro<void> deliver_to_promise(coro<T> c, std::promise<T> p) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(c);
            p.set_value();
        } else {
            p.set_value(co_await std::move(c));
        }
    } catch (...) {
        p.set_exception(std::current_exception());  // also cancelled_error
    }
}

} // namespace detail

/// The running loop's default executor: the pool to_thread uses, created on first use with
/// loop_options::executor_threads threads at most (0: min(32, cores + 4)); the loop shuts it
/// down (waiting for running jobs) when it closes.
/// Throws: invalid_state_error with no running loop.
/// Example: `coio::default_executor().max_threads()`
[[nodiscard]] inline thread_pool& default_executor() {
    return get_running_loop().service<detail::default_executor_service>().pool();
}

/// Runs `f(args...)` on the running loop's default executor and returns its result on the
/// loop's thread (asyncio.to_thread). Function and arguments are decay-copied (like
/// std::thread); the call starts when the returned coro is awaited (or scheduled with
/// create_task/gather).
///
/// Returns (from co_await): f's result. Throws: whatever f threw (rethrown on the loop
/// thread); invalid_state_error outside a task or when the executor is shut down.
///
/// Cancellation: cancelling the awaiting task (or a wait_for timeout) returns at once with
/// cancelled_error / timeout_error. The thread is not interrupted (as in asyncio): a call
/// already running finishes and its result is dropped safely; one still queued never runs.
///
/// Example:
/// @code
///   std::string text = co_await coio::to_thread(read_file, "/etc/hostname");
///   auto [a, b] = co_await coio::gather(coio::to_thread(f), coio::to_thread(g));
/// @endcode
template <class F, class... A>
    requires std::invocable<std::decay_t<F>, std::decay_t<A>...>
[[nodiscard]] coro<detail::call_result_t<F, A...>> to_thread(F&& f, A&&... args) {
    return detail::call_in_pool<detail::call_result_t<F, A...>>(
        nullptr, detail::bind_call(std::forward<F>(f), std::forward<A>(args)...));
}

/// Runs `f(args...)` on `executor` (loop.run_in_executor). `executor` must outlive the call.
/// Returns, throws, cancellation: as to_thread.
/// Example: `auto digest = co_await coio::run_in_executor(pool, sha256, std::move(data));`
template <class F, class... A>
    requires std::invocable<std::decay_t<F>, std::decay_t<A>...>
[[nodiscard]] coro<detail::call_result_t<F, A...>> run_in_executor(thread_pool& executor, F&& f, A&&... args) {
    return detail::call_in_pool<detail::call_result_t<F, A...>>(
        &executor, detail::bind_call(std::forward<F>(f), std::forward<A>(args)...));
}

/// run_in_executor on the default executor (asyncio's `loop.run_in_executor(None, f)`).
/// Example: `co_await coio::run_in_executor(nullptr, f);`
template <class F, class... A>
    requires std::invocable<std::decay_t<F>, std::decay_t<A>...>
[[nodiscard]] coro<detail::call_result_t<F, A...>> run_in_executor(std::nullptr_t, F&& f, A&&... args) {
    return detail::call_in_pool<detail::call_result_t<F, A...>>(
        nullptr, detail::bind_call(std::forward<F>(f), std::forward<A>(args)...));
}

/// Submits `c` to `loop` from ANY thread and returns a std::future for its result
/// (asyncio.run_coroutine_threadsafe). The coroutine runs as a task on `loop`'s thread.
///
/// `loop` must be alive and not closed when this is called (e.g. running on its own thread).
/// If the loop closes before the task starts, the future reports std::future_error
/// (broken_promise); if the task is cancelled (e.g. the loop shuts down), it holds
/// cancelled_error.
///
/// Returns: a std::future<T> with the coroutine's result or exception. Do not block on it
/// from a loop thread: from another loop, await it through `coio::to_thread([&] { return
/// fut.get(); })`.
/// Throws: std::bad_alloc; invalid_state_error when the loop is closed.
///
/// Cancellation: none from the caller's side (std::future cannot cancel); the task is an
/// ordinary task of `loop`.
///
/// Example:
/// @code
///   std::future<int> f = coio::run_coroutine_threadsafe(compute(21), other_loop);
///   int v = f.get();   // on a plain thread
/// @endcode
template <class T>
[[nodiscard]] std::future<T> run_coroutine_threadsafe(coro<T> c, event_loop& loop) {
    std::promise<T> p;
    std::future<T> f = p.get_future();
    event_loop* l = &loop;
    loop.call_soon_threadsafe([c = std::move(c), p = std::move(p), l]() mutable {
        // On the loop's thread. A throw here (bad_alloc) destroys p: broken_promise.
        (void)l->create_task(detail::deliver_to_promise(std::move(c), std::move(p)));
    });
    return f;
}

} // namespace coio
