// echo_client: asyncio's streams echo client on coio - open a connection, send lines, read
// the echoes back, and report the round-trip time.
//
// Run:   echo_server --port 8888 &   then   echo_client --port 8888 [--host 127.0.0.1] [--count 5]
// Each line is sent, its echo awaited with readline() (bounded by a 5 s timeout), then the
// writer is closed with write_eof/close/wait_closed as in asyncio.
#include <coio/run.hpp>
#include <coio/streams.hpp>
#include <coio/timeout.hpp>

#include <chrono>
#include <iostream>
#include <string>

namespace {

coio::coro<int> client(std::string host, std::uint16_t port, int count) {
    auto [reader, writer] = co_await coio::open_connection(host, port);
    std::cout << "connected to " << writer.peername() << " from " << writer.sockname() << '\n';
    for (int i = 0; i < count; ++i) {
        const std::string msg = "hello " + std::to_string(i) + "\n";
        const auto t0 = std::chrono::steady_clock::now();
        writer.write(msg);
        co_await writer.drain();
        std::string echo = co_await coio::wait_for(reader.readline(), std::chrono::seconds(5));
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
        std::cout << "echo: " << echo.substr(0, echo.size() - 1) << "  (" << us.count() << " us)\n";
        if (echo != msg) co_return 1;
    }
    writer.close();
    co_await writer.wait_closed();
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    unsigned port = 8888;
    int count = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--host") host = argv[i + 1];
        else if (a == "--port") port = static_cast<unsigned>(std::stoul(argv[i + 1]));
        else if (a == "--count") count = std::stoi(argv[i + 1]);
        else {
            std::cerr << "usage: echo_client [--host H] [--port P] [--count N]\n";
            return 2;
        }
    }
    // An error prints its type and message, e.g. "std::system_error: connect to
    // 127.0.0.1:8888: Connection refused", and exits 1; Ctrl-C exits 130.
    return coio::run_main(client(host, static_cast<std::uint16_t>(port), count));
}
