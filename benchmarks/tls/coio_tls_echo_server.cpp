// TLS echo server on coio::tls, the coio row of benchmarks/tls/run.sh.
//
// One task per connection, the asyncio shape: read into a 64 KiB buffer (OpenSSL decrypts
// straight into it), write it back (encrypted into the stream's send buffer), drain.
//
// Usage: coio_tls_echo_server --port P --cert FILE --key FILE   (127.0.0.1; stop with SIGTERM)
#include <coio/tls.hpp>

#include <coio/run.hpp>
#include <coio/server.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

coio::coro<void> echo(coio::ssl_stream_reader reader, coio::ssl_stream_writer writer) {
    std::vector<std::byte> buf(64 * 1024);
    try {
        for (;;) {
            const std::size_t n = co_await reader.read_into(buf);
            if (n == 0) break;
            writer.write(std::span<const std::byte>(buf.data(), n));
            co_await writer.drain();
        }
    } catch (const std::system_error&) {
        // a client that resets: the benchmark client ends its connections abruptly
    }
    writer.close();
}

coio::coro<void> serve(std::uint16_t port, std::string cert, std::string key) {
    coio::ssl_context ctx(coio::ssl_protocol::tls_server);
    ctx.load_cert_chain(cert, key);
    auto srv = co_await coio::start_server(echo, "127.0.0.1", port, {.ssl = ctx, .server = {.backlog = 1024}});
    co_await srv.serve_forever();
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
        std::fprintf(stderr, "usage: coio_tls_echo_server --port P --cert FILE --key FILE\n");
        return 2;
    }
    try {
        coio::run(serve(static_cast<std::uint16_t>(port), cert, key));
    } catch (const coio::keyboard_interrupt&) {
    }
}
