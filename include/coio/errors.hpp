// coio/errors.hpp - the exception types coio throws.
//
// Mirrors asyncio's exception hierarchy:
//   coio::error (std::runtime_error)    ~ Exception subclasses raised by asyncio
//     timeout_error                      ~ TimeoutError
//     invalid_state_error                ~ InvalidStateError
//   coio::cancelled_error                ~ CancelledError (a BaseException since Python 3.8)
//
// cancelled_error deliberately does NOT derive from std::exception: a `catch (const
// std::exception&)` in user code must not swallow a cancellation by accident, exactly as
// `except Exception` no longer catches CancelledError in Python 3.8+ (and as
// boost::thread_interrupted is not a std::exception). Catch it by name, clean up, rethrow.
#pragma once

#include <csignal>
#include <stdexcept>
#include <string>

namespace coio {

/// Base of every coio error that is an ordinary failure (not a cancellation).
///
/// Derives from std::runtime_error, so `catch (const std::exception&)` sees it.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A deadline passed: thrown by `wait_for`, inside a `timeout` scope, and by `wait` users.
///
/// Example:
/// @code
///   try { co_await coio::wait_for(fetch(), 1s); }
///   catch (const coio::timeout_error&) { /* fetch() was cancelled */ }
/// @endcode
class timeout_error : public error {
public:
    timeout_error() : error("operation timed out") {}
    using error::error;
};

/// An operation is not valid in the object's current state, e.g. `task.result()` of a task
/// that is not done, awaiting a `coro` twice, `create_task` with no running loop.
class invalid_state_error : public error {
public:
    using error::error;
};

/// The running loop's backend cannot do what was asked, e.g. `coio::uring_op` on a loop that
/// runs on the epoll backend (where io_uring is refused). The message says what and why.
///
/// Example:
/// @code
///   try { co_await coio::uring_op(prep); }
///   catch (const coio::not_supported_error& e) { std::puts(e.what()); /* use a socket op */ }
/// @endcode
class not_supported_error : public error {
public:
    using error::error;
};

/// The awaiting task was cancelled (`task.cancel()`, a failing sibling in `gather`, loop
/// shutdown, Ctrl-C).
///
/// Not a std::exception on purpose (see the file comment): catch it by name when you need to
/// clean up, and rethrow it unless you really mean to swallow the cancellation.
///
/// Example:
/// @code
///   try { co_await coio::sleep(10s); }
///   catch (const coio::cancelled_error&) { cleanup(); throw; }
/// @endcode
class cancelled_error {
public:
    cancelled_error() noexcept = default;
    /// A short description, for logs.
    [[nodiscard]] const char* what() const noexcept { return "task cancelled"; }
};

/// Ctrl-C (SIGINT) arrived while `coio::run` was running: the main task was cancelled, every
/// task was shut down cleanly, and `run` reports it with this exception (Python raises
/// KeyboardInterrupt at the same point). Like cancelled_error, it is not a std::exception.
///
/// With `run_options::cancel_on_signals`, the signal that cancelled the main task may be
/// another one (SIGTERM): signal() says which.
class keyboard_interrupt {
public:
    keyboard_interrupt() noexcept = default;
    /// Interrupted by signal `sig` (SIGINT, or one of run_options::cancel_on_signals).
    explicit keyboard_interrupt(int sig) noexcept : signal_(sig) {}
    /// A short description, for logs: "interrupted by SIGINT" (or SIGTERM, ...).
    [[nodiscard]] const char* what() const noexcept {
        switch (signal_) {
        case SIGINT: return "interrupted by SIGINT";
        case SIGTERM: return "interrupted by SIGTERM";
        case SIGHUP: return "interrupted by SIGHUP";
        case SIGQUIT: return "interrupted by SIGQUIT";
        default: return "interrupted by a signal";
        }
    }
    /// The signal number (SIGINT unless run_options::cancel_on_signals named another).
    [[nodiscard]] int signal() const noexcept { return signal_; }

private:
    int signal_ = SIGINT;
};

} // namespace coio
