// tests/support/dnsmasq.hpp - a private DNS server on 127.0.0.1 for resolver tests.
//
// coio's resolver tests must never touch the system resolver or the network, yet they need
// real DNS answers (A, AAAA, CNAME, MX, NS, PTR, SRV, TXT, SOA, CAA, NXDOMAIN, timeouts).
// coio_test::dnsmasq starts a dnsmasq (Debian package dnsmasq-base, /usr/sbin/dnsmasq) in the
// foreground on a free port of 127.0.0.1, serving only the records the test declares, and
// stops it (by PID) in its destructor. coio_test::blackhole_udp is a UDP port that never
// answers, for timeout tests. coio_test::dns_query is a hand-built UDP query used to wait
// until dnsmasq answers, and usable by tests to cross-check what the server serves.
//
// What dnsmasq serves, and how this fixture asks for it (checked against dnsmasq 2.90):
//   A, AAAA   hosts file (--addn-hosts): one "address name" line per address. A name with
//             only IPv6 addresses answers A queries with NOERROR and no records (NODATA).
//   PTR       automatic for the first name of each hosts-file address (in-addr.arpa and
//             ip6.arpa), plus explicit --ptr-record=<name>,<target>.
//   CNAME     --cname=<alias>,<target>; the target must be a local record (dnsmasq never
//             follows a CNAME upstream). An A query on the alias returns CNAME + A.
//   MX        --mx-host=<name>,<exchange>,<preference>
//   SRV       --srv-host=<_service._proto.name>,<target>,<port>,<priority>,<weight>
//   TXT       --txt-record=<name>,"<string>",... (each string <= 255 bytes, else split)
//   CAA       --caa-record=<name>,<flags>,<tag>,"<value>"
//   NS, SOA   --dns-rr=<name>,<type>,<hex rdata> (raw record; the fixture encodes rdata).
//             dnsmasq's own NS/SOA come only from --auth-zone/--auth-server, which switches
//             the zone to authoritative mode (TTLs become --auth-ttl, different code path)
//             and in 2.90 returns a corrupt NS name for --auth-sec-servers on the recursive
//             path; raw records avoid both. Quirk: a name that carries *only* --dns-rr
//             records answers NXDOMAIN (not NODATA) for other types.
//   other     raw_records (any type number, rdata bytes as given).
// Every name not configured, in any domain, gets NXDOMAIN: the fixture passes --local=/#/
// ("all domains are local, never forward") and no upstream server at all (--no-resolv), so
// no query ever leaves 127.0.0.1. TTL of every answer is options::ttl (--local-ttl, default
// 0, which is also dnsmasq's default: "do not cache"). Answers are not rotated
// (--no-round-robin), so multi-address names come back in hosts-file order. Not passed on
// purpose: --no-negcache and --cache-size (both concern upstream answers, and there is no
// upstream; --cache-size=0 even made lookups in a 20000-name hosts file ~2x slower).
// A UDP reply over 512 bytes (the query has no EDNS) comes back with TC set, and the full
// answer is served over TCP on the same port: a big TXT record exercises TCP fallback.
//
// Typical use (the later resolver tests; Catch2 flavour in dnsmasq_catch.hpp):
//
//     #include <coio/dns.hpp>
//     #include "support/catch.hpp"
//     #include "support/dnsmasq_catch.hpp"
//
//     TEST_CASE("getaddrinfo resolves A and AAAA through a private server") {
//         COIO_TEST_REQUIRE_DNSMASQ();             // SKIP without dnsmasq, FAIL if $CI is set
//         coio_test::dnsmasq server({{"a.test", {"10.0.0.1", "fd00::1"}}});
//         coio::resolver r({.servers = {server.address()}});   // "127.0.0.1:<port>"
//         ...
//     }
//
//     coio_test::dnsmasq server({
//         .hosts = {{"a.test", {"10.0.0.1"}}, {"six.test", {"fd00::6"}}},
//         .cnames = {{"www.test", "a.test"}},
//         .mx = {{"test", "mail.test", 10}},
//         .srv = {{"_http._tcp.test", "a.test", 8080, 1, 5}},
//         .txt = {{"t.test", {"v=spf1 -all", "second string"}}},
//         .ns = {{"test", "ns1.test"}},
//         .soa = {{.zone = "test", .mname = "ns1.test", .rname = "hostmaster.test"}},
//         .ttl = 300,
//     });
//
// Requirements: POSIX, glibc (posix_spawn_file_actions_addclosefrom_np when available).
// The fixture is not thread-safe; construct and destroy it on one thread. A test process that
// is SIGKILLed leaves its dnsmasq running (posix_spawn offers no parent-death signal); the
// process then serves only 127.0.0.1 on a random port until killed.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

extern "C" {
extern char** environ;  // POSIX: declared by no standard header; posix_spawn needs it
}

namespace coio_test {

/// DNS record type numbers (RFC 1035 and successors) used with dns_query and raw_record.
namespace dns_type {
inline constexpr std::uint16_t a = 1;
inline constexpr std::uint16_t ns = 2;
inline constexpr std::uint16_t cname = 5;
inline constexpr std::uint16_t soa = 6;
inline constexpr std::uint16_t ptr = 12;
inline constexpr std::uint16_t mx = 15;
inline constexpr std::uint16_t txt = 16;
inline constexpr std::uint16_t aaaa = 28;
inline constexpr std::uint16_t srv = 33;
inline constexpr std::uint16_t naptr = 35;
inline constexpr std::uint16_t caa = 257;
}  // namespace dns_type

/// DNS response codes (RFC 1035 section 4.1.1) as returned in dns_reply::rcode.
namespace dns_rcode {
inline constexpr int noerror = 0;
inline constexpr int formerr = 1;
inline constexpr int servfail = 2;
inline constexpr int nxdomain = 3;
inline constexpr int notimp = 4;
inline constexpr int refused = 5;
}  // namespace dns_rcode

/// One resource record of a reply's answer section, decoded to text.
///
/// `data` is presentation-like text: A/AAAA the address ("10.0.0.1", "fd00::1"); CNAME, NS,
/// PTR the target name without trailing dot; MX "<preference> <exchange>"; SRV
/// "<priority> <weight> <port> <target>"; TXT the strings each in double quotes, separated by
/// a space (no escaping); SOA "<mname> <rname> <serial> <refresh> <retry> <expire> <minimum>";
/// CAA "<flags> <tag> <value>"; any other type the rdata as lowercase hex.
struct dns_answer {
    std::string name;        ///< owner name, lowercase as sent by the server, no trailing dot
    std::uint16_t type = 0;  ///< record type, see dns_type
    std::uint32_t ttl = 0;   ///< time to live in seconds
    std::string data;        ///< decoded rdata, see above
};

/// A decoded DNS reply: response code, truncation flag and the answer section.
struct dns_reply {
    int rcode = 0;                     ///< see dns_rcode
    bool truncated = false;            ///< TC bit: the answer did not fit in UDP
    std::vector<dns_answer> answers;   ///< answer section in wire order
};

namespace detail_dnsmasq {

/// Appends `name` in DNS wire format (length-prefixed labels, terminating zero byte).
/// Throws std::invalid_argument for empty labels, labels over 63 bytes or names over 255.
inline void append_wire_name(std::vector<std::uint8_t>& out, std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    std::size_t total = 1;
    while (!name.empty()) {
        const auto dot = name.find('.');
        const auto label = name.substr(0, dot);
        if (label.empty() || label.size() > 63)
            throw std::invalid_argument("coio_test: invalid DNS label in name '" +
                                        std::string(name) + "'");
        total += label.size() + 1;
        if (total > 255) throw std::invalid_argument("coio_test: DNS name longer than 255 bytes");
        out.push_back(static_cast<std::uint8_t>(label.size()));
        out.insert(out.end(), label.begin(), label.end());
        name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
    }
    out.push_back(0);
}

inline void append_u16(std::vector<std::uint8_t>& out, std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v & 0xff));
}

inline void append_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    append_u16(out, static_cast<std::uint16_t>(v >> 16));
    append_u16(out, static_cast<std::uint16_t>(v & 0xffff));
}

inline std::string to_hex(const std::vector<std::uint8_t>& bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(bytes.size() * 2);
    for (auto b : bytes) {
        s.push_back(digits[b >> 4]);
        s.push_back(digits[b & 0xf]);
    }
    return s;
}

/// Bounds-checked reader over a received datagram; every accessor throws std::out_of_range
/// on a short or malformed packet, so a garbage reply can never read past the buffer.
class packet_reader {
public:
    packet_reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

    std::uint8_t u8(std::size_t& pos) const {
        need(pos, 1);
        return data_[pos++];
    }
    std::uint16_t u16(std::size_t& pos) const {
        need(pos, 2);
        const auto v = static_cast<std::uint16_t>((data_[pos] << 8) | data_[pos + 1]);
        pos += 2;
        return v;
    }
    std::uint32_t u32(std::size_t& pos) const {
        const std::uint32_t hi = u16(pos);
        return (hi << 16) | u16(pos);
    }
    const std::uint8_t* bytes(std::size_t pos, std::size_t n) const {
        need(pos, n);
        return data_ + pos;
    }
    /// Reads a possibly compressed name starting at `pos`, advancing `pos` past it.
    std::string name(std::size_t& pos) const {
        std::string out;
        std::size_t cur = pos;
        bool jumped = false;
        for (int hops = 0;; ++hops) {
            // A well-formed name needs at most 127 labels; more means a pointer loop.
            if (hops > 128) throw std::out_of_range("coio_test: DNS name compression loop");
            const std::uint8_t len = u8(cur);
            if (len == 0) break;
            if ((len & 0xc0) == 0xc0) {
                const std::size_t target = static_cast<std::size_t>(((len & 0x3f) << 8) | u8(cur));
                if (!jumped) pos = cur;
                jumped = true;
                cur = target;
                continue;
            }
            if (len > 63) throw std::out_of_range("coio_test: bad DNS label length");
            const auto* p = bytes(cur, len);
            if (!out.empty()) out.push_back('.');
            out.append(reinterpret_cast<const char*>(p), len);
            cur += len;
        }
        if (!jumped) pos = cur;
        return out.empty() ? std::string(".") : out;
    }
    std::size_t size() const { return size_; }

private:
    void need(std::size_t pos, std::size_t n) const {
        if (pos > size_ || n > size_ - pos) throw std::out_of_range("coio_test: truncated DNS reply");
    }
    const std::uint8_t* data_;
    std::size_t size_;
};

inline std::string decode_rdata(const packet_reader& r, std::uint16_t type, std::size_t pos,
                                std::size_t len) {
    const std::size_t end = pos + len;
    char buf[INET6_ADDRSTRLEN] = {};
    switch (type) {
    case dns_type::a:
        if (len != 4) break;
        ::inet_ntop(AF_INET, r.bytes(pos, 4), buf, sizeof buf);
        return buf;
    case dns_type::aaaa:
        if (len != 16) break;
        ::inet_ntop(AF_INET6, r.bytes(pos, 16), buf, sizeof buf);
        return buf;
    case dns_type::cname:
    case dns_type::ns:
    case dns_type::ptr:
        return r.name(pos);
    case dns_type::mx: {
        const auto pref = r.u16(pos);
        return std::to_string(pref) + " " + r.name(pos);
    }
    case dns_type::srv: {
        const auto prio = r.u16(pos);
        const auto weight = r.u16(pos);
        const auto port = r.u16(pos);
        return std::to_string(prio) + " " + std::to_string(weight) + " " + std::to_string(port) +
               " " + r.name(pos);
    }
    case dns_type::txt: {
        std::string out;
        while (pos < end) {
            const auto n = r.u8(pos);
            const auto* p = r.bytes(pos, n);
            if (!out.empty()) out.push_back(' ');
            out += '"';
            out.append(reinterpret_cast<const char*>(p), n);
            out += '"';
            pos += n;
        }
        return out;
    }
    case dns_type::soa: {
        std::string out = r.name(pos);
        out += " " + r.name(pos);
        for (int i = 0; i < 5; ++i) out += " " + std::to_string(r.u32(pos));
        return out;
    }
    case dns_type::caa: {
        const auto flags = r.u8(pos);
        const auto tag_len = r.u8(pos);
        const auto* tag = r.bytes(pos, tag_len);
        pos += tag_len;
        if (pos > end) break;
        const auto* value = r.bytes(pos, end - pos);
        return std::to_string(flags) + " " +
               std::string(reinterpret_cast<const char*>(tag), tag_len) + " " +
               std::string(reinterpret_cast<const char*>(value), end - pos);
    }
    default:
        break;
    }
    const auto* p = r.bytes(pos, len);
    return to_hex(std::vector<std::uint8_t>(p, p + len));
}

/// Builds a standard recursive query (RD set, one question, class IN, no EDNS).
inline std::vector<std::uint8_t> build_query(std::uint16_t id, std::string_view name,
                                             std::uint16_t type) {
    std::vector<std::uint8_t> q;
    append_u16(q, id);
    append_u16(q, 0x0100);  // QR=0 opcode=QUERY RD=1
    append_u16(q, 1);       // QDCOUNT
    append_u16(q, 0);       // ANCOUNT
    append_u16(q, 0);       // NSCOUNT
    append_u16(q, 0);       // ARCOUNT
    append_wire_name(q, name);
    append_u16(q, type);
    append_u16(q, 1);  // class IN
    return q;
}

/// Parses a reply to query `id`; nullopt if it is not a response to that id (stray datagram).
inline std::optional<dns_reply> parse_reply(const std::uint8_t* data, std::size_t size,
                                            std::uint16_t id) {
    packet_reader r(data, size);
    std::size_t pos = 0;
    if (r.u16(pos) != id) return std::nullopt;
    const auto flags = r.u16(pos);
    if ((flags & 0x8000) == 0) return std::nullopt;  // not a response
    dns_reply reply;
    reply.rcode = flags & 0x000f;
    reply.truncated = (flags & 0x0200) != 0;
    const auto qdcount = r.u16(pos);
    const auto ancount = r.u16(pos);
    pos += 4;  // NSCOUNT, ARCOUNT: authority and additional sections are not decoded
    for (unsigned i = 0; i < qdcount; ++i) {
        (void)r.name(pos);
        pos += 4;  // QTYPE, QCLASS
    }
    for (unsigned i = 0; i < ancount; ++i) {
        dns_answer a;
        a.name = r.name(pos);
        a.type = r.u16(pos);
        (void)r.u16(pos);  // class
        a.ttl = r.u32(pos);
        const auto rdlen = r.u16(pos);
        (void)r.bytes(pos, rdlen);  // bounds check before decoding
        a.data = decode_rdata(r, a.type, pos, rdlen);
        pos += rdlen;
        reply.answers.push_back(std::move(a));
    }
    return reply;
}

/// A file descriptor closed on scope exit.
class unique_fd {
public:
    explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }
    int get() const noexcept { return fd_; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

inline sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

inline std::system_error errno_error(const std::string& what) {
    return std::system_error(errno, std::generic_category(), "coio_test: " + what);
}

/// Binds a socket of `type` to 127.0.0.1:`port` (0 = kernel's choice) and returns it.
inline unique_fd bind_loopback(int type, std::uint16_t port) {
    unique_fd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) throw errno_error("socket");
    const auto sa = loopback(port);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
        return unique_fd{};
    return fd;
}

inline std::uint16_t local_port(int fd) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
        throw errno_error("getsockname");
    return ntohs(sa.sin_port);
}

/// A port of 127.0.0.1 that is free for both UDP and TCP right now. Both sockets are closed
/// before returning, so another process may still take it: the caller retries on EADDRINUSE.
inline std::uint16_t pick_free_port() {
    for (int attempt = 0; attempt < 64; ++attempt) {
        auto udp = bind_loopback(SOCK_DGRAM, 0);
        if (udp.get() < 0) throw errno_error("bind UDP 127.0.0.1:0");
        const auto port = local_port(udp.get());
        if (auto tcp = bind_loopback(SOCK_STREAM, port); tcp.get() >= 0) return port;
    }
    throw std::runtime_error("coio_test: no port free for both UDP and TCP on 127.0.0.1");
}

/// Whether `s` is safe inside a dnsmasq option value (the hosts file and conf file are
/// line- and comma-separated; a stray comma or newline would silently change the record).
inline void check_token(std::string_view what, std::string_view s) {
    if (s.empty()) throw std::invalid_argument("coio_test::dnsmasq: empty " + std::string(what));
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= ' ' || u == 0x7f || c == ',' || c == '#' || c == '"' || c == '\\' || c == '/')
            throw std::invalid_argument("coio_test::dnsmasq: invalid character in " +
                                        std::string(what) + " '" + std::string(s) + "'");
    }
}

/// Quotes `s` for a dnsmasq conf-file value: commas inside quotes are kept, and dnsmasq's
/// conf reader understands \" and \\ escapes inside quoted strings.
inline std::string conf_quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '\n' || c == '\r' || c == '\0')
            throw std::invalid_argument("coio_test::dnsmasq: newline or NUL in a text value");
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out += '"';
    return out;
}

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// True when $CI is set to something other than "", "0" or "false" (GitHub Actions, GitLab
/// and most CI systems set CI=true).
inline bool running_in_ci() {
    const char* ci = std::getenv("CI");
    if (ci == nullptr) return false;
    const std::string_view v(ci);
    return !(v.empty() || v == "0" || v == "false" || v == "FALSE" || v == "False");
}

}  // namespace detail_dnsmasq

/// Sends one DNS query over UDP to 127.0.0.1:`port` and waits for the matching reply.
///
/// The query is built by hand (no resolver library involved), so it can cross-check what a
/// server serves independently of the code under test.
/// @param port     UDP port on 127.0.0.1
/// @param name     name to query, e.g. "a.test" (a trailing dot is accepted)
/// @param type     record type, see dns_type
/// @param timeout  total time to wait for the reply (one datagram is sent)
/// @returns the decoded reply, or std::nullopt if none arrived in time or the port is closed
///          (ICMP port unreachable).
/// @throws std::invalid_argument for an invalid name, std::system_error if no socket can be
///         created, std::out_of_range for a malformed reply.
/// Example: `auto r = coio_test::dns_query(server.port(), "a.test", coio_test::dns_type::a);`
inline std::optional<dns_reply> dns_query(std::uint16_t port, std::string_view name,
                                          std::uint16_t type,
                                          std::chrono::milliseconds timeout =
                                              std::chrono::milliseconds(1000)) {
    using namespace detail_dnsmasq;
    thread_local std::mt19937 rng{std::random_device{}()};
    const auto id = static_cast<std::uint16_t>(rng());
    const auto query = build_query(id, name, type);

    unique_fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) throw errno_error("socket");
    const auto sa = loopback(port);
    // connect() so that an ICMP port-unreachable surfaces as ECONNREFUSED instead of a wait.
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
        throw errno_error("connect UDP 127.0.0.1:" + std::to_string(port));
    if (::send(fd.get(), query.data(), query.size(), 0) < 0) {
        if (errno == ECONNREFUSED) return std::nullopt;
        throw errno_error("send DNS query");
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::array<std::uint8_t, 65536> buf{};
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        pollfd pfd{fd.get(), POLLIN, 0};
        const int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw errno_error("poll");
        if (n == 0) return std::nullopt;
        const auto got = ::recv(fd.get(), buf.data(), buf.size(), 0);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            if (errno == ECONNREFUSED) return std::nullopt;
            throw errno_error("recv DNS reply");
        }
        if (auto reply = parse_reply(buf.data(), static_cast<std::size_t>(got), id)) return reply;
    }
}

/// Datagrams dropped so far by the UDP socket bound to 127.0.0.1:`port` (a receive buffer
/// overflow at a server shows here): the "drops" column of its /proc/net/udp line.
/// @returns the counter, or std::nullopt if no such socket is listed (or /proc is missing).
/// Example: `auto before = coio_test::udp_drops(server.port());`
inline std::optional<unsigned long long> udp_drops(std::uint16_t port) {
    std::ifstream in("/proc/net/udp");
    char local[32];
    std::snprintf(local, sizeof local, "0100007F:%04X", static_cast<unsigned>(port));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string slot, address, word, last;
        words >> slot >> address;
        if (address != local) continue;
        while (words >> word) last = word;
        return std::strtoull(last.c_str(), nullptr, 10);
    }
    return std::nullopt;
}

/// A dnsmasq process serving a fixed set of records on 127.0.0.1:<free port>.
///
/// The constructor writes a hosts file and a conf file into a fresh directory (mkdtemp),
/// starts `dnsmasq --keep-in-foreground` with posix_spawn and returns once the server has
/// answered a real DNS query (bounded by options::startup_timeout). The destructor sends
/// SIGTERM to that PID, waits for it (SIGKILL after 3 s), and removes the directory.
///
/// Not copyable or movable: it owns a child process and a directory.
///
/// Throws std::runtime_error if dnsmasq is not installed (see available()), exits during
/// startup (message includes its exit code and stderr) or does not answer in time;
/// std::invalid_argument for an invalid address, name or record.
///
/// Example:
/// @code
///   coio_test::dnsmasq server({{"a.test", {"10.0.0.1", "fd00::1"}}, {"v6.test", {"fd00::6"}}});
///   auto reply = coio_test::dns_query(server.port(), "a.test", coio_test::dns_type::a);
///   // reply->answers[0].data == "10.0.0.1"; server.address() == "127.0.0.1:<port>"
/// @endcode
class dnsmasq {
public:
    /// A name with its IPv4 and/or IPv6 addresses (A/AAAA records, hosts-file line each).
    /// Give only IPv6 addresses for an AAAA-only name, only IPv4 for an A-only name.
    struct host {
        std::string name{};                    ///< e.g. "a.test"
        std::vector<std::string> addresses{};  ///< e.g. {"10.0.0.1", "fd00::1"}
    };
    /// CNAME record: `alias` is an alias of `target` (which must itself be served here).
    struct cname_record {
        std::string alias{};
        std::string target{};
    };
    /// MX record.
    struct mx_record {
        std::string name{};
        std::string exchange{};
        std::uint16_t preference = 10;
    };
    /// SRV record; `name` is the full owner, e.g. "_http._tcp.test".
    struct srv_record {
        std::string name{};
        std::string target{};
        std::uint16_t port = 0;
        std::uint16_t priority = 0;
        std::uint16_t weight = 0;
    };
    /// TXT record made of one or more character strings (each may contain any printable
    /// text, including commas and quotes; strings over 255 bytes are split by dnsmasq).
    struct txt_record {
        std::string name{};
        std::vector<std::string> strings{};
    };
    /// PTR record, e.g. {"5.0.0.10.in-addr.arpa", "five.test"}. Hosts-file addresses get
    /// PTR records automatically (first name per address); use this for anything else.
    struct ptr_record {
        std::string name{};
        std::string target{};
    };
    /// NS record: `zone` is served by `nameserver` (raw record, see the file comment).
    struct ns_record {
        std::string zone{};
        std::string nameserver{};
    };
    /// SOA record for `zone` (raw record, see the file comment).
    struct soa_record {
        std::string zone{};
        std::string mname{};  ///< primary name server, e.g. "ns1.test"
        std::string rname{};  ///< mailbox as a name, e.g. "hostmaster.test"
        std::uint32_t serial = 1;
        std::uint32_t refresh = 3600;
        std::uint32_t retry = 600;
        std::uint32_t expire = 86400;
        std::uint32_t minimum = 60;
    };
    /// CAA record, e.g. {"test", 0, "issue", "ca.test"}.
    struct caa_record {
        std::string name{};
        std::uint8_t flags = 0;
        std::string tag{};
        std::string value{};
    };
    /// Any record type dnsmasq has no option for: type number and raw rdata bytes.
    struct raw_record {
        std::string name{};
        std::uint16_t type = 0;
        std::vector<std::uint8_t> rdata{};
    };

    /// Everything the server serves, and how it runs. Use designated initializers.
    struct options {
        std::vector<host> hosts{};
        std::vector<cname_record> cnames{};
        std::vector<mx_record> mx{};
        std::vector<srv_record> srv{};
        std::vector<txt_record> txt{};
        std::vector<ptr_record> ptr{};
        std::vector<ns_record> ns{};
        std::vector<soa_record> soa{};
        std::vector<caa_record> caa{};
        std::vector<raw_record> raw{};
        /// TTL in seconds of every answer (--local-ttl). 0 = dnsmasq's default.
        std::uint32_t ttl = 0;
        /// Log every query to log() (--log-queries). Slows dnsmasq down; for debugging.
        bool log_queries = false;
        /// Bound for "started and answering"; generous because CI machines are noisy.
        std::chrono::milliseconds startup_timeout{5000};
        /// Appended verbatim to dnsmasq's command line (e.g. "--dns-forward-max=10").
        std::vector<std::string> extra_args{};
    };

    /// Starts a server for `hosts` only (A/AAAA/automatic PTR):
    /// `dnsmasq server({{"a.test", {"10.0.0.1", "fd00::1"}}, {"b.test", {"10.0.0.2"}}});`
    /// (An initializer_list, not a vector, so that this brace form is not ambiguous with
    /// the options constructor: list-initialization prefers initializer_list parameters.)
    /// @throws see the class comment.
    explicit dnsmasq(std::initializer_list<host> hosts)
        : dnsmasq(std::vector<host>(hosts.begin(), hosts.end())) {}

    /// Starts a server for `hosts` only, e.g. thousands of generated names.
    /// @throws see the class comment.
    explicit dnsmasq(std::vector<host> hosts) : dnsmasq(make_options(std::move(hosts))) {}

    /// Starts a server for everything in `opts`.
    /// @throws see the class comment.
    explicit dnsmasq(options opts) : opts_(std::move(opts)) {
        const auto exe = executable();
        if (!exe) throw std::runtime_error("coio_test::dnsmasq: " + unavailable_reason());
        exe_ = *exe;
        dir_ = make_temp_dir();
        try {
            write_files();
            start();
        } catch (...) {
            stop();
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);
            throw;
        }
    }

    dnsmasq(const dnsmasq&) = delete;
    dnsmasq& operator=(const dnsmasq&) = delete;

    /// Stops the server (see stop()) and removes its directory. Never throws.
    ~dnsmasq() {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    /// UDP and TCP port dnsmasq listens on, on 127.0.0.1.
    std::uint16_t port() const noexcept { return port_; }

    /// "127.0.0.1:<port>", the form coio::resolver's `servers` option and
    /// ares_set_servers_ports_csv accept.
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    /// PID of the dnsmasq process, or -1 once stopped.
    pid_t pid() const noexcept { return pid_; }

    /// The temporary directory holding hosts, dnsmasq.conf, dnsmasq.log and stderr.log.
    const std::filesystem::path& directory() const noexcept { return dir_; }

    /// dnsmasq's log so far (startup lines, warnings, and queries if options::log_queries).
    std::string log() const { return detail_dnsmasq::read_file(dir_ / "dnsmasq.log"); }

    /// Stops the server now: SIGTERM, wait up to 3 s, then SIGKILL and wait. Idempotent.
    /// After it, queries to address() fail (UDP: port unreachable, TCP: refused), which is
    /// how a test simulates a server going away. Never throws.
    void stop() noexcept {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        while (!reap(false)) {
            if (std::chrono::steady_clock::now() >= deadline) {
                ::kill(pid_, SIGKILL);
                reap(true);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        pid_ = -1;
    }

    /// Path of the dnsmasq executable: $COIO_DNSMASQ if set, else `dnsmasq` on $PATH, else
    /// /usr/sbin/dnsmasq (Debian's dnsmasq-base; /usr/sbin is often not on a user's PATH).
    /// @returns std::nullopt if none is executable.
    static std::optional<std::filesystem::path> executable() {
        auto usable = [](const std::filesystem::path& p) {
            std::error_code ec;
            return ::access(p.c_str(), X_OK) == 0 && !std::filesystem::is_directory(p, ec);
        };
        if (const char* env = std::getenv("COIO_DNSMASQ"); env != nullptr && *env != '\0')
            return usable(env) ? std::optional<std::filesystem::path>(env) : std::nullopt;
        if (const char* path = std::getenv("PATH")) {
            std::string_view rest(path);
            while (!rest.empty()) {
                const auto colon = rest.find(':');
                const auto dir = rest.substr(0, colon);
                if (!dir.empty()) {
                    std::filesystem::path p = std::filesystem::path(dir) / "dnsmasq";
                    if (usable(p)) return p;
                }
                rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
            }
        }
        for (const char* p : {"/usr/sbin/dnsmasq", "/usr/local/sbin/dnsmasq", "/sbin/dnsmasq"})
            if (usable(p)) return std::filesystem::path(p);
        return std::nullopt;
    }

    /// Whether a dnsmasq executable was found (see executable()).
    static bool available() { return executable().has_value(); }

    /// Human-readable reason why tests needing dnsmasq cannot run ("" if available()).
    static std::string unavailable_reason() {
        if (available()) return {};
        if (const char* env = std::getenv("COIO_DNSMASQ"); env != nullptr && *env != '\0')
            return std::string("COIO_DNSMASQ=") + env + " is not an executable file";
        return "dnsmasq not found on PATH or in /usr/sbin (Debian/Ubuntu: apt-get install "
               "dnsmasq-base; or set COIO_DNSMASQ=/path/to/dnsmasq)";
    }

    /// Decides whether a dnsmasq-based test runs, without depending on a test framework.
    ///
    /// @param out  where the SKIP notice goes (default std::cerr)
    /// @returns true if dnsmasq is available (run the test); false if it is not and $CI is
    ///          unset (the caller returns early: a SKIP, with the reason printed to `out`).
    /// @throws std::runtime_error if dnsmasq is missing and $CI is set (anything but "", "0",
    ///         "false"): on CI a missing dependency must fail loudly, not skip silently.
    ///         Inside a Catch2 test the exception fails the test with that message.
    /// Example: `if (!coio_test::dnsmasq::require_or_skip()) return;`
    static bool require_or_skip(std::ostream& out = std::cerr) {
        if (available()) return true;
        const auto reason = unavailable_reason();
        if (detail_dnsmasq::running_in_ci())
            throw std::runtime_error("coio_test: dnsmasq is required on CI ($CI is set): " + reason);
        out << "SKIP: " << reason << '\n';
        return false;
    }

private:
    static options make_options(std::vector<host> hosts) {
        options o;
        o.hosts = std::move(hosts);
        return o;
    }

    static std::filesystem::path make_temp_dir() {
        std::error_code ec;
        auto base = std::filesystem::temp_directory_path(ec);
        if (ec) base = "/tmp";
        std::string tmpl = (base / "coio-dnsmasq-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) throw detail_dnsmasq::errno_error("mkdtemp " + tmpl);
        return tmpl;
    }

    void write_files() {
        using detail_dnsmasq::check_token;
        using detail_dnsmasq::conf_quote;
        using detail_dnsmasq::to_hex;
        std::ofstream hosts(dir_ / "hosts");
        for (const auto& h : opts_.hosts) {
            check_token("host name", h.name);
            if (h.addresses.empty())
                throw std::invalid_argument("coio_test::dnsmasq: host '" + h.name +
                                            "' has no address");
            for (const auto& a : h.addresses) {
                // dnsmasq skips a bad hosts line with a log message only: validate here so a
                // typo fails the test at construction instead of as a puzzling NXDOMAIN.
                in6_addr buf{};
                if (::inet_pton(AF_INET, a.c_str(), &buf) != 1 &&
                    ::inet_pton(AF_INET6, a.c_str(), &buf) != 1)
                    throw std::invalid_argument("coio_test::dnsmasq: '" + a + "' (for '" + h.name +
                                                "') is not an IPv4 or IPv6 address");
                hosts << a << ' ' << h.name << '\n';
            }
        }
        if (!hosts.flush()) throw std::runtime_error("coio_test::dnsmasq: cannot write hosts file");

        std::ofstream conf(dir_ / "dnsmasq.conf");
        for (const auto& c : opts_.cnames) {
            check_token("CNAME alias", c.alias);
            check_token("CNAME target", c.target);
            conf << "cname=" << c.alias << ',' << c.target << '\n';
        }
        for (const auto& m : opts_.mx) {
            check_token("MX name", m.name);
            check_token("MX exchange", m.exchange);
            conf << "mx-host=" << m.name << ',' << m.exchange << ',' << m.preference << '\n';
        }
        for (const auto& s : opts_.srv) {
            check_token("SRV name", s.name);
            check_token("SRV target", s.target);
            conf << "srv-host=" << s.name << ',' << s.target << ',' << s.port << ',' << s.priority
                 << ',' << s.weight << '\n';
        }
        for (const auto& t : opts_.txt) {
            check_token("TXT name", t.name);
            if (t.strings.empty())
                throw std::invalid_argument("coio_test::dnsmasq: TXT '" + t.name + "' has no strings");
            conf << "txt-record=" << t.name;
            for (const auto& s : t.strings) conf << ',' << conf_quote(s);
            conf << '\n';
        }
        for (const auto& p : opts_.ptr) {
            check_token("PTR name", p.name);
            check_token("PTR target", p.target);
            conf << "ptr-record=" << p.name << ',' << p.target << '\n';
        }
        for (const auto& c : opts_.caa) {
            check_token("CAA name", c.name);
            check_token("CAA tag", c.tag);
            conf << "caa-record=" << c.name << ',' << unsigned{c.flags} << ',' << c.tag << ','
                 << conf_quote(c.value) << '\n';
        }
        // NS and SOA as raw records: see the file comment for why not --auth-zone.
        for (const auto& n : opts_.ns) {
            check_token("NS zone", n.zone);
            std::vector<std::uint8_t> rdata;
            detail_dnsmasq::append_wire_name(rdata, n.nameserver);
            conf << "dns-rr=" << n.zone << ',' << dns_type::ns << ',' << to_hex(rdata) << '\n';
        }
        for (const auto& s : opts_.soa) {
            check_token("SOA zone", s.zone);
            std::vector<std::uint8_t> rdata;
            detail_dnsmasq::append_wire_name(rdata, s.mname);
            detail_dnsmasq::append_wire_name(rdata, s.rname);
            for (auto v : {s.serial, s.refresh, s.retry, s.expire, s.minimum})
                detail_dnsmasq::append_u32(rdata, v);
            conf << "dns-rr=" << s.zone << ',' << dns_type::soa << ',' << to_hex(rdata) << '\n';
        }
        for (const auto& r : opts_.raw) {
            check_token("raw record name", r.name);
            conf << "dns-rr=" << r.name << ',' << r.type;
            // dnsmasq treats an empty hex field as zero-length rdata.
            conf << ',' << to_hex(r.rdata) << '\n';
        }
        if (!conf.flush()) throw std::runtime_error("coio_test::dnsmasq: cannot write conf file");
    }

    std::vector<std::string> command_line() const {
        const auto d = dir_.string();
        std::vector<std::string> args = {
            exe_.string(),
            "--keep-in-foreground",         // -k: no fork, so pid_ is dnsmasq itself; unlike
                                            // --no-daemon it is the production mode
            "--conf-file=" + d + "/dnsmasq.conf",  // records; also stops /etc/dnsmasq.conf
            "--listen-address=127.0.0.1",
            "--port=" + std::to_string(port_),
            "--bind-interfaces",            // bind 127.0.0.1:P only, not the wildcard address
            "--no-resolv",                  // no /etc/resolv.conf: no upstream servers at all
            "--no-poll",                    // and never watch it for changes
            "--no-hosts",                   // not /etc/hosts: only our records
            "--addn-hosts=" + d + "/hosts",
            "--local=/#/",                  // every domain is local: unknown => NXDOMAIN,
                                            // never forwarded (without it: REFUSED)
            "--no-round-robin",             // deterministic address order for tests
            "--local-ttl=" + std::to_string(opts_.ttl),
            // No --cache-size: the cache only holds upstream answers (there are none), but
            // with --cache-size=0 lookups in a large hosts file got ~2x slower (measured
            // with 20000 names), so dnsmasq's default (150) stays.
            "--pid-file=",                  // empty: no pid file (we know the PID)
            "--log-facility=" + d + "/dnsmasq.log",
        };
        // As root dnsmasq would setuid to "nobody" after binding; --user=root keeps it as is
        // (root in a container, files in a 0700 mkdtemp dir). Unprivileged, it cannot and
        // does not switch user, so the option is not needed.
        if (::geteuid() == 0) args.emplace_back("--user=root");
        if (opts_.log_queries) args.emplace_back("--log-queries");
        args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
        return args;
    }

    /// Spawns dnsmasq on port_ and waits until it answers. Returns false if the port was
    /// taken between pick_free_port() and dnsmasq's bind (exit code 2), so start() retries.
    bool spawn_and_wait() {
        const auto args = command_line();
        std::vector<char*> argv;
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);

        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        ::posix_spawn_file_actions_init(&fa);
        ::posix_spawnattr_init(&attr);
        const auto err_path = (dir_ / "stderr.log").string();
        ::posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        ::posix_spawn_file_actions_addopen(&fa, 1, err_path.c_str(),
                                           O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::posix_spawn_file_actions_adddup2(&fa, 1, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
        // Do not leak the test's descriptors (io_uring, sockets under test) into dnsmasq.
        ::posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
        // Reset signal dispositions and the mask: a test runner that ignores or blocks
        // SIGTERM must not make dnsmasq unkillable by stop().
        sigset_t all, none;
        sigfillset(&all);
        sigemptyset(&none);
        ::posix_spawnattr_setsigdefault(&attr, &all);
        ::posix_spawnattr_setsigmask(&attr, &none);
        ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

        pid_t pid = -1;
        const int rc = ::posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), environ);
        ::posix_spawn_file_actions_destroy(&fa);
        ::posix_spawnattr_destroy(&attr);
        if (rc != 0)
            throw std::system_error(rc, std::generic_category(),
                                    "coio_test::dnsmasq: posix_spawn " + args[0]);
        pid_ = pid;

        // Probe with a name we serve when there is one, so "answering" also proves that the
        // hosts file was read; with no hosts, any reply (NXDOMAIN) proves the server is up.
        std::string probe_name = "coio-startup-probe.invalid";
        std::uint16_t probe_type = dns_type::a;
        if (!opts_.hosts.empty()) {
            probe_name = opts_.hosts.front().name;
            const auto& first = opts_.hosts.front().addresses.front();
            probe_type = first.find(':') == std::string::npos ? dns_type::a : dns_type::aaaa;
        }
        const auto deadline = std::chrono::steady_clock::now() + opts_.startup_timeout;
        for (;;) {
            if (reap(false)) {
                const int code = exit_status_;
                pid_ = -1;
                if (code == 2 && detail_dnsmasq::read_file(err_path).find("in use") != std::string::npos)
                    return false;  // port taken meanwhile: retry with another one
                std::string cmd;
                for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
                throw std::runtime_error("coio_test::dnsmasq: dnsmasq exited during startup (" +
                                         describe_status() + "): " +
                                         detail_dnsmasq::read_file(err_path) + log() +
                                         "command: " + cmd);
            }
            if (auto reply = dns_query(port_, probe_name, probe_type, std::chrono::milliseconds(50))) {
                if (opts_.hosts.empty()) return true;
                if (reply->rcode == dns_rcode::noerror && !reply->answers.empty()) return true;
                throw std::runtime_error("coio_test::dnsmasq: dnsmasq does not serve '" + probe_name +
                                         "' from its hosts file (rcode " +
                                         std::to_string(reply->rcode) + "); log: " + log());
            }
            if (std::chrono::steady_clock::now() >= deadline)
                throw std::runtime_error("coio_test::dnsmasq: no answer from " + address() +
                                         " within " + std::to_string(opts_.startup_timeout.count()) +
                                         " ms; log: " + log());
            // Port not bound yet (ICMP unreachable comes back at once): do not spin.
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }

    void start() {
        for (int attempt = 0; attempt < 8; ++attempt) {
            port_ = detail_dnsmasq::pick_free_port();
            if (spawn_and_wait()) return;
        }
        throw std::runtime_error("coio_test::dnsmasq: could not bind a free port after 8 attempts");
    }

    /// Reaps pid_ if it has exited (blocking if `block`); true once it is gone. ECHILD
    /// (someone else reaped it, e.g. a SIGCHLD handler calling waitpid(-1)) counts as gone.
    bool reap(bool block) noexcept {
        int status = 0;
        for (;;) {
            const pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
            if (r == pid_) {
                exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                term_signal_ = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
                return true;
            }
            if (r == 0) return false;
            if (errno == EINTR) continue;
            exit_status_ = -1;
            return true;
        }
    }

    std::string describe_status() const {
        if (term_signal_ != 0) return "killed by signal " + std::to_string(term_signal_);
        return "exit code " + std::to_string(exit_status_) +
               " (1 config, 2 network/port, 3 file system, 5 other)";
    }

    options opts_;
    std::filesystem::path exe_;
    std::filesystem::path dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
    int exit_status_ = 0;
    int term_signal_ = 0;
};

/// A UDP socket bound to 127.0.0.1:<free port> that never reads: queries sent to it get no
/// answer and no ICMP error, so a resolver pointed at address() runs into its timeout.
///
/// The kernel queues datagrams until the socket's receive buffer is full, then drops them
/// silently; the socket is closed by the destructor. Not copyable or movable.
///
/// Example:
/// @code
///   coio_test::blackhole_udp hole;
///   coio::resolver r({.servers = {hole.address()}, .timeout = 100ms, .tries = 1});
///   // co_await r.getaddrinfo("a.test") throws coio::gaierror (timeout)
/// @endcode
class blackhole_udp {
public:
    /// Binds the socket. @throws std::system_error if no socket can be bound.
    blackhole_udp() : fd_(detail_dnsmasq::bind_loopback(SOCK_DGRAM, 0)) {
        if (fd_.get() < 0) throw detail_dnsmasq::errno_error("bind UDP 127.0.0.1:0");
        port_ = detail_dnsmasq::local_port(fd_.get());
    }
    blackhole_udp(const blackhole_udp&) = delete;
    blackhole_udp& operator=(const blackhole_udp&) = delete;
    ~blackhole_udp() = default;

    /// The bound port on 127.0.0.1.
    std::uint16_t port() const noexcept { return port_; }
    /// "127.0.0.1:<port>".
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    /// The socket, e.g. to count queued datagrams with FIONREAD.
    int fd() const noexcept { return fd_.get(); }
    /// Reads (and discards) every datagram queued on the socket; returns how many there were.
    /// Example: `CHECK(hole.drain() == 4);  // four queries were sent`
    int drain() const noexcept {
        int n = 0;
        char buf[1500];
        while (::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT) >= 0) ++n;
        return n;
    }

private:
    detail_dnsmasq::unique_fd fd_;
    std::uint16_t port_ = 0;
};

}  // namespace coio_test
