// https_get: GET a URL over TLS with verification on - the "query the HTTP headers of a URL"
// example of asyncio's documentation, for https:// URLs.
//
//   ctx = ssl.create_default_context(cafile=...)   auto ctx = coio::create_default_context(
//                                                      coio::ssl_purpose::server_auth, cafile);
//   reader, writer = await asyncio.open_connection( auto [reader, writer] = co_await coio::open_connection(
//       host, 443, ssl=ctx)                            host, port, {.ssl = ctx});
//
// The server's certificate is verified against the system's CA store (plus --cafile) and
// must match the host of the URL. Prints the status line and the headers, a blank line,
// then the body; exits 0. When the certificate cannot be verified it prints the
// coio::ssl_error message (e.g. "certificate verify failed: unable to get local issuer
// certificate") and exits 1; other failures also exit 1 with their message.
//
// Run:   https_get https://127.0.0.1:8443/ --cafile ca.pem
//        (with tls_echo_server or `openssl s_server -www -cert ... -key ...` on that port)
#include <coio/tls.hpp>

#include <coio/run.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

namespace {

struct url {
    std::string host;
    std::uint16_t port = 443;
    std::string path = "/";
};

url parse(const std::string& u) {
    const std::string scheme = "https://";
    if (u.rfind(scheme, 0) != 0) throw std::invalid_argument("only https:// URLs: " + u);
    url out;
    std::string rest = u.substr(scheme.size());
    const auto slash = rest.find('/');
    if (slash != std::string::npos) {
        out.path = rest.substr(slash);
        rest.resize(slash);
    }
    // host, host:port, [v6], [v6]:port
    std::string::size_type colon = std::string::npos;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string::npos) throw std::invalid_argument("bad host in " + u);
        out.host = rest.substr(1, close - 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':') colon = close + 1;
    } else {
        colon = rest.rfind(':');
        out.host = rest.substr(0, colon);
    }
    if (colon != std::string::npos) out.port = static_cast<std::uint16_t>(std::stoul(rest.substr(colon + 1)));
    if (out.host.empty()) throw std::invalid_argument("no host in " + u);
    return out;
}

coio::coro<void> get(url u, std::string cafile) {
    auto ctx = coio::create_default_context(coio::ssl_purpose::server_auth, cafile);
    auto [reader, writer] = co_await coio::open_connection(u.host, u.port, {.ssl = ctx});
    const bool v6 = u.host.find(':') != std::string::npos;
    writer.write("GET " + u.path + " HTTP/1.1\r\nHost: " + (v6 ? "[" + u.host + "]" : u.host) +
                 "\r\nUser-Agent: coio-https_get\r\nConnection: close\r\n\r\n");
    co_await writer.drain();

    // Status line and headers, up to the blank line.
    long long content_length = -1;
    bool chunked = false;
    for (;;) {
        std::string line = co_await reader.readline();
        if (line.empty()) throw std::runtime_error("the connection closed before the end of the headers");
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        std::cout << line << '\n';
        if (line.empty()) break;
        std::string lower = line;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower.rfind("content-length:", 0) == 0) content_length = std::stoll(lower.substr(15));
        if (lower.rfind("transfer-encoding:", 0) == 0 && lower.find("chunked") != std::string::npos) chunked = true;
    }
    // The body: chunked, Content-Length, or until the server closes.
    if (chunked) {
        for (;;) {
            std::string size_line = co_await reader.readline();
            const std::size_t n = std::stoul(size_line, nullptr, 16);
            if (n == 0) break;
            std::cout << co_await reader.readexactly(n);
            co_await reader.readline();  // the CRLF after the chunk
        }
    } else if (content_length >= 0) {
        std::cout << co_await reader.readexactly(static_cast<std::size_t>(content_length));
    } else {
        for (std::string data; !(data = co_await reader.read(65536)).empty();) std::cout << data;
    }
    std::cout.flush();
    writer.close();
    co_await writer.wait_closed();
}

}  // namespace

int main(int argc, char** argv) {
    std::string target, cafile;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--cafile" && i + 1 < argc) cafile = argv[++i];
        else if (target.empty() && a.rfind("--", 0) != 0) target = a;
        else {
            std::cerr << "usage: https_get URL [--cafile FILE]\n";
            return 2;
        }
    }
    if (target.empty()) {
        std::cerr << "usage: https_get URL [--cafile FILE]\n";
        return 2;
    }
    try {
        coio::run(get(parse(target), cafile));
    } catch (const coio::ssl_error& e) {
        std::cout.flush();
        std::cerr << e.what() << '\n';
        return 1;
    } catch (const std::exception& e) {
        std::cout.flush();
        std::cerr << "https_get: " << e.what() << '\n';
        return 1;
    }
}
