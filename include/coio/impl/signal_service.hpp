// coio/impl/signal_service.hpp - the machinery of event_loop::add_signal_handler,
// remove_signal_handler and coio::wait_signal: one signalfd per loop, read on the loop.
// Not API: include <coio/loop.hpp> (handlers) or <coio/signal.hpp> (wait_signal).
//
// Contracts:
//  * A signal is "in use" while it has a handler or a live wait_signal waiting for it. While
//    in use it is blocked in the loop's thread (pthread_sigmask) and in the signalfd's mask,
//    so the kernel queues it for the signalfd instead of running its disposition. Threads
//    coio creates block it too (detail/signal_mask.hpp), so a process-directed signal cannot
//    be delivered to them instead.
//  * When a signal stops being in use, it is unblocked again only if the loop blocked it (a
//    signal the program had blocked itself stays blocked), after discarding an instance that
//    is pending but not read yet, so it does not run the default action at that moment.
//  * One read operation (op_code::read on the signalfd, up to `batch` siginfos) is in flight
//    while any signal is in use, and re-armed after each completion. On io_uring the
//    signalfd is blocking (io_uring answers -EAGAIN at once for an O_NONBLOCK descriptor
//    instead of waiting); on epoll the backend makes it non-blocking and waits for readiness.
//  * Handlers run as ordinary loop callbacks (call_soon), one per signal read; waiters are
//    woken as tasks. Both happen from the read's completion, never from a signal handler.
//  * Loop close (shutdown()): the read is cancelled and waited for, every signal the loop
//    blocked is unblocked (the thread's mask is as before the first handler), the fd closed.
#pragma once

#include <coio/detail/decl.hpp>
#include <coio/detail/loop_service.hpp>
#include <coio/detail/operation.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/loop.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace coio::detail {

/// Throws std::invalid_argument for a signal a loop cannot handle: out of range, SIGKILL and
/// SIGSTOP (which cannot be caught or blocked), the C library's reserved real-time signals,
/// and the synchronous fault signals (sent to the faulting thread, never to a signalfd).
inline void check_handleable_signal(int sig) {
    if (sig <= 0 || sig >= NSIG)
        throw std::invalid_argument("coio: signal number " + std::to_string(sig) + " out of range (1 to " +
                                    std::to_string(NSIG - 1) + ")");
    if (sig == SIGKILL || sig == SIGSTOP)
        throw std::invalid_argument("coio: SIGKILL and SIGSTOP cannot be caught (signal " + std::to_string(sig) + ")");
    if (sig > SIGSYS && sig < SIGRTMIN)
        throw std::invalid_argument("coio: signal " + std::to_string(sig) + " is reserved by the C library");
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP || sig == SIGSYS)
        throw std::invalid_argument("coio: signal " + std::to_string(sig) +
                                    " is a synchronous fault signal and cannot be handled on the loop");
}

/// A wait_signal registration: the signals it wants (bit sig - 1) and the first one that
/// arrived. `on_arrival` is called (from the read's completion) when it gets its signal.
struct signal_waiter {
    std::uint64_t wanted = 0;
    int got = 0;
    void (*on_arrival)(signal_waiter*) noexcept = nullptr;
};

/// The per-loop signal machinery (see the contracts above).
class signal_service final : public loop_service {
public:
    explicit signal_service(event_loop& loop) : loop_(&loop) {
        sigemptyset(&fd_mask_);
        reader_.self = this;
        reader_.background = true;  // waits for a signal that may never come: a virtual clock need not wait for it
    }
    signal_service(const signal_service&) = delete;
    signal_service& operator=(const signal_service&) = delete;
    ~signal_service() override {
        if (fd_ >= 0) ::close(fd_);
    }

    void add_handler(int sig, std::function<void()> callback) {
        check_handleable_signal(sig);
        check_open();
        if (!callback) throw std::invalid_argument("coio: add_signal_handler needs a callback");
        auto h = std::make_shared<std::function<void()>>(std::move(callback));
        slot& s = slots_[static_cast<std::size_t>(sig)];
        if (s.handler) {
            s.handler = std::move(h);  // replaces: the signal stays in use
            return;
        }
        acquire(sig);
        s.handler = std::move(h);
    }

    bool remove_handler(int sig) {
        check_handleable_signal(sig);
        slot& s = slots_[static_cast<std::size_t>(sig)];
        if (!s.handler) return false;
        s.handler.reset();
        release(sig);
        return true;
    }

    [[nodiscard]] bool has_handler(int sig) const noexcept {
        return sig > 0 && sig < NSIG && slots_[static_cast<std::size_t>(sig)].handler != nullptr;
    }

    void add_waiter(signal_waiter& w) {
        check_open();
        std::uint64_t done = 0;
        try {
            for (int sig = 1; sig < NSIG; ++sig) {
                if (!(w.wanted & bit(sig))) continue;
                ++slots_[static_cast<std::size_t>(sig)].waiters;
                try {
                    if (slots_[static_cast<std::size_t>(sig)].users() == 1) acquire(sig);
                } catch (...) {
                    --slots_[static_cast<std::size_t>(sig)].waiters;
                    throw;
                }
                done |= bit(sig);
            }
            waiters_.push_back(&w);
        } catch (...) {
            release_bits(done);
            throw;
        }
    }

    void remove_waiter(signal_waiter& w) noexcept {
        auto it = std::find(waiters_.begin(), waiters_.end(), &w);
        if (it == waiters_.end()) return;
        waiters_.erase(it);
        release_bits(w.wanted);
    }

    void shutdown() noexcept override {
        closing_ = true;
        for (int sig = 1; sig < NSIG; ++sig) slots_[static_cast<std::size_t>(sig)].handler.reset();
        if (reader_.armed) loop_->cancel(reader_);
        // The read's completion arrives within an iteration or two; bounded anyway, so a
        // kernel that never answers cannot hang loop.close() (the fd then stays open until
        // the service is destroyed, after the backend is torn down).
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);  // real time, also under a virtual clock
        while (reader_.armed && std::chrono::steady_clock::now() < deadline) {
            try {
                loop_->run_once();
            } catch (...) {
                break;
            }
        }
        for (int sig = 1; sig < NSIG; ++sig) {
            slot& s = slots_[static_cast<std::size_t>(sig)];
            s.waiters = 0;
            if (s.we_blocked) unblock(sig);
        }
        waiters_.clear();
        sigemptyset(&fd_mask_);
        if (!reader_.armed && fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

private:
    static constexpr std::size_t batch = 16;

    struct slot {
        std::shared_ptr<std::function<void()>> handler;
        unsigned waiters = 0;
        bool we_blocked = false;
        [[nodiscard]] unsigned users() const noexcept { return (handler ? 1u : 0u) + waiters; }
    };
    struct reader_op : operation {
        signal_service* self = nullptr;
        bool armed = false;
        std::array<signalfd_siginfo, batch> infos{};
    };

    static std::uint64_t bit(int sig) noexcept { return std::uint64_t{1} << (sig - 1); }

    void check_open() const {
        if (closing_ || loop_->is_closed()) throw invalid_state_error("coio: the event loop is closed");
    }

    // A signal starts being in use: block it here, then let the signalfd take it.
    void acquire(int sig) {
        sigset_t one, old;
        sigemptyset(&one);
        sigaddset(&one, sig);
        if (const int e = ::pthread_sigmask(SIG_BLOCK, &one, &old))
            throw std::system_error(e, std::generic_category(), "coio: pthread_sigmask");
        slot& s = slots_[static_cast<std::size_t>(sig)];
        s.we_blocked = !sigismember(&old, sig);
        sigaddset(&fd_mask_, sig);
        try {
            update_fd();
            arm();
        } catch (...) {
            sigdelset(&fd_mask_, sig);
            if (s.we_blocked) unblock(sig);
            throw;
        }
    }

    void release_bits(std::uint64_t bits) noexcept {
        for (int sig = 1; sig < NSIG; ++sig) {
            if (!(bits & bit(sig))) continue;
            slot& s = slots_[static_cast<std::size_t>(sig)];
            if (s.waiters > 0) --s.waiters;
            release(sig);
        }
    }

    // A signal may stop being in use (no handler, no waiter left).
    void release(int sig) noexcept {
        slot& s = slots_[static_cast<std::size_t>(sig)];
        if (s.users() > 0) return;
        sigdelset(&fd_mask_, sig);
        if (fd_ >= 0) ::signalfd(fd_, &fd_mask_, 0);  // shrinking a mask cannot fail
        if (s.we_blocked) unblock(sig);
        // The read stays armed on an empty mask until the loop closes or it completes: it
        // costs nothing, and cancelling it here would race a batch already read.
    }

    // Unblocks `sig` in this thread after discarding an instance of it that is pending (it
    // arrived while handled, and must not run the default action now).
    void unblock(int sig) noexcept {
        slot& s = slots_[static_cast<std::size_t>(sig)];
        s.we_blocked = false;
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        const timespec zero{};
        while (::sigtimedwait(&one, nullptr, &zero) == sig) {
        }
        ::pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    }

    void update_fd() {
        if (fd_ >= 0) {
            if (::signalfd(fd_, &fd_mask_, 0) < 0)
                throw std::system_error(errno, std::generic_category(), "coio: signalfd");
            return;
        }
        // See the contracts: blocking on io_uring, non-blocking on epoll.
        const int flags = SFD_CLOEXEC | (loop_->backend() == coio::backend::epoll ? SFD_NONBLOCK : 0);
        fd_ = ::signalfd(-1, &fd_mask_, flags);
        if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "coio: signalfd");
    }

    void arm() {
        if (reader_.armed || closing_) return;
        reader_.set_read(fd_, reader_.infos.data(), sizeof reader_.infos);
        reader_.complete = &on_read;
        loop_->submit(reader_);
        reader_.armed = true;
    }

    static void on_read(operation* op, int res, unsigned) noexcept {
        auto* r = static_cast<reader_op*>(op);
        r->armed = false;
        r->self->handle_read(res);
    }

    void handle_read(int res) noexcept {
        if (res > 0) {
            const auto n = static_cast<std::size_t>(res) / sizeof(signalfd_siginfo);
            for (std::size_t i = 0; i < n; ++i) dispatch(static_cast<int>(reader_.infos[i].ssi_signo));
        } else if (res < 0 && res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
            // Not expected from a signalfd: report it once and stop reading rather than spin.
            loop_->call_exception_handler(
                {"Error reading the loop's signalfd",
                 std::make_exception_ptr(std::system_error(-res, std::generic_category(), "coio: signalfd read")),
                 {},
                 {}});
            return;
        }
        if (closing_) return;
        try {
            if (!sigisemptyset(&fd_mask_)) arm();
        } catch (...) {
            loop_->call_exception_handler({"Cannot re-arm the loop's signalfd read", std::current_exception(), {}, {}});
        }
    }

    void dispatch(int sig) noexcept {
        if (sig <= 0 || sig >= NSIG) return;
        if (auto h = slots_[static_cast<std::size_t>(sig)].handler) {
            try {
                loop_->call_soon([h = std::move(h)] { (*h)(); });
            } catch (...) {
                loop_->call_exception_handler({"Cannot schedule a signal handler", std::current_exception(), {}, {}});
            }
        }
        // on_arrival only records and schedules; it never unregisters a waiter inline.
        for (signal_waiter* w : waiters_) {
            if (w->got == 0 && (w->wanted & bit(sig))) {
                w->got = sig;
                if (w->on_arrival) w->on_arrival(w);
            }
        }
    }

    event_loop* loop_;
    int fd_ = -1;
    sigset_t fd_mask_;
    bool closing_ = false;
    std::array<slot, NSIG> slots_{};
    std::vector<signal_waiter*> waiters_;
    reader_op reader_;
};

} // namespace coio::detail

#if COIO_DEFINE_BODIES
namespace coio {

COIO_DECL void event_loop::add_signal_handler(int sig, std::function<void()> callback) {
    service<detail::signal_service>().add_handler(sig, std::move(callback));
}

COIO_DECL bool event_loop::remove_signal_handler(int sig) {
    return service<detail::signal_service>().remove_handler(sig);
}

} // namespace coio
#endif
