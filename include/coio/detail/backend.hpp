// coio/detail/backend.hpp - the loop's backend: io_uring or epoll, chosen when the loop is
// created, behind one set of calls. Not API.
//
// A branch per call instead of a virtual interface: the io_uring path stays inlinable, and
// the branch always goes the same way in a given loop.
#pragma once

#include <coio/backend.hpp>
#include <coio/detail/core.hpp>
#include <coio/detail/epoll/backend.hpp>
#include <coio/detail/operation.hpp>
#include <coio/detail/uring/backend.hpp>
#include <coio/detail/uring/buf_ring.hpp>
#include <coio/errors.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

namespace coio::detail {

class loop_backend {
public:
    using wake_handler = void (*)(void* ctx) noexcept;

    /// Chooses and creates the backend (see coio::backend for the rules).
    /// Throws: std::system_error when the chosen (or the only possible) backend cannot be
    /// created; std::invalid_argument for a COIO_BACKEND value that is not "epoll" or "io_uring".
    loop_backend(coio::backend wanted, unsigned entries, unsigned cq_entries, wake_handler on_wake, void* ctx) {
        if (wanted == coio::backend::automatic) wanted = from_environment();
        if (wanted != coio::backend::epoll) {
            try {
                uring_ = std::make_unique<uring_backend>(entries, cq_entries, on_wake, ctx);
                return;
            } catch (const std::system_error& e) {
                // Refused (seccomp, sysctl) or too old: epoll works everywhere. Anything else
                // (out of memory, bad parameters) would fail the same way on any backend.
                const int err = e.code().value();
                if (wanted == coio::backend::io_uring || (err != ENOSYS && err != EPERM && err != EACCES)) throw;
            }
        }
        epoll_ = std::make_unique<epoll_backend>(on_wake, ctx);
    }

    [[nodiscard]] coio::backend kind() const noexcept { return uring_ ? coio::backend::io_uring : coio::backend::epoll; }

    void submit(operation& op) {
        if (uring_) uring_->submit(op); else epoll_->submit(op);
    }
    void cancel(operation& op) noexcept {
        if (uring_) uring_->cancel(op); else epoll_->cancel(op);
    }
    void forget_fd(int fd) noexcept {
        if (epoll_) epoll_->forget_fd(fd);  // io_uring keeps no state per descriptor
    }
    void wait(bool block, const clock::duration* timeout) {
        if (uring_) uring_->wait(block, timeout); else epoll_->wait(block, timeout);
    }
    void wake() noexcept {
        if (uring_) uring_->wake(); else epoll_->wake();
    }
    /// Operations in flight that hold a virtual clock (see holds_clock in operation.hpp).
    [[nodiscard]] std::size_t holding() const noexcept { return uring_ ? uring_->holding() : epoll_->holding(); }
    /// True when nothing waits to be submitted or dispatched (see event_loop::wait_virtual).
    [[nodiscard]] bool quiet() const noexcept { return uring_ ? uring_->quiet() : epoll_->quiet(); }
    [[nodiscard]] int wake_fd() const noexcept { return uring_ ? uring_->wake_fd() : epoll_->wake_fd(); }
    [[nodiscard]] std::uint64_t enter_calls() const noexcept {
        return uring_ ? uring_->enter_calls() : epoll_->enter_calls();
    }
    [[nodiscard]] std::uint64_t streaming_receives() const noexcept { return uring_ ? uring_->streaming_receives() : 0; }
    void close() noexcept {
        if (uring_) uring_->close(); else epoll_->close();
    }

    /// io_uring only: the ring (coio::uring_op, tests). Throws: not_supported_error on epoll.
    [[nodiscard]] uring_backend& uring() {
        if (!uring_) throw not_supported_error("coio: this loop runs on epoll: it has no io_uring ring");
        return *uring_;
    }
    [[nodiscard]] unsigned ring_flags() const noexcept { return uring_ ? uring_->ring_flags() : 0; }

    /// Sets up `pool` as the provided buffers of group `group`: registered with the kernel on
    /// io_uring, kept in user space on epoll. Returns 0 or -errno.
    int setup_buffers(provided_buffer_ring& pool, unsigned count, unsigned size, std::uint16_t group) noexcept {
        if (uring_) {
            const int r = pool.setup(&uring_->ring(), count, size, group);
            if (r == 0) uring_->set_buffers(&pool);
            return r;
        }
        const int r = pool.setup(nullptr, count, size, group);
        if (r == 0) {
            try {
                epoll_->add_pool(&pool);
            } catch (...) {
                return -ENOMEM;
            }
        }
        return r;
    }
    void unregister_buffers(provided_buffer_ring& pool) noexcept {
        if (uring_) {
            uring_->set_buffers(nullptr);
            pool.unregister(&uring_->ring());
        } else {
            epoll_->remove_pool(&pool);
            pool.unregister(nullptr);
        }
    }

private:
    static coio::backend from_environment() {
        const char* v = std::getenv("COIO_BACKEND");
        if (!v || !*v || std::strcmp(v, "automatic") == 0) return coio::backend::automatic;
        if (std::strcmp(v, "epoll") == 0) return coio::backend::epoll;
        if (std::strcmp(v, "io_uring") == 0) return coio::backend::io_uring;
        throw std::invalid_argument(std::string("coio: COIO_BACKEND must be \"epoll\", \"io_uring\" or \"automatic\", not \"") +
                                    v + "\"");
    }

    std::unique_ptr<uring_backend> uring_;
    std::unique_ptr<epoll_backend> epoll_;
};

} // namespace coio::detail
