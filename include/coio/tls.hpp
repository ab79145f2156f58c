// coio/tls.hpp - TLS over coio streams with OpenSSL 3 (Python's ssl.SSLContext and asyncio's
// open_connection(ssl=...), start_server(ssl=...), StreamWriter.start_tls).
//
//   auto ctx = coio::create_default_context();                 // verify peer + host name
//   auto [reader, writer] = co_await coio::open_connection("example.org", 443, {.ssl = ctx});
//   writer.write("GET / HTTP/1.0\r\nHost: example.org\r\n\r\n");
//   std::string status = co_await reader.readline();
//
// Link the target coio::tls (it brings OpenSSL::SSL and OpenSSL::Crypto); coio::coio alone
// never needs OpenSSL.
//
// Types and names, side by side with asyncio:
//   ssl.SSLContext(PROTOCOL_TLS_CLIENT / _SERVER)     coio::ssl_context(coio::ssl_protocol::tls_client / tls_server)
//   ssl.create_default_context()                       coio::create_default_context()
//   open_connection(h, p, ssl=ctx, server_hostname=)   coio::open_connection(h, p, {.ssl = ctx, .server_hostname = ...})
//   start_server(cb, h, p, ssl=ctx)                    coio::start_server(cb, h, p, {.ssl = ctx})
//   await writer.start_tls(ctx, server_hostname=)      co_await writer.start_tls(ctx, {.server_hostname = ...})
//   writer.get_extra_info("peercert"/"cipher"/...)     writer.peercert(), cipher(), version(), selected_alpn_protocol()
//   ssl.SSLError / SSLCertVerificationError            coio::ssl_error / coio::ssl_cert_verification_error
//
// A TLS connection is an ssl_stream_reader / ssl_stream_writer pair with the same methods
// as stream_reader / stream_writer (read, readline, readexactly, readuntil, read_into,
// lines, write, writelines, drain, close, wait_closed, ...): asyncio returns the same
// StreamReader/StreamWriter classes for both, C++ needs distinct types because coio::coio
// must not depend on OpenSSL. Code written with `auto` or templates works with either.
#pragma once

#include <coio/coro.hpp>
#include <coio/impl/tls_state.hpp>
#include <coio/errors.hpp>
#include <coio/server.hpp>
#include <coio/stream_reader.hpp>
#include <coio/stream_writer.hpp>
#include <coio/streams.hpp>
#include <coio/timeout.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coio {

/// Which side a context is for (Python's PROTOCOL_TLS_CLIENT / PROTOCOL_TLS_SERVER).
enum class ssl_protocol { tls_client, tls_server };

/// What create_default_context prepares a context for (Python's ssl.Purpose): server_auth
/// makes a client context (it authenticates servers), client_auth a server context.
enum class ssl_purpose { server_auth, client_auth };

/// How the peer's certificate is checked (Python's ssl.CERT_NONE / CERT_OPTIONAL / CERT_REQUIRED).
enum class verify_mode { cert_none, cert_optional, cert_required };

/// TLS protocol versions (Python's ssl.TLSVersion); `minimum_supported` / `maximum_supported`
/// leave the bound to OpenSSL.
enum class tls_version : int {
    minimum_supported = 0,
    tlsv1 = TLS1_VERSION,
    tlsv1_1 = TLS1_1_VERSION,
    tlsv1_2 = TLS1_2_VERSION,
    tlsv1_3 = TLS1_3_VERSION,
    maximum_supported = -1,
};

/// TLS settings shared by many connections (Python's ssl.SSLContext): certificates, trusted
/// CAs, verification, ALPN, protocol versions.
///
/// A handle: copies share one OpenSSL SSL_CTX (as Python code shares one SSLContext object);
/// connections keep it alive. Configure it before connecting; changes apply to connections
/// made afterwards. Not thread-safe to modify while other threads use it.
///
/// A client context (ssl_protocol::tls_client) verifies the server's certificate and host
/// name by default (but trusts no CA until load_verify_locations / set_default_verify_paths:
/// use create_default_context() for the system's CAs). A server context does not ask for
/// client certificates unless verify_mode(cert_optional / cert_required) is set.
/// Verification is off only when asked: `check_hostname(false)` then `verify_mode(cert_none)`.
///
/// Throws: ssl_error when OpenSSL refuses (a file that cannot be read, a key that does not
/// match its certificate, an unknown cipher list); std::invalid_argument for contradictory
/// settings (cert_none while check_hostname is on, as Python does).
///
/// Cancellation: nothing here suspends.
///
/// Example:
/// @code
///   coio::ssl_context server_ctx(coio::ssl_protocol::tls_server);
///   server_ctx.load_cert_chain("server.pem", "server.key");
///   server_ctx.set_alpn_protocols({"h2", "http/1.1"});
///   auto srv = co_await coio::start_server(handle, "127.0.0.1", 8443, {.ssl = server_ctx});
/// @endcode
class ssl_context {
public:
    /// An empty handle (no SSL_CTX). Where a context is required, an empty one means
    /// create_default_context() (asyncio's `ssl=True`) for clients, an error for servers.
    ssl_context() noexcept = default;

    /// A new context for one side.
    /// @param protocol  tls_client: verify_mode cert_required, check_hostname true, minimum
    ///                  TLS 1.2; tls_server: cert_none, minimum TLS 1.2.
    /// Throws: ssl_error when OpenSSL cannot create the context.
    explicit ssl_context(ssl_protocol protocol) {
        const bool server = protocol == ssl_protocol::tls_server;
        ERR_clear_error();
        SSL_CTX* c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
        if (!c) detail::throw_ssl_error("coio: SSL_CTX_new");
        impl_ = std::make_shared<detail::ssl_ctx_impl>(c, server);
        // TLS 1.0/1.1 are deprecated (RFC 8996); renegotiation is a known attack surface and
        // would let SSL_write need to read. Python's defaults are the same.
        SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
        SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
        // SSL_read goes on past post-handshake messages (tickets, key updates) to the next
        // record instead of returning "want read" with bytes still unread (OpenSSL's default
        // since 1.1.1; set explicitly because the read loop relies on it).
        SSL_CTX_set_mode(c, SSL_MODE_AUTO_RETRY);
        if (!server) {
            impl_->check_hostname = true;
            SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
        }
    }

    /// True when the handle refers to a context.
    explicit operator bool() const noexcept { return impl_ != nullptr; }

    /// True for a server-side context.
    [[nodiscard]] bool server_side() const { return impl().server; }

    /// Trusts the CA certificates in `cafile` (PEM) and/or the hashed directory `capath`
    /// (Python's load_verify_locations). Either may be empty, not both.
    /// Throws: ssl_error naming the file when it cannot be loaded.
    /// Example: `ctx.load_verify_locations("ca.pem");`
    void load_verify_locations(const std::string& cafile, const std::string& capath = {}) {
        if (cafile.empty() && capath.empty()) throw std::invalid_argument("coio: load_verify_locations: cafile or capath is required");
        ERR_clear_error();
        if (SSL_CTX_load_verify_locations(impl().ctx, cafile.empty() ? nullptr : cafile.c_str(),
                                          capath.empty() ? nullptr : capath.c_str()) != 1)
            detail::throw_ssl_error("coio: cannot load CA certificates from '" + (cafile.empty() ? capath : cafile) + "'");
    }

    /// Trusts the system's CA store (Python's set_default_verify_paths; honours
    /// SSL_CERT_FILE / SSL_CERT_DIR). Throws: ssl_error.
    void set_default_verify_paths() {
        ERR_clear_error();
        if (SSL_CTX_set_default_verify_paths(impl().ctx) != 1) detail::throw_ssl_error("coio: cannot load the system CA store");
    }

    /// Loads this side's certificate chain and private key (Python's load_cert_chain): the
    /// server's identity, or a client certificate for servers that ask for one.
    /// @param certfile  PEM: the certificate, then any intermediates.
    /// @param keyfile   PEM private key (unencrypted); empty: the key is in `certfile`.
    /// Throws: ssl_error naming the file; also when the key does not match the certificate.
    /// Example: `ctx.load_cert_chain("server.pem", "server.key");`
    void load_cert_chain(const std::string& certfile, const std::string& keyfile = {}) {
        SSL_CTX* c = impl().ctx;
        const std::string& key = keyfile.empty() ? certfile : keyfile;
        ERR_clear_error();
        if (SSL_CTX_use_certificate_chain_file(c, certfile.c_str()) != 1)
            detail::throw_ssl_error("coio: cannot load the certificate chain '" + certfile + "'");
        if (SSL_CTX_use_PrivateKey_file(c, key.c_str(), SSL_FILETYPE_PEM) != 1)
            detail::throw_ssl_error("coio: cannot load the private key '" + key + "'");
        if (SSL_CTX_check_private_key(c) != 1)
            detail::throw_ssl_error("coio: the private key '" + key + "' does not match the certificate");
    }

    /// Sets how the peer's certificate is checked (Python's verify_mode).
    /// Throws: std::invalid_argument for cert_none while check_hostname() is on.
    /// Example: `ctx.check_hostname(false); ctx.verify_mode(coio::verify_mode::cert_none);`
    void verify_mode(coio::verify_mode mode) {
        auto& i = impl();
        if (mode == verify_mode::cert_none && i.check_hostname)
            throw std::invalid_argument("coio: cannot set verify_mode to cert_none when check_hostname is enabled");
        int flags = SSL_VERIFY_NONE;
        if (mode == verify_mode::cert_optional) flags = SSL_VERIFY_PEER;
        if (mode == verify_mode::cert_required) flags = SSL_VERIFY_PEER | (i.server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
        SSL_CTX_set_verify(i.ctx, flags, nullptr);
    }
    /// The current verify mode.
    [[nodiscard]] coio::verify_mode verify_mode() const {
        const int f = SSL_CTX_get_verify_mode(impl().ctx);
        if (!(f & SSL_VERIFY_PEER)) return verify_mode::cert_none;
        if (impl().server && !(f & SSL_VERIFY_FAIL_IF_NO_PEER_CERT)) return verify_mode::cert_optional;
        return verify_mode::cert_required;
    }

    /// Whether client connections check that the certificate matches server_hostname
    /// (Python's check_hostname). Turning it on also turns verify_mode to cert_required if it
    /// was cert_none, as Python does.
    void check_hostname(bool on) {
        auto& i = impl();
        if (on && verify_mode() == verify_mode::cert_none) verify_mode(verify_mode::cert_required);
        i.check_hostname = on;
    }
    /// The current check_hostname setting.
    [[nodiscard]] bool check_hostname() const { return impl().check_hostname; }

    /// The oldest protocol version allowed (Python's minimum_version). Throws: ssl_error.
    /// Example: `ctx.minimum_version(coio::tls_version::tlsv1_3);`
    void minimum_version(tls_version v) {
        ERR_clear_error();
        if (SSL_CTX_set_min_proto_version(impl().ctx, v == tls_version::maximum_supported ? TLS1_3_VERSION : static_cast<int>(v)) != 1)
            detail::throw_ssl_error("coio: minimum_version");
    }
    /// The current minimum version.
    [[nodiscard]] tls_version minimum_version() const {
        return static_cast<tls_version>(SSL_CTX_get_min_proto_version(impl().ctx));
    }
    /// The newest protocol version allowed (Python's maximum_version). Throws: ssl_error.
    void maximum_version(tls_version v) {
        ERR_clear_error();
        if (SSL_CTX_set_max_proto_version(impl().ctx, v == tls_version::maximum_supported ? 0 : static_cast<int>(v)) != 1)
            detail::throw_ssl_error("coio: maximum_version");
    }
    /// The current maximum version (maximum_supported when unbounded).
    [[nodiscard]] tls_version maximum_version() const {
        const int v = static_cast<int>(SSL_CTX_get_max_proto_version(impl().ctx));
        return v == 0 ? tls_version::maximum_supported : static_cast<tls_version>(v);
    }

    /// The protocols offered (client) or accepted (server) through ALPN, in preference order
    /// (Python's set_alpn_protocols). A server picks its own most preferred protocol that the
    /// client offers; with no common protocol the handshake goes on without ALPN.
    /// Throws: std::invalid_argument for an empty name or one longer than 255 bytes.
    /// Example: `ctx.set_alpn_protocols({"h2", "http/1.1"});`
    void set_alpn_protocols(const std::vector<std::string>& protocols) {
        auto& i = impl();
        std::vector<unsigned char> wire;
        for (const auto& p : protocols) {
            if (p.empty() || p.size() > 255) throw std::invalid_argument("coio: invalid ALPN protocol name '" + p + "'");
            wire.push_back(static_cast<unsigned char>(p.size()));
            wire.insert(wire.end(), p.begin(), p.end());
        }
        i.alpn = std::move(wire);
        if (!i.server) {
            if (SSL_CTX_set_alpn_protos(i.ctx, i.alpn.data(), static_cast<unsigned>(i.alpn.size())) != 0)
                detail::throw_ssl_error("coio: set_alpn_protocols");
            return;
        }
        SSL_CTX_set_alpn_select_cb(
            i.ctx,
            [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen, void* arg) -> int {
                auto* self = static_cast<detail::ssl_ctx_impl*>(arg);
                unsigned char* o = nullptr;
                if (self->alpn.empty() ||
                    SSL_select_next_proto(&o, outlen, self->alpn.data(), static_cast<unsigned>(self->alpn.size()), in,
                                          inlen) != OPENSSL_NPN_NEGOTIATED)
                    return SSL_TLSEXT_ERR_NOACK;
                *out = o;
                return SSL_TLSEXT_ERR_OK;
            },
            &i);
    }

    /// The TLS 1.2 cipher list in OpenSSL's syntax (Python's set_ciphers), e.g.
    /// "ECDHE+AESGCM". Throws: ssl_error when no cipher matches.
    void set_ciphers(const std::string& ciphers) {
        ERR_clear_error();
        if (SSL_CTX_set_cipher_list(impl().ctx, ciphers.c_str()) != 1) detail::throw_ssl_error("coio: set_ciphers('" + ciphers + "')");
    }
    /// The TLS 1.3 cipher suites (beyond Python), e.g. "TLS_AES_128_GCM_SHA256".
    /// Throws: ssl_error when none is known.
    void set_ciphersuites(const std::string& suites) {
        ERR_clear_error();
        if (SSL_CTX_set_ciphersuites(impl().ctx, suites.c_str()) != 1) detail::throw_ssl_error("coio: set_ciphersuites('" + suites + "')");
    }

    /// The OpenSSL context, for settings not wrapped here.
    [[nodiscard]] SSL_CTX* native_handle() const { return impl().ctx; }

    /// Internal: the shared state.
    [[nodiscard]] const std::shared_ptr<detail::ssl_ctx_impl>& impl_ptr() const noexcept { return impl_; }

private:
    detail::ssl_ctx_impl& impl() const {
        if (!impl_) throw invalid_state_error("coio: ssl_context is empty (default-constructed or moved from)");
        return *impl_;
    }
    std::shared_ptr<detail::ssl_ctx_impl> impl_;
};

/// A context with secure defaults (Python's ssl.create_default_context).
/// @param purpose  server_auth (default): a client context that verifies servers against the
///                 system's CA store (plus `cafile`) and checks host names, TLS >= 1.2.
///                 client_auth: a server context (add load_cert_chain), trusting the system
///                 CAs (plus `cafile`) for client certificates it may ask for.
/// @param cafile   extra trusted CAs (PEM), e.g. a private CA; empty: none.
/// Returns: the context. Throws: ssl_error when the CA files cannot be loaded.
/// Cancellation: does not suspend.
/// Example: `auto ctx = coio::create_default_context(coio::ssl_purpose::server_auth, "ca.pem");`
[[nodiscard]] inline ssl_context create_default_context(ssl_purpose purpose = ssl_purpose::server_auth,
                                                        const std::string& cafile = {}) {
    ssl_context ctx(purpose == ssl_purpose::server_auth ? ssl_protocol::tls_client : ssl_protocol::tls_server);
    ctx.set_default_verify_paths();
    if (!cafile.empty()) ctx.load_verify_locations(cafile);
    return ctx;
}

/// A certificate, decoded (Python's SSLSocket.getpeercert(), plus the DER form).
struct ssl_certificate {
    std::string subject;                         ///< e.g. "CN=localhost,O=coio" (RFC 2253)
    std::string issuer;                          ///< the issuer, same form
    std::vector<std::string> subject_alt_names;  ///< e.g. "DNS:localhost", "IP:127.0.0.1"
    std::string not_before;                      ///< e.g. "Jan  2 03:04:05 2027 GMT"
    std::string not_after;                       ///< same form
    std::string serial_number;                   ///< hexadecimal
    std::string der;                             ///< the certificate in DER (binary_form=True)
};

/// The negotiated cipher (Python's SSLSocket.cipher()).
struct ssl_cipher {
    std::string name;      ///< e.g. "TLS_AES_256_GCM_SHA384"
    std::string protocol;  ///< e.g. "TLSv1.3"
    int secret_bits = 0;   ///< e.g. 256
};

/// Default of ssl_handshake_timeout (asyncio's: 60 s).
inline constexpr std::chrono::duration<double> default_ssl_handshake_timeout{60.0};
/// Default of ssl_shutdown_timeout (asyncio's: 30 s).
inline constexpr std::chrono::duration<double> default_ssl_shutdown_timeout{30.0};

/// A reference to an ssl_context, as the options structs hold it (`{.ssl = ctx}`).
///
/// The options are trivially destructible on purpose: g++ 12 destroys a braced aggregate
/// temporary twice when it appears in a co_await expression (`co_await f({...})`), which
/// for a member owning a reference count frees the context under the caller's feet. So
/// the options refer to the context (and to names), and the functions taking them copy
/// what they need before they return their coroutine: the referenced objects only have to
/// live until then (a temporary in the same expression does).
class ssl_context_ref {
public:
    /// No context (where allowed: create_default_context()).
    ssl_context_ref() noexcept = default;
    /// Refers to `ctx`.
    ssl_context_ref(const ssl_context& ctx) noexcept : p_(&ctx) {}  // NOLINT: implicit on purpose
    /// The context, or null.
    [[nodiscard]] const ssl_context* get() const noexcept { return p_; }

private:
    const ssl_context* p_ = nullptr;
};

/// Options of open_connection over TLS (asyncio's ssl=, server_hostname=,
/// ssl_handshake_timeout= keywords). Trivially destructible: see ssl_context_ref.
/// Example: `co_await coio::open_connection("127.0.0.1", 4433, {.ssl = ctx, .server_hostname = "localhost"});`
struct ssl_stream_options {
    /// The client context; none: create_default_context() (asyncio's `ssl=True`).
    ssl_context_ref ssl = {};
    /// The name sent with SNI and checked against the certificate; nullopt: the `host`
    /// argument. An empty name sends no SNI (then check_hostname must be off). A numeric
    /// address is never sent as SNI; the certificate must then list it as an IP address.
    std::optional<std::string_view> server_hostname = std::nullopt;
    /// How long the handshake may take; on expiry the connection is aborted with
    /// std::errc::connection_aborted. Zero or negative: no limit.
    std::chrono::duration<double> ssl_handshake_timeout = default_ssl_handshake_timeout;
    /// After close(): how long to wait for the peer's close_notify before closing the
    /// socket anyway (wait_closed() waits for it). Zero: do not wait.
    std::chrono::duration<double> ssl_shutdown_timeout = default_ssl_shutdown_timeout;
    /// The plain stream's options (limit, family, write marks, ...); see stream_options.
    stream_options stream = {};
};

/// Options of start_server over TLS (asyncio's ssl=, ssl_handshake_timeout= keywords).
/// Trivially destructible: see ssl_context_ref.
/// Example: `co_await coio::start_server(cb, "127.0.0.1", 0, {.ssl = ctx, .server = {.backlog = 1024}});`
struct ssl_server_options {
    /// The server context (ssl_protocol::tls_server, with load_cert_chain); required.
    ssl_context_ref ssl = {};
    /// How long a client's handshake may take; it is then dropped. Zero: no limit.
    std::chrono::duration<double> ssl_handshake_timeout = default_ssl_handshake_timeout;
    /// See ssl_stream_options::ssl_shutdown_timeout.
    std::chrono::duration<double> ssl_shutdown_timeout = default_ssl_shutdown_timeout;
    /// The listening options (backlog, reuse_port, limit, ...); see server_options.
    server_options server = {};
};

/// Options of stream_writer::start_tls (asyncio's start_tls keywords).
/// Trivially destructible: see ssl_context_ref.
/// Example: `co_await writer.start_tls(ctx, {.server_hostname = "mail.example.org"});`
struct start_tls_options {
    /// Client side: the name for SNI and the host-name check; empty: the peer's address.
    std::string_view server_hostname = {};
    /// See ssl_stream_options::ssl_handshake_timeout.
    std::chrono::duration<double> ssl_handshake_timeout = default_ssl_handshake_timeout;
    /// See ssl_stream_options::ssl_shutdown_timeout.
    std::chrono::duration<double> ssl_shutdown_timeout = default_ssl_shutdown_timeout;
};

/// The reading half of a TLS connection: stream_reader's API over the decrypted data.
///
/// Reads decrypt on demand: the plaintext of the records that have arrived. EOF is the
/// peer's close_notify, or the connection ending without it (treated as EOF, as Python's
/// ssl module and asyncio do for an established connection).
///
/// Move-only handle to state shared with the ssl_stream_writer; the connection is closed
/// when both are gone. One task reads at a time (a second concurrent read throws
/// invalid_state_error).
///
/// Throws (every read): ssl_error when the peer sent invalid TLS data (after the plaintext
/// before it was read); std::system_error for socket errors (std::errc::connection_reset).
///
/// Cancellation: every read is cancellation-safe: data that arrived stays buffered (in the
/// stream, in OpenSSL, or in the plaintext buffer) for the next read.
///
/// Example:
/// @code
///   coio::coro<void> handle(coio::ssl_stream_reader reader, coio::ssl_stream_writer writer) {
///       for (auto lines = reader.lines(); auto line = co_await lines.next();) writer.write(*line);
///   }
/// @endcode
class ssl_stream_reader {
public:
    /// An empty reader.
    ssl_stream_reader() noexcept = default;
    /// Internal: a handle on `s`.
    explicit ssl_stream_reader(detail::tls_state* s) noexcept : s_(s) {
        if (s_) s_->add_handle();
    }
    /// Takes over `o`'s connection (`o` is left empty).
    ssl_stream_reader(ssl_stream_reader&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    /// Drops this reader's connection, then takes over `o`'s.
    ssl_stream_reader& operator=(ssl_stream_reader&& o) noexcept {
        if (this != &o) {
            reset();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    ssl_stream_reader(const ssl_stream_reader&) = delete;
    ssl_stream_reader& operator=(const ssl_stream_reader&) = delete;
    /// Drops the handle; the connection closes when the writer is gone too.
    ~ssl_stream_reader() { reset(); }

    /// True when the reader refers to a connection.
    explicit operator bool() const noexcept { return s_ != nullptr; }

    /// Reads up to `n` bytes; with `n < 0` until EOF (asyncio's read).
    /// Returns: the bytes; empty only at EOF (or for n == 0).
    /// Throws: ssl_error, std::system_error (see the class). Cancellation: safe.
    /// Example: `std::string chunk = co_await reader.read(65536);`
    [[nodiscard]] coro<std::string> read(std::ptrdiff_t n = -1) {
        detail::tls_state& s = state();
        if (n == 0) co_return std::string();
        detail::tls_state::read_guard g(s);
        if (n < 0) {
            std::string all;
            for (;;) {
                if (s.buffered()) all.append(s.take(s.buffered()));
                if (s.eof()) break;
                co_await s.fill();
            }
            if (all.empty()) s.check_read_error();
            co_return all;
        }
        if (!s.buffered() && !s.eof()) co_await s.fill();
        if (s.buffered()) co_return s.take(std::min(static_cast<std::size_t>(n), s.buffered()));
        s.check_read_error();
        co_return std::string();
    }

    /// Reads one line, up to and including "\n" (asyncio's readline); at EOF the partial
    /// last line, or "" when nothing is left.
    /// Throws: limit_overrun_error past the limit (the line is discarded); as read().
    /// Cancellation: safe. Example: `std::string line = co_await reader.readline();`
    [[nodiscard]] coro<std::string> readline() {
        try {
            co_return co_await readuntil("\n");
        } catch (incomplete_read_error& e) {
            co_return std::move(e.partial);
        } catch (const limit_overrun_error& e) {
            detail::tls_state& s = state();
            const std::string_view v = s.rview();
            if (e.consumed < v.size() && v[e.consumed] == '\n') s.consume(e.consumed + 1);
            else s.consume(s.buffered());
            throw;
        }
    }

    /// Reads exactly `n` bytes (asyncio's readexactly).
    /// Throws: incomplete_read_error at EOF (with the bytes that arrived); as read().
    /// Cancellation: safe. Example: `auto header = co_await reader.readexactly(8);`
    [[nodiscard]] coro<std::string> readexactly(std::size_t n) {
        detail::tls_state& s = state();
        detail::tls_state::read_guard g(s);
        while (s.buffered() < n) {
            if (s.eof()) {
                std::string partial = s.take(s.buffered());
                if (partial.empty()) s.check_read_error();
                throw incomplete_read_error(std::move(partial), n);
            }
            co_await s.fill();
        }
        co_return s.take(n);
    }

    /// Reads up to and including `separator` (asyncio's readuntil).
    /// Throws: limit_overrun_error (data stays buffered), incomplete_read_error at EOF,
    /// std::invalid_argument for an empty separator; as read().
    /// Cancellation: safe. Example: `auto head = co_await reader.readuntil("\r\n\r\n");`
    [[nodiscard]] coro<std::string> readuntil(std::string separator = "\n") {
        if (separator.empty()) throw std::invalid_argument("coio: readuntil: the separator must not be empty");
        detail::tls_state& s = state();
        detail::tls_state::read_guard g(s);
        const std::size_t seplen = separator.size();
        std::size_t offset = 0;
        for (;;) {
            const std::string_view v = s.rview();
            if (v.size() >= offset + seplen) {
                const std::size_t pos = v.find(separator, offset);
                if (pos != std::string_view::npos) {
                    if (pos > s.limit())
                        throw limit_overrun_error("Separator is found, but chunk is longer than limit", pos);
                    co_return s.take(pos + seplen);
                }
                offset = v.size() + 1 - seplen;
                if (offset > s.limit())
                    throw limit_overrun_error("Separator is not found, and chunk exceed the limit", offset);
            }
            if (s.eof()) {
                std::string partial = s.take(s.buffered());
                if (partial.empty()) s.check_read_error();
                throw incomplete_read_error(std::move(partial), std::nullopt);
            }
            co_await s.fill();
        }
    }

    /// Reads up to buf.size() bytes into `buf`; with nothing buffered OpenSSL decrypts
    /// straight into it.
    /// Returns: the byte count; 0 at EOF. Throws: as read(). Cancellation: safe.
    /// Example: `std::size_t n = co_await reader.read_into(std::span(buf));`
    [[nodiscard]] coro<std::size_t> read_into(std::span<std::byte> buf) {
        detail::tls_state& s = state();
        if (buf.empty()) co_return 0;
        detail::tls_state::read_guard g(s);
        if (s.buffered()) co_return s.take_into(buf);
        const std::size_t n = co_await s.fill_into(buf);
        if (n == 0) s.check_read_error();
        co_return n;
    }

    /// Fills all of `buf` (readexactly into caller memory).
    /// Throws: incomplete_read_error at EOF (`partial` holds the bytes that arrived, also at
    /// the front of `buf`); as read(). Cancellation: safe; bytes already copied stay in `buf`.
    /// Example: `co_await reader.readexactly_into(std::as_writable_bytes(std::span(header)));`
    [[nodiscard]] coro<void> readexactly_into(std::span<std::byte> buf) {
        std::size_t got = 0;
        while (got < buf.size()) {
            const std::size_t n = co_await read_into(buf.subspan(got));
            if (n == 0)
                throw incomplete_read_error(std::string(reinterpret_cast<const char*>(buf.data()), got), buf.size());
            got += n;
        }
    }

    /// Lines until EOF, as an async generator (asyncio's `async for line in reader`).
    /// Throws: as readline(). Cancellation: as readline().
    /// Example: `for (auto g = reader.lines(); auto l = co_await g.next();) use(*l);`
    [[nodiscard]] async_generator<std::string> lines() {
        for (;;) {
            std::string line = co_await readline();
            if (line.empty()) co_return;
            co_yield std::move(line);
        }
    }

    /// True when EOF was reached and the buffer is empty (asyncio's at_eof).
    [[nodiscard]] bool at_eof() const noexcept { return !s_ || s_->at_eof(); }
    /// Decrypted bytes not read yet.
    [[nodiscard]] std::size_t buffered() const noexcept { return s_ ? s_->buffered() : 0; }
    /// The buffer limit (stream_options::limit).
    [[nodiscard]] std::size_t limit() const noexcept { return s_ ? s_->limit() : 0; }

private:
    detail::tls_state& state() const {
        if (!s_) throw invalid_state_error("coio: ssl_stream_reader is empty (moved from or default-constructed)");
        return *s_;
    }
    void reset() noexcept {
        if (s_) std::exchange(s_, nullptr)->drop_handle();
    }
    detail::tls_state* s_ = nullptr;
};

/// The writing half of a TLS connection: stream_writer's API, plus what the handshake
/// negotiated (asyncio's get_extra_info("peercert" / "cipher" / "ssl_object")).
///
/// write() encrypts at once into TLS records queued on the connection (never suspends; the
/// caller's memory is free on return); drain() is the flow control over those records.
/// close() sends close_notify, waits in the background for the peer's close_notify (at
/// most ssl_shutdown_timeout, as asyncio does), then closes the connection once everything
/// is sent; wait_closed() waits for all of that. After close(), reads return what was
/// already decrypted, then EOF.
/// TLS cannot half-close: can_write_eof() is false (as in asyncio).
///
/// Throws: drain() throws ssl_error / std::system_error when the connection failed; write()
/// after close() throws invalid_state_error.
///
/// Cancellation: drain() and wait_closed() are cancellation points that lose nothing.
///
/// Example:
/// @code
///   writer.write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
///   co_await writer.drain();
///   std::cout << writer.version() << ' ' << writer.cipher().name << '\n';
/// @endcode
class ssl_stream_writer {
public:
    /// An empty writer.
    ssl_stream_writer() noexcept = default;
    /// Internal: a handle on `s`.
    explicit ssl_stream_writer(detail::tls_state* s) noexcept : s_(s) {
        if (s_) s_->add_handle();
    }
    /// Takes over `o`'s connection (`o` is left empty).
    ssl_stream_writer(ssl_stream_writer&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    /// Drops this writer's connection, then takes over `o`'s.
    ssl_stream_writer& operator=(ssl_stream_writer&& o) noexcept {
        if (this != &o) {
            reset();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    ssl_stream_writer(const ssl_stream_writer&) = delete;
    ssl_stream_writer& operator=(const ssl_stream_writer&) = delete;
    /// Drops the handle; the connection closes when the reader is gone too.
    ~ssl_stream_writer() { reset(); }

    /// True when the writer refers to a connection.
    explicit operator bool() const noexcept { return s_ != nullptr; }

    /// Encrypts `data` and starts sending it. Never suspends.
    /// Throws: invalid_state_error after close(). Cancellation: not a suspension point.
    /// Example: `writer.write(std::as_bytes(std::span(buf)));`
    void write(std::span<const std::byte> data) { state().write(data); }
    /// Encrypts the characters of `data`. Example: `writer.write("hello\n");`
    void write(std::string_view data) { state().write(std::as_bytes(std::span(data.data(), data.size()))); }
    /// Writes every element of `lines` in order (asyncio's writelines).
    /// Example: `writer.writelines(std::vector<std::string>{"a\n", "b\n"});`
    template <class Range>
    void writelines(const Range& lines) {
        for (const auto& l : lines) write(std::string_view(l));
    }

    class drain_awaiter;

    /// Flow control (asyncio's drain): waits while more than the high-water mark of records
    /// is buffered. Throws: ssl_error when a write failed in TLS; std::system_error when
    /// the connection failed. Cancellation: a cancellation point; nothing is lost.
    /// Example: `writer.write(block); co_await writer.drain();`
    [[nodiscard]] drain_awaiter drain();

    /// False: TLS has no half-close (asyncio's can_write_eof for SSL transports).
    [[nodiscard]] bool can_write_eof() const noexcept { return false; }
    /// Sends close_notify, then closes the connection after the buffered data is sent and
    /// the peer's close_notify arrived or ssl_shutdown_timeout passed (asyncio's close).
    /// Idempotent. Cancellation: not a suspension point.
    void close() noexcept {
        if (s_) s_->close();
    }
    /// True once close() was called.
    [[nodiscard]] bool is_closing() const noexcept { return !s_ || s_->is_closing(); }
    /// Waits until the socket is closed (after close()). Cancellation: a cancellation point.
    /// Example: `writer.close(); co_await writer.wait_closed();`
    [[nodiscard]] stream_writer::wait_closed_awaiter wait_closed() {
        return state().raw_writer().wait_closed();
    }

    /// The peer's address. Throws: std::system_error when not connected.
    [[nodiscard]] endpoint peername() const { return state().raw_writer().peername(); }
    /// The local address. Throws: as peername().
    [[nodiscard]] endpoint sockname() const { return state().raw_writer().sockname(); }
    /// The underlying socket (asyncio's get_extra_info("socket")).
    [[nodiscard]] const coio::socket& socket() const { return state().raw_writer().socket(); }
    /// Encrypted bytes not yet sent.
    [[nodiscard]] std::size_t write_buffer_size() const noexcept { return s_ ? s_->raw_writer().write_buffer_size() : 0; }
    /// Sets drain()'s high- and low-water marks (asyncio's set_write_buffer_limits).
    void set_write_buffer_limits(std::size_t high, std::size_t low) {
        state().raw_writer().set_write_buffer_limits(high, low);
    }

    /// The peer's certificate (asyncio's get_extra_info("peercert")), or nullopt when the
    /// peer sent none (a client without a certificate, or verification off on a client).
    /// Throws: invalid_state_error on an empty writer.
    [[nodiscard]] std::optional<ssl_certificate> peercert() const;
    /// The negotiated cipher (asyncio's get_extra_info("cipher")).
    [[nodiscard]] ssl_cipher cipher() const;
    /// The negotiated protocol version, e.g. "TLSv1.3" (Python's SSLObject.version()).
    [[nodiscard]] std::string version() const { return SSL_get_version(state().ssl()); }
    /// The protocol ALPN chose, or nullopt (Python's selected_alpn_protocol()).
    [[nodiscard]] std::optional<std::string> selected_alpn_protocol() const {
        const unsigned char* p = nullptr;
        unsigned n = 0;
        SSL_get0_alpn_selected(state().ssl(), &p, &n);
        if (!p || n == 0) return std::nullopt;
        return std::string(reinterpret_cast<const char*>(p), n);
    }
    /// The server name the client sent with SNI (server side), or nullopt.
    [[nodiscard]] std::optional<std::string> server_name() const {
        const char* n = SSL_get_servername(state().ssl(), TLSEXT_NAMETYPE_host_name);
        if (!n) return std::nullopt;
        return std::string(n);
    }
    /// The OpenSSL connection (asyncio's get_extra_info("ssl_object")), for anything not
    /// wrapped here. Do not read or write through it.
    [[nodiscard]] SSL* native_handle() const { return state().ssl(); }

private:
    detail::tls_state& state() const {
        if (!s_) throw invalid_state_error("coio: ssl_stream_writer is empty (moved from or default-constructed)");
        return *s_;
    }
    void reset() noexcept {
        if (s_) std::exchange(s_, nullptr)->drop_handle();
    }
    detail::tls_state* s_ = nullptr;
};

/// Awaiter of ssl_stream_writer::drain: the plain stream's drain, then the TLS write error.
class ssl_stream_writer::drain_awaiter {
public:
    drain_awaiter(detail::tls_state& s, stream_writer& raw) : inner_(raw.drain()), st_(&s) {}
    bool await_ready() { return st_->write_error() != nullptr || inner_.await_ready(); }
    bool await_suspend(std::coroutine_handle<> h) { return inner_.await_suspend(h); }
    void await_resume() {
        if (auto e = st_->write_error()) std::rethrow_exception(e);
        inner_.await_resume();
    }

private:
    stream_writer::drain_awaiter inner_;
    detail::tls_state* st_;
};

inline ssl_stream_writer::drain_awaiter ssl_stream_writer::drain() {
    detail::tls_state& s = state();
    return drain_awaiter(s, s.raw_writer());
}

/// Opens a TCP connection and runs the TLS handshake over it (asyncio's
/// `open_connection(host, port, ssl=ctx, server_hostname=...)`).
///
/// @param host     as for open_connection; also the default server_hostname (SNI and the
///                 certificate's name check; an IP address is checked as an address).
/// @param port     the port.
/// @param options  `{.ssl = ctx, .server_hostname = ..., .ssl_handshake_timeout = ...,
///                 .stream = {...}}`; see ssl_stream_options.
/// Returns: `std::pair<ssl_stream_reader, ssl_stream_writer>`.
/// Throws: ssl_cert_verification_error ("certificate verify failed: unable to get local
/// issuer certificate", "... hostname mismatch ..."); ssl_error for other TLS failures;
/// std::system_error: connection_refused, connection_reset when the peer closes during the
/// handshake, connection_aborted when ssl_handshake_timeout passes; coio::gaierror.
/// Cancellation: the connect or handshake in progress is abandoned, the SSL object freed and
/// the socket closed.
///
/// Example:
/// @code
///   auto ctx = coio::create_default_context(coio::ssl_purpose::server_auth, "ca.pem");
///   auto [reader, writer] = co_await coio::open_connection("127.0.0.1", 4433,
///                                                          {.ssl = ctx, .server_hostname = "localhost"});
/// @endcode
[[nodiscard]] inline coro<std::pair<ssl_stream_reader, ssl_stream_writer>> open_connection(std::string host, std::uint16_t port,
                                                                                            ssl_stream_options options);

/// Starts a TCP server whose connections speak TLS (asyncio's `start_server(cb, host, port,
/// ssl=ctx)`): each accepted connection runs the handshake, then
/// `client_connected(ssl_stream_reader, ssl_stream_writer)` as its own task.
///
/// @param client_connected  a callable `coro<void>(ssl_stream_reader, ssl_stream_writer)`.
/// @param host, port        as for start_server.
/// @param options  `{.ssl = server_ctx, .ssl_handshake_timeout = ..., .server = {...}}`.
/// Returns: the serving server (a plain coio::server: close, wait_closed, serve_forever).
/// Throws: std::invalid_argument without a server context; as start_server. A client whose
/// handshake fails (or times out) is disconnected without calling the callback.
/// Cancellation: as start_server; closing the server cancels handshakes in progress too.
///
/// Example:
/// @code
///   coio::ssl_context ctx(coio::ssl_protocol::tls_server);
///   ctx.load_cert_chain("server.pem", "server.key");
///   auto srv = co_await coio::start_server(handle, "127.0.0.1", 4433, {.ssl = ctx});
///   co_await srv.serve_forever();
/// @endcode
template <class F>
[[nodiscard]] coro<server> start_server(F client_connected, std::string host, std::uint16_t port,
                                        ssl_server_options options);

/// Upgrades a plain connection to TLS (asyncio's StreamWriter.start_tls; STARTTLS): the
/// handshake runs over the connection of `writer`, as a client or a server depending on
/// `ctx`. See stream_writer::start_tls, which calls this.
/// @param writer   the plain writer; taken over (it is empty afterwards). Its reader must not
///                 be used again (bytes it had buffered unread are handed to TLS).
/// Returns: the TLS stream pair. Throws: as open_connection over TLS.
/// Cancellation: the connection is closed.
/// Example: `auto [tr, tw] = co_await coio::start_tls(std::move(writer), ctx, {.server_hostname = "localhost"});`
[[nodiscard]] inline coro<std::pair<ssl_stream_reader, ssl_stream_writer>> start_tls(stream_writer writer, ssl_context ctx,
                                                                                      start_tls_options options = {});

} // namespace coio

// The bodies of the functions above, and the machinery they use.
#include <coio/impl/tls_impl.hpp>
