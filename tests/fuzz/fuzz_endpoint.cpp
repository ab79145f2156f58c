// tests/fuzz/fuzz_endpoint.cpp - libFuzzer target: the text forms coio accepts for
// addresses. coio::endpoint::parse/try_parse must agree with each other and round-trip
// through to_string() and host(); a list of resolver server strings
// (resolver_options::servers) is either refused by coio::resolver's constructor with
// std::invalid_argument, or every entry reaches c-ares in a form c-ares accepts, with the
// same address and port (coio promises refusal at construction, never a failure at the
// first lookup).
//
// Input: the text itself; for the server list it is split at '\n' into up to 8 entries.
// Run: build with -DCOIO_BUILD_FUZZERS=ON (clang), then
//   build/tests/fuzz/fuzz_endpoint tests/fuzz/corpus/fuzz_endpoint -max_total_time=30
#include <coio/endpoint.hpp>
#include <coio/dns.hpp>

#include <ares.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void finding(const char* what, std::string_view input) {
    std::fprintf(stderr, "fuzz_endpoint: %s (input '%.*s')\n", what, static_cast<int>(input.size()), input.data());
    std::abort();
}

void check_endpoint(std::string_view text) {
    const auto e = coio::endpoint::try_parse(text, 7);
    bool threw = false;
    try {
        (void)coio::endpoint::parse(text, 7);
    } catch (const std::invalid_argument&) {
        threw = true;
    }
    if (threw == e.has_value()) finding("parse() and try_parse() disagree", text);
    if (!e) return;
    if (!e->is_v4() && !e->is_v6()) finding("a parsed endpoint is neither IPv4 nor IPv6", text);
    const std::string s = e->to_string();
    const auto back = coio::endpoint::try_parse(s);
    if (!back) finding("to_string() does not parse back", s);
    if (*back != *e) finding("to_string() parses back to another endpoint", s);
    const auto host = coio::endpoint::try_parse(e->host(), e->port());
    if (!host || *host != *e) finding("host() with port() does not give the endpoint back", e->host());
}

ares_channel c_ares() {
    static ares_channel ch = [] {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) std::abort();
        ares_channel c = nullptr;
        // Reads resolv.conf; never sends a query (no lookup is ever made on it).
        if (ares_init(&c) != ARES_SUCCESS) std::abort();
        return c;
    }();
    return ch;
}

void check_servers(std::string_view text) {
    std::vector<std::string> servers;
    for (std::size_t start = 0; start <= text.size() && servers.size() < 8;) {
        const std::size_t nl = std::min(text.find('\n', start), text.size());
        servers.emplace_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    try {
        coio::resolver r({.servers = servers});  // no loop needed: the channel is made lazily
    } catch (const std::invalid_argument&) {
        return;  // refused at construction: what coio promises for a malformed entry
    }
    // Accepted: what coio will hand c-ares must be taken as is.
    const std::string csv = coio::detail::dns::access::servers_csv(servers);
    const int rc = ares_set_servers_ports_csv(c_ares(), csv.c_str());
    if (rc != ARES_SUCCESS) finding("coio::resolver accepted servers that c-ares refuses (it would fail at the first lookup)", csv);
    ares_addr_port_node* got = nullptr;
    if (ares_get_servers_ports(c_ares(), &got) != ARES_SUCCESS) finding("ares_get_servers_ports failed", csv);
    std::size_t i = 0;
    for (auto* n = got; n; n = n->next, ++i) {
        if (i >= servers.size()) finding("c-ares has more servers than were given", csv);
        const auto want = coio::endpoint::parse(servers[i], 53);
        if (n->family != want.family() || n->udp_port != want.port()) finding("c-ares got another server", csv);
        const void* a = want.is_v4() ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(want.data())->sin_addr)
                                     : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(want.data())->sin6_addr);
        if (std::memcmp(&n->addr, a, want.is_v4() ? 4 : 16) != 0) finding("c-ares got another server address", csv);
    }
    ares_free_data(got);
    if (i != servers.size()) finding("c-ares has fewer servers than were given", csv);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_endpoint(text);
    check_servers(text);
    return 0;
}
