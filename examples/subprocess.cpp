// examples/subprocess.cpp - runs commands as child processes (asyncio.subprocess): collects a
// shell's stdout, stderr and exit status with communicate(), then kills a sleeping child.
//
//     $ ./subprocess
//     stdout: hello
//     stderr: oops
//     returncode: 3
//     killed: returncode -9
//
// The pipes are coio streams and the child is watched through a pidfd on the loop, so
// nothing blocks and no SIGCHLD handler is involved.
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/subprocess.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

/// The text without its trailing newline.
std::string chomp(std::string s) {
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

coio::coro<int> amain() {
    auto proc = co_await coio::create_subprocess_exec(
        "sh", {"-c", "echo hello; echo oops >&2; exit 3"},
        {.stdout_ = coio::stdio::pipe, .stderr_ = coio::stdio::pipe});
    auto [out, err] = co_await proc.communicate();
    std::printf("stdout: %s\nstderr: %s\nreturncode: %d\n", chomp(out).c_str(), chomp(err).c_str(), *proc.returncode());

    auto sleeper = co_await coio::create_subprocess_exec("sleep", {"10"});
    co_await coio::sleep(100ms);
    sleeper.kill();
    std::printf("killed: returncode %d\n", co_await sleeper.wait());
    co_return 0;
}

int main() { return coio::run_main(amain()); }
