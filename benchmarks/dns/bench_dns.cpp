// benchmarks/dns/bench_dns.cpp - coio's DNS throughput: N getaddrinfo started at once.
//
// What it measures: the seed's pattern, `gather` of N `coio::getaddrinfo` calls all started
// at the same moment, against a private dnsmasq. coio's resolver keeps at most
// `--inflight` lookups (default 100, resolver_options::max_inflight) with c-ares and queues
// the rest, so the burst does not overflow the UDP socket buffers. Compare with
// ref_cares_poll (plain c-ares + poll(), same cap, same server, same names) in the same run:
// benchmarks/dns/run.sh does that and prints the ratio.
//
// Names are bench0.test .. bench<N-1>.test; bench<i>.test must resolve to
// 10.<i/65536 % 256>.<i/256 % 256>.<i % 256> (run.sh writes that hosts file). Every answer is
// checked, so a wrong answer counts as a failure, never as throughput.
//
// Usage:
//   bench_dns --server 127.0.0.1:PORT [--count 2000] [--inflight 100] [--timeout-ms 2000]
//             [--tries 2]
// Output: one line of key=value pairs (the format run.sh parses), e.g.
//   names_per_s=31234 timeouts=0 failures=0 wrong=0 ok=2000 total_s=0.0640 count=2000 ...
// Settings match ref_cares_poll's: AF_INET, c-ares' RFC 6724 sorting on, timeout 2000 ms x 2
// tries. Only the server given with --server is ever contacted.
#include <coio/dns.hpp>
#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/timeout.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct config {
    std::string server;
    int count = 2000;
    int inflight = 100;
    int timeout_ms = 2000;
    int tries = 2;
};

[[noreturn]] void usage(const char* argv0, const char* why) {
    std::fprintf(stderr,
                 "%s: %s\nusage: %s --server 127.0.0.1:PORT [--count N] [--inflight K] [--timeout-ms MS] [--tries T]\n",
                 argv0, why, argv0);
    std::exit(2);
}

config parse_args(int argc, char** argv) {
    config c;
    auto number = [&](int& i) {
        if (i + 1 >= argc) usage(argv[0], "missing value");
        char* end = nullptr;
        const long v = std::strtol(argv[++i], &end, 10);
        if (*end != '\0' || v < 0 || v > 100'000'000) usage(argv[0], "bad number");
        return static_cast<int>(v);
    };
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--server" && i + 1 < argc) c.server = argv[++i];
        else if (a == "--count") c.count = number(i);
        else if (a == "--inflight") c.inflight = number(i);
        else if (a == "--timeout-ms") c.timeout_ms = number(i);
        else if (a == "--tries") c.tries = number(i);
        else usage(argv[0], "unknown argument");
    }
    // Loopback only: this program exists to be pointed at a private dnsmasq.
    if (c.server.rfind("127.", 0) != 0) usage(argv[0], "--server must be 127.x.x.x:PORT");
    if (c.count <= 0) usage(argv[0], "--count must be positive");
    if (c.tries <= 0 || c.timeout_ms <= 0) usage(argv[0], "--tries and --timeout-ms must be positive");
    return c;
}

/// The address run.sh's hosts file gives bench<i>.test, in network byte order.
std::uint32_t expected_address(int i) {
    const auto u = static_cast<std::uint32_t>(i);
    return htonl((10u << 24) | (((u >> 16) & 0xff) << 16) | (((u >> 8) & 0xff) << 8) | (u & 0xff));
}

enum class outcome { ok, wrong, timeout, failure };

struct tally {
    int ok = 0;
    int wrong = 0;
    int timeouts = 0;
    int failures = 0;
    std::string first_error;
};

coio::coro<outcome> lookup(std::string name, int index, tally& t) {
    try {
        auto v = co_await coio::getaddrinfo(std::move(name), 0, {.family = AF_INET, .socktype = SOCK_STREAM});
        const bool right = v.size() == 1 &&
                           reinterpret_cast<const sockaddr_in*>(v[0].address.data())->sin_addr.s_addr == expected_address(index);
        co_return right ? outcome::ok : outcome::wrong;
    } catch (const coio::gaierror& e) {
        if (t.first_error.empty()) t.first_error = e.what();
        co_return e.dns_code() == coio::dns_errc::timeout ? outcome::timeout : outcome::failure;
    }
}

coio::coro<double> run_bench(const config& cfg, tally& t) {
    // Creates the default resolver's channel (localhost needs no traffic), so the timed part
    // below measures lookups only, as ref_cares_poll creates its channel before timing.
    (void)co_await coio::getaddrinfo("localhost", 0, {.family = AF_INET, .socktype = SOCK_STREAM});

    // Names are made before the clock starts, as ref_cares_poll does.
    std::vector<coio::coro<outcome>> lookups;
    lookups.reserve(static_cast<std::size_t>(cfg.count));
    for (int i = 0; i < cfg.count; ++i) lookups.push_back(lookup("bench" + std::to_string(i) + ".test", i, t));
    const auto t0 = clock_type::now();
    // Hard bound on the whole run, whatever happens: every lookup gives up after
    // timeout x tries, and at most `inflight` run at once.
    const auto bound = std::chrono::milliseconds(static_cast<long long>(cfg.timeout_ms) * cfg.tries *
                                                 (cfg.count / std::max(cfg.inflight, 1) + 1)) +
                       std::chrono::seconds(10);
    auto results = co_await coio::wait_for(coio::gather(std::move(lookups)), bound);
    const double total_s = std::chrono::duration<double>(clock_type::now() - t0).count();
    for (outcome o : results) {
        switch (o) {
        case outcome::ok: ++t.ok; break;
        case outcome::wrong: ++t.wrong; break;
        case outcome::timeout: ++t.timeouts; break;
        case outcome::failure: ++t.failures; break;
        }
    }
    co_return total_s;
}

} // namespace

int main(int argc, char** argv) {
    const config cfg = parse_args(argc, argv);
    coio::run_options options;
    options.resolver.servers = {cfg.server};
    options.resolver.timeout = std::chrono::milliseconds(cfg.timeout_ms);
    options.resolver.tries = cfg.tries;
    options.resolver.max_inflight = static_cast<std::size_t>(cfg.inflight);
    tally t;
    double total_s = 0;
    try {
        total_s = coio::run(run_bench(cfg, t), options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_dns: %s\n", e.what());
        return 1;
    }
    std::printf("names_per_s=%.0f timeouts=%d failures=%d wrong=%d ok=%d total_s=%.4f count=%d inflight=%d "
                "timeout_ms=%d tries=%d",
                static_cast<double>(t.ok) / total_s, t.timeouts, t.failures, t.wrong, t.ok, total_s, cfg.count,
                cfg.inflight, cfg.timeout_ms, cfg.tries);
    if (!t.first_error.empty()) std::printf(" first_error=\"%s\"", t.first_error.c_str());
    std::printf("\n");
    return t.ok == cfg.count ? 0 : 3;
}
