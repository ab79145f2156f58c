// The coio row of the echo benchmark (run.sh): an asyncio-style streams echo server.
//
// Each connection is handled by one coroutine: read_chunk() (the receive buffer itself, no
// copy), write() it back (sent straight from that buffer, which returns to the ring once
// sent), drain() (flow control). --read read_into copies into a 64 KiB frame buffer and
// write() copies again (the asyncio way); --read read uses read() returning std::string, and
// write(std::move(s)), which takes the string over.
// With --threads N, N threads each run their own loop and listening socket on the same port
// (SO_REUSEPORT): thread-per-core.
//
// Usage: coio_echo_server --port P [--host 127.0.0.1] [--threads N] [--recv multishot|plain]
//                         [--read chunk|read_into|read] [--high-water BYTES] [--limit BYTES]
//                         [--ring-buffers N]
// --high-water: drain()'s mark (default 64 KiB, asyncio's); --limit: the reader's limit;
// --ring-buffers: buffers of 64 KiB in each loop's receive ring (default 1024, as the
// reference server; coio's own default is 256, see loop_options::receive_buffers).
// On SIGTERM or SIGINT every loop stops (its server is closed, handlers are cancelled) and
// the process prints "server_cpu_s=..." (getrusage, all threads), then exits 0.
#include <coio/future.hpp>
#include <coio/run.hpp>
#include <coio/server.hpp>
#include <coio/stream_chunk.hpp>
#include <coio/task.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

struct config {
    std::string host = "127.0.0.1";
    unsigned port = 0;
    unsigned threads = 1;
    bool multishot = true;
    std::string read_mode = "chunk";  // chunk | read_into | read
    // asyncio's default flow control (64 KiB high-water mark; low = high / 4). A higher mark
    // lets more received chunks queue behind a send and go out in one sendmsg: --high-water
    // 1048576 streams faster still (benchmarks/README.md).
    std::size_t high_water = 64 * 1024;
    // The same receive memory as the reference server (1024 x 64 KiB): while the handlers
    // wait in drain(), the chunks they hold stay out of the ring.
    unsigned ring_buffers = 1024;
    unsigned buffer_size = 64 * 1024;
    std::size_t limit = 64 * 1024;
};

coio::coro<void> echo_chunk(coio::stream_reader reader, coio::stream_writer writer) {
    try {
        for (;;) {
            coio::stream_chunk chunk = co_await reader.read_chunk();
            if (chunk.empty()) break;
            writer.write(std::move(chunk));
            co_await writer.drain();
        }
    } catch (const std::system_error&) {
        // the peer went away: nothing left to echo to
    }
}

coio::coro<void> echo(coio::stream_reader reader, coio::stream_writer writer) {
    std::byte buf[64 * 1024];
    try {
        for (;;) {
            const std::size_t n = co_await reader.read_into(buf);
            if (n == 0) break;
            writer.write(std::span<const std::byte>(buf, n));
            co_await writer.drain();
        }
    } catch (const std::system_error&) {
        // the peer went away: nothing left to echo to
    }
}

coio::coro<void> echo_read(coio::stream_reader reader, coio::stream_writer writer) {
    try {
        for (;;) {
            std::string data = co_await reader.read(64 * 1024);
            if (data.empty()) break;
            writer.write(std::move(data));  // taken over, not copied (write(std::string&&))
            co_await writer.drain();
        }
    } catch (const std::system_error&) {
    }
}

struct worker {
    std::atomic<coio::event_loop*> loop{nullptr};
    coio::future<void>* stop = nullptr;
    std::atomic<bool> ready{false};
    std::atomic<bool> failed{false};
};

coio::coro<void> serve(const config& cfg, worker& w) {
    auto* handler = cfg.read_mode == "read" ? echo_read : cfg.read_mode == "read_into" ? echo : echo_chunk;
    auto srv = co_await coio::start_server(handler, cfg.host, static_cast<std::uint16_t>(cfg.port),
                                           {.limit = cfg.limit, .backlog = 4096, .reuse_port = cfg.threads > 1,
                                            .write_high_water = cfg.high_water, .multishot_recv = cfg.multishot});
    coio::future<void> stop;
    w.stop = &stop;
    w.loop = &coio::get_running_loop();
    w.ready = true;
    co_await stop;
    srv.close();
    co_await srv.wait_closed();
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: coio_echo_server --port P [--host 127.0.0.1] [--threads N] [--recv multishot|plain] "
                         "[--read chunk|read_into|read] [--high-water BYTES] [--limit BYTES] [--ring-buffers N]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    config cfg;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--port") cfg.port = static_cast<unsigned>(std::stoul(v));
        else if (a == "--host") cfg.host = v;
        else if (a == "--high-water") cfg.high_water = std::stoul(v);
        else if (a == "--limit") cfg.limit = std::stoul(v);
        else if (a == "--ring-buffers") cfg.ring_buffers = static_cast<unsigned>(std::stoul(v));
        else if (a == "--buffer-size") cfg.buffer_size = static_cast<unsigned>(std::stoul(v));
        else if (a == "--threads") cfg.threads = static_cast<unsigned>(std::stoul(v));
        else if (a == "--recv" && (v == "multishot" || v == "plain")) cfg.multishot = v == "multishot";
        else if (a == "--read" && (v == "chunk" || v == "read" || v == "read_into")) cfg.read_mode = v;
        else usage();
    }
    if (cfg.port == 0 || cfg.port > 65535 || cfg.threads == 0 || cfg.threads > 64 || argc % 2 == 0) usage();

    // The stop signals are taken by sigwait in this thread only; loops never see them.
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);

    std::vector<worker> workers(cfg.threads);
    std::vector<std::thread> threads;
    for (auto& w : workers) {
        threads.emplace_back([&cfg, &w] {
            try {
                coio::run(serve(cfg, w), {.handle_sigint = false, .receive_buffers = cfg.ring_buffers,
                                            .receive_buffer_size = cfg.buffer_size});
            } catch (const std::exception& e) {
                std::fprintf(stderr, "coio_echo_server: %s\n", e.what());
                w.failed = true;
                w.ready = true;
            }
        });
    }
    int sig = 0;
    sigwait(&stop_set, &sig);
    for (auto& w : workers) {
        while (!w.ready) std::this_thread::yield();
        if (coio::event_loop* l = w.loop.load(); l && !w.failed) {
            auto* f = w.stop;
            l->call_soon_threadsafe([f] { f->set_result(); });
        }
    }
    for (auto& t : threads) t.join();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const double user = static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
    const double sys = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
    std::printf("server_cpu_s=%.6f user_s=%.6f sys_s=%.6f\n", user + sys, user, sys);
    std::fflush(stdout);
    for (auto& w : workers)
        if (w.failed) return 1;
    return 0;
}
