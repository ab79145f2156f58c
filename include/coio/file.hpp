// coio/file.hpp - files: coio::file, open_file, read_file, write_file. asyncio has no
// asynchronous files (aiofiles runs every call in a thread); coio runs them on io_uring.
//
// How each backend runs a file operation:
//  * io_uring: as a kernel operation (openat, read, write, statx, fsync, close, renameat,
//    unlinkat): no thread, and a page-cached read completes inline at submission.
//  * epoll: regular files are always "ready" for epoll, so a read that has to wait for the disk
//    would block the loop. There, each operation is one blocking system call run on the
//    loop's default executor (coio::default_executor(), the to_thread pool), as libuv does;
//    read_file and write_file are one job each (all their system calls), not one per call.
// Results, errors and cancellation are the same on both.
#pragma once

#include <coio/coro.hpp>
#include <coio/errors.hpp>
#include <coio/impl/op_awaiter.hpp>
#include <coio/impl/stream_sendfile.hpp>
#include <coio/loop.hpp>
#include <coio/stream_writer.hpp>
#include <coio/thread.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace coio {

/// Extra settings of open_file(path, mode, options).
struct open_options {
    /// Permission bits of a file the open creates (minus the process umask), as open(2).
    unsigned permissions = 0666;
    /// open(2) flags added to those of the mode, e.g. O_NOFOLLOW, O_SYNC, O_DIRECT, O_NOATIME.
    /// O_CLOEXEC is always added.
    int flags = 0;
};

/// An open file (the asynchronous counterpart of a Python file object opened in binary
/// mode): RAII and move-only, it closes its descriptor when destroyed.
///
/// Every member that does I/O returns a lazy coro: nothing happens until it is awaited.
/// Operations use the file position (read, write: like read(2)/write(2), so O_APPEND works)
/// or an explicit offset (read_at, write_at: like pread(2)/pwrite(2), independent of the
/// position, so several may run at once). The file object must not be moved or destroyed
/// while one of its operations is awaited, and the data given to write must stay valid until
/// the write's co_await ends (a temporary in the co_await expression does).
///
/// Errors: std::system_error with the errno, naming the operation and the path, e.g.
/// `coio: read "/data/x": Is a directory`.
///
/// Cancellation (task cancel, wait_for timeout): the operation in flight is cancelled in the
/// kernel (io_uring) or, on epoll, dropped if its thread-pool job has not started yet; either
/// way the awaiting task resumes only after the kernel is done with the buffer, so nothing is
/// written into freed memory. A read or write that had already happened is not undone: a
/// cancelled write() may have written a prefix of its data (the file position is advanced by
/// exactly that much), a cancelled read() may have consumed some bytes; the file itself is
/// always consistent. The file stays open and usable after a cancellation. On epoll a
/// system call already running on a pool thread cannot be interrupted: the task waits for it
/// (for a regular file, a disk access), and the cancellation is delivered at its next await.
/// coio::file is meant for regular files; on epoll a read of an empty pipe opened with it
/// would hold a pool thread until data comes.
///
/// Example:
/// @code
///   coio::file f = co_await coio::open_file("log.txt", "a");
///   co_await f.write("started\n");
///   co_await f.fsync();
///   co_await f.close();
/// @endcode
class file {
public:
    /// A closed file (is_open() is false).
    file() noexcept = default;
    /// Takes ownership of `fd` (closed by this object); `path` is used in error messages.
    /// Example: `auto f = coio::file(::dup(0), "<stdin>");`
    file(int fd, std::string path) noexcept : fd_(fd), path_(std::move(path)) {}
    /// Takes `o`'s descriptor; `o` is left closed. Example: `coio::file g = std::move(f);`
    file(file&& o) noexcept : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)) {}
    /// Closes this file's descriptor (synchronously) and takes `o`'s; `o` is left closed.
    /// Example: `f = co_await coio::open_file("next.log", "a");`
    file& operator=(file&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
            path_ = std::move(o.path_);
        }
        return *this;
    }
    file(const file&) = delete;
    file& operator=(const file&) = delete;
    /// Closes the descriptor synchronously (close(2) of a regular file does not wait for the
    /// disk; use close() to see its errors, fsync() to wait for the data to be durable).
    ~file() { reset(); }

    /// Whether the file is open. Example: `if (f.is_open()) co_await f.close();`
    [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
    /// The descriptor, or -1 when closed. Example: `::posix_fadvise(f.native_handle(), ...)`
    [[nodiscard]] int native_handle() const noexcept { return fd_; }
    /// The path the file was opened with. Example: `std::puts(f.path().c_str());`
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    /// Gives up ownership: returns the descriptor (the caller closes it); the file is closed.
    /// Example: `int fd = f.release();`
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    /// Reads up to `n` bytes at the file position: exactly `n` unless the end of the file
    /// comes first (several reads if needed), and an empty string at the end of the file.
    /// Returns (from co_await): the bytes. Throws: std::system_error; invalid_state_error when
    /// closed. Cancellation: see the class comment (bytes already read are consumed).
    /// Example: `while (!(chunk = co_await f.read(1 << 20)).empty()) use(chunk);`
    [[nodiscard]] coro<std::string> read(std::size_t n);

    /// Reads up to `buffer.size()` bytes at `offset` into `buffer` (the file position is
    /// unchanged): fills it unless the end of the file comes first.
    /// Returns (from co_await): the number of bytes read (0 at or past the end). Throws:
    /// std::system_error; invalid_state_error when closed. Cancellation: see the class comment.
    /// Example: `std::size_t n = co_await f.read_at(4096, std::span(buf));`
    [[nodiscard]] coro<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> buffer);
    /// read_at into chars. Example: `std::string s(100, '\0'); s.resize(co_await f.read_at(0, std::span(s)));`
    [[nodiscard]] coro<std::size_t> read_at(std::uint64_t offset, std::span<char> buffer) {
        return read_at(offset, std::as_writable_bytes(buffer));
    }

    /// Writes all of `data` at the file position (at the end in append mode), in as many
    /// writes as it takes. Throws: std::system_error (ENOSPC, EBADF for a read-only file...);
    /// invalid_state_error when closed. Cancellation: a prefix may have been written (see the
    /// class comment). Example: `co_await f.write("hello\n");`
    [[nodiscard]] coro<void> write(std::string_view data);
    /// Writes all of `data` at `offset` (the file position is unchanged; in append mode Linux
    /// appends anyway, as pwrite(2) does). Throws, cancellation: as write.
    /// Example: `co_await f.write_at(0, header);`
    [[nodiscard]] coro<void> write_at(std::uint64_t offset, std::string_view data);

    /// The file's size in bytes (statx). Throws: std::system_error; invalid_state_error when
    /// closed. Cancellation: the query is abandoned. Example: `auto n = co_await f.size();`
    [[nodiscard]] coro<std::uint64_t> size();

    /// Waits until the file's data (and, unless `data_only`, its metadata) is on stable
    /// storage: fsync(2), or fdatasync(2) with `data_only`. Throws: std::system_error (EIO...);
    /// invalid_state_error when closed. Cancellation: the flush may still happen; nothing is
    /// lost by cancelling it. Example: `co_await f.fsync();`
    [[nodiscard]] coro<void> fsync(bool data_only = false);

    /// Closes the file and reports close(2)'s error (on some file systems, a failed write
    /// shows only here). The file is closed afterwards in every case, even when it throws or
    /// is cancelled. Idempotent. Throws: std::system_error. Cancellation: the descriptor is
    /// still closed. Example: `co_await f.close();`
    [[nodiscard]] coro<void> close();

private:
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    int require_open(const char* op) const;

    int fd_ = -1;
    std::string path_;
};

/// Opens `path` with a Python-style `mode` (binary; the asynchronous open(2)):
///   "r"  read (the default)            "r+"  read and write
///   "w"  write, create, truncate       "w+"  read and write, create, truncate
///   "a"  write at the end, create      "a+"  read, and write at the end, create
///   "x"  write, create, fail if it exists (EEXIST)   "x+"  the same, read and write
/// A 'b' anywhere is accepted and ignored (every coio file is binary). `options` adds
/// permission bits for created files (default 0666, minus the umask) and extra open(2) flags.
///
/// Returns (from co_await): the open file. Throws: std::invalid_argument for a malformed mode
/// (at the call, before anything is opened); std::system_error naming the path (ENOENT,
/// EACCES, EISDIR when writing a directory, EEXIST with "x"...).
///
/// Cancellation: the open is cancelled; if it had already succeeded, the file is returned
/// (never leaked) and the cancellation is delivered at the task's next await.
///
/// Example:
/// @code
///   coio::file f = co_await coio::open_file("out.bin", "w", {.permissions = 0600});
/// @endcode
[[nodiscard]] coro<file> open_file(std::string path, std::string_view mode = "r", open_options options = {});

/// Opens `path` with raw open(2) `flags` (O_RDONLY, O_WRONLY | O_CREAT...; O_CLOEXEC is
/// always added) and `permissions` for a created file.
/// Returns, throws, cancellation: as the mode form (no std::invalid_argument).
/// Example: `auto f = co_await coio::open_file("dev.log", O_WRONLY | O_APPEND | O_CREAT, 0640);`
[[nodiscard]] coro<file> open_file(std::string path, int flags, unsigned permissions = 0666);

/// Reads the whole file at `path` (open, read to the end, close).
/// Returns (from co_await): its contents. Throws: std::system_error naming the path and the
/// failed operation (ENOENT, EACCES, EISDIR...). Cancellation: the operation in flight is
/// cancelled and the file closed; nothing is returned.
/// Example: `std::string conf = co_await coio::read_file("/etc/app.conf");`
[[nodiscard]] coro<std::string> read_file(std::string path);

/// Replaces the file at `path` with `data`, atomically: the data goes to a new temporary
/// file in the same directory (".<name>.<random>.tmp", created exclusively with
/// `permissions`, minus the umask), which is fsync'ed and then renamed over `path`. A reader
/// sees the old contents or the new ones, never a mix or a truncated file, and a crash leaves
/// one or the other (for the rename itself to survive a power loss, fsync the directory too).
/// The new file gets `permissions`, not the old file's, and a symbolic link at `path` is
/// replaced, not followed. `data` must stay valid until the co_await ends.
///
/// Throws: std::system_error naming the path and the failed operation (ENOENT when the
/// directory is missing, EACCES, ENOSPC...). On any error or cancellation the temporary file
/// is removed (synchronously, so that even a cancelled task leaves nothing behind) and `path`
/// is untouched.
/// Cancellation: as above; the operation in flight is cancelled. A cancellation that arrives
/// after the rename happened does not undo it: the task reports the cancellation and the new
/// contents are in place (on epoll, where the whole sequence is one thread-pool job, once that
/// job has started it runs to the end and the result is what the job did).
///
/// Example:
/// @code
///   co_await coio::write_file("state.json", to_json(state));
/// @endcode
[[nodiscard]] coro<void> write_file(std::string path, std::string_view data, unsigned permissions = 0666);

namespace detail {

/// The chunk size of read_file's reads once the file is known to be large, and the largest
/// single read or write (below Linux's 0x7ffff000 cap per call).
inline constexpr std::size_t file_chunk = std::size_t{1} << 20;

/// One file operation (see the file comment): on io_uring an operation described by the
/// constructor's `describe(operation&)`; on epoll `blocking()` (a system call returning the
/// result or -errno) run on the loop's default executor. co_await returns the result or
/// -errno (throws only the cancellation).
///
/// Cancellation on epoll: a job not started yet is dropped and the task resumes at once; a
/// running job is waited for, since it may write into the caller's buffer, and its result
/// is returned (the cancellation then comes at the next await, as on io_uring when the result
/// wins the race).
template <class Blocking>
class file_op : public op_awaiter<file_op<Blocking>> {
    using base = op_awaiter<file_op<Blocking>>;

public:
    template <class Describe>
    file_op(const char* name, Describe describe, Blocking blocking)
        : base(name), blocking_(std::move(blocking)), name_(name) {
        uring_ = get_running_loop().backend() == coio::backend::io_uring;
        if (uring_) describe(static_cast<operation&>(*this));
        else hook_.self = this;
    }

    bool await_suspend(std::coroutine_handle<> h) {
        if (uring_) return base::await_suspend(h);
        task_ = &require_current_task();
        if (task_->cancel_pending()) return false;  // submits nothing; await_resume throws
        st_ = std::make_shared<state>();
        std::shared_ptr<loop_link> link = task_->loop()->template service<thread_bridge>().link();
        thread_pool& pool = task_->loop()->template service<default_executor_service>().pool();
        pool.submit([st = st_, link = std::move(link), fn = blocking_]() mutable {
            int expected = state::queued;
            if (!st->phase.compare_exchange_strong(expected, state::started)) return;  // abandoned
            st->res = fn();
            link->post([st = std::move(st)]() noexcept {
                st->done = true;
                if (st->task) st->task->wake();
            });
        });  // throws (pool shut down): nothing suspended, the exception propagates
        st_->task = task_;
        hook_.what = name_;
        hook_.on_cancel = [](cancel_hook* c) noexcept {
            auto* self = static_cast<pool_hook*>(c)->self;
            int expected = state::queued;
            if (self->st_->phase.compare_exchange_strong(expected, state::abandoned)) {
                self->st_->task = nullptr;
                self->task_->wake();
            }
            // Started: the job may be writing into our buffer; wait for its completion.
        };
        (void)task_->begin_wait(h, &hook_);  // cannot fail: no cancellation was pending
        return true;
    }
    int await_resume() {
        if (uring_) return base::await_resume();
        if (!st_ || !st_->done) task_->throw_cancel();
        return st_->res;
    }
    int result(int res) noexcept { return res; }

private:
    struct state {
        enum : int { queued, started, abandoned };
        std::atomic<int> phase{queued};
        int res = 0;                // written by the worker before it posts (the post orders it)
        task_base* task = nullptr;  // loop thread only
        bool done = false;          // loop thread only
    };
    struct pool_hook : cancel_hook {
        file_op* self = nullptr;
    };

    Blocking blocking_;
    const char* name_;
    bool uring_ = true;
    pool_hook hook_;
    task_base* task_ = nullptr;
    std::shared_ptr<state> st_;
};

template <class Describe, class Blocking>
file_op<Blocking> make_file_op(const char* name, Describe describe, Blocking blocking) {
    return file_op<Blocking>(name, std::move(describe), std::move(blocking));
}

inline int sys_result(long r) noexcept { return r < 0 ? -errno : static_cast<int>(r); }

[[noreturn]] inline void throw_file_error(int err, const char* op, const std::string& path) {
    throw std::system_error(err, std::system_category(), std::string("coio: ") + op + " \"" + path + "\"");
}

/// Parses a Python-style mode into open(2) flags. Throws: std::invalid_argument.
inline int parse_open_mode(std::string_view mode) {
    int base = -1;
    bool plus = false;
    for (char c : mode) {
        switch (c) {
        case 'r':
        case 'w':
        case 'a':
        case 'x':
            if (base != -1) base = -2;
            else base = c;
            break;
        case '+':
            if (plus) base = -2;
            plus = true;
            break;
        case 'b': break;
        default: base = -2;
        }
    }
    if (base < 0)
        throw std::invalid_argument("coio: open_file mode must be one of r, w, a, x, optionally with + and b, not \"" +
                                    std::string(mode) + "\"");
    const int rw = plus ? O_RDWR : (base == 'r' ? O_RDONLY : O_WRONLY);
    switch (base) {
    case 'w': return rw | O_CREAT | O_TRUNC;
    case 'a': return rw | O_CREAT | O_APPEND;
    case 'x': return rw | O_CREAT | O_EXCL;
    default: return rw;
    }
}

/// open(2) on the loop's backend. Returns the descriptor or -errno.
inline auto open_op(const char* path, int flags, unsigned permissions) {
    return make_file_op(
        "file open", [=](operation& op) { op.set_openat(AT_FDCWD, path, flags, permissions); },
        [=]() noexcept { return sys_result(::open(path, flags, permissions)); });
}
inline auto read_op(int fd, void* buf, std::size_t n, std::int64_t offset) {
    n = std::min(n, file_chunk * 1024);  // one call moves at most ~2 GiB anyway
    return make_file_op(
        "file read", [=](operation& op) { op.set_read(fd, buf, n, offset); },
        [=]() noexcept { return sys_result(offset < 0 ? ::read(fd, buf, n) : ::pread(fd, buf, n, offset)); });
}
inline auto write_op(int fd, const void* buf, std::size_t n, std::int64_t offset) {
    n = std::min(n, file_chunk * 1024);
    return make_file_op(
        "file write", [=](operation& op) { op.set_write(fd, buf, n, offset); },
        [=]() noexcept { return sys_result(offset < 0 ? ::write(fd, buf, n) : ::pwrite(fd, buf, n, offset)); });
}
inline auto close_op(int fd) {
    return make_file_op(
        "file close", [=](operation& op) { op.set_close(fd); }, [=]() noexcept { return sys_result(::close(fd)); });
}
inline auto fsync_op(int fd, bool data_only) {
    return make_file_op(
        "file fsync", [=](operation& op) { op.set_fsync(fd, data_only ? op_fsync_datasync : 0); },
        [=]() noexcept { return sys_result(data_only ? ::fdatasync(fd) : ::fsync(fd)); });
}
/// statx of an open descriptor into `*st` (size and type; on epoll filled from fstat).
inline auto statx_op(int fd, struct statx* st) {
    return make_file_op(
        "file statx", [=](operation& op) { op.set_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE | STATX_TYPE, st); },
        [=]() noexcept {
            struct stat s {};
            if (::fstat(fd, &s) != 0) return -errno;
            st->stx_size = static_cast<std::uint64_t>(s.st_size);
            st->stx_mode = static_cast<std::uint16_t>(s.st_mode);
            return 0;
        });
}
struct rename_paths {
    const char* from;
    const char* to;
};
inline auto rename_op(const rename_paths* p) {
    return make_file_op(
        "file rename",
        [=](operation& op) { op.set_renameat(AT_FDCWD, p->from, p->to); },
        [=]() noexcept { return sys_result(::rename(p->from, p->to)); });
}

/// A fresh temporary name next to `path`: "<dir>/.<name>.<16 hex digits>.tmp".
inline std::string temporary_name_for(const std::string& path) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(rng()));
    return dir + "." + name + "." + hex + ".tmp";
}


/// The whole of read_file as blocking calls, for the epoll backend: one thread-pool job
/// instead of one per system call (open, reads, close). Returns 0 or -errno, with the failed
/// step in `*failed`.
inline int read_file_blocking(const char* path, std::string& out, const char** failed) noexcept {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *failed = "open";
        return -errno;
    }
    int res = 0;
    try {
        struct stat st {};
        std::size_t got = 0;
        out.resize(::fstat(fd, &st) == 0 && st.st_size > 0 ? static_cast<std::size_t>(st.st_size) + 1 : 16 * 1024);
        for (;;) {
            if (got == out.size()) out.resize(out.size() * 2);
            const ssize_t r = ::read(fd, out.data() + got, std::min(out.size() - got, file_chunk));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                *failed = "read";
                res = -errno;
                break;
            }
            if (r == 0) break;
            got += static_cast<std::size_t>(r);
        }
        out.resize(got);
    } catch (...) {
        *failed = "read";
        res = -ENOMEM;
    }
    ::close(fd);
    return res;
}

/// The whole of write_file as blocking calls, for the epoll backend (one thread-pool job).
/// The temporary file is removed on failure. Returns 0 or -errno, with the failed step.
inline int write_file_blocking(const char* tmp, const char* path, std::string_view data, unsigned permissions,
                               const char** failed) noexcept {
    const int fd = ::open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions);
    if (fd < 0) {
        *failed = "create a temporary file for";
        return -errno;
    }
    int res = 0;
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t r = ::write(fd, data.data() + done, std::min(data.size() - done, file_chunk * 1024));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            *failed = "write";
            res = r < 0 ? -errno : -EIO;
            break;
        }
        done += static_cast<std::size_t>(r);
    }
    if (res == 0 && ::fsync(fd) != 0) {
        *failed = "fsync";
        res = -errno;
    }
    if (::close(fd) != 0 && res == 0 && errno != EINTR) {
        *failed = "close";
        res = -errno;
    }
    if (res == 0 && ::rename(tmp, path) != 0) {
        *failed = "rename into";
        res = -errno;
    }
    if (res != 0) ::unlink(tmp);
    return res;
}

inline bool on_uring() { return get_running_loop().backend() == coio::backend::io_uring; }

} // namespace detail

// ---- implementation ----------------------------------------------------------------------

inline int file::require_open(const char* op) const {
    if (fd_ < 0) throw invalid_state_error(std::string("coio: ") + op + " on a closed file \"" + path_ + "\"");
    return fd_;
}

inline coro<std::string> file::read(std::size_t n) {
    const int fd = require_open("read");
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
        const int r = co_await detail::read_op(fd, out.data() + got, n - got, -1);
        if (r < 0) detail::throw_file_error(-r, "read", path_);
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    co_return out;
}

inline coro<std::size_t> file::read_at(std::uint64_t offset, std::span<std::byte> buffer) {
    const int fd = require_open("read_at");
    std::size_t got = 0;
    while (got < buffer.size()) {
        const int r = co_await detail::read_op(fd, buffer.data() + got, buffer.size() - got,
                                               static_cast<std::int64_t>(offset + got));
        if (r < 0) detail::throw_file_error(-r, "read", path_);
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    co_return got;
}

inline coro<void> file::write(std::string_view data) {
    const int fd = require_open("write");
    std::size_t done = 0;
    while (done < data.size()) {
        const int r = co_await detail::write_op(fd, data.data() + done, data.size() - done, -1);
        if (r < 0) detail::throw_file_error(-r, "write", path_);
        if (r == 0) detail::throw_file_error(EIO, "write", path_);  // never loop forever
        done += static_cast<std::size_t>(r);
    }
}

inline coro<void> file::write_at(std::uint64_t offset, std::string_view data) {
    const int fd = require_open("write_at");
    std::size_t done = 0;
    while (done < data.size()) {
        const int r = co_await detail::write_op(fd, data.data() + done, data.size() - done,
                                                static_cast<std::int64_t>(offset + done));
        if (r < 0) detail::throw_file_error(-r, "write", path_);
        if (r == 0) detail::throw_file_error(EIO, "write", path_);
        done += static_cast<std::size_t>(r);
    }
}

inline coro<std::uint64_t> file::size() {
    const int fd = require_open("size");
    struct statx st {};
    const int r = co_await detail::statx_op(fd, &st);
    if (r < 0) detail::throw_file_error(-r, "statx", path_);
    co_return st.stx_size;
}

inline coro<void> file::fsync(bool data_only) {
    const int fd = require_open("fsync");
    const int r = co_await detail::fsync_op(fd, data_only);
    if (r < 0) detail::throw_file_error(-r, "fsync", path_);
}

inline coro<void> file::close() {
    if (fd_ < 0) co_return;
    const int fd = std::exchange(fd_, -1);  // closed afterwards whatever happens
    int r = 0;
    try {
        r = co_await detail::close_op(fd);
    } catch (...) {
        // Cancelled before the kernel ran the close (a submitted close is never cancelled:
        // the kernel runs it at once). Close it here so the descriptor cannot leak.
        ::close(fd);
        throw;
    }
    if (r < 0 && r != -EINTR) detail::throw_file_error(-r, "close", path_);
}

namespace detail {

inline coro<file> open_with_flags(std::string path, int flags, unsigned permissions) {
    const int r = co_await open_op(path.c_str(), flags | O_CLOEXEC, permissions);
    if (r < 0) throw_file_error(-r, "open", path);
    co_return file(r, std::move(path));
}

} // namespace detail

inline coro<file> open_file(std::string path, std::string_view mode, open_options options) {
    return detail::open_with_flags(std::move(path), detail::parse_open_mode(mode) | options.flags, options.permissions);
}

inline coro<file> open_file(std::string path, int flags, unsigned permissions) {
    return detail::open_with_flags(std::move(path), flags, permissions);
}

inline coro<std::string> read_file(std::string path) {
    if (!detail::on_uring()) {
        std::string out;
        const char* failed = "read";
        const int r = co_await detail::make_file_op(
            "read_file", [](detail::operation&) {},
            [&]() noexcept { return detail::read_file_blocking(path.c_str(), out, &failed); });
        if (r < 0) detail::throw_file_error(-r, failed, path);
        co_return out;
    }
    file f = co_await detail::open_with_flags(path, O_RDONLY, 0);
    // Small files (the common case) cost open, two reads and a close: the size is asked for
    // (statx) only when the first buffer is full, to allocate a large file's string once. The
    // first buffer is one page + 1, so a one-page file is read whole and its end seen at once;
    // a larger first buffer costs more than it saves when many files are read at once (4097:
    // 237k files/s; 8 KiB: 150k; 16 KiB: 130k, 256 in flight, benchmarks/files).
    std::string out(4097, '\0');
    std::size_t got = 0;
    bool sized = false;
    for (;;) {
        if (got == out.size()) {
            std::size_t want = out.size() * 2;
            if (!sized) {
                sized = true;
                struct statx st {};
                const int r = co_await detail::statx_op(f.native_handle(), &st);
                if (r < 0) detail::throw_file_error(-r, "statx", path);
                if (st.stx_size >= got) want = static_cast<std::size_t>(st.stx_size) + 1;  // +1: sees the end
            }
            out.resize(want);
        }
        const int r = co_await detail::read_op(f.native_handle(), out.data() + got, std::min(out.size() - got, detail::file_chunk), -1);
        if (r < 0) detail::throw_file_error(-r, "read", path);
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    co_await f.close();
    co_return out;
}

inline coro<void> write_file(std::string path, std::string_view data, unsigned permissions) {
    std::string tmp;
    if (!detail::on_uring()) {
        for (int attempt = 0;; ++attempt) {
            tmp = detail::temporary_name_for(path);
            const char* failed = "write";
            const int r = co_await detail::make_file_op(
                "write_file", [](detail::operation&) {},
                [&]() noexcept { return detail::write_file_blocking(tmp.c_str(), path.c_str(), data, permissions, &failed); });
            if (r == -EEXIST && attempt < 16 && failed[0] == 'c') continue;  // the temporary name was taken
            if (r < 0) detail::throw_file_error(-r, failed, path);
            co_return;
        }
    }
    file f;
    for (int attempt = 0;; ++attempt) {
        tmp = detail::temporary_name_for(path);
        const int r = co_await detail::open_op(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions);
        if (r >= 0) {
            f = file(r, tmp);
            break;
        }
        if (r != -EEXIST || attempt == 16) detail::throw_file_error(-r, "create a temporary file for", path);
    }
    std::exception_ptr failed;
    try {
        const int fd = f.native_handle();
        std::size_t done = 0;
        while (done < data.size()) {
            const int r = co_await detail::write_op(fd, data.data() + done, data.size() - done, -1);
            if (r < 0) detail::throw_file_error(-r, "write", path);
            if (r == 0) detail::throw_file_error(EIO, "write", path);
            done += static_cast<std::size_t>(r);
        }
        int r = co_await detail::fsync_op(fd, false);
        if (r < 0) detail::throw_file_error(-r, "fsync", path);
        const int closing = f.release();
        try {
            r = co_await detail::close_op(closing);
        } catch (...) {
            ::close(closing);  // cancelled before the kernel ran it (see file::close)
            throw;
        }
        if (r < 0 && r != -EINTR) detail::throw_file_error(-r, "close", path);
        const detail::rename_paths paths{tmp.c_str(), path.c_str()};
        r = co_await detail::rename_op(&paths);
        if (r < 0) detail::throw_file_error(-r, "rename into", path);
    } catch (...) {
        failed = std::current_exception();
    }
    if (failed) {
        // Synchronous on purpose: a cancelled task cannot await again, and a leftover
        // temporary file would be a leak on disk.
        f = file();
        ::unlink(tmp.c_str());
        std::rethrow_exception(failed);
    }
}

inline coro<std::size_t> stream_writer::sendfile(const file& f, std::uint64_t offset, std::optional<std::size_t> count) {
    detail::stream_state& s = state();
    const int fd = f.native_handle();
    if (fd < 0) throw invalid_state_error("coio: stream_writer::sendfile: the file is closed");
    return detail::send_file(s, fd, f.path(), offset, count);
}

} // namespace coio
