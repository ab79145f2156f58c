// examples/multi_probe.cpp - an async generator over as_completed: probe domains
// concurrently and consume the results as they arrive, with `co_yield` in between.
//
// The Python original (Fluent Python, 2nd ed., "domainlib.py"):
//
//     async def multi_probe(domains: Iterable[str]) -> AsyncIterator[Result]:
//         coros = [probe(domain) for domain in domains]
//         for coro in asyncio.as_completed(coros):
//             result = await coro
//             yield result
//
//     names = 'python.org rust-lang.org golang.org no-lang.invalid'.split()
//     async for domain, found in multi_probe(names):
//         print(f'{domain}\t{found}')
//
// C++20 has no `async for`; coio's async_generator iterates with `co_await gen.begin()` and
// `co_await ++it`. Output: one "domain<TAB>True|False" line per name, in completion order.
//
// Usage: multi_probe [--nameserver IP:PORT]... [--timeout SECONDS]
//   --nameserver  DNS server to ask (repeatable); default: the system's (/etc/resolv.conf)
//   --timeout     seconds to wait per try (2 tries per server); default 1, so the program
//                 ends in a few seconds even with no network.
// Example: multi_probe --nameserver 127.0.0.1:5353
#include <coio/as_completed.hpp>
#include <coio/async_generator.hpp>
#include <coio/dns.hpp>
#include <coio/run.hpp>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

struct result {
    std::string domain;
    bool found = false;
};

coio::coro<result> probe(std::string domain) {
    try {
        co_await coio::getaddrinfo(domain);
    } catch (const coio::gaierror&) {
        co_return result{std::move(domain), false};
    }
    co_return result{std::move(domain), true};
}

coio::async_generator<result> multi_probe(std::vector<std::string> domains) {
    std::vector<coio::coro<result>> coros;
    for (auto& d : domains) coros.push_back(probe(d));
    for (auto&& next : coio::as_completed(std::move(coros))) co_yield co_await next;
}

coio::coro<void> amain() {
    auto gen = multi_probe({"python.org", "rust-lang.org", "golang.org", "no-lang.invalid"});
    for (auto it = co_await gen.begin(); it != gen.end(); co_await ++it)
        std::cout << it->domain << '\t' << (it->found ? "True" : "False") << std::endl;
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
