// coio/dns_errors.hpp - the errors of DNS lookups: coio::gaierror (Python's socket.gaierror)
// and coio::dns_error (aiodns' DNSError), with their codes gai_errc and dns_errc.
//
//   try { co_await coio::getaddrinfo("no-lang.invalid", 80); }
//   catch (const coio::gaierror& e) { e.code() == coio::gai_errc::noname; }   // EAI_NONAME
//   try { co_await r.query("nx.test", coio::dns::a); }
//   catch (const coio::dns_error& e) { e.code() == coio::dns_errc::nxdomain; } // ARES_ENOTFOUND
//
// Both are std::system_error with a category of their own ("getaddrinfo", "dns"), so they
// compare with std::errc where the meaning matches (a DNS timeout is std::errc::timed_out).
// The lookups themselves are in coio/dns.hpp.
#pragma once

#include <ares.h>
#include <netdb.h>

#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace coio {

/// getaddrinfo/getnameinfo error codes (the EAI_* constants of <netdb.h>), for comparing
/// `gaierror::code()`: `e.code() == coio::gai_errc::noname`.
enum class gai_errc : int {
    badflags = EAI_BADFLAGS,  ///< invalid flags
    noname = EAI_NONAME,      ///< name or service not known (NXDOMAIN, invalid name)
    again = EAI_AGAIN,        ///< temporary failure: timeout, server failure, unreachable
    fail = EAI_FAIL,          ///< non-recoverable failure (refused, malformed reply)
    family = EAI_FAMILY,      ///< address family not supported
    socktype = EAI_SOCKTYPE,  ///< socket type not supported
    service = EAI_SERVICE,    ///< bad port or unknown service name
    memory = EAI_MEMORY,      ///< out of memory
    system = EAI_SYSTEM,      ///< system error
    overflow = EAI_OVERFLOW,  ///< argument buffer overflow
#ifdef EAI_NODATA
    nodata = EAI_NODATA,          ///< the name exists but has no address (of that family)
    addrfamily = EAI_ADDRFAMILY,  ///< the host has no address in the requested family
    canceled = EAI_CANCELED,      ///< the request was cancelled (resolver destroyed or cancel())
#else
    nodata = EAI_NONAME,
    addrfamily = EAI_FAMILY,
    canceled = EAI_AGAIN,
#endif
};

/// The error category of gai_errc: name "getaddrinfo", messages from gai_strerror
/// ("Name or service not known").
[[nodiscard]] const std::error_category& gai_category() noexcept;
/// Makes `gai_errc` usable as a std::error_code.
[[nodiscard]] inline std::error_code make_error_code(gai_errc e) noexcept { return {static_cast<int>(e), gai_category()}; }

/// DNS error codes: the c-ares status values (ARES_ENOTFOUND, ...), for `dns_error::code()`
/// and `gaierror::dns_code()`: `e.code() == coio::dns_errc::nxdomain`.
enum class dns_errc : int {
    nodata = ARES_ENODATA,            ///< the name exists but has no record of that type (NODATA)
    formerr = ARES_EFORMERR,          ///< the server says the query was malformed
    servfail = ARES_ESERVFAIL,        ///< the server failed (SERVFAIL)
    nxdomain = ARES_ENOTFOUND,        ///< the name does not exist (NXDOMAIN)
    notimp = ARES_ENOTIMP,            ///< the server does not implement the query
    refused = ARES_EREFUSED,          ///< the server refused the query (REFUSED)
    badquery = ARES_EBADQUERY,        ///< the query is malformed
    badname = ARES_EBADNAME,          ///< the name is not a valid DNS name
    badfamily = ARES_EBADFAMILY,      ///< unsupported address family
    badresp = ARES_EBADRESP,          ///< malformed reply
    connrefused = ARES_ECONNREFUSED,  ///< no server could be contacted
    timeout = ARES_ETIMEOUT,          ///< no answer within timeout x tries
    eof = ARES_EOF,                   ///< end of file
    file = ARES_EFILE,                ///< a configuration file could not be read
    nomem = ARES_ENOMEM,              ///< out of memory
    destruction = ARES_EDESTRUCTION,  ///< the resolver was destroyed during the lookup
    badstr = ARES_EBADSTR,            ///< malformed string
    badflags = ARES_EBADFLAGS,        ///< invalid flags
    noname = ARES_ENONAME,            ///< the name is not numeric (numeric-only lookup)
    badhints = ARES_EBADHINTS,        ///< invalid hints
    cancelled = ARES_ECANCELLED,      ///< resolver::cancel() was called
    service = ARES_ESERVICE,          ///< unknown service
};

/// The error category of dns_errc: name "dns", messages from ares_strerror ("Domain name
/// not found"). timeout, connrefused, nomem and cancelled are equivalent to the matching
/// std::errc values.
[[nodiscard]] const std::error_category& dns_category() noexcept;
/// Makes `dns_errc` usable as a std::error_code.
[[nodiscard]] inline std::error_code make_error_code(dns_errc e) noexcept { return {static_cast<int>(e), dns_category()}; }

/// A getaddrinfo or getnameinfo failure (Python's socket.gaierror): a std::system_error whose
/// code() is in gai_category().
///
/// what() reads like Python's message, "[Errno -2] Name or service not known", followed by
/// the details coio knows, e.g. " (no-lang.invalid: Domain name not found)".
/// dns_code() tells what c-ares reported (dns_errc::nxdomain, ::timeout, ...) when the error
/// came from a DNS lookup; it is empty for bad input refused before any lookup.
///
/// Cancellation: not applicable (an exception type).
///
/// Example:
/// @code
///   try { co_await coio::getaddrinfo("no-lang.invalid", 80); }
///   catch (const coio::gaierror& e) {
///       if (e.code() == coio::gai_errc::noname) std::puts(e.what());
///   }
/// @endcode
class gaierror : public std::system_error {
public:
    /// @param code    an EAI_* value.
    /// @param detail  appended to the message in parentheses (empty: nothing appended).
    /// @param dns     what c-ares reported, if anything.
    explicit gaierror(gai_errc code, const std::string& detail = {}, std::error_code dns = {})
        : std::system_error(make_error_code(code)), dns_(dns) {
        std::string m = "[Errno " + std::to_string(static_cast<int>(code)) + "] " + this->code().message();
        if (!detail.empty()) m += " (" + detail + ")";
        what_ = std::make_shared<const std::string>(std::move(m));
    }
    /// "[Errno -2] Name or service not known (details)".
    [[nodiscard]] const char* what() const noexcept override { return what_->c_str(); }
    /// The c-ares status behind the error (dns_category()), or an empty code.
    [[nodiscard]] std::error_code dns_code() const noexcept { return dns_; }

private:
    std::shared_ptr<const std::string> what_;  // shared: copying an exception must not throw
    std::error_code dns_;
};

/// A failed `resolver::query` (aiodns' DNSError): a std::system_error whose code() is in
/// dns_category(), e.g. dns_errc::nxdomain, ::nodata, ::timeout, ::refused, ::badname.
///
/// what() is "[Errno 4] Domain name not found (MX nx.test)": the c-ares status number and
/// text, then the record type and name.
///
/// Cancellation: not applicable (an exception type).
///
/// Example:
/// @code
///   try { co_await r.query("nx.test", coio::dns::a); }
///   catch (const coio::dns_error& e) { if (e.code() == coio::dns_errc::nxdomain) ...; }
/// @endcode
class dns_error : public std::system_error {
public:
    /// @param code    what went wrong.
    /// @param detail  appended to the message in parentheses (empty: nothing appended).
    explicit dns_error(dns_errc code, const std::string& detail = {}) : std::system_error(make_error_code(code)) {
        std::string m = "[Errno " + std::to_string(static_cast<int>(code)) + "] " + this->code().message();
        if (!detail.empty()) m += " (" + detail + ")";
        what_ = std::make_shared<const std::string>(std::move(m));
    }
    /// "[Errno 4] Domain name not found (details)".
    [[nodiscard]] const char* what() const noexcept override { return what_->c_str(); }

private:
    std::shared_ptr<const std::string> what_;
};

} // namespace coio

/// @cond
// gai_errc and dns_errc convert to std::error_code implicitly.
template <> struct std::is_error_code_enum<coio::gai_errc> : std::true_type {};
template <> struct std::is_error_code_enum<coio::dns_errc> : std::true_type {};
/// @endcond

// =========================================================================================
// Implementation
// =========================================================================================

namespace coio {

namespace detail::dns {

class gai_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "getaddrinfo"; }
    std::string message(int ev) const override { return ::gai_strerror(ev); }
    std::error_condition default_error_condition(int ev) const noexcept override {
        if (ev == EAI_MEMORY) return std::errc::not_enough_memory;
        return {ev, *this};
    }
};

class dns_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "dns"; }
    std::string message(int ev) const override { return ::ares_strerror(ev); }
    std::error_condition default_error_condition(int ev) const noexcept override {
        switch (ev) {
        case ARES_ETIMEOUT: return std::errc::timed_out;
        case ARES_ECONNREFUSED: return std::errc::connection_refused;
        case ARES_ENOMEM: return std::errc::not_enough_memory;
        case ARES_ECANCELLED: return std::errc::operation_canceled;
        default: return {ev, *this};
        }
    }
};

} // namespace detail::dns

inline const std::error_category& gai_category() noexcept {
    static const detail::dns::gai_category_impl c;
    return c;
}

inline const std::error_category& dns_category() noexcept {
    static const detail::dns::dns_category_impl c;
    return c;
}

} // namespace coio
