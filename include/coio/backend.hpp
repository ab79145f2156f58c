// coio/backend.hpp - coio::backend: which kernel interface an event loop runs on (asyncio has
// one selector loop per platform; coio picks io_uring where the kernel allows it, else epoll).
#pragma once

namespace coio {

/// The kernel interface an event loop runs on; chosen with `loop_options::backend` (also
/// `run_options`), and reported by `event_loop::backend()`.
///
///  - `automatic` (the default): io_uring when the kernel allows it; epoll when io_uring is
///    refused (ENOSYS, EPERM, EACCES: Docker's and containerd's default seccomp profiles,
///    `kernel.io_uring_disabled`, RHEL 9, gVisor) or lacks an operation coio needs. The
///    environment variable `COIO_BACKEND=epoll` or `COIO_BACKEND=io_uring` overrides it.
///  - `io_uring`: io_uring or a std::system_error saying why it cannot be used.
///  - `epoll`: epoll, even where io_uring works.
///
/// Both run every coio operation with the same results, ordering, errors and cancellation
/// semantics. Differences: `coio::uring_op` exists only on io_uring (it throws
/// coio::not_supported_error on epoll), and coio::file's operations run on the loop's thread
/// pool on epoll (a regular file is always "ready" for epoll), as libuv does.
///
/// Example: `coio::run(main(), {.backend = coio::backend::epoll});`
enum class backend : unsigned char { automatic, io_uring, epoll };

/// The name of `b`: "automatic", "io_uring" or "epoll".
/// Example: `std::printf("%s\n", coio::to_string(loop.backend()));`
[[nodiscard]] constexpr const char* to_string(backend b) noexcept {
    switch (b) {
    case backend::io_uring: return "io_uring";
    case backend::epoll: return "epoll";
    default: return "automatic";
    }
}

} // namespace coio
