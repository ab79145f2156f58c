// examples/probe.cpp - the motivating example: probe domains concurrently with getaddrinfo
// and print them in the order the answers arrive (asyncio.as_completed).
//
// The Python original (Fluent Python, 2nd ed., "blogdom.py"):
//
//     async def probe(domain: str) -> tuple[str, bool]:
//         loop = asyncio.get_running_loop()
//         try:
//             await loop.getaddrinfo(domain, None)
//         except socket.gaierror:
//             return (domain, False)
//         return (domain, True)
//
//     async def main() -> None:
//         names = (kw for kw in kwlist if len(kw) <= 4)
//         domains = (f'{name}.dev'.lower() for name in names)
//         coros = [probe(domain) for domain in domains]
//         for coro in asyncio.as_completed(coros):
//             domain, found = await coro
//             mark = '+' if found else ' '
//             print(f'{mark} {domain}')
//
// asyncio runs each getaddrinfo in a thread pool; coio resolves them all from one thread with
// c-ares on the io_uring loop.
//
// Usage: probe [--nameserver IP:PORT]... [--timeout SECONDS]
//   --nameserver  DNS server to ask (repeatable); default: the system's (/etc/resolv.conf)
//   --timeout     seconds to wait per try (2 tries per server); default 1. Lookups give up
//                 after timeout x 2 x servers, so the program ends in a few seconds even with
//                 no network.
// Example: probe --nameserver 127.0.0.1:5353 --timeout 0.5
#include <coio/as_completed.hpp>
#include <coio/dns.hpp>
#include <coio/run.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

// Python 3.12's keyword.kwlist.
constexpr std::array<std::string_view, 35> kwlist = {
    "False", "None",   "True",    "and",      "as",     "assert", "async",  "await", "break",
    "class", "continue", "def",   "del",      "elif",   "else",   "except", "finally", "for",
    "from",  "global", "if",      "import",   "in",     "is",     "lambda", "nonlocal", "not",
    "or",    "pass",   "raise",   "return",   "try",    "while",  "with",   "yield"};

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

coio::coro<std::pair<std::string, bool>> probe(std::string domain) {
    try {
        co_await coio::getaddrinfo(domain);
    } catch (const coio::gaierror&) {
        co_return std::pair{std::move(domain), false};
    }
    co_return std::pair{std::move(domain), true};
}

coio::coro<void> amain() {
    std::vector<coio::coro<std::pair<std::string, bool>>> coros;
    for (std::string_view kw : kwlist)
        if (kw.size() <= 4) coros.push_back(probe(lower(kw) + ".dev"));
    for (auto&& next : coio::as_completed(std::move(coros))) {
        auto [domain, found] = co_await next;
        std::cout << (found ? '+' : ' ') << ' ' << domain << std::endl;  // flushed: shows the order
    }
}

[[noreturn]] void usage(const char* argv0, const std::string& why) {
    std::cerr << argv0 << ": " << why << "\nusage: " << argv0 << " [--nameserver IP:PORT]... [--timeout SECONDS]\n";
    std::exit(2);
}

} // namespace

int main(int argc, char** argv) {
    coio::run_options options;
    options.resolver.timeout = std::chrono::seconds(1);
    options.resolver.tries = 2;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--nameserver" && i + 1 < argc) {
            options.resolver.servers.emplace_back(argv[++i]);
        } else if (arg == "--timeout" && i + 1 < argc) {
            char* end = nullptr;
            const double seconds = std::strtod(argv[++i], &end);
            if (*end != '\0' || !(seconds > 0) || seconds > 3600) usage(argv[0], "bad --timeout");
            options.resolver.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::duration<double>(seconds));
            if (options.resolver.timeout.count() == 0) options.resolver.timeout = std::chrono::milliseconds(1);
        } else {
            usage(argv[0], "unknown argument '" + std::string(arg) + "'");
        }
    }
    return coio::run_main(amain(), options);  // errors: "type: message", exit 1; Ctrl-C: 130
}
