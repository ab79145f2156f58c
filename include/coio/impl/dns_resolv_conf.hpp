// coio/impl/dns_resolv_conf.hpp - the system's DNS timeout and attempts, from
// /etc/resolv.conf's "options" lines and $RES_OPTIONS. Not API.
//
// Why coio reads them itself: c-ares 1.18 knows only its own "retrans:"/"retry:" spellings,
// so a resolv.conf saying "options timeout:2 attempts:3" (glibc's spelling) would otherwise
// be ignored. Only these two settings are read here; servers, search domains and ndots are
// left to c-ares.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace coio::detail::dns {

/// What /etc/resolv.conf's "options" lines and $RES_OPTIONS say about retries.
struct system_settings {
    std::optional<std::chrono::milliseconds> timeout;  // first-try timeout
    std::optional<int> tries;                          // attempts per server
};

/// Applies whitespace-separated resolver options (a resolv.conf "options" line without the
/// keyword, or $RES_OPTIONS) to `out`, later words winning: "timeout:n" (seconds) and
/// "attempts:n", as glibc and later c-ares read them, and c-ares 1.18's own "retrans:n"
/// (milliseconds) and "retry:n". Values that are not positive numbers are ignored.
inline void apply_resolver_options(std::string_view words, system_settings& out) noexcept {
    auto number = [](std::string_view v) -> long {
        if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string_view::npos) return 0;
        long n = 0;
        for (char c : v) n = n * 10 + (c - '0');
        return n;
    };
    while (!words.empty()) {
        const auto start = words.find_first_not_of(" \t\r");
        if (start == std::string_view::npos) return;
        words.remove_prefix(start);
        const auto end = words.find_first_of(" \t\r");
        const std::string_view w = words.substr(0, end);
        words = end == std::string_view::npos ? std::string_view{} : words.substr(end);
        const auto colon = w.find(':');
        if (colon == std::string_view::npos) continue;
        const std::string_view key = w.substr(0, colon);
        const long v = number(w.substr(colon + 1));
        if (v <= 0) continue;
        if (key == "timeout") out.timeout = std::chrono::seconds(v);
        else if (key == "retrans") out.timeout = std::chrono::milliseconds(v);
        else if (key == "attempts" || key == "retry") out.tries = static_cast<int>(v);
    }
}

/// The settings of a resolv.conf text, then of $RES_OPTIONS (`env`, may be null), which
/// overrides the file as it does for glibc.
inline system_settings read_system_settings(std::string_view resolv_conf, const char* env) noexcept {
    system_settings out;
    while (!resolv_conf.empty()) {
        const auto eol = resolv_conf.find('\n');
        std::string_view line = resolv_conf.substr(0, eol);
        resolv_conf = eol == std::string_view::npos ? std::string_view{} : resolv_conf.substr(eol + 1);
        constexpr std::string_view key = "options";
        if (line.rfind(key, 0) == 0 && line.size() > key.size() && (line[key.size()] == ' ' || line[key.size()] == '\t'))
            apply_resolver_options(line.substr(key.size()), out);
    }
    if (env) apply_resolver_options(env, out);
    return out;
}

/// The system's settings: /etc/resolv.conf and $RES_OPTIONS. coio reads them itself because
/// c-ares 1.18 knows only its own "retrans:"/"retry:" spellings, so a resolv.conf saying
/// "options timeout:2 attempts:3" would otherwise be ignored.
inline system_settings system_resolver_settings() {
    std::string text;
    if (std::FILE* f = std::fopen("/etc/resolv.conf", "re")) {
        char buf[4096];
        for (std::size_t n; text.size() < (1u << 20) && (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
        std::fclose(f);
    }
    return read_system_settings(text, std::getenv("RES_OPTIONS"));
}

} // namespace coio::detail::dns
