// coio/impl/child_watch.hpp - watching a child process on the loop through its pidfd, and
// reaping it (the machinery of coio::process). Not API: include <coio/subprocess.hpp>.
//
// Contracts:
//  * One child_watch per spawned child, heap-allocated, reference counted (non-atomic): one
//    reference per process handle and one while its poll is in flight. So a child whose
//    process object was dropped is still watched, and reaped when it exits: no zombie.
//  * The child is watched with a one-shot poll (POLLIN) on its pidfd, armed at spawn: the
//    pidfd becomes readable when the child exits. Then waitid(P_PIDFD, WNOHANG) reaps it and
//    sets the returncode (exit status, or minus the signal number). No SIGCHLD handler is
//    ever installed, and no waitpid(-1): other libraries' children are not touched.
//  * A child that someone else reaped first (a SIGCHLD handler calling waitpid(-1)) has
//    returncode 255, as asyncio reports it.
//  * Signals go through pidfd_send_signal: never to a recycled pid. Once the child is reaped
//    the pidfd is closed and signalling does nothing.
//  * Loop close (subprocess_service::shutdown): children still running are killed (SIGKILL)
//    and reaped before the loop goes away (asyncio's transport kills a child still running
//    when it is closed): nothing is left running or as a zombie. After that the watch is
//    detached; a process handle that outlives the loop still answers pid()/returncode().
#pragma once

#include <coio/detail/loop_service.hpp>
#include <coio/detail/operation.hpp>
#include <coio/impl/net_service.hpp>
#include <coio/impl/waiter_list.hpp>
#include <coio/loop.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>

namespace coio::detail {

/// pidfd_open(2) (Linux 5.3), called directly: glibc wrappers came later than the kernel.
inline int pidfd_open_syscall(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
/// pidfd_send_signal(2) (Linux 5.1).
inline int pidfd_send_signal_syscall(int pidfd, int sig) noexcept {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

class subprocess_service;

/// The watch on one child (see the contracts above).
class child_watch {
public:
    child_watch(subprocess_service& svc, event_loop& loop, pid_t pid, int pidfd) noexcept;
    child_watch(const child_watch&) = delete;
    child_watch& operator=(const child_watch&) = delete;

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0) delete this;
    }

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] std::optional<int> returncode() const noexcept { return returncode_; }
    [[nodiscard]] waiter_list& waiters() noexcept { return waiters_; }
    [[nodiscard]] bool has_loop() const noexcept { return loop_ != nullptr; }

    /// Arms the poll on the pidfd. Throws: std::system_error when the backend refuses it.
    void start() {
        op_.set_poll(pidfd_, POLLIN);
        loop_->submit(op_);
        polling_ = true;
        add_ref();
    }

    /// Sends `sig` unless the child has been reaped. Throws: std::system_error (EPERM, EINVAL).
    void send_signal(int sig) {
        if (returncode_ || pidfd_ < 0) return;
        if (pidfd_send_signal_syscall(pidfd_, sig) != 0 && errno != ESRCH)
            throw std::system_error(errno, std::system_category(),
                                    "coio: signal " + std::to_string(sig) + " to process " + std::to_string(pid_));
    }

    // ---- for subprocess_service at loop close ----
    /// Kills a child still running and cancels the poll (its completion still comes).
    void abort() noexcept {
        shutting_down_ = true;
        if (!returncode_ && pidfd_ >= 0) pidfd_send_signal_syscall(pidfd_, SIGKILL);
        if (polling_ && loop_) loop_->cancel(op_);
    }
    [[nodiscard]] bool polling() const noexcept { return polling_; }
    /// After abort() and the poll's completion: waits for the (killed) child to be gone.
    void reap_blocking() noexcept {
        while (!returncode_ && pidfd_ >= 0) {
            if (!reap(0) && errno != EINTR) break;
        }
    }
    /// The loop is gone: never touch it again.
    void detach() noexcept {
        svc_ = nullptr;
        loop_ = nullptr;
        waiters_.wake_all(wait_status::orphaned);
    }

private:
    struct poll_op : operation {
        child_watch* self = nullptr;
    };

    ~child_watch();

    /// waitid(P_PIDFD) with `options` (WNOHANG or 0). Returns true when the child was
    /// reaped (returncode set, pidfd closed); false with errno otherwise (errno 0: running).
    bool reap(int options) noexcept {
        siginfo_t info{};
        if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info, WEXITED | options) != 0) {
            if (errno != ECHILD) return false;
            returncode_ = 255;  // reaped by someone else: the status is lost
        } else if (info.si_pid == 0) {
            errno = 0;
            return false;  // still running (a spurious wake-up)
        } else {
            returncode_ = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
        }
        ::close(pidfd_);
        pidfd_ = -1;
        return true;
    }

    static void on_poll(operation* op, int res, unsigned) noexcept {
        child_watch* self = static_cast<poll_op*>(op)->self;
        self->polled(res);
    }
    void polled(int res) noexcept {
        polling_ = false;
        if (!returncode_ && pidfd_ >= 0) {
            // Readable (or an error on the pidfd): reap if the child is gone, else re-arm.
            if (!reap(WNOHANG) && res != -ECANCELED && !shutting_down_ && loop_) {
                try {
                    start();
                } catch (...) {
                    // The backend is broken: the child is reaped at loop close instead.
                }
            }
        }
        if (returncode_) waiters_.wake_all(wait_status::granted);
        release();
    }

    subprocess_service* svc_;
    event_loop* loop_;
    pid_t pid_;
    int pidfd_;
    std::optional<int> returncode_;
    waiter_list waiters_;
    poll_op op_;
    unsigned refs_ = 0;
    bool polling_ = false;
    bool shutting_down_ = false;

public:
    child_watch* next_watch = nullptr;  // subprocess_service's list
    child_watch* prev_watch = nullptr;
};

/// The children of one loop (see the contracts above).
class subprocess_service final : public loop_service {
public:
    explicit subprocess_service(event_loop& l) noexcept : loop_(&l) {}
    ~subprocess_service() override {
        for (child_watch* w = head_; w; w = w->next_watch) w->detach();
    }
    subprocess_service(const subprocess_service&) = delete;
    subprocess_service& operator=(const subprocess_service&) = delete;

    void add(child_watch* w) noexcept {
        w->next_watch = head_;
        if (head_) head_->prev_watch = w;
        head_ = w;
    }
    void remove(child_watch* w) noexcept {
        if (w->prev_watch) w->prev_watch->next_watch = w->next_watch;
        else head_ = w->next_watch;
        if (w->next_watch) w->next_watch->prev_watch = w->prev_watch;
        w->next_watch = w->prev_watch = nullptr;
    }

    void shutdown() noexcept override {
        // Keep every watch alive while we walk the list (a completion may drop the last
        // reference of a watch whose process object is gone).
        for (child_watch* w = head_; w; w = w->next_watch) w->add_ref();
        for (child_watch* w = head_; w; w = w->next_watch) w->abort();
        const auto deadline = clock::now() + std::chrono::seconds(5);
        while (any_polling() && clock::now() < deadline) {
            try {
                loop_->run_once();
            } catch (...) {
                break;
            }
        }
        for (child_watch* w = head_; w; w = w->next_watch) w->reap_blocking();
        for (child_watch* w = head_; w;) {
            child_watch* next = w->next_watch;
            w->release();
            w = next;
        }
    }

private:
    bool any_polling() const noexcept {
        for (child_watch* w = head_; w; w = w->next_watch)
            if (w->polling()) return true;
        return false;
    }

    event_loop* loop_;
    child_watch* head_ = nullptr;
};

inline child_watch::child_watch(subprocess_service& svc, event_loop& loop, pid_t pid, int pidfd) noexcept
    : svc_(&svc), loop_(&loop), pid_(pid), pidfd_(pidfd) {
    op_.self = this;
    op_.complete = &child_watch::on_poll;
    svc.add(this);
}

inline child_watch::~child_watch() {
    if (svc_) svc_->remove(this);
    if (pidfd_ >= 0) {
        // Not reaped (only when the loop went away without a shutdown, or the poll could not
        // be armed): reap now if it is gone, so at least a finished child is no zombie.
        reap(WNOHANG);
        if (pidfd_ >= 0) ::close(pidfd_);
    }
}

} // namespace coio::detail
