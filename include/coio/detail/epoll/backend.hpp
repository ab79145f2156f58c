// coio/detail/epoll/backend.hpp - the epoll backend, for where io_uring is refused (container
// seccomp profiles, kernel.io_uring_disabled, RHEL, gVisor). Not API.
//
// It runs the same operations (detail/operation.hpp) with the same contracts as the io_uring
// backend, readiness-style:
//  * Try the system call first (non-blocking: MSG_DONTWAIT, or O_NONBLOCK set on the
//    descriptor), and only when it would block, queue the operation on its descriptor and
//    register interest with epoll (level-triggered). Multishot receives and accepts simply
//    wait for readiness and then read or accept until EAGAIN (bounded per round, for fairness).
//  * Results found while submitting are queued (`done_`) and dispatched by the next wait(),
//    never inline: an owner may still be setting up its state when submit() returns, exactly
//    as with io_uring, where the completion arrives at the next io_uring_enter.
//  * Multishot receives take their buffers from the loop's provided-buffer pool in user space
//    (provided_buffer_ring without a kernel ring): the completions carry the same op_buffer /
//    buffer-id / op_more flags io_uring produces, so streams and stream_chunks cannot tell.
//  * cancel() of a queued operation completes it with -ECANCELED (dispatched by the next
//    wait); a result that is already queued wins, as on io_uring.
//  * Interest is added when an operation starts waiting and dropped (EPOLL_CTL_DEL) once an
//    event finds nobody waiting on the descriptor: a descriptor nobody waits on is never
//    watched, so a hung-up socket cannot make epoll_wait spin.
//    One exception: input served to a receive or a poll marked keep_watch (a stream's, whose
//    owner calls forget_fd before closing) stays watched, so the next receive on it costs no
//    epoll_ctl (request/response on one-shot receives: an add and a delete per message
//    before). Should data come while nobody waits, that event drops the watch as above. The
//    kept watch is trusted only because forget_fd resets it when the descriptor closes;
//    any other idle descriptor is set afresh when waited on again (its number may have been
//    closed and reused meanwhile).
//  * Timers: the loop passes the nearest deadline as the wait's timeout (epoll_pwait2, with
//    nanoseconds, where the kernel has it; else epoll_wait in milliseconds, rounded up so a
//    timer never fires early).
//  * The cross-thread wake-up is a non-blocking eventfd in the epoll set.
#pragma once

#include <coio/detail/core.hpp>
#include <coio/detail/intrusive_list.hpp>
#include <coio/detail/operation.hpp>
#include <coio/detail/uring/buf_ring.hpp>
#include <coio/errors.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <system_error>
#include <vector>

namespace coio::detail {

class epoll_backend {
public:
    using wake_handler = void (*)(void* ctx) noexcept;

    /// Throws: std::system_error when epoll or the eventfd cannot be created.
    epoll_backend(wake_handler on_wake, void* ctx) : on_wake_(on_wake), wake_ctx_(ctx) {
        epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0) throw std::system_error(errno, std::system_category(), "coio: epoll_create1");
        wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (wake_fd_ < 0) {
            const int e = errno;
            ::close(epfd_);
            throw std::system_error(e, std::system_category(), "coio: eventfd");
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = wake_fd_;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
            const int e = errno;
            ::close(wake_fd_);
            ::close(epfd_);
            throw std::system_error(e, std::system_category(), "coio: epoll_ctl");
        }
    }
    epoll_backend(const epoll_backend&) = delete;
    epoll_backend& operator=(const epoll_backend&) = delete;
    ~epoll_backend() { close(); }

    /// Closes epoll and the eventfd (after every operation completed). Idempotent.
    void close() noexcept {
        if (epfd_ < 0) return;
        ::close(epfd_);
        ::close(wake_fd_);
        epfd_ = wake_fd_ = -1;
    }

    /// Starts `op` (see the file comment).
    /// Throws: not_supported_error for op_code::custom (coio::uring_op needs io_uring) and for
    /// the file operations (openat, close, statx, fsync, renameat), which would block the loop here:
    /// coio::file runs them on the loop's thread pool instead.
    void submit(operation& op) {
        start(op);
        if (holds_clock(op)) ++holding_;  // after start: an operation refused there is not in flight
    }

    /// Operations in flight that hold a virtual clock (see holds_clock).
    [[nodiscard]] std::size_t holding() const noexcept { return holding_; }
    /// True when no result waits to be dispatched (a virtual clock may jump).
    [[nodiscard]] bool quiet() const noexcept { return done_.empty(); }

private:
    void start(operation& op) {
        switch (op.code) {
        case op_code::openat:
        case op_code::close:
        case op_code::statx:
        case op_code::renameat:
        case op_code::fsync:
            throw not_supported_error(
                "coio: file operations (openat, close, statx, fsync) are not run by the epoll backend, where they "
                "would block the loop: coio::file runs them on the loop's thread pool");
        case op_code::custom:
            throw not_supported_error(
                "coio: uring_op needs the io_uring backend, and this loop runs on epoll (io_uring was refused "
                "or not selected: see COIO_BACKEND and loop_options::backend)");
        case op_code::cancel_fd: {
            int n = 0;
            if (fd_state* fs = find(op.fd)) {
                for (auto* l : {&fs->readers, &fs->writers, &fs->pollers}) {
                    while (operation* o = l->pop_front()) {
                        finish(*o, cancelled_result(*o), 0);
                        ++n;
                    }
                }
                update_interest(op.fd, *fs, watch::shrink);
            }
            finish(op, n, 0);
            return;
        }
        case op_code::shutdown:
            finish(op, ::shutdown(op.fd, op.flags) == 0 ? 0 : -errno, 0);
            return;
        case op_code::connect: {
            op.backend_done = 0;
            if (const int e = set_nonblocking(op.fd)) { finish(op, -e, 0); return; }
            int r;
            do r = ::connect(op.fd, static_cast<const sockaddr*>(op.buf), op.len);
            while (r != 0 && errno == EINTR);
            if (r == 0) { finish(op, 0, 0); return; }
            if (errno != EINPROGRESS) { finish(op, -errno, 0); return; }
            op.backend_done = 1;  // in progress: writable means done, SO_ERROR says how
            wait_on(op, &fd_state::writers);
            return;
        }
        case op_code::poll: wait_on(op, &fd_state::pollers); return;
        case op_code::recv_multishot:
        case op_code::accept_multishot:
            if (op.code == op_code::accept_multishot) {
                if (const int e = set_nonblocking(op.fd)) { finish(op, -e, 0); return; }
            }
            wait_on(op, &fd_state::readers);
            return;
        case op_code::accept:
        case op_code::read:
        case op_code::write:
            if (const int e = set_nonblocking(op.fd)) { finish(op, -e, 0); return; }
            break;
        default: break;
        }
        op.backend_done = 0;
        if (op.wait_first) {
            wait_on(op, is_output(op.code) ? &fd_state::writers : &fd_state::readers);
            return;
        }
        const int r = attempt(op);
        if (r != would_block) {
            finish(op, r, 0);
            return;
        }
        wait_on(op, is_output(op.code) ? &fd_state::writers : &fd_state::readers);
    }

public:

    /// The owner of `fd` is about to close it, with nothing of its own waiting on it: stop
    /// watching it (a watch kept for keep_watch is trusted only until then).
    void forget_fd(int fd) noexcept {
        fd_state* fs = find(fd);
        if (!fs || !fs->readers.empty() || !fs->writers.empty() || !fs->pollers.empty()) return;
        if (fs->registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
        fs->registered = 0;
        fs->kept = false;
    }

    /// Cancels a waiting operation (see the file comment). Never throws.
    void cancel(operation& op) noexcept {
        if (!op.backend_list || op.backend_list == &done_) return;  // not waiting, or its result is in
        static_cast<op_list*>(op.backend_list)->remove(&op);
        op.backend_list = nullptr;
        finish(op, cancelled_result(op), 0);
    }

    /// The iteration's one system call (epoll_wait), then every completion is dispatched.
    /// `block`: sleep until an event or `timeout` (null: none). Throws: std::system_error.
    void wait(bool block, const clock::duration* timeout) {
        if (!done_.empty()) block = false;  // results are waiting to be dispatched
        epoll_event events[256];
        const int n = poll_events(events, 256, block, timeout);
        ++enter_calls_;
        if (n < 0 && errno != EINTR) throw std::system_error(errno, std::system_category(), "coio: epoll_wait");

        // Results found while submitting, in order; not those queued by the dispatch itself
        // (they go out with the next wait, as an io_uring completion would).
        for (std::size_t k = done_.size(); k > 0; --k) {
            operation* op = done_.pop_front();
            op->backend_list = nullptr;
            if (!(op->backend_flags & op_more) && holds_clock(*op)) --holding_;
            op->complete(op, op->backend_res, op->backend_flags);
        }
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == wake_fd_) {
                std::uint64_t v;
                while (::read(wake_fd_, &v, sizeof v) > 0) {}
                on_wake_(wake_ctx_);
                continue;
            }
            if (fd_state* fs = find(fd)) on_ready(fd, *fs, events[i].events);
        }
    }

    /// Wakes a wait() from any thread (async-signal-safe: one write(2)).
    void wake() noexcept {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    }
    [[nodiscard]] int wake_fd() const noexcept { return wake_fd_; }
    /// epoll_wait calls made so far.
    [[nodiscard]] std::uint64_t enter_calls() const noexcept { return enter_calls_; }

    /// Makes `pool` (a user-space provided_buffer_ring) the pool of its group.
    void add_pool(provided_buffer_ring* pool) {
        pools_.erase(std::remove(pools_.begin(), pools_.end(), nullptr), pools_.end());
        pools_.push_back(pool);
    }
    void remove_pool(provided_buffer_ring* pool) noexcept {
        std::replace(pools_.begin(), pools_.end(), pool, static_cast<provided_buffer_ring*>(nullptr));
    }

private:
    static constexpr int would_block = 1 << 30;  // not a result: the call would block
    static constexpr int burst = 16;              // multishot results per operation per round

    struct fd_state {
        op_list readers;  // receive, accept, read (and their multishots)
        op_list writers;  // send, connect, write
        op_list pollers;  // poll, for any events
        std::uint32_t registered = 0;       // the events epoll watches for this descriptor
        bool kept = false;  // input stays watched with nobody waiting (keep_watch; see the top)
    };

    static bool is_output(op_code c) noexcept {
        return c == op_code::send || c == op_code::sendmsg || c == op_code::write || c == op_code::connect;
    }
    // A cancelled send that already moved bytes reports them, as io_uring does.
    static int cancelled_result(const operation& op) noexcept {
        return op.backend_done > 0 && op.code != op_code::connect ? static_cast<int>(op.backend_done) : -ECANCELED;
    }

    fd_state* find(int fd) noexcept {
        return fd >= 0 && static_cast<std::size_t>(fd) < fds_.size() ? fds_[static_cast<std::size_t>(fd)].get() : nullptr;
    }
    fd_state& state_of(int fd) {
        const auto i = static_cast<std::size_t>(fd);
        if (i >= fds_.size()) fds_.resize(std::max<std::size_t>(i + 1, fds_.size() * 2));
        if (!fds_[i]) fds_[i] = std::make_unique<fd_state>();
        return *fds_[i];
    }

    // O_NONBLOCK for the calls that have no per-call flag (accept, connect, read, write).
    // Checked per operation: a descriptor number may have been reused by a new description.
    static int set_nonblocking(int fd) noexcept {
        const int fl = ::fcntl(fd, F_GETFL);
        if (fl < 0) return errno;
        if (!(fl & O_NONBLOCK) && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return errno;
        return 0;
    }

    void finish(operation& op, int res, unsigned flags) noexcept {
        op.backend_res = res;
        op.backend_flags = flags;
        op.backend_list = &done_;
        done_.push_back(&op);
    }

    void wait_on(operation& op, op_list fd_state::*which) {
        fd_state& fs = state_of(op.fd);
        // Nobody waited on this descriptor number: it may have been closed and reused since
        // we last watched it, and epoll forgets a closed descriptor on its own. So what we
        // remember is not trusted; the watch is set afresh.
        const bool idle = fs.readers.empty() && fs.writers.empty() && fs.pollers.empty();
        // ... unless its owner promised forget_fd before any close (keep_watch): then the
        // watch kept for it is still the right one.
        const bool trusted = !idle || (fs.kept && op.keep_watch);
        fs.kept = false;
        (fs.*which).push_back(&op);
        op.backend_list = &(fs.*which);
        if (!update_interest(op.fd, fs, trusted ? watch::grow : watch::resync)) {
            // epoll refuses the descriptor (a regular file: always ready) or the call failed.
            const int e = errno;
            (fs.*which).remove(&op);
            finish(op, e == EPERM ? ready_result(op) : -e, 0);
        }
    }
    // A descriptor epoll cannot watch is always ready: poll reports it so, others retry now.
    int ready_result(operation& op) noexcept {
        if (op.code == op_code::poll) return op.flags & (POLLIN | POLLOUT);
        const int r = attempt(op);
        return r == would_block ? -EAGAIN : r;
    }

    enum class watch { grow, resync, shrink };

    // Watches what the waiting operations need; returns false (errno set) when epoll refuses.
    //  grow    an operation starts waiting beside others: add the events it needs, if any
    //          are new (a few extra events cost less than an epoll_ctl per wait);
    //  resync  an operation starts waiting on an idle descriptor: set the watch afresh;
    //  shrink  after an event: stop watching what nobody needs any more, which a
    //          level-triggered watch would report again and again (a hung-up socket would
    //          make epoll_wait spin).
    bool update_interest(int fd, fd_state& fs, watch how, std::uint32_t keep = 0) noexcept {
        std::uint32_t want = keep & fs.registered;
        if (!fs.readers.empty()) want |= EPOLLIN | EPOLLRDHUP;
        if (!fs.writers.empty()) want |= EPOLLOUT;
        for (operation* o = fs.pollers.front(); o; o = op_list::next(o)) {
            if (o->flags & POLLIN) want |= EPOLLIN;
            if (o->flags & POLLOUT) want |= EPOLLOUT;
        }
        if (want == 0) {
            if (fs.registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);  // ENOENT: closed already
            fs.registered = 0;
            return true;
        }
        if (how == watch::grow && (want & ~fs.registered) == 0) return true;
        if (how == watch::shrink && want == fs.registered) return true;
        epoll_event ev{};
        ev.events = how == watch::grow ? want | fs.registered : want;
        ev.data.fd = fd;
        int r = ::epoll_ctl(epfd_, fs.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
        // Watched no more (closed, and the number reused since), or still watched (dropped
        // from fs.registered while epoll kept it): the other verb.
        if (r != 0 && (errno == ENOENT || errno == EEXIST))
            r = ::epoll_ctl(epfd_, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
        if (r != 0) return false;
        fs.registered = ev.events;
        return true;
    }

    int poll_events(epoll_event* events, int max, bool block, const clock::duration* timeout) {
        if (!block) return ::epoll_wait(epfd_, events, max, 0);
        if (!timeout) return ::epoll_wait(epfd_, events, max, -1);
        if (have_pwait2_) {
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout).count();
            timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
            const int r = ::epoll_pwait2(epfd_, events, max, &ts, nullptr);
            if (r >= 0 || (errno != ENOSYS && errno != EPERM)) return r;
            have_pwait2_ = false;  // an old kernel, or a seccomp filter that does not know it
        }
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
        return ::epoll_wait(epfd_, events, max, static_cast<int>(std::min<long long>(ms, 1 << 30)));
    }

    // An event on `fd`: run what waits on it, then adjust the interest.
    void on_ready(int fd, fd_state& fs, std::uint32_t ev) noexcept {
        // Input for a keep_watch receive stays watched (see the top); not after a hang-up or
        // an error, which a level-triggered watch would report again and again.
        // (A stream that reads ahead waits with a poll: see stream_receive.hpp.)
        const bool keep_input = (ev & EPOLLIN) && !(ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) &&
                                ((!fs.readers.empty() && fs.readers.front()->keep_watch) ||
                                 (!fs.pollers.empty() && fs.pollers.front()->keep_watch));
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) run_list(fs.writers);
        if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) run_list(fs.readers);
        // Each poll that was waiting is looked at once; one a handler adds meanwhile goes to
        // the back and waits for the next event.
        const auto revents = static_cast<int>(ev & (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP));
        for (std::size_t k = fs.pollers.size(); k > 0 && !fs.pollers.empty(); --k) {
            operation* o = fs.pollers.pop_front();
            const int got = revents & (o->flags | POLLERR | POLLHUP);
            if (got) {
                deliver(*o, got, 0);
            } else {
                fs.pollers.push_back(o);
            }
        }
        const std::uint32_t keep = keep_input && fs.readers.empty() && fs.pollers.empty() ? EPOLLIN | EPOLLRDHUP : 0;
        const bool ok = update_interest(fd, fs, watch::shrink, keep);
        fs.kept = ok && keep && (fs.registered & EPOLLIN);
        if (!ok) {
            // Cannot re-watch: fail what still waits rather than leave it hanging.
            const int e = errno;
            for (auto* l : {&fs.readers, &fs.writers, &fs.pollers})
                while (operation* o = l->pop_front()) finish(*o, -e, 0);
        }
    }

    // Completes operations at the head of `list` while their calls do not block.
    void run_list(op_list& list) noexcept {
        while (operation* op = list.front()) {
            if (op->code == op_code::recv_multishot || op->code == op_code::accept_multishot) {
                if (!run_multishot(list, *op)) return;
                continue;
            }
            const int r = attempt(*op);
            if (r == would_block) return;
            list.remove(op);
            deliver(*op, r, 0);
        }
    }

    // Up to `burst` results of a multishot operation; false when it would block (or had its
    // share of this round: level-triggered epoll reports the rest next time).
    bool run_multishot(op_list& list, operation& op) noexcept {
        for (int i = 0; i < burst; ++i) {
            int r;
            unsigned flags = op_more;
            if (op.code == op_code::accept_multishot) {
                do r = ::accept4(op.fd, nullptr, nullptr, op.flags);
                while (r < 0 && errno == EINTR);
                if (r < 0) r = -errno;
                if (r == -EAGAIN || r == -EWOULDBLOCK) return false;
            } else {
                // -ENOBUFS without a free buffer, as io_uring ends a multishot receive on a dry ring.
                provided_buffer_ring* pool = pool_of(op.buf_group);
                unsigned b = 0;
                r = pool ? pool->receive(op.fd, op.flags, b) : -ENOBUFS;
                if (r == -EAGAIN || r == -EWOULDBLOCK) return false;
                if (r > 0) flags |= op_buffer | (b << op_buffer_shift);
            }
            if (r <= 0) {  // end of stream or an error ends a multishot operation
                list.remove(&op);
                deliver(op, r, 0);
                return true;
            }
            deliver(op, r, flags);  // stays queued (op_more)
            if (op.backend_list != &list || list.front() != &op) return true;  // cancelled meanwhile
            // A receive that did not fill its buffer most likely emptied the socket: asking
            // again would only find EAGAIN (a system call per message); the level-triggered
            // watch reports anything that arrives after it.
            if (op.code == op_code::recv_multishot && static_cast<unsigned>(r) < pool_of(op.buf_group)->buffer_size())
                return false;
        }
        return false;
    }

    provided_buffer_ring* pool_of(std::uint16_t group) const noexcept {
        for (provided_buffer_ring* p : pools_)
            if (p && p->group() == group) return p;
        return nullptr;
    }

    // Completes `op` now (during the dispatch). A multishot operation stays linked while
    // `flags` has op_more.
    void deliver(operation& op, int res, unsigned flags) noexcept {
        if (!(flags & op_more)) {
            op.backend_list = nullptr;
            if (holds_clock(op)) --holding_;
        }
        op.complete(&op, res, flags);
    }

    // One non-blocking try of `op`'s system call: its result, -errno, or would_block.
    int attempt(operation& op) noexcept {
        for (;;) {
            const int r = call(op);
            if (r >= 0 || r == would_block) return r;
            if (r == -EINTR) continue;
            if (r == -EAGAIN || r == -EWOULDBLOCK) return would_block;
            // A send that had moved bytes before failing reports them (the error comes back
            // with the next send), as io_uring's MSG_WAITALL send does.
            if ((op.code == op_code::send || op.code == op_code::sendmsg) && op.backend_done > 0)
                return static_cast<int>(op.backend_done);
            return r;
        }
    }

    static int sys(long r) noexcept { return r < 0 ? -errno : static_cast<int>(r); }

    int call(operation& op) noexcept {
        const int dontwait = MSG_DONTWAIT;
        switch (op.code) {
        case op_code::recv: return sys(::recv(op.fd, op.buf, op.len, op.flags | dontwait));
        case op_code::recvmsg: return sys(::recvmsg(op.fd, static_cast<msghdr*>(op.buf), op.flags | dontwait));
        case op_code::accept: return sys(::accept4(op.fd, static_cast<sockaddr*>(op.buf), op.addrlen, op.flags));
        case op_code::read:
            return sys(op.offset >= 0 ? ::pread(op.fd, op.buf, op.len, op.offset) : ::read(op.fd, op.buf, op.len));
        case op_code::write:
            return sys(op.offset >= 0 ? ::pwrite(op.fd, op.buf, op.len, op.offset) : ::write(op.fd, op.buf, op.len));
        case op_code::connect: {
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
            if (err == EINPROGRESS || err == EALREADY) return would_block;
            return -err;
        }
        case op_code::send: {
            // MSG_WAITALL on a send means "all of it" (io_uring retries short sends): keep
            // going until everything is out, counting what went in backend_done.
            const bool all = (op.flags & MSG_WAITALL) != 0;
            for (;;) {
                const auto* p = static_cast<const std::byte*>(op.buf) + op.backend_done;
                const int r = sys(::send(op.fd, p, op.len - op.backend_done, (op.flags & ~MSG_WAITALL) | dontwait));
                if (r < 0) return r;
                op.backend_done += static_cast<std::uint32_t>(r);
                if (!all || op.backend_done >= op.len) return static_cast<int>(op.backend_done);
            }
        }
        case op_code::sendmsg: {
            auto* msg = static_cast<msghdr*>(op.buf);
            const bool all = (op.flags & MSG_WAITALL) != 0;
            for (;;) {
                const int r = sys(::sendmsg(op.fd, msg, (op.flags & ~MSG_WAITALL) | dontwait));
                if (r < 0) return r;
                op.backend_done += static_cast<std::uint32_t>(r);
                // Step the iovecs past what went out (the owner's msghdr is the backend's
                // until the operation completes).
                std::size_t left = static_cast<std::size_t>(r);
                while (msg->msg_iovlen > 0 && left >= msg->msg_iov->iov_len) {
                    left -= msg->msg_iov->iov_len;
                    ++msg->msg_iov;
                    --msg->msg_iovlen;
                }
                if (msg->msg_iovlen > 0) {
                    msg->msg_iov->iov_base = static_cast<std::byte*>(msg->msg_iov->iov_base) + left;
                    msg->msg_iov->iov_len -= left;
                }
                if (!all || msg->msg_iovlen == 0) return static_cast<int>(op.backend_done);
            }
        }
        default: return -EOPNOTSUPP;
        }
    }

    int epfd_ = -1;
    int wake_fd_ = -1;
    wake_handler on_wake_;
    void* wake_ctx_;
    std::uint64_t enter_calls_ = 0;
    std::size_t holding_ = 0;
    bool have_pwait2_ = true;
    std::vector<std::unique_ptr<fd_state>> fds_;  // by descriptor number
    op_list done_;              // results waiting for the next wait()
    std::vector<provided_buffer_ring*> pools_;
};

} // namespace coio::detail
