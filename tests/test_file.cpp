// tests/test_file.cpp - coio::file, open_file, read_file, write_file on real files in a fresh
// mkdtemp directory: every operation, the modes, errors naming the path, EOF, files larger
// than one 1 MiB chunk, read_at/write_at, write_file's atomicity and its temporary file, and
// cancellation. Run on both backends (COIO_BACKEND=epoll ctest runs the file pool path).
#include <coio/file.hpp>

#include "support/catch.hpp"
#include "support/co_check.hpp"

#include <coio/errors.hpp>
#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/thread.hpp>
#include <coio/timeout.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// A fresh directory, removed (with its files) at the end.
struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/coio_file_XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~temp_dir() {
        for (const auto& name : entries()) ::unlink((path + "/" + name).c_str());
        ::rmdir(path.c_str());
    }
    [[nodiscard]] std::string operator/(const std::string& name) const { return path + "/" + name; }
    /// The names in the directory (hidden ones too), without . and ..
    [[nodiscard]] std::vector<std::string> entries() const {
        std::vector<std::string> out;
        if (DIR* d = ::opendir(path.c_str())) {
            while (dirent* e = ::readdir(d))
                if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) out.emplace_back(e->d_name);
            ::closedir(d);
        }
        return out;
    }
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
}

/// Bytes that differ at every position (a misplaced chunk shows).
std::string pattern(std::size_t n, unsigned seed = 1) {
    std::string s(n, '\0');
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& c : s) {
        x = x * 1664525u + 1013904223u;
        c = static_cast<char>(x >> 24);
    }
    return s;
}

/// Equality without printing megabytes of binary on failure.
bool same(const std::string& a, const std::string& b) {
    if (a == b) return true;
    std::size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
    UNSCOPED_INFO("sizes " << a.size() << " and " << b.size() << ", first difference at " << i);
    return false;
}

int open_fd_count() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d)) ++n;
        ::closedir(d);
    }
    return n;
}

template <class F>
void run_test(F body) {
    coio::run([](F b) -> coio::coro<void> { co_await coio::wait_for(b(), 60s); }(std::move(body)));
}

/// The errno and message of the std::system_error `c` throws.
template <class C>
coio::coro<std::pair<int, std::string>> error_of(C c) {
    try {
        co_await std::move(c);
    } catch (const std::system_error& e) {
        co_return std::pair<int, std::string>{e.code().value(), e.what()};
    }
    co_return std::pair<int, std::string>{0, "no error"};
}

} // namespace

TEST_CASE("file: write, read, size, fsync, close in every mode") {
    temp_dir dir;
    const std::string p = dir / "a.txt";
    run_test([&]() -> coio::coro<void> {
        {
            coio::file f = co_await coio::open_file(p, "w");
            CHECK(f.is_open());
            CHECK(f.path() == p);
            co_await f.write("hello ");
            co_await f.write(std::string("world"));
            co_await f.fsync();
            co_await f.fsync(true);
            const auto n = co_await f.size();
            CHECK(n == 11);
            co_await f.close();
            CHECK_FALSE(f.is_open());
            co_await f.close();  // idempotent
        }
        CHECK(slurp(p) == "hello world");
        {
            coio::file f = co_await coio::open_file(p);  // "r"
            auto a = co_await f.read(5);
            CHECK(a == "hello");
            auto b = co_await f.read(100);  // up to EOF
            CHECK(b == " world");
            auto c = co_await f.read(100);
            CHECK(c.empty());  // EOF
            auto e = co_await error_of(f.write("x"));  // read-only
            CHECK(e.first == EBADF);
            CHECK(e.second.find(p) != std::string::npos);
        }
        {
            coio::file f = co_await coio::open_file(p, "a");
            co_await f.write("!");
        }
        CHECK(slurp(p) == "hello world!");
        {
            coio::file f = co_await coio::open_file(p, "r+b");
            co_await f.write("HELLO");  // overwrites at position 0, keeps the rest
            auto rest = co_await f.read(3);
            CHECK(rest == " wo");
        }
        CHECK(slurp(p) == "HELLO world!");
        {
            coio::file f = co_await coio::open_file(p, "a+");
            co_await f.write("?");
            auto all = co_await f.read_at(0, std::span<char>());
            CHECK(all == 0);
            std::string buf(20, '\0');
            const auto n = co_await f.read_at(0, std::span(buf));
            CHECK(buf.substr(0, n) == "HELLO world!?");
        }
        {
            coio::file f = co_await coio::open_file(p, "w+");  // truncates
            const auto n = co_await f.size();
            CHECK(n == 0);
            co_await f.write("new");
            const auto m = co_await f.read_at(0, std::span<char>());
            CHECK(m == 0);
        }
        CHECK(slurp(p) == "new");
        {
            auto e = co_await error_of(coio::open_file(p, "x"));  // exists
            CHECK(e.first == EEXIST);
            coio::file f = co_await coio::open_file(dir / "fresh", "x", {.permissions = 0600});
            co_await f.write("1");
            struct stat st {};
            REQUIRE(::stat((dir / "fresh").c_str(), &st) == 0);
            CHECK((st.st_mode & 0777) == 0600);
        }
        {
            coio::file f = co_await coio::open_file(p, O_RDONLY);
            auto s = co_await f.read(10);
            CHECK(s == "new");
            const int fd = f.release();
            CHECK_FALSE(f.is_open());
            CHECK(::close(fd) == 0);
        }
        co_return;
    });
}

TEST_CASE("file: a malformed mode throws std::invalid_argument at the call") {
    for (const char* mode : {"", "q", "rw", "r++", "wa", "rt"}) {
        INFO("mode " << mode);
        CHECK_THROWS_AS((void)coio::open_file("/nonexistent", mode), std::invalid_argument);
    }
    for (const char* mode : {"r", "rb", "br+", "w", "wb+", "a", "a+", "x", "x+"}) {
        INFO("mode " << mode);
        CHECK_NOTHROW((void)coio::open_file("/nonexistent", mode));  // lazy: nothing is opened
    }
}

TEST_CASE("file: errors name the path and the operation (ENOENT, EISDIR, EACCES, closed file)") {
    temp_dir dir;
    run_test([&]() -> coio::coro<void> {
        const std::string missing = dir / "missing.txt";
        auto e = co_await error_of(coio::open_file(missing));
        CHECK(e.first == ENOENT);
        CHECK(e.second.find("open") != std::string::npos);
        CHECK(e.second.find(missing) != std::string::npos);
        e = co_await error_of(coio::read_file(missing));
        CHECK(e.first == ENOENT);
        CHECK(e.second.find(missing) != std::string::npos);
        e = co_await error_of(coio::write_file(dir / "no_such_dir/x", "data"));
        CHECK(e.first == ENOENT);
        CHECK(e.second.find(dir / "no_such_dir/x") != std::string::npos);

        // A directory: opening it for writing fails, reading it fails at the read.
        e = co_await error_of(coio::open_file(dir.path, "w"));
        CHECK(e.first == EISDIR);
        e = co_await error_of(coio::read_file(dir.path));
        CHECK(e.first == EISDIR);
        CHECK(e.second.find("read") != std::string::npos);
        CHECK(e.second.find(dir.path) != std::string::npos);

        // Permissions (root ignores mode bits: then the open succeeds and there is nothing to test).
        const std::string locked = dir / "locked";
        spit(locked, "secret");
        REQUIRE(::chmod(locked.c_str(), 0) == 0);
        if (::geteuid() != 0) {
            e = co_await error_of(coio::read_file(locked));
            CHECK(e.first == EACCES);
            CHECK(e.second.find(locked) != std::string::npos);
        } else {
            // Root passes mode bits; a read-only sysfs attribute refuses writing even to root.
            const std::string ro = "/sys/kernel/uevent_seqnum";
            REQUIRE(::access(ro.c_str(), F_OK) == 0);
            e = co_await error_of(coio::open_file(ro, "w"));
            CHECK(e.first == EACCES);
            CHECK(e.second.find(ro) != std::string::npos);
        }

        coio::file closed;
        bool threw = false;
        try {
            (void)co_await closed.read(1);
        } catch (const coio::invalid_state_error&) {
            threw = true;
        }
        CHECK(threw);
    });
}

TEST_CASE("file: larger than one 1 MiB chunk - read_file, read(n), read_at/write_at at offsets") {
    temp_dir dir;
    const std::string big = pattern((3u << 20) + 12345, 7);
    const std::string p = dir / "big.bin";
    run_test([&]() -> coio::coro<void> {
        co_await coio::write_file(p, big);
        CHECK(same(slurp(p), big));
        auto back = co_await coio::read_file(p);
        CHECK(back.size() == big.size());
        CHECK(same(back, big));

        coio::file f = co_await coio::open_file(p, "r+");
        const auto n = co_await f.size();
        CHECK(n == big.size());
        std::string got;
        for (;;) {
            auto chunk = co_await f.read(1u << 20);
            if (chunk.empty()) break;
            CHECK(chunk.size() <= (1u << 20));
            got += chunk;
        }
        CHECK(same(got, big));

        // read_at/write_at leave the position alone and hit the right bytes.
        std::vector<std::byte> buf(1000);
        const auto r = co_await f.read_at(2'000'000, std::span(buf));
        CHECK(r == 1000);
        CHECK(std::memcmp(buf.data(), big.data() + 2'000'000, 1000) == 0);
        const auto past = co_await f.read_at(big.size() - 10, std::span(buf));
        CHECK(past == 10);  // short at EOF
        const auto beyond = co_await f.read_at(big.size() + 10, std::span(buf));
        CHECK(beyond == 0);
        co_await f.write_at(1'500'000, "PATCH");
        co_await f.write_at(big.size() + 5, "tail");  // a hole of 5 zero bytes
        const auto hole = co_await f.read(1);
        CHECK(hole == std::string(1, '\0'));  // the position stayed at the old end
        co_await f.close();

        std::string expect = big;
        expect.replace(1'500'000, 5, "PATCH");
        expect += std::string(5, '\0') + "tail";
        auto after = co_await coio::read_file(p);
        CHECK(same(after, expect));

        co_await coio::write_file(dir / "empty", "");
        auto empty = co_await coio::read_file(dir / "empty");
        CHECK(empty.empty());
        // A file whose size statx does not know (procfs says 0): read to the end anyway.
        auto maps = co_await coio::read_file("/proc/self/maps");
        CHECK(maps.size() > 0);
    });
}

TEST_CASE("file: many files at once") {
    temp_dir dir;
    run_test([&]() -> coio::coro<void> {
        // The data must outlive the (lazy) writes: kept here until gather returns.
        std::vector<std::string> data;
        for (int i = 0; i < 64; ++i) data.push_back(pattern(4096 + static_cast<std::size_t>(i), static_cast<unsigned>(i)));
        std::vector<coio::coro<void>> writes;
        for (int i = 0; i < 64; ++i) writes.push_back(coio::write_file(dir / ("f" + std::to_string(i)), data[static_cast<std::size_t>(i)]));
        co_await coio::gather(std::move(writes));
        std::vector<coio::coro<std::string>> reads;
        for (int i = 0; i < 64; ++i) reads.push_back(coio::read_file(dir / ("f" + std::to_string(i))));
        auto all = co_await coio::gather(std::move(reads));
        for (std::size_t i = 0; i < 64; ++i) CHECK(same(all[i], data[i]));
    });
    CHECK(dir.entries().size() == 64);  // no temporary left behind
}

TEST_CASE("write_file: atomic - a concurrent reader never sees a torn or empty file; temp gone") {
    temp_dir dir;
    const std::string p = dir / "state";
    const std::string a = pattern(3u << 20, 1), b = pattern(3u << 20, 2);
    spit(p, a);
    std::atomic<bool> stop{false};
    std::atomic<int> reads{0}, torn{0};
    // A plain thread reads the file in a loop while the loop replaces it.
    std::thread reader([&] {
        while (!stop.load()) {
            const std::string s = slurp(p);
            if (s != a && s != b) ++torn;
            ++reads;
        }
    });
    run_test([&]() -> coio::coro<void> {
        for (int i = 0; i < 20; ++i) co_await coio::write_file(p, i % 2 ? a : b);
    });
    stop = true;
    reader.join();
    CHECK(torn == 0);
    CHECK(reads > 0);
    CHECK(same(slurp(p), a));
    CHECK(dir.entries() == std::vector<std::string>{"state"});
}

TEST_CASE("write_file: a failure leaves the target untouched and removes the temporary file") {
    temp_dir dir;
    const std::string p = dir / "target";
    spit(p, "old");
    run_test([&]() -> coio::coro<void> {
        // Renaming a file over a directory fails (EISDIR) after the data was written.
        REQUIRE(::mkdir((dir / "sub").c_str(), 0755) == 0);
        auto e = co_await error_of(coio::write_file(dir / "sub", "data"));
        CHECK(e.first == EISDIR);
        CHECK(e.second.find("rename") != std::string::npos);
        CHECK(e.second.find(dir / "sub") != std::string::npos);
        ::rmdir((dir / "sub").c_str());
        // A write that does not fit (RLIMIT_FSIZE would kill with SIGXFSZ; use /dev/full's
        // directory instead: the temporary cannot be created there).
        e = co_await error_of(coio::write_file("/proc/coio_no_such_file", "data"));
        CHECK(e.first != 0);
    });
    CHECK(slurp(p) == "old");
    CHECK(dir.entries() == std::vector<std::string>{"target"});
}

TEST_CASE("file: cancellation - a blocked read is cancelled, the file stays usable, nothing leaks") {
    temp_dir dir;
    const std::string fifo = dir / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const int fds_before = open_fd_count();
    bool uring = false;
    run_test([&]() -> coio::coro<void> {
        uring = coio::get_running_loop().backend() == coio::backend::io_uring;
        // "r+": O_RDWR, so the open does not wait for a writer; a read then blocks (no data).
        coio::file f = co_await coio::open_file(fifo, "r+");
        auto reader = coio::create_task([](coio::file& f) -> coio::coro<std::string> { co_return co_await f.read(10); }(f));
        co_await coio::sleep(20ms);
        CHECK_FALSE(reader.done());
        reader.cancel();
        // On epoll a started pool job cannot be interrupted: it is waited for (it writes into
        // the task's buffer), so feed it. On io_uring the read is already cancelled.
        const int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        REQUIRE(w >= 0);
        co_await coio::sleep(20ms);
        REQUIRE(::write(w, "hello", 5) == 5);
        bool cancelled = false;
        try {
            (void)co_await reader;
        } catch (const coio::cancelled_error&) {
            cancelled = true;
        }
        CHECK(cancelled);
        if (uring) {
            // Cancelled in the kernel before reading: the bytes are still in the pipe.
            auto s = co_await f.read(5);
            CHECK(s == "hello");
        }
        // Still usable.
        REQUIRE(::write(w, "again", 5) == 5);
        auto s2 = co_await f.read(5);
        CHECK(s2 == "again");
        ::close(w);
        co_await f.close();
    });
    CHECK(open_fd_count() == fds_before);
}

TEST_CASE("file: cancellation - a cancelled write leaves a prefix; a cancelled write_file leaves nothing") {
    temp_dir dir;
    const std::string data = pattern(32u << 20, 3);
    const int fds_before = open_fd_count();
    run_test([&]() -> coio::coro<void> {
        const std::string p = dir / "w";
        coio::file f = co_await coio::open_file(p, "w+");
        int chunks = 0;
        auto writer = coio::create_task([](coio::file& f, const std::string& d, int& chunks) -> coio::coro<void> {
            for (std::size_t i = 0; i < d.size(); i += 1u << 20) {
                co_await f.write(std::string_view(d).substr(i, 1u << 20));
                ++chunks;
            }
        }(f, data, chunks));
        while (chunks < 2) co_await coio::sleep(0ms);  // cancelled mid-way, after a prefix
        writer.cancel();
        bool cancelled = false;
        try {
            co_await writer;
        } catch (const coio::cancelled_error&) {
            cancelled = true;
        }
        CHECK(cancelled);
        // The file holds exactly a prefix of the data, as long as the position says.
        co_await f.write("");
        const auto size = co_await f.size();
        CHECK(size >= (2u << 20));
        CHECK(size < data.size());
        std::string back(size, '\0');
        const auto n = co_await f.read_at(0, std::span(back));
        CHECK(n == size);
        CHECK(same(back, data.substr(0, size)));
        co_await f.write("end");  // the position is right after the prefix
        const auto size2 = co_await f.size();
        CHECK(size2 == size + 3);
        co_await f.close();

        // write_file cancelled at each step: the target is untouched and no temporary remains.
        spit(dir / "t", "old");
        for (auto delay : {0ms, 1ms, 2ms, 5ms, 10ms}) {
            auto w = coio::create_task(coio::write_file(dir / "t", data));
            if (delay > 0ms) co_await coio::sleep(delay);
            w.cancel();
            try {
                co_await w;
            } catch (const coio::cancelled_error&) {
            }
            // Old or new, never torn. New even when cancelled: a rename that had already
            // happened when the cancellation arrived is not undone.
            const std::string now = slurp(dir / "t");
            CHECK((now == "old" || now == data));
            CHECK(dir.entries().size() == 2);  // "w" and "t"
        }
        // A cancelled open: never a leaked descriptor.
        for (int i = 0; i < 20; ++i) {
            auto o = coio::create_task(coio::open_file(p, "r"));
            o.cancel();
            try {
                (void)co_await o;
            } catch (const coio::cancelled_error&) {
            }
        }
    });
    CHECK(open_fd_count() == fds_before);
}

TEST_CASE("file: timeouts through wait_for") {
    temp_dir dir;
    const std::string fifo = dir / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    run_test([&]() -> coio::coro<void> {
        coio::file f = co_await coio::open_file(fifo, "r+");
        if (coio::get_running_loop().backend() != coio::backend::io_uring) {
            // A pool job blocked on a pipe cannot be cancelled; feed it so the wait ends.
            std::thread feeder([&] {
                std::this_thread::sleep_for(100ms);
                const int w = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
                (void)::write(w, "x", 1);
                ::close(w);
            });
            bool timed_out = false;
            try {
                (void)co_await coio::wait_for(f.read(1), 20ms);
            } catch (const coio::timeout_error&) {
                timed_out = true;
            }
            feeder.join();
            // The read won the race against the deadline (it was waited for): no timeout, or
            // the timeout was reported after the result; both leave the pipe consistent.
            (void)timed_out;
            co_return;
        }
        bool timed_out = false;
        try {
            (void)co_await coio::wait_for(f.read(1), 20ms);
        } catch (const coio::timeout_error&) {
            timed_out = true;
        }
        CHECK(timed_out);
    });
}

TEST_CASE("file: the epoll backend refuses file operations instead of blocking the loop") {
    // coio::file never hands them to epoll (it uses the thread pool there); a caller that does
    // gets a clear error, not a blocking call or a mis-handled operation.
    coio::detail::epoll_backend b([](void*) noexcept {}, nullptr);
    coio::detail::operation op;
    struct statx st {};
    op.set_openat(AT_FDCWD, "/", O_RDONLY, 0);
    CHECK_THROWS_AS(b.submit(op), coio::not_supported_error);
    op.set_close(0);
    CHECK_THROWS_AS(b.submit(op), coio::not_supported_error);
    op.set_statx(0, "", AT_EMPTY_PATH, STATX_SIZE, &st);
    CHECK_THROWS_AS(b.submit(op), coio::not_supported_error);
    op.set_fsync(0);
    try {
        b.submit(op);
        FAIL("fsync was accepted");
    } catch (const coio::not_supported_error& e) {
        CHECK(std::string(e.what()).find("thread pool") != std::string::npos);
    }
}
