// TLS echo server on Asio's ssl::stream (OpenSSL) with C++20 coroutines, the Asio row of
// benchmarks/tls/run.sh. Same shape as coio's: one coroutine per connection, handshake,
// then read_some into a 64 KiB buffer and write it all back. Asio's default reactor
// (epoll), one thread, concurrency hint 1.
//
// Usage: asio_tls_echo_server --port P --cert FILE --key FILE   (127.0.0.1; stop with SIGTERM)
#include <asio.hpp>
#include <asio/ssl.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using asio::ip::tcp;

asio::awaitable<void> session(tcp::socket socket, asio::ssl::context& ctx) {
    asio::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    asio::ssl::stream<tcp::socket> stream(std::move(socket), ctx);
    co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    std::vector<char> buf(64 * 1024);
    for (;;) {
        const std::size_t n = co_await stream.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        co_await asio::async_write(stream, asio::buffer(buf.data(), n), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
    }
}

asio::awaitable<void> listener(tcp::acceptor& acceptor, asio::ssl::context& ctx) {
    for (;;) {
        asio::error_code ec;
        tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) continue;
        asio::co_spawn(acceptor.get_executor(), session(std::move(socket), ctx), asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    unsigned port = 0;
    std::string cert, key;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--port") == 0) port = static_cast<unsigned>(std::stoul(argv[i + 1]));
        else if (std::strcmp(argv[i], "--cert") == 0) cert = argv[i + 1];
        else if (std::strcmp(argv[i], "--key") == 0) key = argv[i + 1];
    }
    if (port == 0 || port > 65535 || cert.empty() || key.empty()) {
        std::fprintf(stderr, "usage: asio_tls_echo_server --port P --cert FILE --key FILE\n");
        return 2;
    }
    asio::io_context io(1);
    asio::ssl::context ctx(asio::ssl::context::tls_server);
    ctx.use_certificate_chain_file(cert);
    ctx.use_private_key_file(key, asio::ssl::context::pem);
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), static_cast<unsigned short>(port)));
    asio::co_spawn(io, listener(acceptor, ctx), asio::detached);
    io.run();
}
