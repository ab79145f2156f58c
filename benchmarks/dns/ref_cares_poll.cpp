// benchmarks/dns/ref_cares_poll.cpp - reference DNS throughput: plain c-ares + poll().
//
// What it shows: how fast c-ares itself resolves many distinct names against a local
// dnsmasq when driven the way c-ares documents (socket-state callback records interest,
// poll() waits, ares_process_fd() on readiness and on timeout), with no coroutine library in
// between. coio's bench_dns (same server, same names, same c-ares settings) is reported as a
// ratio against this program's capped run; see run.sh.
//
// Names are bench0.test .. bench<N-1>.test; bench<i>.test must resolve to
// 10.<i/65536 % 256>.<i/256 % 256>.<i % 256> (run.sh writes that hosts file). Every answer is
// checked against that address, so a wrong answer counts as a failure, never as throughput.
//
// Usage:
//   ref_cares_poll --server 127.0.0.1:PORT [--count 2000] [--inflight 100]
//                  [--timeout-ms 2000] [--tries 2] [--nosort]
//   --inflight 0 starts all lookups at once (uncapped): on loopback the burst overflows the
//   UDP receive buffers and c-ares has to retransmit after its timeout, which is the drop
//   problem a capped resolver avoids.
// Output: one line of key=value pairs, e.g.
//   names_per_s=41234 timeouts=0 failures=0 ok=2000 retransmits=0 total_s=0.0485 ...
//
// Only the server given with --server is ever contacted: the channel reads /dev/null as its
// resolv.conf, looks nothing up in /etc/hosts (lookups "b"), and has no search domains.
#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct config {
    std::string server;            // "127.0.0.1:PORT"
    int count = 2000;              // distinct names to resolve
    int inflight = 100;            // cap on concurrent lookups; 0 = all at once
    int timeout_ms = 2000;         // c-ares first-try timeout (doubles per retry round)
    int tries = 2;                 // c-ares attempts per query
    bool nosort = false;           // ARES_AI_NOSORT: skip RFC 6724 sorting (a connect() per address)
};

[[noreturn]] void usage(const char* argv0, const char* why) {
    std::fprintf(stderr,
                 "%s: %s\nusage: %s --server 127.0.0.1:PORT [--count N] [--inflight K (0 = all)]"
                 " [--timeout-ms MS] [--tries T] [--nosort]\n",
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
        else if (a == "--nosort") c.nosort = true;
        else usage(argv[0], "unknown argument");
    }
    // Loopback only: this program exists to be pointed at a private dnsmasq.
    if (c.server.rfind("127.", 0) != 0) usage(argv[0], "--server must be 127.x.x.x:PORT");
    if (c.count <= 0) usage(argv[0], "--count must be positive");
    if (c.tries <= 0) usage(argv[0], "--tries must be positive");
    return c;
}

/// The address run.sh's hosts file gives bench<i>.test.
in_addr_t expected_address(int i) {
    const auto u = static_cast<std::uint32_t>(i);
    return htonl((10u << 24) | (((u >> 16) & 0xff) << 16) | (((u >> 8) & 0xff) << 8) | (u & 0xff));
}

struct bench;

struct lookup {
    bench* owner = nullptr;
    int index = 0;
    clock_type::time_point started{};
};

struct bench {
    ares_channel channel = nullptr;
    // fd -> poll events c-ares asked for; ordered so the pollfd array is rebuilt cheaply.
    std::map<ares_socket_t, short> interest;
    std::vector<lookup> lookups;
    std::vector<double> latency_ms;
    int running = 0;
    int done = 0;
    int ok = 0;
    int timeouts = 0;
    int failures = 0;
    int wrong = 0;
    long retransmits = 0;
    int first_error = ARES_SUCCESS;
};

// c-ares calls this whenever it opens, closes or changes interest in a socket. It only
// records the interest; the poll loop below acts on it (the shape coio's own DNS channel has).
void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* b = static_cast<bench*>(data);
    if (!readable && !writable) {
        b->interest.erase(fd);
        return;
    }
    b->interest[fd] = static_cast<short>((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
}

void on_addrinfo(void* arg, int status, int timeouts, ares_addrinfo* result) {
    auto* l = static_cast<lookup*>(arg);
    bench& b = *l->owner;
    --b.running;
    ++b.done;
    b.retransmits += timeouts;
    b.latency_ms.push_back(
        std::chrono::duration<double, std::milli>(clock_type::now() - l->started).count());
    if (status == ARES_SUCCESS) {
        const ares_addrinfo_node* n = result ? result->nodes : nullptr;
        const bool right = n != nullptr && n->ai_next == nullptr && n->ai_family == AF_INET &&
                           reinterpret_cast<const sockaddr_in*>(n->ai_addr)->sin_addr.s_addr ==
                               expected_address(l->index);
        if (right) ++b.ok;
        else ++b.wrong;
    } else {
        if (status == ARES_ETIMEOUT) ++b.timeouts;
        else ++b.failures;
        if (b.first_error == ARES_SUCCESS) b.first_error = status;
    }
    if (result) ares_freeaddrinfo(result);
}

}  // namespace

int main(int argc, char** argv) {
    const config cfg = parse_args(argc, argv);
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        std::fprintf(stderr, "ares_library_init failed\n");
        return 1;
    }

    bench b;
    ares_options opts{};
    int optmask = 0;
    opts.sock_state_cb = on_sock_state;
    opts.sock_state_cb_data = &b;
    optmask |= ARES_OPT_SOCK_STATE_CB;
    opts.timeout = cfg.timeout_ms;
    optmask |= ARES_OPT_TIMEOUTMS;
    opts.tries = cfg.tries;
    optmask |= ARES_OPT_TRIES;
    // Never consult the system resolver configuration: no resolv.conf (its servers and search
    // list), no /etc/hosts, no search domains. The server comes from --server only.
    char resolvconf[] = "/dev/null";
    opts.resolvconf_path = resolvconf;
    optmask |= ARES_OPT_RESOLVCONF;
    char lookups[] = "b";
    opts.lookups = lookups;
    optmask |= ARES_OPT_LOOKUPS;
    opts.domains = nullptr;
    opts.ndomains = 0;
    optmask |= ARES_OPT_DOMAINS;
    opts.flags = ARES_FLAG_NOSEARCH;
    optmask |= ARES_OPT_FLAGS;

    if (const int rc = ares_init_options(&b.channel, &opts, optmask); rc != ARES_SUCCESS) {
        std::fprintf(stderr, "ares_init_options: %s\n", ares_strerror(rc));
        return 1;
    }
    if (const int rc = ares_set_servers_ports_csv(b.channel, cfg.server.c_str()); rc != ARES_SUCCESS) {
        std::fprintf(stderr, "ares_set_servers_ports_csv(%s): %s\n", cfg.server.c_str(), ares_strerror(rc));
        return 1;
    }

    const int cap = cfg.inflight == 0 ? cfg.count : cfg.inflight;
    b.lookups.resize(static_cast<std::size_t>(cfg.count));
    b.latency_ms.reserve(static_cast<std::size_t>(cfg.count));
    std::vector<std::string> names;
    names.reserve(static_cast<std::size_t>(cfg.count));
    for (int i = 0; i < cfg.count; ++i) names.push_back("bench" + std::to_string(i) + ".test");

    ares_addrinfo_hints hints{};
    hints.ai_family = AF_INET;
    hints.ai_flags = cfg.nosort ? ARES_AI_NOSORT : 0;

    // Hard bound on the whole run, whatever c-ares does: worst case every query times out on
    // every try (timeout doubles per round), plus slack.
    long worst_ms = 0;
    for (int t = 0; t < cfg.tries; ++t) worst_ms += static_cast<long>(cfg.timeout_ms) << t;
    const auto give_up = clock_type::now() + std::chrono::milliseconds(worst_ms) +
                         std::chrono::milliseconds(cfg.count) + std::chrono::seconds(10);

    int next = 0;
    std::vector<pollfd> fds;
    const auto t0 = clock_type::now();
    while (b.done < cfg.count) {
        // Top up to the cap. ares_getaddrinfo sends the UDP query before returning.
        while (next < cfg.count && b.running < cap) {
            lookup& l = b.lookups[static_cast<std::size_t>(next)];
            l.owner = &b;
            l.index = next;
            l.started = clock_type::now();
            ++b.running;
            ares_getaddrinfo(b.channel, names[static_cast<std::size_t>(next)].c_str(), nullptr,
                             &hints, on_addrinfo, &l);
            ++next;
        }
        if (b.done >= cfg.count) break;
        if (clock_type::now() > give_up) {
            std::fprintf(stderr, "giving up: run exceeded its time bound\n");
            ares_cancel(b.channel);  // completes the rest with ARES_ECANCELLED
            break;
        }

        // Poll a snapshot: callbacks run by ares_process_fd may change `interest`.
        fds.clear();
        for (const auto& [fd, events] : b.interest) fds.push_back(pollfd{fd, events, 0});
        timeval tv{};
        const timeval* tvp = ares_timeout(b.channel, nullptr, &tv);
        const int wait_ms = tvp == nullptr
                                ? 1000
                                : static_cast<int>(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
        const int n = poll(fds.data(), fds.size(), wait_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            std::perror("poll");
            return 1;
        }
        if (n == 0) {
            ares_process_fd(b.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts only
            continue;
        }
        for (const pollfd& p : fds) {
            if (p.revents == 0) continue;
            const bool rd = (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
            const bool wr = (p.revents & POLLOUT) != 0;
            ares_process_fd(b.channel, rd ? p.fd : ARES_SOCKET_BAD, wr ? p.fd : ARES_SOCKET_BAD);
        }
    }
    const double total_s = std::chrono::duration<double>(clock_type::now() - t0).count();

    ares_destroy(b.channel);
    ares_library_cleanup();

    std::sort(b.latency_ms.begin(), b.latency_ms.end());
    auto pct = [&](double q) {
        if (b.latency_ms.empty()) return 0.0;
        const auto idx = static_cast<std::size_t>(q * static_cast<double>(b.latency_ms.size() - 1));
        return b.latency_ms[idx];
    };
    std::printf("names_per_s=%.0f timeouts=%d failures=%d wrong=%d ok=%d retransmits=%ld "
                "total_s=%.4f count=%d inflight=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
                "timeout_ms=%d tries=%d sort=%s",
                static_cast<double>(b.ok) / total_s, b.timeouts, b.failures, b.wrong, b.ok,
                b.retransmits, total_s, cfg.count, cfg.inflight, pct(0.50), pct(0.99), pct(1.0),
                cfg.timeout_ms, cfg.tries, cfg.nosort ? "no" : "yes");
    if (b.first_error != ARES_SUCCESS) std::printf(" first_error=\"%s\"", ares_strerror(b.first_error));
    std::printf("\n");
    return b.ok == cfg.count ? 0 : 3;
}
