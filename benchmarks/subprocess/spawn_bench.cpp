// benchmarks/subprocess/spawn_bench.cpp - processes per second of
// `co_await coio::create_subprocess_exec("true")` + `co_await proc.wait()`, one after the
// other (--count, default 1000), best of --rounds (default 3). The loop's backend comes from
// COIO_BACKEND. Prints one line: `coio spawn+wait: N processes/s (backend B)`. With --raw it
// times a plain blocking posix_spawn + waitpid loop instead (the floor: what the kernel and
// the exec of `true` cost), printed as `raw posix_spawn+waitpid: N processes/s`.
#include <coio/loop.hpp>
#include <coio/run.hpp>
#include <coio/subprocess.hpp>

#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <algorithm>
#include <string>

namespace {

coio::coro<double> spawn_many(int count) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
        auto proc = co_await coio::create_subprocess_exec("true");
        if (co_await proc.wait() != 0) throw std::runtime_error("true did not exit 0");
    }
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    co_return dt.count();
}

double raw_many(int count) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
        pid_t pid = -1;
        char* args[] = {const_cast<char*>("true"), nullptr};
        if (::posix_spawnp(&pid, "true", nullptr, nullptr, args, environ) != 0) throw std::runtime_error("posix_spawnp");
        int status = 0;
        if (::waitpid(pid, &status, 0) != pid || status != 0) throw std::runtime_error("true did not exit 0");
    }
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    return dt.count();
}

} // namespace

int main(int argc, char** argv) {
    int count = 1000, rounds = 3;
    bool raw = false;
    for (int i = 1; i < argc; i += 2) {
        if (std::strcmp(argv[i], "--raw") == 0) {
            raw = true;
            --i;
        } else if (i + 1 >= argc) {
            std::fprintf(stderr, "usage: %s [--count N] [--rounds R] [--raw]\n", argv[0]);
            return 2;
        } else if (std::strcmp(argv[i], "--count") == 0) count = std::atoi(argv[i + 1]);
        else if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: %s [--count N] [--rounds R] [--raw]\n", argv[0]);
            return 2;
        }
    }
    if (count <= 0 || rounds <= 0) return 2;
    if (raw) {
        double best = 1e300;
        for (int r = 0; r < rounds; ++r) best = std::min(best, raw_many(count));
        std::printf("raw posix_spawn+waitpid: %.0f processes/s (%d processes, best of %d)\n", count / best, count, rounds);
        return 0;
    }
    coio::event_loop loop;
    double best = 1e300;
    for (int r = 0; r < rounds; ++r) {
        const double s = loop.run_until_complete(spawn_many(count));
        if (s < best) best = s;
    }
    std::printf("coio spawn+wait: %.0f processes/s (backend %s, %d processes, best of %d)\n", count / best,
                coio::to_string(loop.backend()), count, rounds);
    loop.close();
    return 0;
}
