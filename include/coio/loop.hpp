// coio/loop.hpp - coio::event_loop: one loop per thread over io_uring or epoll (asyncio's
// event loop).
#pragma once

#include <coio/backend.hpp>
#include <coio/detail/backend.hpp>
#include <coio/detail/callback.hpp>
#include <coio/detail/core.hpp>
#include <coio/detail/decl.hpp>
#include <coio/detail/loop_service.hpp>
#include <coio/detail/operation.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/errors.hpp>
#include <coio/resolver_options.hpp>
#include <coio/task_options.hpp>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace coio {

template <class T> class coro;
template <class T> class task;
class any_task;

/// Settings of an event loop, also accepted by `coio::run` (as `coio::run_options`).
///
/// Example: `coio::run(main(), {.entries = 4096});`
struct loop_options {
    /// The kernel interface the loop runs on (see coio::backend): io_uring where allowed,
    /// epoll otherwise; COIO_BACKEND=epoll|io_uring overrides `automatic`.
    coio::backend backend = coio::backend::automatic;
    /// Submission queue entries of the loop's io_uring. More entries batch more operations
    /// per system call; when the queue fills, coio submits and carries on (never fails).
    unsigned entries = 1024;
    /// Completion queue entries; 0 means 8 x `entries`, so bursts of completions from many
    /// in-flight operations do not overflow into the kernel's slower backlog list.
    unsigned cq_entries = 0;
    /// Install a SIGINT handler during `coio::run` (main thread only, and only when SIGINT
    /// has its default disposition) that cancels the main task, as asyncio.run does.
    bool handle_sigint = true;
    /// Signals that cancel the main task of `coio::run` / `coio::run_main`, read on the loop
    /// (as event_loop::add_signal_handler), e.g. `{.cancel_on_signals = {SIGINT, SIGTERM}}`:
    /// the first one cancels main, and its handlers are removed at once, so a second signal
    /// during the shutdown has its default effect (ends the process). run then throws
    /// keyboard_interrupt naming the signal (run_main returns 128 + its number). SIGINT listed
    /// here replaces the handle_sigint handler. Empty (the default): only handle_sigint.
    std::vector<int> cancel_on_signals{};
    /// Debug mode (asyncio's `debug=True`; COIO_DEBUG=1 in the environment turns it on too):
    /// reports through the exception handler task steps and callbacks slower than
    /// slow_callback_duration (naming the task and where it is suspended now), coros
    /// destroyed without ever being awaited (with where the coroutine function is), and
    /// tasks still pending when the loop closes (with their call graphs). Off: no cost but
    /// one test of this flag per loop iteration.
    bool debug = false;
    /// In debug mode, a task step or callback that takes at least this long is reported.
    coio::clock::duration slow_callback_duration = std::chrono::milliseconds(100);
    /// A signal (e.g. SIGUSR1) on which the loop prints every pending task as a tree
    /// (event_loop::dump_tasks) to stderr; 0: none, unless COIO_DUMP_SIGNAL names one
    /// ("USR1", "SIGUSR1" or a number). Installed by the loop's constructor as
    /// add_signal_handler(dump_signal, ...), with the same rules: construct the loop on the
    /// thread that runs it; a later add_signal_handler for that signal replaces the dump. The
    /// signal is read through the loop's signalfd, so the dump happens on the loop, between
    /// two steps, never in a signal handler. Example: `coio::run(main(), {.dump_signal = SIGUSR1});`
    /// Throws (from the loop's constructor): std::invalid_argument for a signal a loop cannot
    /// handle (see add_signal_handler).
    int dump_signal = 0;
    /// Settings of the loop's default resolver (used by the free coio::getaddrinfo).
    resolver_options resolver{};
    /// Threads of the loop's default executor (coio::to_thread); 0: min(32, cores + 4),
    /// asyncio's default.
    std::size_t executor_threads = 0;
    /// Buffers of the loop's provided-buffer ring, which every stream of the loop receives
    /// into (multishot receive) and which stream_chunks hand out: how many (a power of two,
    /// at most 32768) and how big. The default, 256 x 64 KiB, is 16 MiB of address space;
    /// pages are touched only as far as received data reaches. A server streaming to many
    /// connections that hold data in flight (write(stream_chunk) + drain) runs out of
    /// buffers sooner: it then receives through a slower copying path; more buffers avoid
    /// that (the echo benchmark's reference server uses 1024). Throws: std::invalid_argument
    /// from the loop's constructor for a count that is not a power of two, or a size of 0.
    unsigned receive_buffers = 256;
    /// Size of each receive buffer in bytes; see receive_buffers.
    unsigned receive_buffer_size = 64 * 1024;
    /// The loop's clock: `clock_kind::real`, or `clock_kind::virtual_time` for tests, where
    /// the clock jumps to the next timer whenever every task is blocked (see
    /// coio::clock_kind, also for the rule with real I/O).
    /// Example: `coio::run(main(), {.clock = coio::clock_kind::virtual_time});`
    clock_kind clock = clock_kind::real;
    /// Start every task eagerly unless its create_task says otherwise (asyncio's
    /// `loop.set_task_factory(asyncio.eager_task_factory)`): it runs inside create_task until
    /// its first suspension (see task_options::eager_start). Applies to the tasks coio creates
    /// for you too (gather and as_completed of coros, server handlers), not to run's main.
    /// Example: `coio::run(main(), {.eager_tasks = true});`
    bool eager_tasks = false;
};

/// Alias: the options of `coio::run` are the options of the loop it creates.
using run_options = loop_options;

/// What the loop's exception handler is told (asyncio's exception-handler `context` dict).
struct exception_context {
    /// Human-readable description, e.g. "Task exception was never retrieved". No "coio: "
    /// prefix: the default handler adds it when it prints the line.
    std::string message;
    /// The exception, if any.
    std::exception_ptr exception;
    /// Name of the task involved (empty when none).
    std::string task_name;
    /// Where the task was created (file:line), empty when none.
    std::string task_created_at;
};

namespace detail {

inline thread_local event_loop* running_loop = nullptr;

// Written by the SIGINT handler (async-signal-safe: an atomic flag and write(2)).
inline std::atomic<int> sigint_wake_fd{-1};
inline std::atomic<int> sigint_count{0};

} // namespace detail

/// A handle to a callback scheduled with `call_soon` (asyncio.Handle): cancel it before it
/// runs. Copyable; safe to keep after the callback ran (then cancel does nothing).
class handle {
public:
    handle() noexcept = default;
    /// Prevents the callback from running if it has not run yet. No effect afterwards.
    void cancel() noexcept;
    /// True once cancel() was called.
    [[nodiscard]] bool cancelled() const noexcept { return p_ && p_->cancelled; }

protected:
    friend class event_loop;
    explicit handle(detail::callback_base* p) noexcept : p_(p) {}
    detail::ref_ptr<detail::callback_base> p_;
};

/// A handle to a callback scheduled with `call_later`/`call_at` (asyncio.TimerHandle).
class timer_handle : public handle {
public:
    timer_handle() noexcept = default;
    /// When the callback is (or was) scheduled to run, on the loop's clock.
    [[nodiscard]] clock::time_point when() const noexcept { return p_ ? p_->deadline : clock::time_point{}; }

private:
    friend class event_loop;
    using handle::handle;
};

/// The event loop: one per thread, one backend (io_uring, or epoll where io_uring is refused:
/// see coio::backend), one waiting system call per iteration (a connection streaming bulk
/// data adds its own receives: on io_uring see event_loop::streaming_receives, and a
/// streaming read(n) reads ahead with recv(2) on both backends, coio/impl/stream_receive.hpp).
///
/// Most programs never touch it: `coio::run(main())` creates one, runs `main` and closes it.
/// Use it directly for `call_soon`/`call_later`, for `run_until_complete` of several
/// coroutines in a row, or to run a loop on a thread of your own.
///
/// Threading: an event_loop must be created, run and closed on one thread (the ring is set
/// up with IORING_SETUP_SINGLE_ISSUER). Only `call_soon_threadsafe` may be called from other
/// threads.
///
/// Example:
/// @code
///   coio::event_loop loop;
///   loop.call_later(0.5, [] { std::puts("half a second later"); });
///   int v = loop.run_until_complete(compute());
/// @endcode
class event_loop {
public:
    /// Creates the ring.
    /// Throws: std::system_error naming the errno and its likely cause when the backend cannot
    /// be set up (io_uring asked for explicitly where kernel.io_uring_disabled or a seccomp
    /// profile refuses it, RLIMIT_MEMLOCK); std::invalid_argument for bad options or a bad
    /// COIO_BACKEND value.
    explicit event_loop(loop_options options = {});
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;
    /// Closes the loop if it is not closed yet (see close()).
    ~event_loop();

    // ---- time --------------------------------------------------------------------------
    /// The loop's monotonic time in seconds (asyncio's `loop.time()`): virtual time under
    /// clock_kind::virtual_time.
    [[nodiscard]] double time() const noexcept {
        return std::chrono::duration<double>(now().time_since_epoch()).count();
    }
    /// The loop's time as a coio::clock time point (what coio::clock::now() returns while
    /// this loop runs). Under clock_kind::virtual_time it starts at the real time the loop
    /// was created and moves only as coio::clock_kind describes.
    /// Example: `auto t = loop.now() + 2s;`
    [[nodiscard]] clock::time_point now() const noexcept {
        return options_.clock == clock_kind::virtual_time ? virtual_now_ : std::chrono::steady_clock::now();
    }

    // ---- callbacks -------------------------------------------------------------------
    /// Runs `f()` on the next loop iteration, after the callbacks already scheduled (FIFO).
    /// An exception escaping `f` goes to the exception handler.
    /// Returns: a handle that can cancel the call.
    template <class F>
    handle call_soon(F&& f) {
        auto* c = make_callback(std::forward<F>(f));
        ready_.push(c);
        return handle(c);
    }
    /// Runs `f()` once `delay` has passed (at least; never earlier).
    template <class Rep, class Period, class F>
    timer_handle call_later(std::chrono::duration<Rep, Period> delay, F&& f) {
        return call_at(now() + std::chrono::ceil<clock::duration>(delay), std::forward<F>(f));
    }
    /// Runs `f()` once `delay_seconds` have passed.
    template <class F>
    timer_handle call_later(double delay_seconds, F&& f) {
        return call_later(std::chrono::duration<double>(delay_seconds), std::forward<F>(f));
    }
    /// Runs `f()` at `when` on the loop's clock.
    template <class F>
    timer_handle call_at(clock::time_point when, F&& f) {
        auto* c = make_callback(std::forward<F>(f));
        c->deadline = when;
        c->on_expire = [](detail::timer_node* n) noexcept {
            auto* cb = static_cast<detail::callback_base*>(n);
            cb->loop->ready_.push(cb);
        };
        timers_.push(c);
        return timer_handle(c);
    }
    /// Runs `f()` at `when_seconds` of `time()`.
    template <class F>
    timer_handle call_at(double when_seconds, F&& f) {
        return call_at(clock::time_point(std::chrono::duration_cast<clock::duration>(
                           std::chrono::duration<double>(when_seconds))),
                       std::forward<F>(f));
    }
    /// Schedules `f()` from ANY thread and wakes the loop (through an eventfd read that is
    /// always in flight on the ring). The only member safe to call from another thread.
    template <class F>
    void call_soon_threadsafe(F&& f) {
        auto* c = new detail::callback_impl<std::decay_t<F>, false>(std::forward<F>(f));
        c->loop = this;
        c->run = &run_callback;
        std::lock_guard lock(inbox_mutex_);
        // Checked and written under the lock: close() closes the eventfd only after it marked
        // the inbox closed under the same lock, so no write can reach a closed (or reused) fd.
        if (inbox_closed_) {
            delete c;
            throw invalid_state_error("coio: call_soon_threadsafe on a closed event loop");
        }
        inbox_.push_back(c);
        if (inbox_.size() == 1) wake_up();  // one wake-up per batch: the loop drains them all
    }

    // ---- signals (bodies in impl/signal_service.hpp) -----------------------------------
    /// Runs `callback()` on this loop each time signal `sig` arrives (asyncio's
    /// `loop.add_signal_handler`); replaces the handler `sig` already has. The callback runs
    /// as an ordinary loop callback (an exception goes to the exception handler), never in a
    /// signal handler, so it may do anything a callback may. Call on the loop's thread.
    ///
    /// How: `sig` is blocked in this thread and read from a signalfd on the loop; threads coio
    /// creates (to_thread/executor workers) block it too, so a signal sent to the process
    /// (kill, Ctrl-C) reaches the loop. Other threads of the program must block it as well,
    /// or the kernel may deliver it to them. Several instances of one standard signal that
    /// arrive before the loop reads them coalesce into one call (the kernel queues one).
    /// remove_signal_handler, or closing the loop, unblocks it again.
    ///
    /// @param sig       the signal number, e.g. SIGTERM or SIGUSR1.
    /// @param callback  what to run; must not be empty.
    /// Throws: std::invalid_argument for an invalid signal (out of range, SIGKILL, SIGSTOP,
    /// a synchronous fault signal, one reserved by the C library) or an empty callback
    /// (asyncio raises ValueError / TypeError); invalid_state_error when the loop is closed;
    /// std::system_error when the signalfd cannot be created.
    ///
    /// Example: `loop.add_signal_handler(SIGHUP, [&] { reload_config(); });`
    void add_signal_handler(int sig, std::function<void()> callback);
    /// Removes the handler of `sig` (asyncio's `loop.remove_signal_handler`): the signal is
    /// unblocked again (unless the program had blocked it itself), so its disposition applies
    /// to later signals; an instance that arrived but was not dispatched yet is discarded.
    /// Returns: true if `sig` had a handler. Throws: std::invalid_argument for an invalid
    /// signal, as add_signal_handler.
    /// Example: `if (!loop.remove_signal_handler(SIGHUP)) std::puts("no handler");`
    bool remove_signal_handler(int sig);

    // ---- tasks -----------------------------------------------------------------------
    /// Schedules `c` to run as a task (asyncio's `loop.create_task`); eagerly when
    /// loop_options::eager_tasks is set and the loop is running (see task_options).
    /// `name` is anything a std::string can be made from (a template, so that a braced
    /// `{.eager_start = true}` goes to the task_options overload unambiguously).
    template <class T, class Name>
        requires std::is_convertible_v<Name&&, std::string>
    task<T> create_task(coro<T> c, Name&& name, coio::source_location where = coio::source_location::current()) {
        return create_task(std::move(c), task_options{std::string(std::forward<Name>(name)), std::nullopt}, where);
    }
    /// Creates a task from `c` with `options` (name, eager start; see coio::task_options).
    /// Throws: invalid_state_error when the loop is closed or `c` is empty; never what the
    /// coroutine throws (that is stored in the task, eager or not).
    /// Example: `auto t = loop.create_task(lookup(key), {.eager_start = true});`
    template <class T>
    task<T> create_task(coro<T> c, const task_options& options, coio::source_location where = coio::source_location::current());
    /// Schedules `c` as a task named "Task-N" (eagerly with loop_options::eager_tasks).
    /// Not a defaulted task_options parameter: g++ 12 miscopies such a class-type default
    /// argument when the call is inside a co_await expression.
    template <class T>
    task<T> create_task(coro<T> c, coio::source_location where = coio::source_location::current()) {
        return create_task(std::move(c), task_options{}, where);
    }

    /// Runs the loop until `c`, wrapped in a task, is done; returns its result or rethrows.
    /// Throws: invalid_state_error if the loop is running or closed.
    template <class T>
    T run_until_complete(coro<T> c);
    /// Runs the loop until `t` is done; returns its result or rethrows.
    template <class T>
    T run_until_complete(task<T> t);

    /// Runs until stop() is called. Throws: invalid_state_error if running or closed.
    void run_forever();
    /// Makes run_forever() return after the current iteration.
    void stop() noexcept { stopping_ = true; }
    /// True inside run_forever/run_until_complete.
    [[nodiscard]] bool is_running() const noexcept { return running_; }
    /// True after close().
    [[nodiscard]] bool is_closed() const noexcept { return closed_; }
    /// Shuts the loop down: cancels every pending task and runs the loop until they have all
    /// finished (so no coroutine frame is leaked and no kernel operation still targets freed
    /// memory), shuts down the resolver and executor, then tears down the ring. Idempotent.
    /// Unlike asyncio's close(), it cancels pending tasks: C++ cannot leave frames behind.
    /// Throws: invalid_state_error if the loop is running.
    void close();

    // ---- errors ----------------------------------------------------------------------
    /// Signature of an exception handler.
    using exception_handler = std::function<void(event_loop&, const exception_context&)>;
    /// Replaces the handler for errors nobody else can receive (a task exception never
    /// retrieved, an exception escaping a callback). Empty restores the default (stderr).
    void set_exception_handler(exception_handler h) { handler_ = std::move(h); }
    /// The current handler (empty when the default is used).
    [[nodiscard]] const exception_handler& get_exception_handler() const noexcept { return handler_; }
    /// Passes `ctx` to the handler; never throws.
    void call_exception_handler(const exception_context& ctx) noexcept;
    /// The default handler: one line on stderr.
    static void default_exception_handler(const exception_context& ctx) noexcept;

    // ---- introspection ---------------------------------------------------------------
    /// Number of tasks not done yet.
    [[nodiscard]] std::size_t pending_tasks() const noexcept { return pending_tasks_; }
    /// Writes every pending task as a tree (`python -m asyncio pstree`): a task's line
    /// (name, id, where it was created, what its innermost await waits on), the coroutines
    /// it is suspended in (innermost first), then, under it, the tasks it waits for (through
    /// gather, a task_group's join, co_await of a task, shield, wait_for). For debugging
    /// hangs; see also coio::print_call_graph and loop_options::dump_signal.
    ///
    /// Params: `os` - where to write (the dump signal writes to stderr).
    /// Throws: what `os` throws, std::bad_alloc. Cancellation: none; it does not suspend.
    ///
    /// Example output:
    /// @code
    ///   coio: 3 pending tasks
    ///   └── (T) task 'main' id=1 created at app.cpp:40 waiting on gather (2 children, 2 pending)
    ///       │   main_() app.cpp:38
    ///       ├── (T) task 'worker-1' id=2 created at app.cpp:35 waiting on sleep (9.900 s left (of 10.000 s))
    ///       │       fetch_page() app.cpp:12
    ///       │       worker() app.cpp:20
    ///       └── (T) task 'worker-2' id=3 created at app.cpp:36 waiting on queue get
    ///               consumer() app.cpp:28
    /// @endcode
    /// Example: `loop.dump_tasks(std::cerr);`
    void dump_tasks(std::ostream& os) const;

    // ---- for coio's own awaitables and extensions ------------------------------------
    /// Internal: starts an I/O operation (detail/operation.hpp); it completes through its
    /// complete() from a later iteration. Throws: std::system_error when the backend is broken.
    void submit(detail::operation& op) { backend_.submit(op); }
    /// Internal: asks for `op` to be cancelled; it still completes (with -ECANCELED or its
    /// result). Never throws.
    void cancel(detail::operation& op) noexcept { backend_.cancel(op); }
    /// Internal: the caller is about to close `fd`, and nothing of its own waits on it (see
    /// detail::operation::keep_watch). Never throws.
    void forget_fd(int fd) noexcept { backend_.forget_fd(fd); }
    /// The backend the loop runs on (io_uring or epoll; never automatic).
    [[nodiscard]] coio::backend backend() const noexcept { return backend_.kind(); }
    /// The loop's io_uring ring, for preparing custom operations (see coio/uring.hpp).
    /// Throws: not_supported_error when the loop runs on epoll.
    [[nodiscard]] io_uring& ring() { return backend_.uring().ring(); }
    /// Internal: the provided-buffer pool of the loop's streams (net_service).
    int setup_buffers(detail::provided_buffer_ring& pool, unsigned count, unsigned size, std::uint16_t group) noexcept {
        return backend_.setup_buffers(pool, count, size, group);
    }
    /// Internal: see setup_buffers.
    void unregister_buffers(detail::provided_buffer_ring& pool) noexcept { backend_.unregister_buffers(pool); }
    /// Runs one iteration: one io_uring_submit_and_wait_timeout (no wait when work is ready,
    /// otherwise until the nearest timer), then every completion, due timer and callback that
    /// was ready when the iteration began.
    void run_once();
    /// The loop's instance of service S (constructed from the loop on first use).
    template <class S>
    S& service() {
        static const char key = 0;
        for (auto& [k, s] : services_)
            if (k == &key) return static_cast<S&>(*s);
        auto s = std::make_unique<S>(*this);
        S& ref = *s;
        services_.emplace_back(&key, std::move(s));
        return ref;
    }
    /// Internal: puts a timer node in the heap (it fires through its on_expire).
    void add_timer(detail::timer_node* n) { timers_.push(n); }
    /// Internal: takes a queued timer node out of the heap.
    void remove_timer(detail::timer_node* n) noexcept { timers_.remove(n); }
    /// Internal: work outside the backend that the loop must wait for in real time before a
    /// virtual clock may jump (a to_thread call in a worker thread): hold_clock() when it
    /// starts, release_clock() when its result is back on the loop. No effect on a real clock.
    void hold_clock() noexcept { ++clock_holds_; }
    /// Internal: see hold_clock().
    void release_clock() noexcept { --clock_holds_; }
    /// Internal: appends a work item to the ready queue (runs next iteration).
    void schedule(detail::work_item* w) noexcept { ready_.push(w); }
    /// The options the loop was created with.
    [[nodiscard]] const loop_options& options() const noexcept { return options_; }
    /// The ring's setup flags that the kernel accepted (IORING_SETUP_*); 0 on epoll.
    [[nodiscard]] unsigned ring_flags() const noexcept { return backend_.ring_flags(); }
    /// Waiting system calls made so far, io_uring_enter or epoll_wait (for tests and
    /// benchmarks of the one-syscall rule).
    [[nodiscard]] std::uint64_t enter_calls() const noexcept { return backend_.enter_calls(); }
    /// Receives made readiness-style (a recv(2) once the socket is readable) by connections
    /// that stream, on io_uring; always 0 on epoll. For tests and benchmarks of when the
    /// backend switches (coio/detail/uring/backend.hpp, "Streaming receives").
    [[nodiscard]] std::uint64_t streaming_receives() const noexcept { return backend_.streaming_receives(); }

    /// Internal: the loop's live future/task states, oldest first.
    using live_list = detail::intrusive_list<detail::future_base, detail::live_tag>;
    /// Internal: see live_list.
    [[nodiscard]] const live_list& live_states() const noexcept { return live_; }
    /// Internal (coio::run): the task Ctrl-C cancels, or null.
    void set_main_task(detail::task_base* t) noexcept { main_task_ = t; }
    /// Internal (coio::run): true once Ctrl-C cancelled the main task.
    [[nodiscard]] bool interrupted() const noexcept { return interrupted_; }
    /// Internal (coio::run): the eventfd that wakes the loop.
    [[nodiscard]] int wake_fd() const noexcept { return backend_.wake_fd(); }
    /// Internal: runs the loop until `f` is done.
    void run_until_done(detail::future_base& f);
    /// Internal: the task being resumed now, or null.
    [[nodiscard]] detail::task_base* current_task_state() const noexcept { return current_; }

private:
    friend class detail::future_base;
    friend class detail::task_base;
    friend class handle;

    template <class F>
    detail::callback_base* make_callback(F&& f) {
        if (closed_) throw invalid_state_error("coio: the event loop is closed");
        auto* c = new detail::callback_impl<std::decay_t<F>>(std::forward<F>(f));
        c->loop = this;
        c->run = &run_callback;
        return c;
    }
    static void run_callback(detail::work_item* w) noexcept {
        auto* cb = static_cast<detail::callback_base*>(w);
        if (!cb->cancelled) {
            try {
                cb->invoke();
            } catch (...) {
                cb->loop->call_exception_handler({"Exception in callback", std::current_exception(), {}, {}});
            }
        }
        cb->release();
    }
    void wake_up() noexcept { backend_.wake(); }
    void on_wake() noexcept;
    void enter_running();
    void leave_running() noexcept;
    void shutdown_tasks();
    // Introspection and debug mode (impl/call_graph.hpp).
    void init_introspection();
    void run_timed(detail::work_item* w) noexcept;
    void report_pending_at_close() noexcept;
    [[gnu::cold]] void wait_virtual();  // off the hot path: run_once keeps its real-clock layout

    loop_options options_;
    detail::loop_backend backend_;
    detail::ready_queue ready_;
    detail::timer_heap timers_;
    detail::task_base* current_ = nullptr;
    live_list live_;  // every live future/task state, oldest first: the loop detaches them
                      // when it is destroyed before them
    std::size_t pending_tasks_ = 0;
    detail::task_base* main_task_ = nullptr;   // the task SIGINT cancels (set by run)
    bool interrupted_ = false;
    bool running_ = false;
    bool stopping_ = false;
    bool closed_ = false;
    std::mutex inbox_mutex_;                      // guards inbox_ and inbox_closed_
    std::vector<detail::callback_base*> inbox_;
    bool inbox_closed_ = false;
    std::vector<std::pair<const void*, std::unique_ptr<detail::loop_service>>> services_;
    exception_handler handler_;
    // Last, so the members every iteration touches keep their places (cache lines).
    clock::time_point virtual_now_{};  // the virtual clock's time (clock_kind::virtual_time)
    std::size_t clock_holds_ = 0;      // see hold_clock()
};

/// The loop running on this thread.
/// Throws: invalid_state_error when called outside a running loop (asyncio raises
/// RuntimeError: "no running event loop").
[[nodiscard]] inline event_loop& get_running_loop() {
    if (!detail::running_loop)
        throw invalid_state_error("coio: no running event loop (call this from a coroutine run by "
                                  "coio::run() or event_loop::run_until_complete())");
    return *detail::running_loop;
}

} // namespace coio

namespace coio::detail {
/// The task running now (defined in impl/loop.hpp). Throws invalid_state_error outside a task.
COIO_DECL task_base& require_current_task();
} // namespace coio::detail

#if COIO_DEFINE_BODIES
#include <coio/impl/loop.hpp>  // the bodies (with COIO_SEPARATE_COMPILATION: in one file only)
#endif
#include <coio/impl/signal_service.hpp>  // add_signal_handler, remove_signal_handler
#if COIO_DEFINE_BODIES
#include <coio/impl/call_graph.hpp>      // dump_tasks, debug mode (else <coio/call_graph.hpp> has it)
#endif
