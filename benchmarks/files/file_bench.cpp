// benchmarks/files/file_bench.cpp - coio's files against the plain ways, in one run:
//
//   big     read_file of one large file already in the page cache, against a plain read(2)
//           loop with the same 1 MiB chunk into a std::string of the file's size (what a
//           program does without coio). Best of --rounds, MiB/s.
//   small   --count files of 4 KiB, read with --concurrency tasks in flight: coio::read_file
//           against co_await coio::to_thread(fopen + fread + fclose) (aiofiles' way: every
//           file goes to the thread pool). Best of --rounds, files/s.
//
// The backend is the loop's (COIO_BACKEND=epoll runs coio's files on the thread pool).
// Prints one "name=... value=... unit=..." line per measurement, then the ratios.
// Run: benchmarks/files/run.sh BUILD_DIR  (or file_bench --big-mib 1024 --count 10000)
#include <coio/file.hpp>
#include <coio/gather.hpp>
#include <coio/loop.hpp>
#include <coio/run.hpp>
#include <coio/thread.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

void write_plain(const std::string& path, std::size_t size) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot create " + path);
    std::string block(1 << 20, '\0');
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 7 + 3);
    for (std::size_t done = 0; done < size;) {
        const std::size_t n = std::min(block.size(), size - done);
        if (::write(fd, block.data(), n) != static_cast<ssize_t>(n)) throw std::runtime_error("write failed");
        done += n;
    }
    ::close(fd);
}

/// A plain read(2) loop with 1 MiB chunks into a string of the file's size (+1 to see EOF).
std::string read_plain(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    struct stat st {};
    ::fstat(fd, &st);
    std::string out(static_cast<std::size_t>(st.st_size) + 1, '\0');
    std::size_t got = 0;
    for (;;) {
        const ssize_t r = ::read(fd, out.data() + got, std::min<std::size_t>(out.size() - got, 1 << 20));
        if (r <= 0) break;
        got += static_cast<std::size_t>(r);
        if (got == out.size()) out.resize(out.size() * 2);
    }
    ::close(fd);
    out.resize(got);
    return out;
}

/// What a thread-pool version does per file (aiofiles, or to_thread by hand).
std::string fread_whole(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open " + path);
    std::string out(8192, '\0');
    std::size_t got = 0;
    for (;;) {
        const std::size_t n = std::fread(out.data() + got, 1, out.size() - got, f);
        got += n;
        if (got < out.size()) break;
        out.resize(out.size() * 2);
    }
    std::fclose(f);
    out.resize(got);
    return out;
}

struct config {
    std::size_t big_mib = 256;
    std::size_t count = 10000;
    std::size_t concurrency = 256;
    int rounds = 3;
    std::string dir;
};

coio::coro<void> reader_coio(const std::vector<std::string>& paths, std::size_t& next, std::size_t& bytes) {
    while (next < paths.size()) {
        const std::string& p = paths[next++];
        std::string s = co_await coio::read_file(p);
        bytes += s.size();
    }
}

coio::coro<void> reader_thread(const std::vector<std::string>& paths, std::size_t& next, std::size_t& bytes) {
    while (next < paths.size()) {
        const std::string& p = paths[next++];
        std::string s = co_await coio::to_thread(fread_whole, p);
        bytes += s.size();
    }
}

template <class Reader>
coio::coro<double> small_round(const config& c, const std::vector<std::string>& paths, Reader reader) {
    std::size_t next = 0, bytes = 0;
    std::vector<coio::coro<void>> workers;
    for (std::size_t i = 0; i < std::min(c.concurrency, paths.size()); ++i) workers.push_back(reader(paths, next, bytes));
    const auto t0 = clock_type::now();
    co_await coio::gather(std::move(workers));
    const double s = seconds_since(t0);
    if (bytes != paths.size() * 4096) throw std::runtime_error("small files: wrong byte count");
    co_return static_cast<double>(paths.size()) / s;
}

coio::coro<int> amain(config c) {
    std::printf("backend=%s big_mib=%zu count=%zu concurrency=%zu rounds=%d\n",
                coio::to_string(coio::get_running_loop().backend()), c.big_mib, c.count, c.concurrency, c.rounds);
    double best_coio_big = 0, best_plain_big = 0;
    if (c.big_mib > 0) {
        const std::string big = c.dir + "/big.bin";
        const std::size_t size = c.big_mib << 20;
        write_plain(big, size);
        (void)read_plain(big);  // into the page cache
        for (int r = 0; r < c.rounds; ++r) {
            auto t0 = clock_type::now();
            std::string a = read_plain(big);
            best_plain_big = std::max(best_plain_big, static_cast<double>(c.big_mib) / seconds_since(t0));
            if (a.size() != size) throw std::runtime_error("plain read: wrong size");
            a = std::string();
            t0 = clock_type::now();
            std::string b = co_await coio::read_file(big);
            best_coio_big = std::max(best_coio_big, static_cast<double>(c.big_mib) / seconds_since(t0));
            if (b.size() != size) throw std::runtime_error("read_file: wrong size");
        }
        ::unlink(big.c_str());
        std::printf("name=big_read_file value=%.0f unit=MiB/s\n", best_coio_big);
        std::printf("name=big_read_loop value=%.0f unit=MiB/s\n", best_plain_big);
    }
    double best_coio_small = 0, best_thread_small = 0;
    if (c.count > 0) {
        std::vector<std::string> paths;
        const std::string page(4096, 'x');
        for (std::size_t i = 0; i < c.count; ++i) {
            paths.push_back(c.dir + "/s" + std::to_string(i));
            const int fd = ::open(paths.back().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0 || ::write(fd, page.data(), page.size()) != 4096) throw std::runtime_error("cannot create small files");
            ::close(fd);
        }
        for (int r = 0; r < c.rounds; ++r) {
            const double t = co_await small_round(c, paths, reader_thread);
            best_thread_small = std::max(best_thread_small, t);
            const double u = co_await small_round(c, paths, reader_coio);
            best_coio_small = std::max(best_coio_small, u);
        }
        for (const auto& p : paths) ::unlink(p.c_str());
        std::printf("name=small_read_file value=%.0f unit=files/s\n", best_coio_small);
        std::printf("name=small_to_thread_fread value=%.0f unit=files/s\n", best_thread_small);
    }
    if (best_plain_big > 0) std::printf("ratio big read_file / read(2) loop: %.2f\n", best_coio_big / best_plain_big);
    if (best_thread_small > 0)
        std::printf("ratio small read_file / to_thread+fread: %.2f\n", best_coio_small / best_thread_small);
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    config c;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "--big-mib" && v) c.big_mib = std::strtoull(argv[++i], nullptr, 10);
        else if (a == "--count" && v) c.count = std::strtoull(argv[++i], nullptr, 10);
        else if (a == "--concurrency" && v) c.concurrency = std::max<std::size_t>(1, std::strtoull(argv[++i], nullptr, 10));
        else if (a == "--rounds" && v) c.rounds = std::max(1, std::atoi(argv[++i]));
        else if (a == "--dir" && v) c.dir = argv[++i];
        else {
            std::fprintf(stderr, "usage: %s [--big-mib N] [--count N] [--concurrency N] [--rounds N] [--dir D]\n", argv[0]);
            return 2;
        }
    }
    bool made = false;
    if (c.dir.empty()) {
        char tmpl[] = "/tmp/coio_file_bench_XXXXXX";
        if (!::mkdtemp(tmpl)) return 1;
        c.dir = tmpl;
        made = true;
    }
    // Every in-flight file is a descriptor: stay under the limit.
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < c.concurrency + 64)
        c.concurrency = static_cast<std::size_t>(rl.rlim_cur) - 64;
    const int status = coio::run_main(amain(c));
    if (made) ::rmdir(c.dir.c_str());
    return status;
}
