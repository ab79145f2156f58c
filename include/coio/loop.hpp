// coio/loop.hpp - coio::event_loop: one io_uring ring, one thread (asyncio's event loop).
#pragma once

#include <coio/detail/core.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/errors.hpp>
#include <coio/resolver_options.hpp>

#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
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
    /// Submission queue entries of the loop's io_uring. More entries batch more operations
    /// per system call; when the queue fills, coio submits and carries on (never fails).
    unsigned entries = 1024;
    /// Completion queue entries; 0 means 8 x `entries`, so bursts of completions from many
    /// in-flight operations do not overflow into the kernel's slower backlog list.
    unsigned cq_entries = 0;
    /// Install a SIGINT handler during `coio::run` (main thread only, and only when SIGINT
    /// has its default disposition) that cancels the main task, as asyncio.run does.
    bool handle_sigint = true;
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
};

/// Alias: the options of `coio::run` are the options of the loop it creates.
using run_options = loop_options;

/// What the loop's exception handler is told (asyncio's exception-handler `context` dict).
struct exception_context {
    /// Human-readable description, e.g. "Task exception was never retrieved".
    std::string message;
    /// The exception, if any.
    std::exception_ptr exception;
    /// Name of the task involved (empty when none).
    std::string task_name;
    /// Where the task was created (file:line), empty when none.
    std::string task_created_at;
};

namespace detail {

/// An in-flight io_uring operation: the CQE's user_data points at it. A tiny vtable (one
/// function pointer) instead of sentinel user_data values: internal events (the wake-up
/// eventfd, c-ares polls) are typed operations like any other.
struct op_base {
    void (*complete)(op_base*, int res, unsigned flags) noexcept = nullptr;
};

/// A callback scheduled with call_soon/call_later/call_at (asyncio.Handle). Reference
/// counted: the loop holds one reference while it is queued, each handle one more.
struct callback_base : work_item, timer_node {
    virtual ~callback_base() = default;
    virtual void invoke() = 0;
    void add_ref() noexcept { ++refs; }
    void release() noexcept { if (--refs == 0) delete this; }
    event_loop* loop = nullptr;
    std::uint32_t refs = 1;
    bool cancelled = false;
};

/// A callback running `F`. Loop-thread callbacks come from the frame pool, as task states:
/// 100,000 call_later callbacks are a normal load. One made on another thread
/// (call_soon_threadsafe, `Pooled` false) and freed on the loop's comes from the global heap,
/// which takes blocks back across threads; the pool would keep each such block with the
/// loop's thread while the calling thread kept taking new ones. (The virtual destructor
/// makes `delete` use the dynamic type's operator delete, with its size.)
template <class F, bool Pooled = true>
struct callback_impl final : callback_base {
    explicit callback_impl(F&& fn) : f(std::move(fn)) {}
    void invoke() override { f(); }
    static void* operator new(std::size_t n) {
        if constexpr (Pooled) return frame_pool::allocate(n);
        else return ::operator new(n);
    }
    static void operator delete(void* p, std::size_t n) noexcept {
        if constexpr (Pooled) frame_pool::deallocate(p, n);
        else ::operator delete(p);  // unsized: clang 14 does not declare sized delete by default
    }
    F f;
};

/// A per-loop service (the DNS resolver, the default executor): created on first use,
/// shut down when the loop closes, after every task has finished.
struct loop_service {
    virtual ~loop_service() = default;
    /// Called once by event_loop::close() after all tasks are done and before the ring is
    /// torn down. May run the loop (run_once) to let its own operations finish.
    virtual void shutdown() noexcept {}
};

inline thread_local event_loop* running_loop = nullptr;

// Written by the SIGINT handler (async-signal-safe: an atomic flag and write(2)).
inline std::atomic<int> sigint_wake_fd{-1};
inline std::atomic<int> sigint_count{0};

[[noreturn]] inline void throw_ring_error(int err) {
    std::string msg = "coio: cannot create an io_uring instance (io_uring_setup failed: ";
    msg += std::strerror(err);
    msg += "): ";
    switch (err) {
    case EPERM:
        msg += "io_uring is disabled for this process: check the kernel.io_uring_disabled sysctl "
               "(must be 0, or 1 with this user in kernel.io_uring_group), and container seccomp "
               "profiles (Docker's default profile blocks io_uring_setup)";
        break;
    case ENOSYS:
        msg += "this kernel has no io_uring (needs Linux 5.1+ built with CONFIG_IO_URING), or a "
               "seccomp filter hides the system call";
        break;
    case ENOMEM:
        msg += "not enough locked memory for the rings: raise RLIMIT_MEMLOCK (ulimit -l) or use "
               "fewer entries";
        break;
    case EINVAL:
        msg += "the kernel rejected the ring parameters (entries must be a power of two, at most "
               "32768 for the submission queue)";
        break;
    case EMFILE:
    case ENFILE:
        msg += "too many open files";
        break;
    default:
        msg += "see io_uring_setup(2)";
    }
    throw std::system_error(err, std::system_category(), msg);
}

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

/// The event loop: one per thread, one io_uring ring, one system call per iteration.
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
    /// Throws: std::system_error naming the errno and its likely cause when io_uring cannot
    /// be set up (kernel.io_uring_disabled, a seccomp profile, RLIMIT_MEMLOCK).
    explicit event_loop(loop_options options = {});
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;
    /// Closes the loop if it is not closed yet (see close()).
    ~event_loop();

    // ---- time --------------------------------------------------------------------------
    /// The loop's monotonic time in seconds (asyncio's `loop.time()`).
    [[nodiscard]] double time() const noexcept {
        return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
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
        return call_at(clock::now() + std::chrono::ceil<clock::duration>(delay), std::forward<F>(f));
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

    // ---- tasks -----------------------------------------------------------------------
    /// Schedules `c` to run as a task (asyncio's `loop.create_task`).
    template <class T>
    task<T> create_task(coro<T> c, std::string name = {},
                        coio::source_location where = coio::source_location::current());

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
    /// Writes one line per pending task: name, where it was created and what it is waiting
    /// on (asyncio's print_call_graph, flattened). For debugging hangs.
    void dump_tasks(std::ostream& os) const;

    // ---- for coio's own awaitables and extensions ------------------------------------
    /// The loop's ring, for preparing custom operations (see coio/uring.hpp).
    [[nodiscard]] io_uring& ring() noexcept { return ring_; }
    /// A free SQE. Never fails: when the submission queue is full, submits and retries.
    [[nodiscard]] io_uring_sqe* get_sqe();
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
    /// Internal: appends a work item to the ready queue (runs next iteration).
    void schedule(detail::work_item* w) noexcept { ready_.push(w); }
    /// The options the loop was created with.
    [[nodiscard]] const loop_options& options() const noexcept { return options_; }
    /// The ring's setup flags that the kernel accepted (IORING_SETUP_*).
    [[nodiscard]] unsigned ring_flags() const noexcept { return ring_flags_; }
    /// io_uring_enter calls made so far (for tests and benchmarks of the one-syscall rule).
    [[nodiscard]] std::uint64_t enter_calls() const noexcept { return enter_calls_; }

    /// Internal: the first of the loop's live future/task states (a list through next_live()).
    [[nodiscard]] detail::future_base* live_states() const noexcept { return live_; }
    /// Internal (coio::run): the task Ctrl-C cancels, or null.
    void set_main_task(detail::task_base* t) noexcept { main_task_ = t; }
    /// Internal (coio::run): true once Ctrl-C cancelled the main task.
    [[nodiscard]] bool interrupted() const noexcept { return interrupted_; }
    /// Internal (coio::run): the eventfd that wakes the loop.
    [[nodiscard]] int wake_fd() const noexcept { return wake_fd_; }
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
    void wake_up() noexcept {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    }
    void arm_wake_read();
    [[nodiscard]] bool nothing_for_kernel() const noexcept {
        if (!(ring_flags_ & IORING_SETUP_TASKRUN_FLAG)) return false;
        if (io_uring_sq_ready(&ring_) != 0 || io_uring_cq_ready(&ring_) != 0) return false;
        const unsigned flags = __atomic_load_n(ring_.sq.kflags, __ATOMIC_ACQUIRE);
        return (flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) == 0;
    }
    void on_wake() noexcept;
    void enter_running();
    void leave_running() noexcept;
    void shutdown_tasks();

    struct wake_op : detail::op_base {
        event_loop* loop;
        std::uint64_t value;
    };

    io_uring ring_{};
    loop_options options_;
    unsigned ring_flags_ = 0;
    std::uint64_t enter_calls_ = 0;
    detail::ready_queue ready_;
    detail::timer_heap timers_;
    detail::task_base* current_ = nullptr;
    detail::future_base* live_ = nullptr;      // every live future/task state, oldest first
    detail::future_base* live_tail_ = nullptr;
    std::size_t pending_tasks_ = 0;
    detail::task_base* main_task_ = nullptr;   // the task SIGINT cancels (set by run)
    bool interrupted_ = false;
    bool running_ = false;
    bool stopping_ = false;
    bool closed_ = false;
    int wake_fd_ = -1;
    wake_op wake_op_{};
    std::mutex inbox_mutex_;                      // guards inbox_ and inbox_closed_
    std::vector<detail::callback_base*> inbox_;
    bool inbox_closed_ = false;
    std::vector<std::pair<const void*, std::unique_ptr<detail::loop_service>>> services_;
    exception_handler handler_;
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

// ===================================================================================
// Implementation
// ===================================================================================

inline void handle::cancel() noexcept {
    if (!p_ || p_->cancelled) return;
    p_->cancelled = true;
    if (p_->queued() && p_->loop) {
        p_->loop->timers_.remove(p_.get());
        p_->release();  // the loop's reference; it was not on the ready queue
    }
}

inline event_loop::event_loop(loop_options options) : options_(options) {
    const unsigned nbufs = options_.receive_buffers;
    if (nbufs == 0 || nbufs > 32768 || (nbufs & (nbufs - 1)) != 0 || options_.receive_buffer_size == 0)
        throw std::invalid_argument("coio: loop_options.receive_buffers must be a power of two from 1 to 32768, "
                                    "and receive_buffer_size more than 0");
    const unsigned cq = options_.cq_entries ? options_.cq_entries : options_.entries * 8;
    // Flags, most wanted first; dropped one group at a time on kernels that refuse them.
    //  SINGLE_ISSUER  only this thread submits: lets the kernel skip submission locking.
    //  DEFER_TASKRUN  completions are processed when we enter the kernel to wait, not by
    //                 interrupting the thread: fewer context switches, batched completions.
    //  SUBMIT_ALL     keep submitting the batch past a failed SQE (each gets its own CQE).
    //  CQSIZE         a completion queue larger than the submission queue (see loop_options).
    //  TASKRUN_FLAG   the kernel flags (IORING_SQ_TASKRUN) when deferred completions wait to be
    //                 run, so an iteration with ready tasks and nothing to submit can skip the
    //                 system call entirely (see run_once).
    const unsigned attempts[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL |
            IORING_SETUP_CQSIZE,
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
        IORING_SETUP_CQSIZE,
    };
    int rc = -EINVAL;
    for (unsigned flags : attempts) {
        io_uring_params p{};
        p.flags = flags;
        p.cq_entries = cq;
        rc = io_uring_queue_init_params(options_.entries, &ring_, &p);
        if (rc == 0) { ring_flags_ = flags; break; }
        if (rc != -EINVAL) break;  // only "unknown flag" is worth a retry
    }
    if (rc < 0) detail::throw_ring_error(-rc);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC);  // blocking on purpose: io_uring polls it for us
    if (wake_fd_ < 0) {
        int e = errno;
        io_uring_queue_exit(&ring_);
        throw std::system_error(e, std::system_category(), "coio: eventfd");
    }
    wake_op_.loop = this;
    wake_op_.complete = [](detail::op_base* op, int, unsigned) noexcept {
        static_cast<wake_op*>(op)->loop->on_wake();
    };
    arm_wake_read();
}

inline event_loop::~event_loop() {
    try {
        close();
    } catch (...) {
        // close() only throws when the loop is running, which a destructor cannot fix.
    }
    // States that outlive the loop (a task handle kept past run()) must not call back into it.
    for (auto* s = live_; s; s = s->next_live_) s->loop_ = nullptr;
}

inline io_uring_sqe* event_loop::get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (!sqe) {
        // Submission queue full: hand the batch to the kernel and take a fresh slot.
        int r = io_uring_submit(&ring_);
        ++enter_calls_;
        if (r < 0 && r != -EBUSY && r != -EAGAIN && r != -EINTR)
            throw std::system_error(-r, std::system_category(), "coio: io_uring_submit");
        sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
}

inline void event_loop::arm_wake_read() {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_read(sqe, wake_fd_, &wake_op_.value, sizeof wake_op_.value, 0);
    io_uring_sqe_set_data(sqe, &wake_op_);
}

inline void event_loop::on_wake() noexcept {
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
    try {
        arm_wake_read();
    } catch (...) {
        call_exception_handler({"coio: cannot re-arm the wake-up read", std::current_exception(), {}, {}});
    }
}

inline void event_loop::run_once() {
    // The one system call of the iteration: submit what was prepared and collect completions.
    int r = 0;
    if (!ready_.empty() || stopping_) {
        // Work is ready: do not sleep. Skip the kernel entirely when it has provably nothing
        // for us: no SQE to submit, no completion posted, and (with DEFER_TASKRUN, where
        // completions are only run inside io_uring_enter) IORING_SQ_TASKRUN clear, which the
        // kernel sets as soon as a completion is waiting. Task switches between ready tasks
        // then cost no system call (queue ping-pong: ~120 -> ~25 ns per item), and I/O is
        // never delayed: any pending completion sets the flag. Otherwise a plain GETEVENTS
        // enter, not a zero timeout, which costs a kernel timer (~20 us against ~1 us).
        if (!nothing_for_kernel()) {
            r = io_uring_submit_and_get_events(&ring_);
            ++enter_calls_;
        }
    } else {
        __kernel_timespec ts{};
        __kernel_timespec* wait = nullptr;  // null: sleep until a completion arrives
        if (!timers_.empty()) {
            auto d = timers_.top_deadline() - clock::now();
            if (d < clock::duration::zero()) d = clock::duration::zero();
            auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
            ts.tv_sec = ns / 1'000'000'000;
            ts.tv_nsec = ns % 1'000'000'000;
            wait = &ts;
        }
        io_uring_cqe* cqe = nullptr;
        // Sleep until at least one completion or the nearest timer's deadline.
        r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, wait, nullptr);
        ++enter_calls_;
    }
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
        throw std::system_error(-r, std::system_category(), "coio: io_uring_enter");

    io_uring_cqe* cqe = nullptr;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        // user_data 0 marks CQEs nobody waits for (async-cancel requests).
        if (auto* op = reinterpret_cast<detail::op_base*>(static_cast<std::uintptr_t>(cqe->user_data)))
            op->complete(op, cqe->res, cqe->flags);
    }
    io_uring_cq_advance(&ring_, seen);

    if (!timers_.empty()) {
        const auto now = clock::now();
        while (!timers_.empty() && timers_.top_deadline() <= now) {
            detail::timer_node* t = timers_.pop();
            t->on_expire(t);
        }
    }

    // Only what is ready now runs in this iteration; work scheduled by it waits for the
    // next one (asyncio's rule, and what makes sleep(0) yield exactly one iteration).
    for (std::size_t n = ready_.size(); n > 0; --n) {
        detail::work_item* w = ready_.pop();
        w->run(w);
    }
}

inline void event_loop::enter_running() {
    if (closed_) throw invalid_state_error("coio: the event loop is closed");
    if (running_) throw invalid_state_error("coio: this event loop is already running");
    if (detail::running_loop)
        throw invalid_state_error("coio: cannot run an event loop while another loop is running in the same thread");
    running_ = true;
    detail::running_loop = this;
}

inline void event_loop::leave_running() noexcept {
    running_ = false;
    stopping_ = false;
    detail::running_loop = nullptr;
}

inline void event_loop::run_forever() {
    enter_running();
    struct guard { event_loop* l; ~guard() { l->leave_running(); } } g{this};
    while (!stopping_) run_once();
}

inline void event_loop::run_until_done(detail::future_base& f) {
    enter_running();
    struct guard { event_loop* l; ~guard() { l->leave_running(); } } g{this};
    while (!f.done()) {
        if (stopping_) throw invalid_state_error("coio: event loop stopped before the future completed");
        run_once();
    }
}

inline void event_loop::shutdown_tasks() {
    enter_running();
    struct guard { event_loop* l; ~guard() { l->leave_running(); } } g{this};
    while (pending_tasks_ > 0) {
        // Cancel each pending task once, as asyncio.run does: a task may catch the cancellation
        // and await its cleanup. Tasks started during shutdown are cancelled in the next round.
        for (auto* s = live_; s; s = s->next_live_) {
            if (!s->is_task_ || s->done()) continue;
            auto* t = static_cast<detail::task_base*>(s);
            if (!std::exchange(t->shutdown_cancelled, true)) t->cancel();
        }
        run_once();
    }
}

inline void event_loop::close() {
    if (closed_) return;
    if (running_) throw invalid_state_error("coio: cannot close a running event loop");
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
    io_uring_queue_exit(&ring_);
    services_.clear();  // after the ring: no kernel operation can still reach their memory
    ::close(wake_fd_);
    wake_fd_ = -1;
}

inline void event_loop::call_exception_handler(const exception_context& ctx) noexcept {
    try {
        if (handler_) { handler_(*this, ctx); return; }
    } catch (...) {
        std::fputs("coio: exception in the exception handler\n", stderr);
    }
    default_exception_handler(ctx);
}

inline void event_loop::default_exception_handler(const exception_context& ctx) noexcept {
    std::string line = "coio: " + ctx.message;
    if (!ctx.task_name.empty()) line += " (task '" + ctx.task_name + "'";
    if (!ctx.task_created_at.empty()) line += ", created at " + ctx.task_created_at;
    if (!ctx.task_name.empty()) line += ")";
    if (ctx.exception) {
        try {
            std::rethrow_exception(ctx.exception);
        } catch (const std::exception& e) {
            line += ": ";
            line += typeid(e).name();
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

inline void event_loop::dump_tasks(std::ostream& os) const {
    for (auto* s = live_; s; s = s->next_live_) {
        if (!s->is_task_ || s->done()) continue;
        auto* t = static_cast<const detail::task_base*>(s);
        const char* w = t->waiting_on();
        os << "task '" << t->name() << "' created at " << t->where().file_name() << ':'
           << t->where().line() << (w ? " waiting on " : " ready") << (w ? w : "") << '\n';
    }
}

// ---- future_base / task_base (need the complete event_loop) --------------------------
/// @cond DETAIL
// (Out-of-line members of detail classes: without this Doxygen reports them as unknown.)
namespace detail {

inline future_base::future_base(event_loop* loop) noexcept : loop_(loop) {
    // Appended: all_tasks(), dump_tasks() and shutdown see tasks in creation order.
    prev_live_ = loop->live_tail_;
    if (prev_live_) prev_live_->next_live_ = this; else loop->live_ = this;
    loop->live_tail_ = this;
}

inline future_base::~future_base() {
    // Subscribers of a future that never completed (allocated done-callbacks): on_done with the
    // state still pending tells them to free themselves.
    while (done_node* n = nodes_) {
        nodes_ = n->next;
        n->on_done(n, *this);
    }
    if (!loop_) return;
    if (prev_live_) prev_live_->next_live_ = next_live_; else loop_->live_ = next_live_;
    if (next_live_) next_live_->prev_live_ = prev_live_; else loop_->live_tail_ = prev_live_;
}

inline bool future_base::cancel() noexcept {
    if (done()) return false;
    complete(status::cancelled);
    return true;
}

inline std::exception_ptr future_base::failure() noexcept {
    retrieved_ = true;
    if (status_ == status::cancelled) return std::make_exception_ptr(cancelled_error{});
    return stored_error();
}

inline void future_base::complete(status s) noexcept {
    status_ = s;
    add_ref();  // a subscriber may drop the last handle while we walk the list
    while (done_node* n = nodes_) {
        nodes_ = n->next;
        n->on_done(n, *this);
    }
    release();
}

inline void future_base::report_unretrieved() noexcept {
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

inline std::uint32_t next_task_id() noexcept {
    static thread_local std::uint32_t id = 0;
    return ++id;
}

inline task_base::task_base(event_loop* loop, std::coroutine_handle<> root, coio::source_location where) noexcept
    : future_base(loop), resume_at_(root), where_file_(where.file_name()), where_line_(where.line()), id_(next_task_id()) {
    is_task_ = true;
    run = &task_base::run_step;
    ++loop->pending_tasks_;
    add_ref();  // the loop's reference, dropped when the task is done
    loop->ready_.push(this);
}

/// The task running now. Throws invalid_state_error outside a task: coio's awaitables
/// suspend tasks, so they can only be awaited by code that a task runs.
inline task_base& require_current_task() {
    event_loop* l = running_loop;
    task_base* t = l ? l->current_task_state() : nullptr;
    if (!t)
        throw invalid_state_error("coio: this must be awaited inside a task (a coroutine run by coio::run, "
                                  "create_task or run_until_complete)");
    return *t;
}

inline void task_base::finish(status s) noexcept {
    --loop_->pending_tasks_;
    complete(s);
    release();  // the loop's reference
}

inline void task_base::wake() noexcept {
    waiting_on_ = nullptr;
    loop_->ready_.push(this);
}

inline bool task_base::request_cancel(const void* timeout_cause) noexcept {
    if (done()) return false;
    ++cancel_requests_;
    if (timeout_cause) timeout_cause_ = timeout_cause; else user_cancel_ = true;
    must_cancel_ = true;
    if (cancel_hook* h = std::exchange(waiting_on_, nullptr)) h->on_cancel(h);
    return true;
}

inline void task_base::throw_cancel() {
    must_cancel_ = false;
    if (!user_cancel_ && timeout_cause_) {
        timeout_cause_ = nullptr;
        throw timeout_error();
    }
    user_cancel_ = false;
    throw cancelled_error();
}

inline std::string task_base::name() const {
    if (name_) return *name_;
    return "Task-" + std::to_string(id_);
}

inline void task_base::run_step(work_item* w) noexcept {
    auto* t = static_cast<task_base*>(w);
    if (!t->started_) {
        t->started_ = true;
        // Cancelled before it ever ran: like asyncio, the coroutine body never starts.
        if (t->must_cancel_) { t->finish_root(t->resume_at_); return; }
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
/// @endcond
} // namespace coio

// event_loop::create_task and run_until_complete are defined in <coio/task.hpp>.
