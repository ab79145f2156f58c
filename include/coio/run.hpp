// coio/run.hpp - coio::run (asyncio.run).
#pragma once

#include <coio/coro.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/task.hpp>

#include <csignal>
#include <cerrno>
#include <sys/syscall.h>
#include <unistd.h>

namespace coio {

namespace detail {

inline void sigint_handler(int) noexcept {
    const int saved_errno = errno;
    if (sigint_count.fetch_add(1) > 0) {
        // Second Ctrl-C while the first is still being handled: the user means it.
        std::signal(SIGINT, SIG_DFL);
        std::raise(SIGINT);
    } else if (int fd = sigint_wake_fd.load(); fd >= 0) {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
    }
    errno = saved_errno;
}

/// Installs the SIGINT handler for the duration of coio::run, only on the main thread and
/// only when SIGINT has its default disposition (asyncio.Runner's rule), and restores it.
class sigint_scope {
public:
    sigint_scope(int wake_fd, bool wanted) {
        if (!wanted || ::syscall(SYS_gettid) != ::getpid()) return;
        struct sigaction current {};
        if (::sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) return;
        sigint_count.store(0);
        sigint_wake_fd.store(wake_fd);
        struct sigaction sa {};
        sa.sa_handler = &sigint_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        installed_ = ::sigaction(SIGINT, &sa, &previous_) == 0;
    }
    sigint_scope(const sigint_scope&) = delete;
    sigint_scope& operator=(const sigint_scope&) = delete;
    ~sigint_scope() {
        if (!installed_) return;
        ::sigaction(SIGINT, &previous_, nullptr);
        sigint_wake_fd.store(-1);
        sigint_count.store(0);
    }

private:
    struct sigaction previous_ {};
    bool installed_ = false;
};

} // namespace detail

/// Runs `main` on a new event loop and returns its result (asyncio.run).
///
/// Creates a loop on this thread, runs `main` as the task "main" until it completes, then
/// shuts down like asyncio.run: cancels every task still pending, runs the loop until they
/// have finished, shuts down the resolver and executor, and closes the ring. Every coroutine
/// frame is destroyed; exceptions of tasks nobody awaited are reported through the loop's
/// exception handler (stderr by default).
///
/// Ctrl-C (SIGINT) cancels `main` (as asyncio does since 3.11); after the clean shutdown run
/// throws keyboard_interrupt. A second Ctrl-C during shutdown kills the process the default
/// way. The handler is installed only on the main thread and only if SIGINT is at its default.
///
/// @param main     the coroutine to run.
/// @param options  loop settings, e.g. `{.entries = 4096}`.
/// Returns: main's result. Throws: main's exception; cancelled_error if main was cancelled;
/// keyboard_interrupt after Ctrl-C; invalid_state_error when called while a loop is running
/// on this thread; std::system_error when io_uring cannot be set up.
///
/// Example:
/// @code
///   coio::coro<int> main_() { co_await coio::sleep(1s); co_return 0; }
///   int main() { return coio::run(main_()); }
/// @endcode
template <class T>
T run(coro<T> main, run_options options = {}) {
    if (detail::running_loop)
        throw invalid_state_error("coio::run() cannot be called from a running event loop");
    event_loop loop(options);
    task<T> t = loop.create_task(std::move(main), "main");
    {
        detail::sigint_scope sigint(loop.wake_fd(), options.handle_sigint);
        loop.set_main_task(t.state());
        try {
            loop.run_until_done(*t.state());
        } catch (...) {
            loop.set_main_task(nullptr);
            loop.close();
            throw;
        }
        loop.set_main_task(nullptr);
        loop.close();
    }
    if (loop.interrupted() && t.cancelled()) throw keyboard_interrupt();
    return t.state()->take_for_await();
}

} // namespace coio
