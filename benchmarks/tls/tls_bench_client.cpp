// The common load generator of benchmarks/tls/run.sh (one client for every server), on
// coio::tls. It offers only TLS 1.3 with TLS_AES_128_GCM_SHA256, so every server runs the
// same cipher (and X25519, OpenSSL's first group).
//
//   pingpong   --conns N connections; each writes --size bytes and reads the whole echo
//              before the next write, for --seconds. Prints round trips per second.
//   stream     --conns N connections; each writes a --block and reads its echo back, for
//              --seconds. Prints echoed MB/s (1 MB = 1e6 bytes).
//   handshake  --conns N concurrent loops of: connect, full handshake (no resumption), one
//              byte echoed, close. Prints handshakes per second.
//
// Usage: tls_bench_client --port P --cafile ca.pem --mode M [--conns N] [--seconds S]
//                         [--size B] [--block B]
// Output: one line "mode=M ops=... seconds=... rate=... unit=..."
#include <coio/tls.hpp>

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/task.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct config {
    std::uint16_t port = 0;
    std::string cafile, mode = "pingpong";
    int conns = 20;
    double seconds = 3;
    std::size_t size = 64;
    std::size_t block = 256 * 1024;
};

coio::ssl_context client_context(const config& c) {
    auto ctx = coio::create_default_context(coio::ssl_purpose::server_auth, c.cafile);
    ctx.minimum_version(coio::tls_version::tlsv1_3);
    ctx.set_ciphersuites("TLS_AES_128_GCM_SHA256");
    return ctx;
}

coio::coro<std::uint64_t> pingpong(const config& c, coio::ssl_context ctx, clk::time_point end) {
    auto [r, w] = co_await coio::open_connection("127.0.0.1", c.port, {.ssl = ctx, .server_hostname = "localhost"});
    const std::string msg(c.size, 'x');
    std::vector<std::byte> buf(c.size);
    std::uint64_t n = 0;
    while (clk::now() < end) {
        w.write(msg);
        co_await r.readexactly_into(buf);
        ++n;
    }
    w.close();
    co_await w.wait_closed();
    co_return n;
}

coio::coro<std::uint64_t> stream(const config& c, coio::ssl_context ctx, clk::time_point end) {
    auto [r, w] = co_await coio::open_connection("127.0.0.1", c.port, {.ssl = ctx, .server_hostname = "localhost"});
    const std::string block(c.block, 'y');
    std::vector<std::byte> buf(c.block);
    std::uint64_t bytes = 0;
    while (clk::now() < end) {
        w.write(block);
        co_await r.readexactly_into(buf);  // at most one block in flight per connection
        bytes += c.block;
    }
    w.close();
    co_await w.wait_closed();
    co_return bytes;
}

coio::coro<std::uint64_t> handshakes(const config& c, coio::ssl_context ctx, clk::time_point end) {
    std::uint64_t n = 0;
    std::byte one[1];
    while (clk::now() < end) {
        auto [r, w] = co_await coio::open_connection("127.0.0.1", c.port,
                                                     {.ssl = ctx, .server_hostname = "localhost", .ssl_shutdown_timeout = 0s});
        w.write("h");
        co_await r.readexactly_into(one);
        w.close();
        co_await w.wait_closed();
        ++n;
    }
    co_return n;
}

coio::coro<void> bench(config c) {
    auto ctx = client_context(c);
    const auto start = clk::now();
    const auto end = start + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(c.seconds));
    std::vector<coio::task<std::uint64_t>> tasks;
    for (int i = 0; i < c.conns; ++i) {
        if (c.mode == "pingpong") tasks.push_back(coio::create_task(pingpong(c, ctx, end)));
        else if (c.mode == "stream") tasks.push_back(coio::create_task(stream(c, ctx, end)));
        else tasks.push_back(coio::create_task(handshakes(c, ctx, end)));
    }
    std::uint64_t ops = 0;
    for (auto& t : tasks) ops += co_await t;
    const double secs = std::chrono::duration<double>(clk::now() - start).count();
    if (c.mode == "stream")
        std::printf("mode=stream ops=%llu seconds=%.3f rate=%.1f unit=MB/s\n", static_cast<unsigned long long>(ops), secs,
                    static_cast<double>(ops) / secs / 1e6);
    else
        std::printf("mode=%s ops=%llu seconds=%.3f rate=%.0f unit=%s\n", c.mode.c_str(), static_cast<unsigned long long>(ops),
                    secs, static_cast<double>(ops) / secs, c.mode == "pingpong" ? "round_trips/s" : "handshakes/s");
}

}  // namespace

int main(int argc, char** argv) {
    config c;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--port") c.port = static_cast<std::uint16_t>(std::stoul(v));
        else if (a == "--cafile") c.cafile = v;
        else if (a == "--mode") c.mode = v;
        else if (a == "--conns") c.conns = std::stoi(v);
        else if (a == "--seconds") c.seconds = std::stod(v);
        else if (a == "--size") c.size = std::stoul(v);
        else if (a == "--block") c.block = std::stoul(v);
        else {
            std::fprintf(stderr, "tls_bench_client: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    if (c.port == 0 || c.cafile.empty() || (c.mode != "pingpong" && c.mode != "stream" && c.mode != "handshake")) {
        std::fprintf(stderr, "usage: tls_bench_client --port P --cafile ca.pem --mode pingpong|stream|handshake "
                             "[--conns N] [--seconds S] [--size B] [--block B]\n");
        return 2;
    }
    try {
        coio::run(bench(c));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tls_bench_client: %s\n", e.what());
        return 1;
    }
}
