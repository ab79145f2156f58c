// tests/test_backend.cpp - coio::backend: choosing io_uring or epoll, and a whole program
// running on epoll when io_uring is refused the way containers refuse it (a seccomp filter
// that fails io_uring_setup, or only io_uring_enter, with EPERM).
#include <coio/backend.hpp>

#include "support/catch.hpp"
#include "support/dnsmasq_catch.hpp"

#include <coio/datagram.hpp>
#include <coio/dns.hpp>
#include <coio/errors.hpp>
#include <coio/gather.hpp>
#include <coio/loop.hpp>
#include <coio/run.hpp>
#include <coio/server.hpp>
#include <coio/sleep.hpp>
#include <coio/streams.hpp>
#include <coio/task.hpp>
#include <coio/thread.hpp>
#include <coio/uring.hpp>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

namespace {

// Runs `child` in a forked process under a seccomp filter that makes system call `nr` fail
// with EPERM (what Docker's default profile does to io_uring_setup). The child reports through
// its exit status: 0 for success; it prints what went wrong to stderr.
int run_refused(long nr, const std::function<int()>& child) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(nr), 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            ::_exit(90);
        int rc = 91;
        try {
            rc = child();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "child: %s\n", e.what());
        } catch (...) {
            std::fprintf(stderr, "child: unknown exception\n");
        }
        std::fflush(nullptr);
        ::_exit(rc);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

coio::coro<void> echo(coio::stream_reader r, coio::stream_writer w) {
    while (true) {
        std::string line = co_await r.readline();
        if (line.empty()) break;
        w.write(line);
        co_await w.drain();
    }
    w.close();
}

// Everything a program does, on whatever backend the loop chose: tasks, sleeps, a TCP server
// and client, UDP, DNS (when `dns_server` is set), threads. Returns 0 or the failed step.
int exercise(const std::string& dns_server) {
    int step = 0;
    coio::run([&]() -> coio::coro<void> {
        if (coio::get_running_loop().backend() != coio::backend::epoll) co_return;
        step = 1;  // tasks and sleeps
        auto [a, b] = co_await coio::gather(
            []() -> coio::coro<int> { co_await coio::sleep(5ms); co_return 1; }(),
            []() -> coio::coro<int> { co_await coio::sleep(1ms); co_return 2; }());
        if (a != 1 || b != 2) co_return;

        step = 2;  // a stream server and a client
        auto srv = co_await coio::start_server(echo, "127.0.0.1", 0);
        auto port = srv.sockets().front().local_address().port();
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port);
        std::string line(50'000, 'x');  // under the default 64 KiB limit of readline
        line += '\n';
        for (int i = 0; i < 8; ++i) w.write(line);  // 400 KB: partial sends, many receives
        co_await w.drain();
        for (int i = 0; i < 8; ++i)
            if (co_await r.readline() != line) co_return;
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();

        step = 3;  // UDP
        coio::datagram_socket s1(AF_INET), s2(AF_INET);
        s1.bind(coio::endpoint("127.0.0.1", 0));
        s2.bind(coio::endpoint("127.0.0.1", 0));
        co_await s2.sendto("ping", s1.local_address());
        auto [msg, from] = co_await s1.recvfrom();
        if (msg != "ping" || from != s2.local_address()) co_return;

        step = 4;  // DNS through c-ares' sockets on the loop
        if (!dns_server.empty()) {
            coio::resolver res({.servers = {dns_server}, .timeout = 1000ms, .tries = 2});
            auto found = co_await res.getaddrinfo("a.test", 80, {.family = AF_INET, .socktype = SOCK_STREAM});
            if (found.size() != 1 || found[0].address.to_string() != "10.0.0.1:80") co_return;
        }

        step = 5;  // threads
        if (co_await coio::to_thread([] { return 42; }) != 42) co_return;

        step = 6;  // uring_op says why it cannot run here
        try {
            (void)co_await coio::uring_op([](io_uring_sqe*) {});
            co_return;
        } catch (const coio::not_supported_error& e) {
            if (std::string(e.what()).find("epoll") == std::string::npos) co_return;
        }
        step = 0;
    }());
    if (step != 0) std::fprintf(stderr, "child: failed at step %d\n", step);
    return step;
}

// In a child where io_uring is refused: an explicit io_uring loop must throw EPERM with a
// message naming the cause (`mention`) and container seccomp profiles. 0 when it does.
int explicit_uring_error(const char* mention) {
    try {
        coio::event_loop loop({.backend = coio::backend::io_uring});
        return 1;
    } catch (const std::system_error& e) {
        const std::string what = e.what();
        if (e.code().value() == EPERM && what.find(mention) != std::string::npos &&
            what.find("seccomp") != std::string::npos)
            return 0;
        std::fprintf(stderr, "child: unexpected message: %s\n", e.what());
        return 2;
    }
}

} // namespace

TEST_CASE("backend names") {
    CHECK(std::string(coio::to_string(coio::backend::io_uring)) == "io_uring");
    CHECK(std::string(coio::to_string(coio::backend::epoll)) == "epoll");
    CHECK(std::string(coio::to_string(coio::backend::automatic)) == "automatic");
}

TEST_CASE("a loop reports the backend it runs on, never automatic") {
    coio::event_loop loop;
    CHECK(loop.backend() != coio::backend::automatic);
    coio::event_loop forced({.backend = coio::backend::epoll});
    CHECK(forced.backend() == coio::backend::epoll);
    CHECK(forced.ring_flags() == 0);
    CHECK_THROWS_AS(forced.ring(), coio::not_supported_error);
}

TEST_CASE("COIO_BACKEND overrides automatic, not an explicit choice, and rejects nonsense") {
    const char* old = std::getenv("COIO_BACKEND");
    const std::string saved = old ? old : "";
    ::setenv("COIO_BACKEND", "epoll", 1);
    {
        coio::event_loop loop;
        CHECK(loop.backend() == coio::backend::epoll);
    }
    ::setenv("COIO_BACKEND", "kqueue", 1);
    CHECK_THROWS_AS(coio::event_loop(), std::invalid_argument);
    {
        coio::event_loop explicit_choice({.backend = coio::backend::epoll});  // the option wins
        CHECK(explicit_choice.backend() == coio::backend::epoll);
    }
    if (old) ::setenv("COIO_BACKEND", saved.c_str(), 1); else ::unsetenv("COIO_BACKEND");
}

TEST_CASE("io_uring_setup refused (a container's seccomp profile): automatic runs everything on epoll") {
    COIO_TEST_REQUIRE_DNSMASQ();
    coio_test::dnsmasq server(coio_test::dnsmasq::options{.hosts = {{"a.test", {"10.0.0.1"}}}});
    const std::string address = server.address();
    const int rc = run_refused(__NR_io_uring_setup, [&] {
        ::unsetenv("COIO_BACKEND");
        return exercise(address);
    });
    CHECK(rc == 0);
}

TEST_CASE("io_uring refused: asking for it explicitly gives a clear system_error") {
    const int rc = run_refused(__NR_io_uring_setup, [] { return explicit_uring_error("io_uring_disabled"); });
    CHECK(rc == 0);
}

TEST_CASE("only io_uring_enter refused: explicit io_uring says so, automatic falls back to epoll") {
    const int rc = run_refused(__NR_io_uring_enter, [] {
        if (const int r = explicit_uring_error("io_uring_enter")) return r;
        ::unsetenv("COIO_BACKEND");
        return exercise("");
    });
    CHECK(rc == 0);
}
