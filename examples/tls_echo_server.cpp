// tls_echo_server: the streams echo server over TLS (asyncio's start_server(..., ssl=ctx)).
//
//   ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)    coio::ssl_context ctx(coio::ssl_protocol::tls_server);
//   ctx.load_cert_chain(cert, key)                   ctx.load_cert_chain(cert, key);
//   await asyncio.start_server(handle, host, port,   co_await coio::start_server(handle, host, port,
//                              ssl=ctx)                                          {.ssl = ctx});
//
// The handler is the plain echo handler with ssl_stream_reader / ssl_stream_writer: the same
// read/write/drain calls, decrypted and encrypted underneath.
//
// Run:   tls_echo_server --cert server.pem --key server.key [--host 127.0.0.1] [--port 8443] [--seconds S]
//        (--port 0 picks a free port; the first line printed says which)
// Try:   openssl s_client -connect 127.0.0.1:8443 -CAfile ca.pem -quiet
// It serves until Ctrl-C (or for --seconds S), then shuts down cleanly.
#include <coio/tls.hpp>

#include <coio/run.hpp>
#include <coio/server.hpp>
#include <coio/sleep.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

namespace {

coio::coro<void> handle(coio::ssl_stream_reader reader, coio::ssl_stream_writer writer) {
    try {
        for (;;) {
            std::string data = co_await reader.read(65536);
            if (data.empty()) break;  // EOF: the client closed (close_notify or not)
            writer.write(data);
            co_await writer.drain();
        }
    } catch (const std::system_error& e) {  // coio::ssl_error is one too
        std::cerr << "connection lost: " << e.what() << '\n';
    }
    writer.close();
    co_await writer.wait_closed();
}

coio::coro<void> serve(std::string cert, std::string key, std::string host, std::uint16_t port, double seconds) {
    coio::ssl_context ctx(coio::ssl_protocol::tls_server);
    ctx.load_cert_chain(cert, key);
    auto srv = co_await coio::start_server(handle, host, port, {.ssl = ctx});
    std::cout << "serving TLS on " << srv.sockets().front().local_address() << std::endl;
    if (seconds > 0) {
        co_await coio::sleep(seconds);
        srv.close();
        co_await srv.wait_closed();
    } else {
        co_await srv.serve_forever();
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string cert, key, host = "127.0.0.1";
    unsigned port = 8443;
    double seconds = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::cerr << "missing value for " << a << '\n';
            return 2;
        }
        const std::string v = argv[++i];
        if (a == "--cert") cert = v;
        else if (a == "--key") key = v;
        else if (a == "--host") host = v;
        else if (a == "--port") port = static_cast<unsigned>(std::stoul(v));
        else if (a == "--seconds") seconds = std::stod(v);
        else {
            std::cerr << "usage: tls_echo_server --cert FILE --key FILE [--host H] [--port N] [--seconds S]\n";
            return 2;
        }
    }
    if (cert.empty() || key.empty() || port > 65535) {
        std::cerr << "usage: tls_echo_server --cert FILE --key FILE [--host H] [--port N] [--seconds S]\n";
        return 2;
    }
    try {
        coio::run(serve(cert, key, host, static_cast<std::uint16_t>(port), seconds));
    } catch (const coio::keyboard_interrupt&) {
        std::cout << "interrupted: shut down cleanly\n";
    } catch (const std::exception& e) {
        std::cerr << "tls_echo_server: " << e.what() << '\n';
        return 1;
    }
}
