// Echo server written the idiomatic Asio C++20-coroutine way, on Asio's io_uring backend.
//
// The comparison row for "another C++20 coroutine library over io_uring" in run.sh. Built with
// ASIO_HAS_IO_URING and ASIO_DISABLE_EPOLL, which make io_uring Asio's reactor for sockets
// too (not only for files), and an io_context with concurrency hint 1 (one thread, no
// locking), as coio is. One coroutine per connection: read_some into a 64 KiB buffer, write
// all of it, repeat — the same shape as the asyncio server.
//
// Usage: asio_echo_server --port P
// On SIGTERM or SIGINT the listening socket and every open connection are shut down, so
// every pending accept and read completes, the coroutines finish, io_context::run returns,
// and the process prints "server_cpu_s=..." (getrusage, all threads) to stdout, then exits 0.
// Why not simpler: io_context::stop() leaves operations pending when the context is
// destroyed, which trips UBSan inside Asio 1.22's io_uring backend; and close() on a socket
// with a read in flight never completes that read with this backend (run() then never
// returns), whereas shutdown() makes the kernel complete it.
#include "uring_util.hpp"

#include <asio.hpp>

#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

namespace {

using asio::ip::tcp;

// Open connections, so that a stop request can shut them down (which ends their sessions).
std::set<tcp::socket*> g_sockets;
bool g_stopping = false;

asio::awaitable<void> session(tcp::socket socket) {
    g_sockets.insert(&socket);
    asio::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    std::vector<char> buf(64 * 1024);
    for (;;) {
        // redirect_error: end of stream and resets are the normal way a session ends, so
        // they are error codes here rather than exceptions.
        const std::size_t n = co_await socket.async_read_some(
            asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        co_await asio::async_write(socket, asio::buffer(buf.data(), n),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
    }
    g_sockets.erase(&socket);
}

asio::awaitable<void> listener(tcp::acceptor& acceptor) {
    for (;;) {
        asio::error_code ec;
        tcp::socket socket = co_await acceptor.async_accept(
            asio::redirect_error(asio::use_awaitable, ec));
        if (g_stopping) co_return;
        if (ec) continue;
        asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const unsigned port = echo_bench::parse_port_only(argc, argv, "asio_echo_server");
    asio::io_context ctx(1);
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"),
                                              static_cast<unsigned short>(port)));
    asio::signal_set signals(ctx, SIGINT, SIGTERM);
    signals.async_wait([&acceptor](const asio::error_code&, int) {
        g_stopping = true;
        // shutdown(2) on a listening socket makes the pending accept fail (EINVAL).
        ::shutdown(acceptor.native_handle(), SHUT_RDWR);
        asio::error_code ignored;
        for (tcp::socket* s : g_sockets) s->shutdown(tcp::socket::shutdown_both, ignored);
    });
    asio::co_spawn(ctx, listener(acceptor), asio::detached);
    ctx.run();
    echo_bench::print_rusage();
    return 0;
}
