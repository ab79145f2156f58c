// coio/dns_records.hpp - the typed DNS records coio::resolver::query returns (aiodns' query
// results): coio::dns::a, aaaa, cname, mx, ns, ptr, srv, txt and soa, each a constant whose
// type fixes the result, e.g. std::vector<coio::dns::mx_record> for coio::dns::mx.
//
//   for (const auto& mx : co_await r.query("example.test", coio::dns::mx))
//       std::cout << mx.priority << ' ' << mx.host << '\n';
//
// Plain data: this header needs neither c-ares nor an event loop. The query itself is
// coio::resolver::query in coio/dns.hpp.
#pragma once

#include <coio/endpoint.hpp>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace coio {

/// Record types and typed records for `resolver::query(name, type)`.
///
/// Each type is a constant (`coio::dns::a`, `aaaa`, `cname`, `mx`, `ns`, `ptr`, `srv`, `txt`,
/// `soa`) whose type fixes what the query returns: `std::vector<mx_record>` for `dns::mx`,
/// one `soa_record` for `dns::soa`, and so on (see each `result_type`).
///
/// Example:
/// @code
///   coio::resolver r({.servers = {"127.0.0.1:5353"}});
///   for (const auto& mx : co_await r.query("example.test", coio::dns::mx))
///       std::cout << mx.priority << ' ' << mx.host << '\n';
/// @endcode
namespace dns {

/// An A record: an IPv4 address (port 0) and its TTL in seconds.
struct a_record {
    endpoint address;  ///< the address; `address.host()` is "1.2.3.4"
    int ttl = 0;       ///< time to live, seconds
};
/// An AAAA record: an IPv6 address (port 0) and its TTL in seconds.
struct aaaa_record {
    endpoint address;  ///< the address; `address.host()` is "2001:db8::1"
    int ttl = 0;       ///< time to live, seconds
};
/// The target of a CNAME record (the canonical name the alias points to).
struct cname_record {
    std::string name;  ///< the canonical name, without trailing dot
};
/// An MX record.
struct mx_record {
    std::string host;           ///< the mail exchanger
    std::uint16_t priority = 0;  ///< lower is preferred
};
/// An NS record.
struct ns_record {
    std::string host;  ///< the name server
};
/// A PTR record (reverse lookup: query "4.3.2.1.in-addr.arpa").
struct ptr_record {
    std::string name;  ///< the name the address points to
};
/// An SRV record.
struct srv_record {
    std::string host;            ///< the target host
    std::uint16_t port = 0;      ///< the port of the service
    std::uint16_t priority = 0;  ///< lower is preferred
    std::uint16_t weight = 0;    ///< relative weight among equal priorities
};
/// A TXT record: its character strings (each at most 255 bytes on the wire).
struct txt_record {
    std::vector<std::string> strings;  ///< the strings in wire order
    /// The strings concatenated (how SPF and DKIM read a record).
    [[nodiscard]] std::string text() const {
        std::string s;
        for (const auto& p : strings) s += p;
        return s;
    }
};
/// An SOA record.
struct soa_record {
    std::string nsname;          ///< the primary name server
    std::string hostmaster;      ///< the responsible mailbox, as a name
    std::uint32_t serial = 0;    ///< zone serial number
    std::uint32_t refresh = 0;   ///< seconds
    std::uint32_t retry = 0;     ///< seconds
    std::uint32_t expire = 0;    ///< seconds
    std::uint32_t minttl = 0;    ///< negative-caching TTL, seconds
};

/// A record type: its number, its name, and what a query for it returns.
template <int Code, class Result>
struct record_type {
    /// The DNS type number (1 for A, ...).
    static constexpr int code = Code;
    /// What `resolver::query` returns for this type.
    using result_type = Result;
};
/// Type of `dns::a`.
struct a_type : record_type<1, std::vector<a_record>> {
    static constexpr const char* name = "A";  ///< the type's name
};
/// Type of `dns::ns`.
struct ns_type : record_type<2, std::vector<ns_record>> {
    static constexpr const char* name = "NS";  ///< the type's name
};
/// Type of `dns::cname`.
struct cname_type : record_type<5, cname_record> {
    static constexpr const char* name = "CNAME";  ///< the type's name
};
/// Type of `dns::soa`.
struct soa_type : record_type<6, soa_record> {
    static constexpr const char* name = "SOA";  ///< the type's name
};
/// Type of `dns::ptr`.
struct ptr_type : record_type<12, std::vector<ptr_record>> {
    static constexpr const char* name = "PTR";  ///< the type's name
};
/// Type of `dns::mx`.
struct mx_type : record_type<15, std::vector<mx_record>> {
    static constexpr const char* name = "MX";  ///< the type's name
};
/// Type of `dns::txt`.
struct txt_type : record_type<16, std::vector<txt_record>> {
    static constexpr const char* name = "TXT";  ///< the type's name
};
/// Type of `dns::aaaa`.
struct aaaa_type : record_type<28, std::vector<aaaa_record>> {
    static constexpr const char* name = "AAAA";  ///< the type's name
};
/// Type of `dns::srv`.
struct srv_type : record_type<33, std::vector<srv_record>> {
    static constexpr const char* name = "SRV";  ///< the type's name
};

inline constexpr a_type a{};          ///< A records: std::vector<a_record>
inline constexpr aaaa_type aaaa{};    ///< AAAA records: std::vector<aaaa_record>
inline constexpr cname_type cname{};  ///< the CNAME target: cname_record
inline constexpr mx_type mx{};        ///< MX records: std::vector<mx_record>
inline constexpr ns_type ns{};        ///< NS records: std::vector<ns_record>
inline constexpr ptr_type ptr{};      ///< PTR records: std::vector<ptr_record>
inline constexpr srv_type srv{};      ///< SRV records: std::vector<srv_record>
inline constexpr txt_type txt{};      ///< TXT records: std::vector<txt_record>
inline constexpr soa_type soa{};      ///< the SOA record: soa_record

/// The record types `resolver::query` accepts.
template <class T>
concept record_type_tag = std::is_same_v<T, a_type> || std::is_same_v<T, aaaa_type> || std::is_same_v<T, cname_type> ||
                          std::is_same_v<T, mx_type> || std::is_same_v<T, ns_type> || std::is_same_v<T, ptr_type> ||
                          std::is_same_v<T, srv_type> || std::is_same_v<T, txt_type> || std::is_same_v<T, soa_type>;

} // namespace dns

} // namespace coio
