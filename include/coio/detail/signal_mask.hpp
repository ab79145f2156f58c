// coio/detail/signal_mask.hpp - the signal mask of the threads coio creates. Not API.
//
// Contract: a process-directed signal (kill(pid, sig), Ctrl-C, SIGTERM from a service
// manager) goes to one thread that does not block it, chosen by the kernel. A loop that
// handles a signal (add_signal_handler, wait_signal) blocks it in its own thread and reads
// it from a signalfd; if any other thread left it unblocked, the kernel could deliver it
// there instead, running the default action (ending the process) or a handler the loop
// never sees. So every thread coio starts blocks every asynchronous signal from its first
// instruction: it is created while its creator has them blocked, and inherits that mask.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <initializer_list>

namespace coio::detail {

/// Every signal except the synchronous ones, which the kernel sends to the thread that
/// caused them (a fault, a write to a closed pipe): blocking those would only change what
/// happens to that thread (SIGSEGV blocked is fatal anyway; SIGPIPE blocked turns into
/// EPIPE), so they keep the creator's setting.
inline sigset_t asynchronous_signals() noexcept {
    sigset_t set;
    sigfillset(&set);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGPIPE, SIGXFSZ}) sigdelset(&set, sig);
    return set;
}

/// While alive, the calling thread blocks every asynchronous signal; threads it creates
/// meanwhile start with them blocked. The destructor restores the caller's mask.
class block_signals_for_new_threads {
public:
    block_signals_for_new_threads() noexcept {
        const sigset_t set = asynchronous_signals();
        ::pthread_sigmask(SIG_BLOCK, &set, &saved_);
    }
    block_signals_for_new_threads(const block_signals_for_new_threads&) = delete;
    block_signals_for_new_threads& operator=(const block_signals_for_new_threads&) = delete;
    ~block_signals_for_new_threads() { ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

private:
    sigset_t saved_;
};

} // namespace coio::detail

namespace coio::detail {

/// Makes a write to a pipe whose reader has gone fail with EPIPE instead of killing the
/// process: SIGPIPE's disposition is set to "ignore" if it is the default. A disposition the
/// program chose (a handler, or ignore) is kept. A socket needs none of this (MSG_NOSIGNAL);
/// a pipe has no per-call flag, and blocking SIGPIPE in the loop's thread would not do: an
/// io_uring write may run in a kernel worker thread, and a blocked SIGPIPE stays pending on
/// the thread and kills it the moment the mask changes. Python ignores SIGPIPE at startup for
/// the same reason; coio does it only once a pipe stream or a subprocess is made.
/// Children coio spawns get the default disposition back (see coio/subprocess.hpp).
inline void ignore_sigpipe_if_default() noexcept {
    struct sigaction old {};
    if (::sigaction(SIGPIPE, nullptr, &old) != 0) return;
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) return;  // the program's choice
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGPIPE, &ign, nullptr);
}

} // namespace coio::detail
