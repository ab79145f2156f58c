// tests/test_examples.cpp - the examples, run as a user runs them: started as processes,
// talked to over 127.0.0.1, interrupted with SIGINT.
//
// What is checked: Ctrl-C ends every long-running example with exit status 130, with what it
// had printed to a pipe (fully buffered) flushed and no "terminate called"; http_server's
// request deadline (slowloris, idle keep-alive) and its 501 for chunked bodies; echo_server's
// exit status when no shard can start. Built only when the examples are (COIO_BUILD_EXAMPLES);
// COIO_EXAMPLES_DIR is the directory they are built in.
// ctest-labels: serial
#include "support/catch.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

/// A running example with its stdout and stderr on pipes. The destructor kills it (by PID)
/// if a failed check left it running.
class child {
public:
    child(const std::string& name, std::vector<std::string> args) {
        const std::string exe = std::string(COIO_EXAMPLES_DIR) + "/" + name;
        int out[2], err[2];
        REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
        args.insert(args.begin(), exe);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        ::posix_spawn_file_actions_init(&fa);
        ::posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        ::posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        // As from an interactive shell: SIGINT at its default disposition and not blocked
        // (a test runner may ignore or block it, and both are inherited).
        posix_spawnattr_t attr;
        ::posix_spawnattr_init(&attr);
        sigset_t def, none;
        sigemptyset(&def);
        sigaddset(&def, SIGINT);
        sigaddset(&def, SIGTERM);
        sigemptyset(&none);
        ::posix_spawnattr_setsigdefault(&attr, &def);
        ::posix_spawnattr_setsigmask(&attr, &none);
        ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
        const int rc = ::posix_spawn(&pid_, exe.c_str(), &fa, &attr, argv.data(), environ);
        ::posix_spawnattr_destroy(&attr);
        ::posix_spawn_file_actions_destroy(&fa);
        ::close(out[1]);
        ::close(err[1]);
        out_ = out[0];
        err_ = err[0];
        INFO("spawning " << exe);
        REQUIRE(rc == 0);
    }
    child(const child&) = delete;
    child& operator=(const child&) = delete;
    ~child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(out_);
        ::close(err_);
    }

    /// Reads stdout until `pattern` matches it (returns the match) or `limit` passes.
    std::optional<std::smatch> wait_for_output(const std::regex& pattern, std::chrono::milliseconds limit) {
        const auto deadline = steady::now() + limit;
        for (;;) {
            std::smatch m;
            if (std::regex_search(out_text_, m, pattern)) {
                matched_ = out_text_;  // the match refers to this copy
                std::regex_search(matched_, m, pattern);
                return m;
            }
            if (!pump(deadline)) return std::nullopt;
        }
    }

    void signal(int sig) const { ::kill(pid_, sig); }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    /// Waits for the exit (reading both pipes meanwhile); returns the exit status, 128 + the
    /// signal number if a signal ended it, or -1 after `limit` (the child is then killed).
    int wait(std::chrono::milliseconds limit) {
        const auto deadline = steady::now() + limit;
        while (pump(deadline)) {
        }
        int status = 0;
        for (;;) {
            const pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) break;
            if (steady::now() >= deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                pid_ = -1;
                return -1;
            }
            std::this_thread::sleep_for(5ms);
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

    [[nodiscard]] const std::string& out() const { return out_text_; }
    [[nodiscard]] const std::string& err() const { return err_text_; }

private:
    /// Reads what is available on either pipe, waiting until `deadline`. False when both
    /// pipes are at EOF or the deadline passed.
    bool pump(steady::time_point deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
        if (left <= 0 || (out_eof_ && err_eof_)) return false;
        pollfd p[2] = {{out_eof_ ? -1 : out_, POLLIN, 0}, {err_eof_ ? -1 : err_, POLLIN, 0}};
        if (::poll(p, 2, static_cast<int>(left)) <= 0) return steady::now() < deadline;
        char buf[4096];
        if (p[0].revents) {
            const auto n = ::read(out_, buf, sizeof buf);
            if (n <= 0) out_eof_ = true;
            else out_text_.append(buf, static_cast<std::size_t>(n));
        }
        if (p[1].revents) {
            const auto n = ::read(err_, buf, sizeof buf);
            if (n <= 0) err_eof_ = true;
            else err_text_.append(buf, static_cast<std::size_t>(n));
        }
        return true;
    }

    pid_t pid_ = -1;
    int out_ = -1, err_ = -1;
    bool out_eof_ = false, err_eof_ = false;
    std::string out_text_, err_text_, matched_;
};

/// A blocking TCP client socket on 127.0.0.1:port whose reads give up after `read_limit`.
class client {
public:
    client(unsigned port, std::chrono::milliseconds read_limit) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        timeval tv{static_cast<time_t>(read_limit.count() / 1000), static_cast<suseconds_t>(read_limit.count() % 1000 * 1000)};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    }
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() { ::close(fd_); }

    void send(std::string_view s) const { REQUIRE(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size())); }

    /// Everything until the peer closes; nullopt if a read timed out first.
    std::optional<std::string> read_to_eof() const {
        std::string text;
        char buf[4096];
        for (;;) {
            const auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n == 0) return text;
            if (n < 0) return std::nullopt;
            text.append(buf, static_cast<std::size_t>(n));
        }
    }
    /// Reads until `text` ends with `suffix`; nullopt on EOF or timeout first.
    std::optional<std::string> read_until(std::string_view suffix) const {
        std::string text;
        char c;
        while (text.size() < suffix.size() || text.compare(text.size() - suffix.size(), suffix.size(), suffix) != 0) {
            if (::recv(fd_, &c, 1, 0) != 1) return std::nullopt;
            text += c;
        }
        return text;
    }

private:
    int fd_ = -1;
};

/// A listening TCP socket on 127.0.0.1 (no SO_REUSEPORT), so nobody else can bind its port.
struct port_holder {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unsigned port = 0;
    port_holder() {
        REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd, 1) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    port_holder(const port_holder&) = delete;
    port_holder& operator=(const port_holder&) = delete;
    ~port_holder() { ::close(fd); }
};

void check_clean_stderr(const child& c) {
    INFO("stderr: " << c.err());
    CHECK(c.err().find("terminate called") == std::string::npos);
    CHECK(c.err().find("Aborted") == std::string::npos);
}

}  // namespace

TEST_CASE("Ctrl-C ends the seed examples with status 130 and their output flushed") {
    struct expectation {
        const char* name;
        const char* printed_at_once;  // printed (to a buffered pipe) before the interruption
    };
    // Each runs for 1 to 4 s, printing with printf at once; SIGINT comes 300 ms in.
    for (const expectation& e : {expectation{"gather", "Taking order from Alice...\n"},
                                 expectation{"as_completed", "Table 1 ordered (ready in 3 s)\n"},
                                 expectation{"coroutines_vs_tasks", "Taking order from Alice...\n"}}) {
        INFO("example " << e.name);
        child c(e.name, {});
        std::this_thread::sleep_for(300ms);
        c.signal(SIGINT);
        const int status = c.wait(10s);
        CHECK(status == 130);
        CHECK(c.out().find(e.printed_at_once) != std::string::npos);
        CHECK(c.out().find("Total time") == std::string::npos);  // it was interrupted
        check_clean_stderr(c);
        CHECK(c.err().empty());
    }
}

TEST_CASE("http_server: Ctrl-C exits 130, an error at startup prints its type and exits 1") {
    {
        child c("http_server", {"--port", "0"});
        const auto url = c.wait_for_output(std::regex(R"(http://127\.0\.0\.1:(\d+)/)"), 10s);
        REQUIRE(url);
        {
            client cl(static_cast<unsigned>(std::stoul((*url)[1])), 5s);
            cl.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            const auto reply = cl.read_to_eof();
            REQUIRE(reply);
            CHECK(reply->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
        }
        c.signal(SIGINT);
        CHECK(c.wait(10s) == 130);
        check_clean_stderr(c);
    }
    {
        port_holder taken;
        child c("http_server", {"--port", std::to_string(taken.port)});
        CHECK(c.wait(10s) == 1);
        INFO("stderr: " << c.err());
        CHECK(c.err().rfind("std::system_error: ", 0) == 0);
        CHECK(c.err().find("Address already in use") != std::string::npos);
        check_clean_stderr(c);
    }
}

TEST_CASE("http_server closes slow and idle connections after the request deadline") {
    child c("http_server", {"--port", "0", "--timeout", "0.5"});
    const auto url = c.wait_for_output(std::regex(R"(http://127\.0\.0\.1:(\d+)/)"), 10s);
    REQUIRE(url);
    const unsigned port = static_cast<unsigned>(std::stoul((*url)[1]));

    SECTION("a head that never ends (slowloris) gets 408 and is closed") {
        client cl(port, 5s);
        const auto start = steady::now();
        cl.send("GET / HTTP/1.1\r\nHost: x\r\n");
        std::this_thread::sleep_for(200ms);
        cl.send("X-Slow: 1\r\n");  // trickling bytes does not extend the deadline
        const auto reply = cl.read_to_eof();
        const auto took = steady::now() - start;
        REQUIRE(reply);
        CHECK(reply->rfind("HTTP/1.1 408 Request Timeout\r\n", 0) == 0);
        CHECK(took >= 450ms);
        CHECK(took < 3s);
    }
    SECTION("a body that never arrives gets 408 and is closed") {
        client cl(port, 5s);
        cl.send("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
        const auto reply = cl.read_to_eof();
        REQUIRE(reply);
        CHECK(reply->rfind("HTTP/1.1 408 Request Timeout\r\n", 0) == 0);
    }
    SECTION("an idle keep-alive connection is closed after the deadline") {
        client cl(port, 5s);
        cl.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        const auto first = cl.read_until("Hello from coio over io_uring!\n");
        REQUIRE(first);
        CHECK(first->find("Connection: keep-alive") != std::string::npos);
        const auto start = steady::now();
        const auto rest = cl.read_to_eof();  // nothing sent: the server gives up on us
        REQUIRE(rest);
        CHECK(steady::now() - start < 3s);
    }
    SECTION("a client that keeps its requests coming is served past the deadline") {
        client cl(port, 5s);
        for (int i = 0; i < 4; ++i) {
            std::this_thread::sleep_for(200ms);  // 4 x 200 ms > the 500 ms deadline in total
            cl.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            CHECK(cl.read_until("Hello from coio over io_uring!\n"));
        }
    }
    SECTION("a chunked request body is refused with 501, not taken for the next request") {
        client cl(port, 5s);
        cl.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "1b\r\nGET /smuggled HTTP/1.1\r\n\r\n\r\n0\r\n\r\n");
        const auto reply = cl.read_to_eof();
        REQUIRE(reply);
        CHECK(reply->rfind("HTTP/1.1 501 Not Implemented\r\n", 0) == 0);
        CHECK(reply->find("Connection: close") != std::string::npos);
        CHECK(reply->find("HTTP/1.1", 1) == std::string::npos);  // exactly one response
        CHECK(reply->find("smuggled") == std::string::npos);
    }
    c.signal(SIGINT);
    CHECK(c.wait(10s) == 130);
    check_clean_stderr(c);
}

TEST_CASE("echo_server: echoes, exits 130 on Ctrl-C, and exits 1 at once when no shard can start") {
    SECTION("Ctrl-C") {
        child c("echo_server", {"--port", "0"});
        const auto line = c.wait_for_output(std::regex(R"(serving on 127\.0\.0\.1:(\d+))"), 10s);
        REQUIRE(line);
        {
            client cl(static_cast<unsigned>(std::stoul((*line)[1])), 5s);
            cl.send("hello\n");
            CHECK(cl.read_until("hello\n"));
        }
        c.signal(SIGINT);
        CHECK(c.wait(10s) == 130);
        CHECK(c.out().find("bye\n") != std::string::npos);
        check_clean_stderr(c);
    }
    SECTION("the port is taken: no shard starts") {
        port_holder taken;
        for (const char* threads : {"1", "2"}) {
            INFO("--threads " << threads);
            child c("echo_server", {"--port", std::to_string(taken.port), "--threads", threads});
            CHECK(c.wait(5s) == 1);  // before: waited for a signal forever
            INFO("stderr: " << c.err());
            CHECK(c.err().find("no shard could start") != std::string::npos);
            check_clean_stderr(c);
        }
    }
}

TEST_CASE("signals: prints its pid, and on SIGTERM or SIGINT says which and exits 0") {
    for (const auto& [sig, said] : {std::pair{SIGTERM, "got SIGTERM\n"}, std::pair{SIGINT, "got SIGINT\n"}}) {
        INFO("signal " << sig);
        child c("signals", {});
        const auto line = c.wait_for_output(std::regex(R"(waiting for SIGINT or SIGTERM \(pid (\d+)\)\n)"), 10s);
        REQUIRE(line);
        CHECK(std::stol((*line)[1]) == static_cast<long>(c.pid()));
        c.signal(sig);
        CHECK(c.wait(10s) == 0);
        CHECK(c.out().find(said) != std::string::npos);
        check_clean_stderr(c);
        CHECK(c.err().empty());
    }
}

TEST_CASE("subprocess: prints the shell's stdout, stderr and status, then kills a sleeper") {
    child c("subprocess", {});
    CHECK(c.wait(20s) == 0);
    CHECK(c.out() == "stdout: hello\nstderr: oops\nreturncode: 3\nkilled: returncode -9\n");
    CHECK(c.err().empty());
    check_clean_stderr(c);
}

TEST_CASE("copy_file: copies a file larger than its 1 MiB chunk, prints the count; errors exit 1") {
    char dir_template[] = "/tmp/coio_copy_XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    const std::string dir = dir_template;
    const std::string src = dir + "/src", dst = dir + "/dst";
    std::string data((3u << 20) + 4321, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) ^ (i >> 11));
    {
        const int fd = ::open(src.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
        ::close(fd);
    }
    {
        child c("copy_file", {src, dst});
        CHECK(c.wait(30s) == 0);
        CHECK(c.out() == "copied " + std::to_string(data.size()) + " bytes\n");
        CHECK(c.err().empty());
        std::string back(data.size() + 1, '\0');
        const int fd = ::open(dst.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        std::size_t got = 0;
        for (ssize_t n; (n = ::read(fd, back.data() + got, back.size() - got)) > 0;) got += static_cast<std::size_t>(n);
        ::close(fd);
        CHECK(got == data.size());
        back.resize(got);
        CHECK((back == data));
        struct stat st {};
        REQUIRE(::stat(dst.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0640);  // the source's permissions
    }
    {
        child c("copy_file", {dir + "/missing", dst});
        CHECK(c.wait(30s) == 1);
        CHECK(c.out().empty());
        CHECK(c.err().find("std::system_error") != std::string::npos);
        CHECK(c.err().find(dir + "/missing") != std::string::npos);
        check_clean_stderr(c);
    }
    ::unlink(src.c_str());
    ::unlink(dst.c_str());
    ::rmdir(dir.c_str());
}
