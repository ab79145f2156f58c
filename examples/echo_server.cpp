// echo_server: asyncio's streams echo server, line for line, on coio - and thread-per-core.
//
//   async def handle(reader, writer):                 coio::coro<void> handle(reader, writer) {
//       while data := await reader.read(65536):           while (auto data = co_await reader.read(65536); ...)
//           writer.write(data)                                writer.write(std::move(data));
//           await writer.drain()                              co_await writer.drain();
//
// write(std::move(data)) hands the string over instead of copying it (writer.write(data)
// works too, with a copy); while data streams in, read() then receives into the strings
// already sent, so the loop copies nothing in user space and allocates nothing per message.
//
// Beyond asyncio, the same loop without copying the data (the kernel's receive buffer is
// sent back as it is; benchmarks/echo/coio_echo_server.cpp uses it):
//       for (;;) {
//           coio::stream_chunk chunk = co_await reader.read_chunk();
//           if (chunk.empty()) break;
//           writer.write(std::move(chunk));
//           co_await writer.drain();
//       }
//
// With --threads N, N threads each run their own event loop with their own listening socket
// on the same port (SO_REUSEPORT): the kernel spreads connections over them, so the server
// scales with cores without any locking (the way Seastar and nginx do it).
//
// Run:   echo_server [--host 127.0.0.1] [--port 8888] [--threads N] [--seconds S]
// Try:   echo_client --port 8888        (or: printf 'hi\n' | nc -q1 127.0.0.1 8888)
// It serves until Ctrl-C (exit status 130) or SIGTERM (0), or for --seconds S when given, then
// shuts down cleanly. Exit status 1 when a shard could not start (e.g. the port is taken);
// when none could, it exits at once.
#include <coio/future.hpp>
#include <coio/run.hpp>
#include <coio/server.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

coio::coro<void> handle(coio::stream_reader reader, coio::stream_writer writer) {
    try {
        for (;;) {
            std::string data = co_await reader.read(65536);
            if (data.empty()) break;  // EOF: the client closed
            writer.write(std::move(data));
            co_await writer.drain();
        }
    } catch (const std::system_error& e) {
        std::cerr << "connection lost: " << e.what() << '\n';
    }
}

struct shard {
    std::atomic<coio::event_loop*> loop{nullptr};
    coio::future<void>* stop = nullptr;
    std::atomic<bool> done{false};
    std::atomic<bool> failed{false};
};

coio::coro<void> serve(std::string host, std::uint16_t port, bool share, shard& me, int index) {
    auto srv = co_await coio::start_server(handle, host, port, {.backlog = 1024, .reuse_port = share});
    std::cout << "shard " << index << " serving on " << srv.sockets().front().local_address() << std::endl;
    coio::future<void> stop;
    me.stop = &stop;
    me.loop = &coio::get_running_loop();
    co_await stop;  // set from the main thread at shutdown
    srv.close();
    co_await srv.wait_closed();
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    unsigned port = 8888, threads = 1;
    double seconds = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--host") host = argv[i + 1];
        else if (a == "--port") port = static_cast<unsigned>(std::stoul(argv[i + 1]));
        else if (a == "--threads") threads = static_cast<unsigned>(std::stoul(argv[i + 1]));
        else if (a == "--seconds") seconds = std::stod(argv[i + 1]);
        else {
            std::cerr << "usage: echo_server [--host H] [--port P] [--threads N] [--seconds S]\n";
            return 2;
        }
    }
    if (threads == 0 || threads > 256 || port > 65535) return 2;

    // Ctrl-C and SIGTERM go to this thread (sigwait/sigtimedwait); the loops never see them.
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);

    std::vector<shard> shards(threads);
    std::vector<std::thread> pool;
    for (unsigned i = 0; i < threads; ++i) {
        pool.emplace_back([&, i] {
            try {
                coio::run(serve(host, static_cast<std::uint16_t>(port), threads > 1, shards[i], static_cast<int>(i)),
                          {.handle_sigint = false});
            } catch (const std::exception& e) {
                std::cerr << "shard " << i << ": " << e.what() << '\n';
                shards[i].failed = true;
            }
            shards[i].done = true;
        });
    }
    // Wait for a stop signal, the end of --seconds, or every shard having ended (none could
    // start, typically): checked every 100 ms, so a server that cannot serve exits at once.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int stop_signal = 0;
    for (;;) {
        const timespec tick{0, 100'000'000};
        if (const int sig = sigtimedwait(&stop_set, nullptr, &tick); sig > 0) {
            stop_signal = sig;
            break;
        }
        if (seconds > 0 && std::chrono::steady_clock::now() >= deadline) break;
        if (std::all_of(shards.begin(), shards.end(), [](const shard& s) { return s.done.load(); })) break;
    }
    for (auto& s : shards) {
        while (!s.loop && !s.done) std::this_thread::yield();  // bounded: the shard starts or fails
        if (coio::event_loop* l = s.loop.load(); l && !s.done) {
            auto* f = s.stop;
            l->call_soon_threadsafe([f] { f->set_result(); });
        }
    }
    for (auto& t : pool) t.join();
    const auto failed = std::count_if(shards.begin(), shards.end(), [](const shard& s) { return s.failed.load(); });
    if (failed == static_cast<long>(shards.size())) {
        std::cerr << "echo_server: no shard could start\n";
        return 1;
    }
    std::cout << "bye" << std::endl;
    if (failed > 0) return 1;
    return stop_signal == SIGINT ? 128 + SIGINT : 0;  // Ctrl-C: 130, as a shell expects
}
