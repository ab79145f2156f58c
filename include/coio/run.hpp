// coio/run.hpp - coio::run (asyncio.run).
#pragma once

#include <coio/coro.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/task.hpp>

#include <cxxabi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <type_traits>
#include <typeinfo>
#include <vector>

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

/// run_options::cancel_on_signals: a handler per listed signal; the first signal cancels
/// `main` and removes them all (a second signal then has its default effect). `caught`
/// receives the signal number.
inline void cancel_main_on_signals(event_loop& loop, const std::vector<int>& signals, task_base* main,
                                   int& caught) {
    for (int sig : signals) {
        loop.add_signal_handler(sig, [&loop, &signals, main, &caught, sig] {
            if (caught != 0) return;
            caught = sig;
            for (int s : signals) loop.remove_signal_handler(s);
            main->cancel();
        });
    }
}

/// The body of coio::run that does not depend on main's type: runs the loop until `main`
/// is done, closes it, and throws keyboard_interrupt when a signal cancelled main.
COIO_DECL void run_main_task(event_loop& loop, task_base* main, const run_options& options);

#if COIO_DEFINE_BODIES
COIO_DECL void run_main_task(event_loop& loop, task_base* main, const run_options& options) {
    int caught = 0;  // the signal of options.cancel_on_signals that cancelled main
    {
        const auto& listed = options.cancel_on_signals;
        const bool sigint_listed = std::find(listed.begin(), listed.end(), SIGINT) != listed.end();
        sigint_scope sigint(loop.wake_fd(), options.handle_sigint && !sigint_listed);
        cancel_main_on_signals(loop, listed, main, caught);
        loop.set_main_task(main);
        try {
            loop.run_until_done(*main);
        } catch (...) {
            loop.set_main_task(nullptr);
            loop.close();
            throw;
        }
        loop.set_main_task(nullptr);
        loop.close();
    }
    if (caught != 0 && main->is_cancelled()) throw keyboard_interrupt(caught);
    if (loop.interrupted() && main->is_cancelled()) throw keyboard_interrupt();
}
#endif

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
/// `options.cancel_on_signals` (e.g. `{SIGINT, SIGTERM}`) cancels `main` on those signals
/// instead, read on the loop; run then throws keyboard_interrupt(sig).
///
/// @param main     the coroutine to run.
/// @param options  loop settings, e.g. `{.entries = 4096}`.
/// Returns: main's result. Throws: main's exception; cancelled_error if main was cancelled;
/// keyboard_interrupt after Ctrl-C; invalid_state_error when called while a loop is running
/// on this thread; std::system_error when io_uring cannot be set up; std::invalid_argument
/// for a signal in cancel_on_signals that cannot be handled (see add_signal_handler).
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
    detail::run_main_task(loop, t.state(), options);
    return t.state()->take_for_await();
}

/// The exit status run_main returns after Ctrl-C: 128 + SIGINT, what a shell reports for a
/// program that SIGINT ended (and what Python exits with after an uncaught KeyboardInterrupt).
inline constexpr int exit_status_interrupted = 128 + SIGINT;

namespace detail {

/// The demangled name of the exception being handled ("std::runtime_error"), or
/// "unknown exception" when the runtime cannot say. Call only inside a catch block.
inline std::unique_ptr<char, void (*)(void*)> current_exception_type_name() noexcept {
    const std::type_info* type = abi::__cxa_current_exception_type();
    int status = -1;
    char* name = type ? abi::__cxa_demangle(type->name(), nullptr, nullptr, &status) : nullptr;
    if (status != 0 || !name) {
        std::free(name);
        return {nullptr, &std::free};
    }
    return {name, &std::free};
}

/// Writes "<type>: <message>" for the exception being handled to stderr, after flushing
/// stdout so the program's own output comes first. Call only inside a catch block.
inline void report_uncaught(const char* message) noexcept {
    std::fflush(stdout);
    auto name = current_exception_type_name();
    std::fprintf(stderr, "%s: %s\n", name ? name.get() : "unknown exception", message);
    std::fflush(stderr);
}

} // namespace detail

/// Runs `main` with coio::run and turns the way it ended into a process exit status, as
/// `python prog.py` does for `asyncio.run(main())`: meant to be returned from `main()`.
///
/// - `main` returns: its value when it is an `int` (the program's exit status), else 0.
/// - Ctrl-C (keyboard_interrupt): every task was shut down cleanly; returns
///   exit_status_interrupted (130) without printing anything; 128 + the signal number for
///   another signal of run_options::cancel_on_signals (143 for SIGTERM).
/// - Any other exception, including io_uring being refused at startup: prints its demangled
///   type and message to stderr (`std::runtime_error: no such file`, like the last line of a
///   Python traceback) and returns 1. cancelled_error and exceptions that are not
///   std::exception are reported the same way, with their type name.
///
/// In every case stdout is flushed before run_main returns (and before anything is printed to
/// stderr), so output written with printf or std::cout reaches a pipe even when the program
/// was interrupted; `std::terminate` is never reached.
///
/// @param main     the coroutine to run (as for coio::run).
/// @param options  loop settings, as for coio::run.
/// Returns: the exit status described above. Throws: nothing.
///
/// Cancellation: Ctrl-C cancels `main` (see coio::run); a second Ctrl-C during the shutdown
/// ends the process at once, the default way.
///
/// Example:
/// @code
///   coio::coro<void> amain() { co_await coio::sleep(1s); std::puts("done"); }
///   int main() { return coio::run_main(amain()); }
/// @endcode
template <class T>
int run_main(coro<T> main, run_options options = {}) noexcept {
    int status = 0;
    try {
        if constexpr (std::is_same_v<T, int>) {
            status = coio::run(std::move(main), options);
        } else if constexpr (std::is_void_v<T>) {
            coio::run(std::move(main), options);
        } else {
            (void)coio::run(std::move(main), options);
        }
    } catch (const keyboard_interrupt& e) {
        status = 128 + e.signal();  // exit_status_interrupted for SIGINT
    } catch (const std::exception& e) {
        detail::report_uncaught(e.what());
        status = 1;
    } catch (const cancelled_error& e) {
        detail::report_uncaught(e.what());
        status = 1;
    } catch (...) {
        detail::report_uncaught("(not a std::exception)");
        status = 1;
    }
    std::fflush(stdout);
    return status;
}

} // namespace coio
