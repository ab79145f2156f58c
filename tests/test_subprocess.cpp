// tests/test_subprocess.cpp - coio::create_subprocess_exec / create_subprocess_shell and
// coio::process with real processes (/bin/sh, cat, yes | head -c, sleep): communicate with
// large data on every pipe at once, early closes, kills, ENOENT, cwd/env, redirections, and
// reaping (no zombie after a dropped process object or a loop close). Every case runs on
// both backends (io_uring and epoll) in one process.
#include <coio/subprocess.hpp>

#include "support/both_backends.hpp"
#include "support/catch.hpp"
#include "support/co_check.hpp"

#include <coio/errors.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <system_error>
#include <utility>

using namespace std::chrono_literals;

namespace {

constexpr auto pipe_ = coio::stdio::pipe;
constexpr std::size_t ten_mib = 10u << 20;

/// True while `pid` exists at all (running or a zombie): /proc/<pid> is there.
bool pid_exists(pid_t pid) {
    struct stat st {};
    return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

/// True when `pid` is not our child any more (reaped): waitid says ECHILD.
bool reaped(pid_t pid) {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD;
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4093) % 26);
    return s;
}

} // namespace

TEST_CASE("subprocess: stdout, stderr and the exit status of sh -c") {
    on_both_backends([]() -> coio::coro<void> {
        auto proc = co_await coio::create_subprocess_exec("/bin/sh", {"-c", "echo hello; echo oops >&2; exit 3"},
                                                          {.stdout_ = pipe_, .stderr_ = pipe_});
        CHECK(proc.pid() > 0);
        auto [out, err] = co_await proc.communicate();
        CHECK(out == "hello\n");
        CHECK(err == "oops\n");
        CHECK(proc.returncode() == 3);
        CO_CHECK(co_await proc.wait() == 3);  // again: at once
    });
}

TEST_CASE("subprocess: create_subprocess_shell with a pipeline (yes | head -c)") {
    on_both_backends([]() -> coio::coro<void> {
        auto proc = co_await coio::create_subprocess_shell("yes | head -c 1000001", {.stdout_ = pipe_});
        auto [out, err] = co_await proc.communicate();
        CHECK(out.size() == 1000001);
        CHECK(out.substr(0, 6) == "y\ny\ny\n");
        CHECK(err.empty());
        CHECK(proc.returncode() == 0);
    });
}

TEST_CASE("subprocess: 10 MiB through cat") {
    on_both_backends([]() -> coio::coro<void> {
        const std::string data = pattern(ten_mib + 12345);
        auto proc = co_await coio::create_subprocess_exec("cat", {}, {.stdin_ = pipe_, .stdout_ = pipe_});
        auto [out, err] = co_await proc.communicate(data);
        CHECK(out.size() == data.size());
        CHECK(out.size() == data.size());
        CHECK((out == data));  // (not printed: 10 MiB)
        CHECK(proc.returncode() == 0);
    });
}

TEST_CASE("subprocess: no deadlock with 10 MiB on stdin, stdout and stderr at once") {
    on_both_backends([]() -> coio::coro<void> {
        const std::string data = pattern(ten_mib);
        // cat echoes stdin to stdout while yes fills stderr (in the background, where a
        // non-interactive shell would give cat /dev/null as stdin): both pipes fill up while
        // the input is still being written.
        auto proc = co_await coio::create_subprocess_shell("yes err | head -c 10485760 >&2 & cat; wait",
                                                           {.stdin_ = pipe_, .stdout_ = pipe_, .stderr_ = pipe_});
        auto [out, err] = co_await proc.communicate(data);
        CHECK(out.size() == data.size());
        CHECK((out == data));  // (not printed: 10 MiB)
        CHECK(err.size() == ten_mib);
        CHECK(err.substr(0, 8) == "err\nerr\n");
        CHECK(proc.returncode() == 0);
    });
}

TEST_CASE("subprocess: a child that closes its stdout (and stdin) early") {
    on_both_backends([]() -> coio::coro<void> {
        auto proc = co_await coio::create_subprocess_shell("exec 1>&- 0<&-; sleep 0.1; echo done >&2; exit 4",
                                                           {.stdin_ = pipe_, .stdout_ = pipe_, .stderr_ = pipe_});
        // 4 MiB of input the child never reads: the broken pipe is not an error.
        auto [out, err] = co_await proc.communicate(std::string(4 << 20, 'x'));
        CHECK(out.empty());
        CHECK(err == "done\n");
        CHECK(proc.returncode() == 4);
    });
}

TEST_CASE("subprocess: a child killed in the middle of communicate") {
    on_both_backends([]() -> coio::coro<void> {
        auto proc = co_await coio::create_subprocess_shell("echo started; exec sleep 10", {.stdout_ = pipe_});
        auto comm = coio::create_task(proc.communicate());
        co_await coio::sleep(100ms);
        CHECK_FALSE(proc.returncode().has_value());
        proc.kill();
        auto [out, err] = co_await comm;
        CHECK(out == "started\n");
        CHECK(proc.returncode() == -SIGKILL);
    });
}

TEST_CASE("subprocess: kill, terminate, send_signal") {
    on_both_backends([]() -> coio::coro<void> {
        auto a = co_await coio::create_subprocess_exec("sleep", {"10"});
        auto b = co_await coio::create_subprocess_exec("sleep", {"10"});
        auto c = co_await coio::create_subprocess_exec("sleep", {"10"});
        a.kill();
        b.terminate();
        c.send_signal(SIGINT);
        CO_CHECK(co_await a.wait() == -9);
        CO_CHECK(co_await b.wait() == -SIGTERM);
        CO_CHECK(co_await c.wait() == -SIGINT);
        a.kill();  // reaped already: nothing happens
        CHECK(a.returncode() == -9);
    });
}

TEST_CASE("subprocess: a program that does not exist is ENOENT naming it, from the co_await") {
    on_both_backends([]() -> coio::coro<void> {
        auto not_yet = coio::create_subprocess_exec("/nonexistent/coio-no-such-program");  // lazy: nothing yet
        for (std::string prog : {"/nonexistent/coio-no-such-program", "coio-no-such-program-in-path"}) {
            try {
                co_await coio::create_subprocess_exec(prog, {"x"});
                FAIL("no exception for " << prog);
            } catch (const std::system_error& e) {
                CHECK(e.code() == std::errc::no_such_file_or_directory);
                CHECK(std::string(e.what()).find(prog) != std::string::npos);
            }
        }
        CHECK_THROWS_AS(co_await std::move(not_yet), std::system_error);
        // A missing working directory is ENOENT too, and the message says which.
        try {
            co_await coio::create_subprocess_exec("/bin/true", {}, {.cwd = "/nonexistent-coio-dir"});
            FAIL("no exception for a missing cwd");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::no_such_file_or_directory);
            CHECK(std::string(e.what()).find("/nonexistent-coio-dir") != std::string::npos);
        }
        // The shell itself reports a command it cannot find: exit status 127, no exception.
        auto sh = co_await coio::create_subprocess_shell("coio-no-such-command", {.stderr_ = coio::stdio::devnull});
        CO_CHECK(co_await sh.wait() == 127);
    });
}

TEST_CASE("subprocess: cwd and env (PATH of env finds the program)") {
    on_both_backends([]() -> coio::coro<void> {
        // (The map is made before the co_await: g++ 12 rejects an initializer list inside one.)
        const std::map<std::string, std::string> env{{"FOO", "bar baz"}, {"PATH", "/usr/bin:/bin"}};
        auto proc = co_await coio::create_subprocess_exec(
            "sh", {"-c", "pwd; echo \"$FOO\"; echo \"${HOME:-unset}\""}, {.stdout_ = pipe_, .cwd = "/tmp", .env = env});
        auto [out, err] = co_await proc.communicate();
        CHECK(out == "/tmp\nbar baz\nunset\n");
        CHECK(proc.returncode() == 0);
        // No PATH in the child's environment: its default (/bin:/usr/bin) is searched.
        const std::map<std::string, std::string> empty;
        auto p2 = co_await coio::create_subprocess_exec("true", {}, {.env = empty});
        CO_CHECK(co_await p2.wait() == 0);
    });
}

TEST_CASE("subprocess: stderr into stdout, and /dev/null") {
    on_both_backends([]() -> coio::coro<void> {
        auto merged = co_await coio::create_subprocess_shell("echo a; echo b >&2; echo c",
                                                             {.stdout_ = pipe_, .stderr_ = coio::stdio::stdout_});
        CHECK_FALSE(merged.stderr_);
        auto [out, err] = co_await merged.communicate();
        CHECK(out == "a\nb\nc\n");
        CHECK(err.empty());

        // stdin from /dev/null: cat sees EOF at once. stdout to /dev/null: nothing piped.
        auto cat = co_await coio::create_subprocess_exec("cat", {}, {.stdin_ = coio::stdio::devnull, .stdout_ = pipe_});
        auto [cout, cerr] = co_await cat.communicate();
        CHECK(cout.empty());
        CHECK(cat.returncode() == 0);
        auto quiet = co_await coio::create_subprocess_shell("echo lost; echo lost >&2",
                                                            {.stdout_ = coio::stdio::devnull, .stderr_ = coio::stdio::devnull});
        CHECK_FALSE(quiet.stdout_);
        CO_CHECK(co_await quiet.wait() == 0);
        CHECK_THROWS_AS(co_await coio::create_subprocess_exec("true", {}, {.stdout_ = coio::stdio::stdout_}),
                        std::invalid_argument);
    });
}

TEST_CASE("subprocess: the pipes as streams (cat, line by line)") {
    on_both_backends([]() -> coio::coro<void> {
        auto cat = co_await coio::create_subprocess_exec("cat", {}, {.stdin_ = pipe_, .stdout_ = pipe_, .limit = 16});
        for (int i = 0; i < 3; ++i) {
            cat.stdin_.write("ping " + std::to_string(i) + "\n");
            CO_CHECK(co_await cat.stdout_.readline() == "ping " + std::to_string(i) + "\n");
        }
        cat.stdin_.write(std::string(40, 'x') + "\n");  // longer than limit
        CHECK_THROWS_AS(co_await cat.stdout_.readline(), coio::limit_overrun_error);
        cat.stdin_.write_eof();  // closes the pipe: cat sees EOF and exits
        CO_CHECK(co_await cat.wait() == 0);
    });
}

TEST_CASE("subprocess: cancelling wait() does not kill the child") {
    on_both_backends([]() -> coio::coro<void> {
        auto proc = co_await coio::create_subprocess_exec("sleep", {"10"});
        CHECK_THROWS_AS(co_await coio::wait_for(proc.wait(), 50ms), coio::timeout_error);
        CHECK_FALSE(proc.returncode().has_value());
        CHECK(::kill(proc.pid(), 0) == 0);  // still running
        proc.kill();
        CO_CHECK(co_await proc.wait() == -9);
    });
}

TEST_CASE("subprocess: a dropped process object leaves no zombie") {
    on_both_backends([]() -> coio::coro<void> {
        pid_t pid = -1;
        {
            auto proc = co_await coio::create_subprocess_exec("sleep", {"0.1"}, {.stdout_ = pipe_});
            pid = proc.pid();
        }  // dropped while the child runs
        CHECK(pid_exists(pid));
        for (int i = 0; i < 500 && pid_exists(pid); ++i) co_await coio::sleep(10ms);
        CHECK_FALSE(pid_exists(pid));  // a zombie would still have /proc/<pid>
        CHECK(reaped(pid));
    });
}

TEST_CASE("subprocess: loop close kills and reaps a child still running") {
    for (coio::backend b : {coio::backend::io_uring, coio::backend::epoll}) {
        INFO("backend " << coio::to_string(b));
        pid_t held = -1, dropped = -1;
        coio::process kept;  // outlives the loop
        coio::run([](pid_t& h, pid_t& d, coio::process& k) -> coio::coro<void> {
            k = co_await coio::create_subprocess_exec("sleep", {"10"});
            h = k.pid();
            auto gone = co_await coio::create_subprocess_exec("sleep", {"10"});
            d = gone.pid();
        }(held, dropped, kept), {.backend = b});
        CHECK(reaped(held));
        CHECK(reaped(dropped));
        CHECK_FALSE(pid_exists(held));
        CHECK_FALSE(pid_exists(dropped));
        CHECK(kept.returncode() == -9);
        CHECK(kept.pid() == held);
        CHECK_NOTHROW(kept.kill());  // reaped: nothing to do
    }
}

TEST_CASE("subprocess: the child gets an empty signal mask and SIGPIPE's default action") {
    on_both_backends([]() -> coio::coro<void> {
        // Make SIGPIPE ignored in the parent (as a pipe stream does) and block SIGUSR1 here.
        sigset_t usr1, old;
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        ::pthread_sigmask(SIG_BLOCK, &usr1, &old);
        struct sigaction ign {}, saved {};
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        ::sigaction(SIGPIPE, &ign, &saved);
        auto proc = co_await coio::create_subprocess_shell("grep -E '^(SigBlk|SigIgn)' /proc/self/status",
                                                           {.stdout_ = pipe_});
        ::sigaction(SIGPIPE, &saved, nullptr);
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
        auto [out, err] = co_await proc.communicate();
        CHECK(out.find("SigBlk:\t0000000000000000") != std::string::npos);
        // SIGPIPE is signal 13: bit 12 of SigIgn (0x1000) must be clear.
        const auto pos = out.find("SigIgn:\t");
        REQUIRE(pos != std::string::npos);
        const unsigned long long ignored = std::stoull(out.substr(pos + 8, 16), nullptr, 16);
        CHECK((ignored & (1ull << (SIGPIPE - 1))) == 0);
    });
}
