// benchmarks/dns/bench_dns.cpp - coio's DNS throughput: N getaddrinfo started at once.
//
// What it measures: the pattern of examples/probe.cpp, `gather` of N `coio::getaddrinfo` calls all started
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
// Burst mode (`--family unspec --reps 20`): the same burst repeated on one loop and one
// resolver, each lookup AF_UNSPEC, i.e. two queries (A and AAAA). It reports the slowest
// repetition and the datagrams the server's UDP socket dropped meanwhile (the "drops"
// column of /proc/net/udp for the server's port): a dropped query costs a whole c-ares
// retry timeout, so one drop shows as a repetition of about `--timeout-ms` instead of tens
// of milliseconds. With `--inflight` left out the resolver's default cap is used, and with
// `--timeout-ms 0 --tries 0` its default timeout and tries.
//
// Usage:
//   bench_dns --server 127.0.0.1:PORT [--count 2000] [--inflight 100] [--timeout-ms 2000]
//             [--tries 2] [--family inet|unspec] [--reps 1]
// Output: one line of key=value pairs (the format run.sh parses), e.g.
//   names_per_s=31234 timeouts=0 failures=0 wrong=0 ok=2000 total_s=0.0640 count=2000 ...
//   ... reps=20 max_rep_s=0.0712 reps_over_1s=0 server_drops=0
// names_per_s is over all repetitions (verified answers / total time).
// Settings match ref_cares_poll's: AF_INET, c-ares' RFC 6724 sorting on, timeout 2000 ms x 2
// tries. Only the server given with --server is ever contacted.
#include <coio/dns.hpp>
#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/timeout.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct config {
    std::string server;
    int count = 2000;
    int inflight = -1;  // -1: resolver_options' default
    int timeout_ms = 2000;  // 0: resolver_options' default
    int tries = 2;          // 0: resolver_options' default
    int family = AF_INET;
    int reps = 1;
};

[[noreturn]] void usage(const char* argv0, const char* why) {
    std::fprintf(stderr,
                 "%s: %s\nusage: %s --server 127.0.0.1:PORT [--count N] [--inflight K] [--timeout-ms MS] [--tries T]"
                 " [--family inet|unspec] [--reps R]\n",
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
        else if (a == "--reps") c.reps = number(i);
        else if (a == "--family" && i + 1 < argc) {
            const std::string_view f = argv[++i];
            if (f == "inet") c.family = AF_INET;
            else if (f == "unspec") c.family = AF_UNSPEC;
            else usage(argv[0], "--family must be inet or unspec");
        }
        else usage(argv[0], "unknown argument");
    }
    // Loopback only: this program exists to be pointed at a private dnsmasq.
    if (c.server.rfind("127.", 0) != 0) usage(argv[0], "--server must be 127.x.x.x:PORT");
    if (c.count <= 0) usage(argv[0], "--count must be positive");
    if (c.reps <= 0) usage(argv[0], "--reps must be positive");
    if (c.tries < 0 || c.timeout_ms < 0) usage(argv[0], "--tries and --timeout-ms must not be negative");
    return c;
}

/// The address run.sh's hosts file gives bench<i>.test, in network byte order.
std::uint32_t expected_address(int i) {
    const auto u = static_cast<std::uint32_t>(i);
    return htonl((10u << 24) | (((u >> 16) & 0xff) << 16) | (((u >> 8) & 0xff) << 8) | (u & 0xff));
}

/// Datagrams dropped so far by the UDP socket bound to 127.0.0.1:`port` (the server's): the
/// last column of its /proc/net/udp line. nullopt when no such socket is listed.
std::optional<unsigned long long> udp_drops(int port) {
    std::ifstream in("/proc/net/udp");
    char local[32];
    std::snprintf(local, sizeof local, "0100007F:%04X", static_cast<unsigned>(port));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string slot, address, last, w;
        words >> slot >> address;
        if (address != local) continue;
        while (words >> w) last = w;
        return std::strtoull(last.c_str(), nullptr, 10);
    }
    return std::nullopt;
}

enum class outcome { ok, wrong, timeout, failure };

struct tally {
    int ok = 0;
    int wrong = 0;
    int timeouts = 0;
    int failures = 0;
    std::string first_error;
};

coio::coro<outcome> lookup(std::string name, int index, int family, tally& t) {
    try {
        auto v = co_await coio::getaddrinfo(std::move(name), 0, {.family = family, .socktype = SOCK_STREAM});
        const bool right = v.size() == 1 &&
                           reinterpret_cast<const sockaddr_in*>(v[0].address.data())->sin_addr.s_addr == expected_address(index);
        co_return right ? outcome::ok : outcome::wrong;
    } catch (const coio::gaierror& e) {
        if (t.first_error.empty()) t.first_error = e.what();
        co_return e.dns_code() == coio::dns_errc::timeout ? outcome::timeout : outcome::failure;
    }
}

/// One burst: `cfg.count` lookups started at once. Returns its duration in seconds.
coio::coro<double> one_burst(const config& cfg, tally& t) {
    // Names are made before the clock starts, as ref_cares_poll does.
    std::vector<coio::coro<outcome>> lookups;
    lookups.reserve(static_cast<std::size_t>(cfg.count));
    for (int i = 0; i < cfg.count; ++i) lookups.push_back(lookup("bench" + std::to_string(i) + ".test", i, cfg.family, t));
    const auto t0 = clock_type::now();
    // Hard bound on the burst, whatever happens: every lookup gives up after timeout x tries
    // from its start (time spent queued counts).
    const auto bound = std::chrono::milliseconds(static_cast<long long>(cfg.timeout_ms ? cfg.timeout_ms : 5000) *
                                                 (cfg.tries ? cfg.tries : 4)) +
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

struct totals {
    double total_s = 0;
    double max_rep_s = 0;
    int reps_over_1s = 0;
};

coio::coro<totals> run_bench(const config& cfg, tally& t) {
    // Creates the default resolver's channel (localhost needs no traffic), so the timed part
    // below measures lookups only, as ref_cares_poll creates its channel before timing.
    (void)co_await coio::getaddrinfo("localhost", 0, {.family = AF_INET, .socktype = SOCK_STREAM});
    totals out;
    for (int r = 0; r < cfg.reps; ++r) {
        const double s = co_await one_burst(cfg, t);
        out.total_s += s;
        out.max_rep_s = std::max(out.max_rep_s, s);
        if (s > 1.0) ++out.reps_over_1s;
    }
    co_return out;
}

} // namespace

int main(int argc, char** argv) {
    const config cfg = parse_args(argc, argv);
    coio::run_options options;
    options.resolver.servers = {cfg.server};
    options.resolver.timeout = std::chrono::milliseconds(cfg.timeout_ms);
    options.resolver.tries = cfg.tries;
    if (cfg.inflight >= 0) options.resolver.max_inflight = static_cast<std::size_t>(cfg.inflight);
    const int port = std::atoi(cfg.server.substr(cfg.server.rfind(':') + 1).c_str());
    const auto drops_before = udp_drops(port);
    tally t;
    totals tot;
    try {
        tot = coio::run(run_bench(cfg, t), options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_dns: %s\n", e.what());
        return 1;
    }
    const auto drops_after = udp_drops(port);
    std::printf("names_per_s=%.0f timeouts=%d failures=%d wrong=%d ok=%d total_s=%.4f count=%d inflight=%zu "
                "timeout_ms=%d tries=%d family=%s reps=%d max_rep_s=%.4f reps_over_1s=%d",
                static_cast<double>(t.ok) / tot.total_s, t.timeouts, t.failures, t.wrong, t.ok, tot.total_s, cfg.count,
                options.resolver.max_inflight, cfg.timeout_ms, cfg.tries, cfg.family == AF_INET ? "inet" : "unspec",
                cfg.reps, tot.max_rep_s, tot.reps_over_1s);
    if (drops_before && drops_after) std::printf(" server_drops=%llu", *drops_after - *drops_before);
    else std::printf(" server_drops=unknown");
    if (!t.first_error.empty()) std::printf(" first_error=\"%s\"", t.first_error.c_str());
    std::printf("\n");
    return t.ok == cfg.count * cfg.reps ? 0 : 3;
}
