// coio/subprocess.hpp - coio::create_subprocess_exec / create_subprocess_shell and
// coio::process (asyncio.subprocess).
//
//   auto proc = co_await coio::create_subprocess_exec("ls", {"-l"}, {.stdout_ = coio::stdio::pipe});
//   auto [out, err] = co_await proc.communicate();
//   std::cout << out << "exit status " << *proc.returncode() << '\n';
//
// Children are spawned with posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK), so a large
// parent is not copied) and watched through a pidfd polled on the loop (Linux 5.3), never a
// SIGCHLD handler. Pipes to the child are coio streams (coio/pipe.hpp).
//
// Names: C declares stdin, stdout and stderr as macros, so asyncio's `stdin=`, `proc.stdin`
// are spelled `.stdin_`, `proc.stdin_` here (likewise stdout_, stderr_), and asyncio's
// PIPE / DEVNULL / STDOUT / None are coio::stdio::pipe / devnull / stdout_ / inherit.
#pragma once

#include <coio/coro.hpp>
#include <coio/detail/signal_mask.hpp>
#include <coio/errors.hpp>
#include <coio/gather.hpp>
#include <coio/impl/child_watch.hpp>
#include <coio/impl/waiter_list.hpp>
#include <coio/loop.hpp>
#include <coio/pipe.hpp>
#include <coio/stream_reader.hpp>
#include <coio/stream_writer.hpp>
#include <coio/streams.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

extern char** environ;  // POSIX: the process's environment (not declared by <unistd.h> without _GNU_SOURCE)

namespace coio {

/// What a child's standard stream is connected to (asyncio's stdin=/stdout=/stderr= values).
/// Example: `{.stdout_ = coio::stdio::pipe, .stderr_ = coio::stdio::stdout_}`
enum class stdio : std::uint8_t {
    inherit,  ///< the parent's own stream (asyncio's None, the default)
    pipe,     ///< a pipe: a coio stream_writer (stdin_) or stream_reader (stdout_, stderr_) in the process
    devnull,  ///< /dev/null (asyncio.subprocess.DEVNULL)
    stdout_,  ///< stderr only: wherever stdout goes (asyncio.subprocess.STDOUT)
};

/// The arguments of create_subprocess_exec after the program (asyncio's `*args`): a braced
/// list of strings (`{"-c", "echo hi"}`) or a std::vector<std::string>.
///
/// A class of its own rather than std::vector because g++ 12 rejects a braced list that
/// makes a std::initializer_list inside a co_await expression ("array used as
/// initializer"); this constructor takes the strings one by one instead.
/// Example: `co_await coio::create_subprocess_exec("ls", {"-l", "/tmp"});`
class subprocess_args {
public:
    /// No arguments.
    subprocess_args() = default;
    /// The arguments in `v`.
    subprocess_args(std::vector<std::string> v) : v_(std::move(v)) {}  // NOLINT: implicit on purpose
    /// The arguments `s...` (anything convertible to std::string_view).
    template <class... S>
        requires(sizeof...(S) > 0 && (std::is_convertible_v<S, std::string_view> && ...))
    subprocess_args(S&&... s) {  // NOLINT: implicit on purpose, for braced lists
        v_.reserve(sizeof...(S));
        (v_.emplace_back(std::string_view(s)), ...);
    }
    /// The arguments.
    [[nodiscard]] const std::vector<std::string>& strings() const noexcept { return v_; }

private:
    std::vector<std::string> v_;
};

/// A reference to the environment a child gets (`.env = my_map` in subprocess_options):
/// the whole environment, as name -> value. The map only has to live until
/// create_subprocess_exec/_shell returns (it is copied then).
/// Example: `std::map<std::string, std::string> env{{"LANG", "C"}}; ... {.env = env}`
class environment_ref {
public:
    /// No environment given: the child gets the parent's.
    environment_ref() noexcept = default;
    /// The child's environment is exactly `vars`.
    environment_ref(const std::map<std::string, std::string>& vars) noexcept : p_(&vars) {}  // NOLINT: implicit on purpose
    /// The map, or null (the parent's environment).
    [[nodiscard]] const std::map<std::string, std::string>* get() const noexcept { return p_; }

private:
    const std::map<std::string, std::string>* p_ = nullptr;
};

/// Options of create_subprocess_exec / create_subprocess_shell (asyncio's keyword arguments).
///
/// Trivially destructible on purpose: g++ 12 destroys a braced aggregate temporary twice
/// when it appears in a co_await expression (`co_await f({...})`). So `cwd` and `env` refer
/// to the caller's data, which the functions copy before they return their coroutine.
/// Example: `{.stdout_ = coio::stdio::pipe, .cwd = "/tmp", .env = env_map}`
struct subprocess_options {
    stdio stdin_ = stdio::inherit;   ///< the child's stdin
    stdio stdout_ = stdio::inherit;  ///< the child's stdout
    stdio stderr_ = stdio::inherit;  ///< the child's stderr (stdio::stdout_: merged into stdout)
    /// Buffer limit of the stdout_/stderr_ readers (asyncio's limit, 64 KiB).
    std::size_t limit = 64 * 1024;
    /// Working directory of the child; empty: the parent's. A relative program path (one
    /// with a '/') is relative to it, as in asyncio.
    std::string_view cwd{};
    /// The child's whole environment; empty: the parent's. Its PATH, if any, is also where a
    /// program name without '/' is searched (as asyncio does).
    environment_ref env{};
    /// Run the child in a new session (setsid), as asyncio's start_new_session.
    bool start_new_session = false;
};

/// A child process (asyncio.subprocess.Process), made by create_subprocess_exec or
/// create_subprocess_shell.
///
/// `stdin_`, `stdout_`, `stderr_` are the pipes to the child (asyncio's proc.stdin, ...;
/// empty unless stdio::pipe was asked for). `wait()` waits for the exit, `communicate()`
/// feeds stdin and collects stdout and stderr without deadlock, `send_signal`, `terminate`
/// and `kill` signal it.
///
/// Move-only. Dropping a process object does not kill the child: the loop keeps watching
/// it and reaps it when it exits (no zombie). When the loop closes, children still running
/// are killed with SIGKILL and reaped (asyncio kills a child whose transport is closed), so
/// none outlives the loop; start a daemon with start_new_session and let it fork itself if
/// it must stay.
///
/// Example:
/// @code
///   auto proc = co_await coio::create_subprocess_exec("cat", {}, {.stdin_ = coio::stdio::pipe,
///                                                                 .stdout_ = coio::stdio::pipe});
///   auto [out, err] = co_await proc.communicate("hello");   // out == "hello"
///   int status = *proc.returncode();                          // 0
/// @endcode
class process {
public:
    /// The child's stdin (a writer; write_eof() or close() closes the pipe), if piped.
    stream_writer stdin_;
    /// The child's stdout, if piped.
    stream_reader stdout_;
    /// The child's stderr, if piped.
    stream_reader stderr_;

    /// An empty process object (refers to no child).
    process() noexcept = default;
    /// Takes over `o`'s child and streams; `o` is left empty.
    process(process&& o) noexcept
        : stdin_(std::move(o.stdin_)), stdout_(std::move(o.stdout_)), stderr_(std::move(o.stderr_)),
          w_(std::exchange(o.w_, nullptr)) {}
    /// Drops this object's child (see the class comment), then takes over `o`'s.
    process& operator=(process&& o) noexcept {
        if (this != &o) {
            reset();
            stdin_ = std::move(o.stdin_);
            stdout_ = std::move(o.stdout_);
            stderr_ = std::move(o.stderr_);
            w_ = std::exchange(o.w_, nullptr);
        }
        return *this;
    }
    process(const process&) = delete;
    process& operator=(const process&) = delete;
    /// Closes the pipes; the child keeps running and is reaped by the loop when it exits.
    ~process() { reset(); }

    /// True when the object refers to a child.
    explicit operator bool() const noexcept { return w_ != nullptr; }

    /// The child's process id (asyncio's pid). Throws: invalid_state_error on an empty object.
    [[nodiscard]] pid_t pid() const { return watch().pid(); }
    /// The exit status once the child has exited and been reaped; negative when a signal
    /// ended it (-9 for SIGKILL), as in asyncio; empty while it runs (asyncio's None).
    /// The loop reaps it as soon as it exits, whether or not anyone waits.
    /// Throws: invalid_state_error on an empty object.
    [[nodiscard]] std::optional<int> returncode() const { return watch().returncode(); }

    class wait_awaiter;

    /// Waits for the child to exit (asyncio's wait).
    /// Returns: the returncode. Throws: invalid_state_error on an empty object, or when the
    /// loop was closed meanwhile.
    /// Cancellation: a cancellation point; cancelling the wait does not kill the child (as in
    /// asyncio), which is still reaped in the background.
    /// Beware, as in asyncio: with stdout_/stderr_ piped, a child that writes more than a
    /// pipe holds (64 KiB) blocks until someone reads; use communicate() then.
    /// Example: `int status = co_await proc.wait();`
    [[nodiscard]] wait_awaiter wait();

    /// Sends `input` to stdin (if piped) and closes it, reads stdout and stderr (those that
    /// are piped) to EOF, all at once so that neither side can block the other, then waits
    /// for the exit (asyncio's communicate).
    /// @param input  written to stdin_ (must be piped if non-empty); a child that exits or
    ///               closes its stdin before taking it all is not an error (EPIPE is ignored,
    ///               as in asyncio).
    /// Returns: {stdout data, stderr data}; a stream that is not piped gives "".
    /// Throws: std::invalid_argument for input without a stdin pipe; std::system_error on a
    /// read error; invalid_state_error on an empty object.
    /// Cancellation: a cancellation point; the reads and the write stop (what was read is
    /// lost, as in asyncio), the child is not killed and is reaped in the background.
    /// Example: `auto [out, err] = co_await proc.communicate("input");`
    [[nodiscard]] coro<std::pair<std::string, std::string>> communicate(std::string input = {});

    /// Sends signal `sig` to the child (asyncio's send_signal), through its pidfd (never to
    /// another process that reused the pid). Does nothing once the child has been reaped.
    /// Throws: std::system_error (EINVAL for a bad signal number, EPERM); invalid_state_error
    /// on an empty object. Cancellation: not a suspension point.
    /// Example: `proc.send_signal(SIGINT);`
    void send_signal(int sig) { watch().send_signal(sig); }
    /// send_signal(SIGTERM) (asyncio's terminate). Example: `proc.terminate();`
    void terminate() { send_signal(SIGTERM); }
    /// send_signal(SIGKILL) (asyncio's kill); returncode() is then -9.
    /// Example: `proc.kill(); co_await proc.wait();`
    void kill() { send_signal(SIGKILL); }

    /// Internal: takes a reference on `w`.
    explicit process(detail::child_watch* w) noexcept : w_(w) { w_->add_ref(); }

private:
    detail::child_watch& watch() const {
        if (!w_) throw invalid_state_error("coio: process is empty (moved from or default-constructed)");
        return *w_;
    }
    void reset() noexcept {
        if (w_) std::exchange(w_, nullptr)->release();
    }
    detail::child_watch* w_ = nullptr;
};

/// Awaiter of process::wait.
class process::wait_awaiter : detail::list_wait_awaiter {
public:
    explicit wait_awaiter(detail::child_watch& w) noexcept : list_wait_awaiter(w.waiters(), "process wait"), w_(&w) {}
    bool await_ready() const noexcept { return w_->returncode().has_value(); }
    bool await_suspend(std::coroutine_handle<> h) {
        if (!w_->has_loop()) throw invalid_state_error("coio: the event loop of this process is closed");
        return list_wait_awaiter::await_suspend(h);
    }
    int await_resume() {
        list_wait_awaiter::await_resume();
        return *w_->returncode();
    }

private:
    detail::child_watch* w_;
};

inline process::wait_awaiter process::wait() { return wait_awaiter(watch()); }

inline coro<std::pair<std::string, std::string>> process::communicate(std::string input) {
    watch();
    if (!input.empty() && !stdin_) throw std::invalid_argument("coio: communicate(input) needs stdin_ = stdio::pipe");
    auto feed = [](stream_writer& w, std::string data) -> coro<void> {
        if (!w) co_return;
        try {
            if (!data.empty()) {
                w.write(data);
                co_await w.drain();
            }
        } catch (const std::system_error& e) {
            // The child does not want more input (it exited or closed its stdin): not an
            // error, as in asyncio.
            if (e.code() != std::errc::broken_pipe && e.code() != std::errc::connection_reset) throw;
        }
        w.close();
    };
    auto slurp = [](stream_reader& r) -> coro<std::string> {
        if (!r) co_return std::string();
        co_return co_await r.read();
    };
    auto results = co_await gather(feed(stdin_, std::move(input)), slurp(stdout_), slurp(stderr_));
    co_await wait();
    co_return std::pair<std::string, std::string>(std::move(std::get<1>(results)), std::move(std::get<2>(results)));
}

namespace detail {

/// What a spawn needs, owned (copied from the caller's arguments before the coroutine is
/// returned, see subprocess_options).
struct spawn_request {
    std::string program;
    std::vector<std::string> args;
    subprocess_options options;
    std::string cwd;
    std::optional<std::map<std::string, std::string>> env;
    const char* who = "";

    spawn_request(std::string_view p, std::vector<std::string> a, const subprocess_options& o, const char* w)
        : program(p), args(std::move(a)), options(o), cwd(o.cwd), who(w) {
        if (o.env.get()) env = *o.env.get();
        options.cwd = {};
        options.env = {};
    }
};

/// A descriptor closed when the holder goes (the spawn's error paths).
struct owned_fd {
    int fd = -1;
    owned_fd() noexcept = default;
    owned_fd(const owned_fd&) = delete;
    owned_fd& operator=(const owned_fd&) = delete;
    ~owned_fd() { reset(); }
    void reset() noexcept {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    int release() noexcept { return std::exchange(fd, -1); }
};

inline void make_pipe(owned_fd& r, owned_fd& w) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
    r.fd = fds[0];
    w.fd = fds[1];
}

/// The program to exec: `program` itself when it has a '/', else the first executable
/// regular file of that name in PATH (the child's PATH when `env` has one, else ours).
/// Empty when not found.
inline std::string find_program(const std::string& program, const spawn_request& r) {
    if (program.find('/') != std::string::npos) return program;
    std::string path;
    if (r.env) {
        auto it = r.env->find("PATH");
        path = it != r.env->end() ? it->second : "/bin:/usr/bin";
    } else if (const char* p = std::getenv("PATH")) {
        path = p;
    } else {
        path = "/bin:/usr/bin";
    }
    std::size_t start = 0;
    for (;;) {
        const std::size_t end = path.find(':', start);
        std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (dir.empty()) dir = ".";
        std::string candidate = dir + "/" + program;
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        if (end == std::string::npos) return {};
        start = end + 1;
    }
}

/// RAII for posix_spawn's attribute and file-action objects.
struct spawn_setup {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    spawn_setup() {
        if (const int e = ::posix_spawn_file_actions_init(&fa)) throw_errno(e, "posix_spawn_file_actions_init");
        if (const int e = ::posix_spawnattr_init(&attr)) {
            ::posix_spawn_file_actions_destroy(&fa);
            throw_errno(e, "posix_spawnattr_init");
        }
    }
    spawn_setup(const spawn_setup&) = delete;
    spawn_setup& operator=(const spawn_setup&) = delete;
    ~spawn_setup() {
        ::posix_spawnattr_destroy(&attr);
        ::posix_spawn_file_actions_destroy(&fa);
    }
    void check(int e, const char* what) {
        if (e) throw_errno(e, what);
    }
};

/// Spawns the child and makes the process object on the running loop (both factories).
/// Throws: see create_subprocess_exec.
inline process spawn_process(const spawn_request& r) {
    const std::string& program = r.program;
    const std::vector<std::string>& args = r.args;
    const subprocess_options& o = r.options;
    const char* who = r.who;
    if (o.stdin_ == stdio::stdout_ || o.stdout_ == stdio::stdout_)
        throw std::invalid_argument(std::string("coio: ") + who + ": stdio::stdout_ is only for stderr_");
    if (o.limit == 0) throw std::invalid_argument("coio: the stream limit must be positive");
    event_loop& loop = get_running_loop();

    const std::string path = find_program(program, r);
    if (path.empty())
        throw std::system_error(ENOENT, std::system_category(),
                                "coio: " + std::string(who) + ": cannot run '" + program + "' (not found in PATH)");

    std::vector<char*> argv;
    argv.reserve(args.size() + 2);
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    std::vector<std::string> env_strings;
    std::vector<char*> envp;
    if (r.env) {
        env_strings.reserve(r.env->size());
        for (const auto& [k, v] : *r.env) env_strings.push_back(k + "=" + v);
        for (auto& s : env_strings) envp.push_back(s.data());
        envp.push_back(nullptr);
    }

    owned_fd in_r, in_w, out_r, out_w, err_r, err_w;
    if (o.stdin_ == stdio::pipe) make_pipe(in_r, in_w);
    if (o.stdout_ == stdio::pipe) make_pipe(out_r, out_w);
    if (o.stderr_ == stdio::pipe) make_pipe(err_r, err_w);

    spawn_setup s;
    // The pipes are O_CLOEXEC (no other child, spawned by another thread meanwhile, inherits
    // them); dup2 onto 0/1/2 gives the child copies without that flag.
    if (o.stdin_ == stdio::pipe) s.check(::posix_spawn_file_actions_adddup2(&s.fa, in_r.fd, 0), "posix_spawn");
    if (o.stdin_ == stdio::devnull)
        s.check(::posix_spawn_file_actions_addopen(&s.fa, 0, "/dev/null", O_RDONLY, 0), "posix_spawn");
    if (o.stdout_ == stdio::pipe) s.check(::posix_spawn_file_actions_adddup2(&s.fa, out_w.fd, 1), "posix_spawn");
    if (o.stdout_ == stdio::devnull)
        s.check(::posix_spawn_file_actions_addopen(&s.fa, 1, "/dev/null", O_WRONLY, 0), "posix_spawn");
    if (o.stderr_ == stdio::pipe) s.check(::posix_spawn_file_actions_adddup2(&s.fa, err_w.fd, 2), "posix_spawn");
    if (o.stderr_ == stdio::devnull)
        s.check(::posix_spawn_file_actions_addopen(&s.fa, 2, "/dev/null", O_WRONLY, 0), "posix_spawn");
    if (o.stderr_ == stdio::stdout_) s.check(::posix_spawn_file_actions_adddup2(&s.fa, 1, 2), "posix_spawn");
    if (!r.cwd.empty()) s.check(::posix_spawn_file_actions_addchdir_np(&s.fa, r.cwd.c_str()), "posix_spawn");

    // The child starts with no signal blocked (a loop blocks the signals it handles, and
    // coio's threads block every asynchronous one; exec would keep that mask) and with the
    // default action for SIGPIPE and SIGXFSZ (coio ignores SIGPIPE for its pipes; an ignored
    // disposition would survive exec), as Python's restore_signals does.
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGXFSZ);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (o.start_new_session) flags |= POSIX_SPAWN_SETSID;
    s.check(::posix_spawnattr_setsigmask(&s.attr, &none), "posix_spawnattr_setsigmask");
    s.check(::posix_spawnattr_setsigdefault(&s.attr, &defaults), "posix_spawnattr_setsigdefault");
    s.check(::posix_spawnattr_setflags(&s.attr, flags), "posix_spawnattr_setflags");

    pid_t pid = -1;
    if (const int e = ::posix_spawn(&pid, path.c_str(), &s.fa, &s.attr, argv.data(), r.env ? envp.data() : environ)) {
        std::string what = "coio: " + std::string(who) + ": cannot run '" + program + "'";
        if (!r.cwd.empty()) what += " in '" + r.cwd + "'";
        throw std::system_error(e, std::system_category(), what);
    }
    // The child's ends are the child's now.
    in_r.reset();
    out_w.reset();
    err_w.reset();

    owned_fd pidfd;
    pidfd.fd = pidfd_open_syscall(pid);
    if (pidfd.fd < 0) {
        const int e = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw std::system_error(e, std::system_category(), "coio: pidfd_open (Linux 5.3 or later is needed)");
    }
    ::fcntl(pidfd.fd, F_SETFD, FD_CLOEXEC);  // pidfd_open sets it too; harmless

    auto* w = new child_watch(loop.service<subprocess_service>(), loop, pid, pidfd.release());
    process p(w);  // from here the watch (and its pidfd) is p's: a throw below kills nothing,
                   // the loop reaps the child when it exits
    w->start();
    const stream_options so{.limit = o.limit};
    if (in_w.fd >= 0) {
        p.stdin_ = connect_write_pipe(in_w.fd, so);
        in_w.release();
    }
    if (out_r.fd >= 0) {
        p.stdout_ = connect_read_pipe(out_r.fd, so);
        out_r.release();
    }
    if (err_r.fd >= 0) {
        p.stderr_ = connect_read_pipe(err_r.fd, so);
        err_r.release();
    }
    return p;
}

inline coro<process> spawn_coro(spawn_request r) { co_return spawn_process(r); }

} // namespace detail

/// Runs `program` with arguments `args` as a child process (asyncio's
/// create_subprocess_exec). No shell is involved: the arguments reach the program as they
/// are.
///
/// @param program  the program: a path (with a '/'), or a name searched in PATH (the PATH
///                 of `options.env` when it has one, else the process's). It is also argv[0].
/// @param args     the arguments after argv[0]: `{"-l", "/tmp"}` or a std::vector<std::string>.
/// @param options  standard streams (stdio::inherit, pipe, devnull, stdout_), `limit` of the
///                 readers, `cwd`, `env`, `start_new_session`; see subprocess_options.
/// Returns: the process; its stdin_/stdout_/stderr_ are the pipes asked for.
/// Throws (from the co_await): std::system_error with ENOENT naming the program when it is
/// not found (or `cwd` does not exist), EACCES when it is not executable, EMFILE..., as
/// posix_spawn reports; std::invalid_argument for stdio::stdout_ on stdin_/stdout_.
/// Cancellation: not a suspension point beyond the co_await itself (the spawn is one system
/// call); a task cancelled before it runs spawns nothing.
///
/// Example:
/// @code
///   auto proc = co_await coio::create_subprocess_exec("sh", {"-c", "echo hi; exit 3"},
///                                                     {.stdout_ = coio::stdio::pipe});
///   auto [out, err] = co_await proc.communicate();   // out == "hi\n"
///   assert(proc.returncode() == 3);
/// @endcode
[[nodiscard]] inline coro<process> create_subprocess_exec(std::string_view program, subprocess_args args = {},
                                                          subprocess_options options = {}) {
    return detail::spawn_coro(detail::spawn_request(program, args.strings(), options, "create_subprocess_exec"));
}

/// Runs `cmd` through the shell, /bin/sh -c cmd (asyncio's create_subprocess_shell). Quote
/// what comes from users yourself: the shell interprets the whole string.
///
/// @param cmd      the command line.
/// @param options  as for create_subprocess_exec.
/// Returns: the process (the shell's pid; returncode is the shell's exit status).
/// Throws: as create_subprocess_exec (a command the shell cannot find is not an exception:
/// the shell reports it on stderr and exits with 127).
/// Cancellation: as create_subprocess_exec.
///
/// Example:
/// @code
///   auto proc = co_await coio::create_subprocess_shell("yes | head -c 5", {.stdout_ = coio::stdio::pipe});
///   auto [out, err] = co_await proc.communicate();   // "y\ny\ny"
/// @endcode
[[nodiscard]] inline coro<process> create_subprocess_shell(std::string_view cmd, subprocess_options options = {}) {
    return detail::spawn_coro(
        detail::spawn_request("/bin/sh", std::vector<std::string>{"-c", std::string(cmd)}, options, "create_subprocess_shell"));
}

} // namespace coio
