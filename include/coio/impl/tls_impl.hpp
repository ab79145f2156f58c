// coio/impl/tls_impl.hpp - the bodies behind <coio/tls.hpp>: open_connection,
// start_server and start_tls over TLS, the handshake driver, and the peer information of
// ssl_stream_writer. Part of the coio::tls target; include <coio/tls.hpp> instead.
#pragma once

#include <coio/tls.hpp>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace coio {

namespace detail {

inline std::string x509_name_text(const X509_NAME* name) {
    BIO* b = BIO_new(BIO_s_mem());
    if (!b) return {};
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char* p = nullptr;
    const long n = BIO_get_mem_data(b, &p);
    std::string s(p, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}

inline std::string asn1_time_text(const ASN1_TIME* t) {
    BIO* b = BIO_new(BIO_s_mem());
    if (!b) return {};
    ASN1_TIME_print(b, t);
    char* p = nullptr;
    const long n = BIO_get_mem_data(b, &p);
    std::string s(p, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}

inline ssl_certificate describe_certificate(X509* x) {
    ssl_certificate c;
    c.subject = x509_name_text(X509_get_subject_name(x));
    c.issuer = x509_name_text(X509_get_issuer_name(x));
    c.not_before = asn1_time_text(X509_get0_notBefore(x));
    c.not_after = asn1_time_text(X509_get0_notAfter(x));
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr)) {
        if (char* hex = BN_bn2hex(bn)) {
            c.serial_number = hex;
            OPENSSL_free(hex);
        }
        BN_free(bn);
    }
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_DNS) {
            const ASN1_STRING* s = g->d.dNSName;
            c.subject_alt_names.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                                               static_cast<std::size_t>(ASN1_STRING_length(s))));
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING* s = g->d.iPAddress;
            char text[INET6_ADDRSTRLEN] = {};
            const int len = ASN1_STRING_length(s);
            const int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
            if (af && ::inet_ntop(af, ASN1_STRING_get0_data(s), text, sizeof text))
                c.subject_alt_names.push_back(std::string("IP:") + text);
        }
    }
    GENERAL_NAMES_free(names);
    const int len = i2d_X509(x, nullptr);
    if (len > 0) {
        c.der.resize(static_cast<std::size_t>(len));
        auto* p = reinterpret_cast<unsigned char*>(c.der.data());
        i2d_X509(x, &p);
    }
    return c;
}

inline std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", s);
    return buf;
}

/// Runs the handshake over a plain stream and returns the TLS stream pair.
/// Throws: as open_connection over TLS. Cancellation: the SSL object is freed and the
/// connection closed (the handles made here are dropped).
inline coro<std::pair<ssl_stream_reader, ssl_stream_writer>> tls_handshake(
    stream_reader r, stream_writer w, ssl_context ctx, std::string host, std::chrono::duration<double> timeout,
    std::chrono::duration<double> shutdown_timeout) {
    const std::size_t limit = r.limit();
    auto* st = new tls_state(std::move(r), std::move(w), ctx.impl_ptr(), std::move(host), limit, shutdown_timeout);
    // The handles own the state from here on: an exception or a cancellation below drops
    // them, which frees the SSL object and closes the socket.
    std::pair<ssl_stream_reader, ssl_stream_writer> p{ssl_stream_reader(st), ssl_stream_writer(st)};
    bool timed_out = false;
    if (timeout.count() > 0) {
        auto scope = coio::timeout(timeout);
        try {
            co_await st->handshake();
        } catch (const timeout_error&) {
            if (!scope.expired()) throw;  // an outer deadline: not ours to translate
            timed_out = true;
        }
    } else {
        co_await st->handshake();
    }
    if (timed_out)
        throw std::system_error(std::make_error_code(std::errc::connection_aborted),
                                "coio: SSL handshake is taking longer than " + seconds_text(timeout.count()) +
                                    " seconds: aborting the connection");
    co_return p;
}

/// start_server's per-connection callback over TLS: handshake, then the user's callback.
template <class F>
struct tls_client_connected {
    std::shared_ptr<F> callback;
    ssl_context ctx;
    std::chrono::duration<double> handshake_timeout;
    std::chrono::duration<double> shutdown_timeout;

    coro<void> operator()(stream_reader r, stream_writer w) const {
        return run(callback, ctx, handshake_timeout, shutdown_timeout, std::move(r), std::move(w));
    }
    static coro<void> run(std::shared_ptr<F> cb, ssl_context ctx, std::chrono::duration<double> timeout,
                          std::chrono::duration<double> shutdown_timeout, stream_reader r, stream_writer w) {
        std::optional<std::pair<ssl_stream_reader, ssl_stream_writer>> p;
        try {
            p.emplace(co_await tls_handshake(std::move(r), std::move(w), std::move(ctx), std::string(), timeout, shutdown_timeout));
        } catch (const std::system_error&) {
            // A failed handshake (bad certificate, plain-text client, reset, timeout) closes
            // that connection only; asyncio does not report OSError-type handshake failures
            // through the exception handler either.
            co_return;
        }
        co_await (*cb)(std::move(p->first), std::move(p->second));
    }
};

/// open_connection over TLS, with owned arguments.
inline coro<std::pair<ssl_stream_reader, ssl_stream_writer>> open_tls_connection(std::string host, std::uint16_t port,
                                                                                 ssl_context ctx, std::string name,
                                                                                 std::chrono::duration<double> timeout,
                                                                                 std::chrono::duration<double> shutdown_timeout,
                                                                                 stream_options stream) {
    auto [r, w] = co_await coio::open_connection(std::move(host), port, stream);
    co_return co_await tls_handshake(std::move(r), std::move(w), std::move(ctx), std::move(name), timeout, shutdown_timeout);
}

} // namespace detail

inline std::optional<ssl_certificate> ssl_stream_writer::peercert() const {
    X509* x = SSL_get0_peer_certificate(state().ssl());
    if (!x) return std::nullopt;
    return detail::describe_certificate(x);
}

inline ssl_cipher ssl_stream_writer::cipher() const {
    ssl_cipher c;
    if (const SSL_CIPHER* ci = SSL_get_current_cipher(state().ssl())) {
        c.name = SSL_CIPHER_get_name(ci);
        c.protocol = SSL_CIPHER_get_version(ci);
        c.secret_bits = SSL_CIPHER_get_bits(ci, nullptr);
    }
    return c;
}

inline coro<std::pair<ssl_stream_reader, ssl_stream_writer>> open_connection(std::string host, std::uint16_t port,
                                                                                            ssl_stream_options options) {
    // Not a coroutine: everything the options refer to is copied before this returns.
    ssl_context ctx = options.ssl.get() && *options.ssl.get() ? *options.ssl.get() : create_default_context();
    if (ctx.server_side()) throw std::invalid_argument("coio: open_connection needs a client ssl_context (ssl_protocol::tls_client)");
    std::string name = options.server_hostname ? std::string(*options.server_hostname) : host;
    return detail::open_tls_connection(std::move(host), port, std::move(ctx), std::move(name), options.ssl_handshake_timeout,
                                       options.ssl_shutdown_timeout, options.stream);
}

template <class F>
coro<server> start_server(F client_connected, std::string host, std::uint16_t port,
                                        ssl_server_options options) {
    // Not a coroutine: the context is copied before this returns.
    const ssl_context* ctx = options.ssl.get();
    if (!ctx || !*ctx || !ctx->server_side())
        throw std::invalid_argument("coio: start_server needs a server ssl_context (ssl_protocol::tls_server)");
    detail::tls_client_connected<F> cb{std::make_shared<F>(std::move(client_connected)), *ctx,
                                       options.ssl_handshake_timeout, options.ssl_shutdown_timeout};
    return start_server(std::move(cb), std::move(host), port, options.server);
}

inline coro<std::pair<ssl_stream_reader, ssl_stream_writer>> start_tls(stream_writer writer, ssl_context ctx,
                                                                                      start_tls_options options) {
    // Not a coroutine: the options are copied before this returns.
    if (!writer) throw invalid_state_error("coio: start_tls on an empty stream_writer");
    if (!ctx) ctx = create_default_context();
    std::string name(options.server_hostname);
    if (name.empty() && !ctx.server_side()) {
        try {
            name = writer.peername().host();
        } catch (...) {
        }
    }
    stream_reader reader(writer.state_ptr());  // a second handle on the same connection
    return detail::tls_handshake(std::move(reader), std::move(writer), std::move(ctx), std::move(name),
                                 options.ssl_handshake_timeout, options.ssl_shutdown_timeout);
}

inline coro<std::pair<ssl_stream_reader, ssl_stream_writer>> stream_writer::start_tls(ssl_context ctx) {
    return coio::start_tls(std::move(*this), std::move(ctx), {});
}

inline coro<std::pair<ssl_stream_reader, ssl_stream_writer>> stream_writer::start_tls(ssl_context ctx,
                                                                                       start_tls_options options) {
    return coio::start_tls(std::move(*this), std::move(ctx), std::move(options));
}
} // namespace coio
