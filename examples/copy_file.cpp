// examples/copy_file.cpp - copies a file with coio::file in 1 MiB chunks (io_uring reads and
// writes; the thread pool on the epoll backend), then prints the number of bytes copied.
//
// The destination is created or truncated with the source's permission bits, and flushed
// (fsync) before the program says it is done. Errors (a missing source, a directory, no
// permission) end the program with status 1 and "std::system_error: coio: open "SRC": ...".
// Run: build/examples/copy_file SRC DST
#include <coio/file.hpp>
#include <coio/run.hpp>

#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <string>

coio::coro<int> copy(std::string src, std::string dst) {
    coio::file in = co_await coio::open_file(src, "r");
    struct stat st {};
    const unsigned permissions = ::fstat(in.native_handle(), &st) == 0 ? (st.st_mode & 07777) : 0666;
    coio::file out = co_await coio::open_file(dst, "w", {.permissions = permissions});
    std::uint64_t copied = 0;
    for (;;) {
        std::string chunk = co_await in.read(1 << 20);  // 1 MiB, or less at the end
        if (chunk.empty()) break;                        // end of file
        co_await out.write(chunk);
        copied += chunk.size();
    }
    co_await out.fsync();
    co_await out.close();
    co_await in.close();
    std::printf("copied %llu bytes\n", static_cast<unsigned long long>(copied));
    co_return 0;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s SRC DST\n", argv[0]);
        return 2;
    }
    return coio::run_main(copy(argv[1], argv[2]));
}
