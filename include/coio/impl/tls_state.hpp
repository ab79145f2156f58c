// coio/impl/tls_state.hpp - the machinery behind <coio/tls.hpp>: OpenSSL errors as
// exceptions, the shared SSL_CTX, and the TLS state of one connection (what asyncio's
// sslproto.SSLProtocol is). Part of the coio::tls target; include <coio/tls.hpp> instead.
//
// coio::ssl_error and coio::ssl_cert_verification_error are public (documented here, used
// through <coio/tls.hpp>); everything in coio::detail is not API.
//
// Contracts of tls_state:
//  * TLS runs over a plain coio stream (a stream_reader/stream_writer pair on the socket):
//    ciphertext is received with stream_reader::read_chunk and sent with stream_writer::write,
//    so TLS works on whatever backend drives the streams, and never blocks: OpenSSL only
//    ever sees memory.
//  * The SSL object's BIO is a memory BIO of our own (BIO_meth_new): its read callback copies
//    from the received chunk held in `in_` (zero copy up to OpenSSL's record buffer: no
//    intermediate BIO_s_mem buffer), or says "retry" when it is empty; its write callback
//    appends each record to `out_`, which goes to the stream (stream_writer::write, which
//    starts the send) once the OpenSSL call returns: one send per handshake flight or per
//    write, not one per record (the handshake then costs one loop iteration per flight).
//    While the stream has a send in flight (it only queues), records go to it directly.
//    No allocation per record beyond OpenSSL's own: the buffers keep their capacity.
//  * Pull model: plaintext is decrypted only when a reader asks for it (fill), so the
//    plaintext buffer stays bounded; the raw stream pauses receiving at 2 x limit of
//    unread ciphertext, as for plain streams.
//  * Single-threaded (one loop): SSL_read and SSL_write never overlap, each runs to
//    completion without suspending; awaits happen only between OpenSSL calls.
//  * Errors: a fatal TLS error is remembered (rerr_) and reported after the plaintext that
//    arrived before it was read (as plain streams do with socket errors). The peer closing
//    the TCP connection without close_notify after the handshake is an ordinary EOF (as
//    Python's ssl module and asyncio do by default, suppress_ragged_eofs); during the
//    handshake it is std::errc::connection_reset.
//  * Closing (asyncio's SSL shutdown): close() sends close_notify, then a small task reads
//    and discards until the peer's close_notify (or EOF) arrives, for at most
//    ssl_shutdown_timeout, and only then closes the socket (wait_closed waits for that).
//    After close() user reads return what was already decrypted, then EOF.
//  * Lifetime: reference counted (one reference per user handle, one for the shutdown task);
//    the SSL object is freed with the state. The raw stream handles held here close the
//    socket when the state goes.
#pragma once

#include <coio/coro.hpp>
#include <coio/detail/handle_counted.hpp>
#include <coio/errors.hpp>
#include <coio/sleep.hpp>
#include <coio/stream_chunk.hpp>
#include <coio/stream_reader.hpp>
#include <coio/stream_writer.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace coio {

/// The error category of TLS failures: values are OpenSSL reason codes (ERR_GET_REASON),
/// e.g. SSL_R_CERTIFICATE_VERIFY_FAILED.
inline const std::error_category& ssl_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "ssl"; }
        std::string message(int reason) const override {
            const char* s = ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, reason));
            return s ? s : "TLS error " + std::to_string(reason);
        }
    };
    static const category c;
    return c;
}

/// A TLS failure (Python's ssl.SSLError): a std::system_error in ssl_category() whose
/// what() is OpenSSL's reason text, e.g. "wrong version number", "tlsv1 alert unknown ca".
///
/// Thrown by the handshake (open_connection / start_tls with an ssl_context), by reads when
/// the peer sends something invalid, by drain() after a failure, and by ssl_context methods
/// (a certificate or key file that cannot be loaded).
///
/// Example:
/// @code
///   try { auto [r, w] = co_await coio::open_connection("127.0.0.1", 4433, {.ssl = ctx}); }
///   catch (const coio::ssl_error& e) { std::cerr << e.what() << '\n'; }
/// @endcode
class ssl_error : public std::system_error {
public:
    /// @param code    the error code (ssl_category(), or std::errc for I/O around OpenSSL).
    /// @param text    the full message (what()).
    /// @param library the OpenSSL library that reported it ("SSL routines", "x509 ...").
    ssl_error(std::error_code code, const std::string& text, std::string library = {})
        : std::system_error(code, text), text_(std::make_shared<const std::string>(text)),
          library_(std::make_shared<const std::string>(std::move(library))) {}
    /// The message: OpenSSL's reason text (without the category suffix std::system_error adds).
    [[nodiscard]] const char* what() const noexcept override { return text_->c_str(); }
    /// The OpenSSL library name of the error (Python's SSLError.library), may be empty.
    [[nodiscard]] const std::string& library() const noexcept { return *library_; }

private:
    std::shared_ptr<const std::string> text_;  // shared: copying an exception must not throw
    std::shared_ptr<const std::string> library_;
};

/// The peer's certificate could not be verified (Python's ssl.SSLCertVerificationError):
/// what() is "certificate verify failed: <reason>", e.g. "certificate verify failed: unable
/// to get local issuer certificate", "certificate verify failed: hostname mismatch, ...".
///
/// Example: `catch (const coio::ssl_cert_verification_error& e) { e.verify_code(); }`
class ssl_cert_verification_error : public ssl_error {
public:
    /// @param code the X509_V_ERR_* code; @param message its text; @param text what().
    ssl_cert_verification_error(long code, std::string message, const std::string& text)
        : ssl_error(std::error_code(SSL_R_CERTIFICATE_VERIFY_FAILED, ssl_category()), text, "SSL routines"),
          verify_code_(code), verify_message_(std::make_shared<const std::string>(std::move(message))) {}
    /// The X509_V_ERR_* code (Python's verify_code), e.g. X509_V_ERR_HOSTNAME_MISMATCH.
    [[nodiscard]] long verify_code() const noexcept { return verify_code_; }
    /// Its text (Python's verify_message), e.g. "hostname mismatch".
    [[nodiscard]] const std::string& verify_message() const noexcept { return *verify_message_; }

private:
    long verify_code_;
    std::shared_ptr<const std::string> verify_message_;
};

} // namespace coio

namespace coio::detail {

/// The OpenSSL error queue's last entry as an ssl_error (and the queue is cleared).
/// `ssl` (may be null) supplies the verification result for certificate failures; `host`
/// names the expected host in a mismatch message.
inline std::exception_ptr ssl_error_from_queue(const SSL* ssl, const std::string& host, const char* fallback) {
    const unsigned long err = ERR_peek_last_error();
    ERR_clear_error();
    if (err == 0) {
        return std::make_exception_ptr(ssl_error(std::make_error_code(std::errc::protocol_error), fallback));
    }
    const int reason = ERR_GET_REASON(err);
    if (ERR_GET_LIB(err) == ERR_LIB_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED && ssl) {
        const long code = SSL_get_verify_result(ssl);
        std::string msg = X509_verify_cert_error_string(code);
        std::string text = "certificate verify failed: " + msg;
        if ((code == X509_V_ERR_HOSTNAME_MISMATCH || code == X509_V_ERR_IP_ADDRESS_MISMATCH) && !host.empty())
            text += ", certificate is not valid for '" + host + "'";
        return std::make_exception_ptr(ssl_cert_verification_error(code, std::move(msg), text));
    }
    const char* r = ERR_reason_error_string(err);
    const char* lib = ERR_lib_error_string(err);
    std::string text = r ? r : fallback;
    return std::make_exception_ptr(ssl_error(std::error_code(reason, ssl_category()), text, lib ? lib : ""));
}

/// Throws the OpenSSL error queue's last error as ssl_error, prefixed with `what`.
[[noreturn]] inline void throw_ssl_error(const std::string& what) {
    const unsigned long err = ERR_peek_last_error();
    ERR_clear_error();
    const char* r = err ? ERR_reason_error_string(err) : nullptr;
    const char* lib = err ? ERR_lib_error_string(err) : nullptr;
    throw ssl_error(std::error_code(err ? ERR_GET_REASON(err) : 0, ssl_category()),
                    what + ": " + (r ? r : "unknown error"), lib ? lib : "");
}

/// The SSL_CTX behind an ssl_context, plus what OpenSSL keeps only as callbacks.
struct ssl_ctx_impl {
    SSL_CTX* ctx = nullptr;
    bool server = false;
    bool check_hostname = false;
    std::vector<unsigned char> alpn;  // wire format: length-prefixed names (server selection)

    ssl_ctx_impl(SSL_CTX* c, bool srv) noexcept : ctx(c), server(srv) {}
    ssl_ctx_impl(const ssl_ctx_impl&) = delete;
    ssl_ctx_impl& operator=(const ssl_ctx_impl&) = delete;
    ~ssl_ctx_impl() { SSL_CTX_free(ctx); }
};


BIO_METHOD* tls_bio_method();

/// True for a numeric IPv4/IPv6 address (no SNI for those; the certificate is checked
/// against the address instead of a name).
inline bool tls_is_ip_literal(const std::string& host) noexcept {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

/// What one SSL_read attempt gave.
enum class tls_read_result { data, want_read, eof, failed };

/// The TLS state of one connection, shared by an ssl_stream_reader and its ssl_stream_writer.
class tls_state : public handle_counted<tls_state> {
public:
    /// Sets up the SSL object over the raw stream `r`/`w` for `host` (client side: SNI and
    /// the host-name check; ignored on the server side).
    /// Throws: ssl_error when OpenSSL cannot allocate; std::invalid_argument when the context
    /// checks host names and `host` is empty (as Python's wrap_bio does).
    tls_state(stream_reader r, stream_writer w, std::shared_ptr<ssl_ctx_impl> ctx, std::string host, std::size_t limit,
              std::chrono::duration<double> shutdown_timeout)
        : raw_r_(std::move(r)), raw_w_(std::move(w)), ctx_(std::move(ctx)), host_(std::move(host)), limit_(limit),
          shutdown_timeout_(shutdown_timeout) {
        if (!host_.empty() && host_.front() == '[' && host_.back() == ']') host_ = host_.substr(1, host_.size() - 2);
        ERR_clear_error();
        ssl_ = SSL_new(ctx_->ctx);
        if (!ssl_) throw_ssl_error("coio: SSL_new");
        BIO* b = BIO_new(tls_bio_method());
        if (!b) {
            SSL_free(ssl_);
            throw_ssl_error("coio: BIO_new");
        }
        BIO_set_data(b, this);
        BIO_set_init(b, 1);
        SSL_set_bio(ssl_, b, b);  // one BIO for both directions: SSL_set_bio takes one reference
        if (ctx_->server) {
            SSL_set_accept_state(ssl_);
            return;
        }
        SSL_set_connect_state(ssl_);
        const bool ip = tls_is_ip_literal(host_);
        bool ok = true;
        if (!host_.empty() && !ip) ok = SSL_set_tlsext_host_name(ssl_, host_.c_str()) == 1;
        if (ok && ctx_->check_hostname) {
            if (host_.empty()) {
                SSL_free(ssl_);
                throw std::invalid_argument("coio: check_hostname requires server_hostname");
            }
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
            // Python's default: a wildcard covers one whole label, never part of one.
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host_.c_str()) == 1 : SSL_set1_host(ssl_, host_.c_str()) == 1;
        }
        if (!ok) {
            SSL_free(ssl_);
            throw_ssl_error("coio: cannot set the server name '" + host_ + "'");
        }
    }
    tls_state(const tls_state&) = delete;
    tls_state& operator=(const tls_state&) = delete;
    ~tls_state() { SSL_free(ssl_); }  // frees the BIO too; the raw handles close the socket after

    [[nodiscard]] SSL* ssl() const noexcept { return ssl_; }
    [[nodiscard]] const stream_writer& raw_writer() const noexcept { return raw_w_; }
    [[nodiscard]] stream_writer& raw_writer() noexcept { return raw_w_; }
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

    // ================================ handshake ============================================

    /// Runs the handshake to completion.
    /// Throws: ssl_error / ssl_cert_verification_error; std::system_error
    /// (std::errc::connection_reset) when the peer closes the connection first; the raw
    /// stream's errors. Cancellation: between OpenSSL calls; the caller drops the state,
    /// which frees the SSL object and closes the socket.
    coro<void> handshake() {
        for (;;) {
            ERR_clear_error();
            const int r = SSL_do_handshake(ssl_);
            flush_out();  // the whole flight (or the alert) in one write
            if (r == 1) {
                established_ = true;
                co_return;
            }
            const int e = SSL_get_error(ssl_, r);
            if (e == SSL_ERROR_WANT_READ && !raw_eof_) {
                co_await receive();
                continue;
            }
            if (raw_eof_ && (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_SYSCALL || is_unexpected_eof())) {
                ERR_clear_error();
                throw std::system_error(std::make_error_code(std::errc::connection_reset),
                                        "coio: TLS handshake with " + peer() + ": the peer closed the connection");
            }
            std::rethrow_exception(ssl_error_from_queue(ssl_, host_, "TLS handshake failed"));
        }
    }

    // ================================ reading ==============================================

    [[nodiscard]] std::size_t buffered() const noexcept { return pend_ - pbegin_; }
    [[nodiscard]] const std::byte* pdata() const noexcept { return pbuf_.data() + pbegin_; }
    [[nodiscard]] std::string_view rview() const noexcept {
        return {reinterpret_cast<const char*>(pdata()), buffered()};
    }
    /// True when no more plaintext can come to the user (close_notify, EOF, a TLS error, or
    /// close() was called).
    [[nodiscard]] bool eof() const noexcept { return eof_ || closing_; }
    [[nodiscard]] bool at_eof() const noexcept { return eof() && buffered() == 0; }
    void consume(std::size_t n) noexcept {
        pbegin_ += n;
        if (pbegin_ == pend_) pbegin_ = pend_ = 0;
    }
    std::string take(std::size_t n) {
        std::string s(reinterpret_cast<const char*>(pdata()), n);
        consume(n);
        return s;
    }
    std::size_t take_into(std::span<std::byte> out) noexcept {
        const std::size_t n = std::min(out.size(), buffered());
        if (n) std::memcpy(out.data(), pdata(), n);
        consume(n);
        return n;
    }
    /// Throws the TLS error that ended reading, if any (after the plaintext before it was read).
    void check_read_error() const {
        if (rerr_) std::rethrow_exception(rerr_);
    }

    /// One reader at a time (asyncio's rule); held for the duration of a read.
    class read_guard {
    public:
        explicit read_guard(tls_state& s) : s_(&s) {
            if (s.reading_) throw invalid_state_error("coio: ssl_stream_reader: another task is already reading from this stream");
            s.reading_ = true;
        }
        read_guard(const read_guard&) = delete;
        read_guard& operator=(const read_guard&) = delete;
        ~read_guard() { s_->reading_ = false; }

    private:
        tls_state* s_;
    };

    /// Decrypts more plaintext into the buffer, waiting for ciphertext as needed; returns
    /// when buffered() grew or eof() is true. Precondition: !eof().
    /// Throws: the raw stream's errors (e.g. std::errc::connection_reset).
    /// Cancellation: safe: received ciphertext stays with the stream or the SSL object.
    coro<void> fill() {
        for (;;) {
            if (closing_) co_return;  // after close(): only what was decrypted before
            reserve_tail(tls_record_max);
            std::size_t got = 0;
            const tls_read_result res = try_read(pbuf_.data() + pend_, pbuf_.size() - pend_, got);
            if (res == tls_read_result::data) {
                pend_ += got;
                read_available();
                co_return;
            }
            if (res != tls_read_result::want_read) co_return;
            co_await receive();
        }
    }

    /// Decrypts straight into `out` (read_into with nothing buffered: no plaintext copy).
    /// Returns: bytes decrypted; 0 at EOF (or on a TLS error, then check_read_error throws).
    coro<std::size_t> fill_into(std::span<std::byte> out, bool user = true) {
        for (;;) {
            if (user && closing_) co_return 0;
            std::size_t got = 0;
            const tls_read_result res = try_read(out.data(), out.size(), got);
            if (res == tls_read_result::data) {
                // Fill the rest of `out` with records that are already here (no waiting):
                // fewer, larger reads for the caller.
                while (got < out.size() && (!in_.empty() || SSL_pending(ssl_) > 0)) {
                    std::size_t more = 0;
                    if (try_read(out.data() + got, out.size() - got, more) != tls_read_result::data) break;
                    got += more;
                }
                co_return got;
            }
            if (res != tls_read_result::want_read) co_return 0;
            co_await receive();
        }
    }

    // ================================ writing ==============================================

    /// Encrypts `data` into records queued on the raw stream (which starts sending them).
    /// Throws: invalid_state_error after close(). After a TLS failure the data is dropped
    /// and drain() reports the failure, as for plain streams.
    void write(std::span<const std::byte> data) {
        if (closing_) throw invalid_state_error("coio: ssl_stream_writer: write() after close()");
        if (werr_) return;
        while (!data.empty()) {
            // Slices bound the record buffer (out_) for large writes.
            const std::size_t n = std::min<std::size_t>(data.size(), write_slice);
            std::size_t w = 0;
            ERR_clear_error();
            const int ok = SSL_write_ex(ssl_, data.data(), n, &w);
            flush_out();
            if (ok != 1) {
                if (!werr_) werr_ = ssl_error_from_queue(ssl_, host_, "TLS write failed");
                return;
            }
            data = data.subspan(w);
        }
    }
    [[nodiscard]] std::exception_ptr write_error() const noexcept { return werr_; }
    [[nodiscard]] bool is_closing() const noexcept { return closing_; }

    /// Sends close_notify (when the session is intact), waits in the background for the
    /// peer's close_notify for at most ssl_shutdown_timeout, then closes the raw stream
    /// after its buffered records are sent. Idempotent; never suspends.
    void close() noexcept {
        if (closing_) return;
        closing_ = true;
        if (established_ && !rerr_ && !werr_) {
            ERR_clear_error();
            (void)SSL_shutdown(ssl_);  // queues close_notify through the BIO; never blocks
            ERR_clear_error();
            flush_out();
            if (!eof_ && shutdown_timeout_.count() > 0) {
                try {
                    // The reference travels as a parameter: it is dropped with the frame even
                    // if the task never runs (a loop shutting down cancels it before start).
                    (void)coio::create_task(await_close_notify(shutdown_ref(this)), "TLS shutdown");
                    return;
                } catch (...) {
                    // no running loop (or no memory): the reference is gone; close at once
                }
            }
        }
        raw_w_.close();
    }

    /// The peer, for messages.
    [[nodiscard]] std::string peer() const {
        try {
            return raw_w_.peername().to_string();
        } catch (...) {
            return host_.empty() ? std::string("the peer") : host_;
        }
    }

private:
    /// One TLS record's plaintext at most (what one SSL_read can return).
    static constexpr std::size_t tls_record_max = 16 * 1024;
    /// Plaintext per SSL_write call (bounds out_ for large writes).
    static constexpr std::size_t write_slice = 256 * 1024;

    bool is_unexpected_eof() const noexcept {
        const unsigned long err = ERR_peek_last_error();
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
        return ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
#else
        return err == 0;
#endif
    }

    /// The shutdown task: reads (and drops) until the peer's close_notify or EOF, bounded by
    /// ssl_shutdown_timeout, then closes the raw stream. Any failure ends the wait.
    /// The shutdown task's reference: closes the raw stream and releases the state when the
    /// task's frame goes, whether the task ran or not.
    class shutdown_ref {
    public:
        explicit shutdown_ref(tls_state* s) noexcept : s_(s) { s_->add_ref(); }
        shutdown_ref(shutdown_ref&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
        shutdown_ref(const shutdown_ref&) = delete;
        shutdown_ref& operator=(const shutdown_ref&) = delete;
        shutdown_ref& operator=(shutdown_ref&&) = delete;
        ~shutdown_ref() {
            if (s_) {
                s_->raw_w_.close();
                s_->release();
            }
        }

    private:
        tls_state* s_;
    };

    coro<void> await_close_notify(shutdown_ref) {
        try {
            auto deadline = coio::timeout(shutdown_timeout_);
            std::vector<std::byte> scratch(tls_record_max);
            while (!eof_) {
                if (reading_) {
                    // A user read that began before close() owns the raw reader until data
                    // arrives; it then returns EOF (closing_) and leaves the rest to us.
                    co_await coio::sleep(std::chrono::milliseconds(2));
                    continue;
                }
                reading_ = true;
                try {
                    (void)co_await fill_into(scratch, false);
                } catch (...) {
                    reading_ = false;
                    throw;
                }
                reading_ = false;
            }
        } catch (const cancelled_error&) {
            throw;  // loop shutdown: the socket is closed by the shutdown_ref
        } catch (...) {
            // timeout (the peer never answered), a reset, a TLS error: close now
        }
    }

    /// Waits for the next piece of ciphertext from the raw stream (into in_), or EOF.
    coro<void> receive() {
        // OpenSSL asked for more while bytes are still here (it stopped after a
        // post-handshake message): let it read those first, never overwrite them.
        if (!in_.empty()) co_return;
        stream_chunk c = co_await raw_r_.read_chunk();
        if (c.empty()) raw_eof_ = true;
        else in_ = std::move(c);
    }

    /// One SSL_read into [dst, dst + cap).
    tls_read_result try_read(std::byte* dst, std::size_t cap, std::size_t& got) noexcept {
        if (eof_) return rerr_ ? tls_read_result::failed : tls_read_result::eof;
        ERR_clear_error();
        const int ok = SSL_read_ex(ssl_, dst, cap, &got);
        flush_out();  // what reading produced: key updates, tickets, alerts
        if (ok == 1) return tls_read_result::data;
        const int e = SSL_get_error(ssl_, 0);
        if (e == SSL_ERROR_WANT_READ && !raw_eof_) return tls_read_result::want_read;
        eof_ = true;
        if (e == SSL_ERROR_ZERO_RETURN) return tls_read_result::eof;  // close_notify
        if (raw_eof_ && (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_SYSCALL || is_unexpected_eof())) {
            // The TCP connection ended without close_notify: an ordinary EOF (Python's
            // suppress_ragged_eofs, asyncio's behaviour for an established connection).
            ERR_clear_error();
            return tls_read_result::eof;
        }
        rerr_ = ssl_error_from_queue(ssl_, host_, "TLS read failed");
        return tls_read_result::failed;
    }

    /// After a successful read: decrypt whatever else is already here, without waiting,
    /// up to the limit (fewer awaits for large transfers).
    void read_available() {
        while (buffered() < limit_ && (!in_.empty() || SSL_pending(ssl_) > 0)) {
            reserve_tail(tls_record_max);
            std::size_t got = 0;
            if (try_read(pbuf_.data() + pend_, pbuf_.size() - pend_, got) != tls_read_result::data) return;
            pend_ += got;
        }
    }

    /// Makes room for `n` more bytes at the end of the plaintext buffer.
    void reserve_tail(std::size_t n) {
        if (pbuf_.size() - pend_ >= n) return;
        if (pbegin_ > 0) {
            std::memmove(pbuf_.data(), pbuf_.data() + pbegin_, pend_ - pbegin_);
            pend_ -= pbegin_;
            pbegin_ = 0;
        }
        if (pbuf_.size() - pend_ < n) pbuf_.resize(std::max(pend_ + n, pbuf_.size() * 2));
    }

    // ---- the BIO: memory in, memory out ----
    friend BIO_METHOD* tls_bio_method();

    /// Hands the records OpenSSL wrote during one call to the raw stream: one write (so one
    /// send) per handshake flight or SSL_write, rather than one per record.
    void flush_out() noexcept {
        if (out_.empty()) return;
        try {
            raw_w_.write(std::span<const std::byte>(out_));
        } catch (...) {
            if (!werr_) werr_ = std::current_exception();  // closed raw stream, no memory: drain() says so
        }
        out_.clear();  // keeps the capacity: no allocation per record in steady state
    }

    static int bio_write(BIO* b, const char* data, int len) noexcept {
        auto* self = static_cast<tls_state*>(BIO_get_data(b));
        BIO_clear_retry_flags(b);
        if (len <= 0) return 0;
        const auto* p = reinterpret_cast<const std::byte*>(data);
        const std::span<const std::byte> rec(p, static_cast<std::size_t>(len));
        try {
            if (self->out_.empty() && self->raw_w_.write_buffer_size() > 0) {
                // A send is in flight: the stream only queues this record, so it may go
                // there directly (one copy fewer); order holds since out_ is empty.
                self->raw_w_.write(rec);
            } else {
                self->out_.insert(self->out_.end(), rec.begin(), rec.end());
            }
        } catch (...) {
            return -1;  // out of memory, or the stream is closed: OpenSSL reports a write failure
        }
        return len;
    }
    static int bio_read(BIO* b, char* out, int len) noexcept {
        auto* self = static_cast<tls_state*>(BIO_get_data(b));
        BIO_clear_retry_flags(b);
        if (len <= 0) return 0;
        if (!self->in_.empty()) {
            const std::size_t n = std::min(self->in_.size(), static_cast<std::size_t>(len));
            std::memcpy(out, self->in_.data(), n);
            if (n == self->in_.size()) self->in_.reset();  // the ring buffer goes back at once
            else self->in_.remove_prefix(n);
            return static_cast<int>(n);
        }
        if (self->raw_eof_) return 0;
        BIO_set_retry_read(b);
        return -1;
    }
    static long bio_ctrl(BIO*, int cmd, long, void*) noexcept {
        return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // records are handed to the stream as written
    }

    stream_reader raw_r_;
    stream_writer raw_w_;
    std::shared_ptr<ssl_ctx_impl> ctx_;
    std::string host_;
    std::size_t limit_;
    std::chrono::duration<double> shutdown_timeout_;
    SSL* ssl_ = nullptr;

    stream_chunk in_;  // received ciphertext not yet read by OpenSSL
    bool raw_eof_ = false;

    std::vector<std::byte> pbuf_;  // decrypted plaintext: [pbegin_, pend_)
    std::size_t pbegin_ = 0;
    std::size_t pend_ = 0;
    std::exception_ptr rerr_;
    bool eof_ = false;
    bool reading_ = false;

    std::vector<std::byte> out_;  // records written by OpenSSL during the current call
    std::exception_ptr werr_;
    bool established_ = false;
    bool closing_ = false;
};

/// The BIO method of tls_state (created once per process and kept, as OpenSSL's own
/// methods are static).
inline BIO_METHOD* tls_bio_method() {
    static BIO_METHOD* const m = [] {
        BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "coio stream");
        if (bm) {
            BIO_meth_set_write(bm, &tls_state::bio_write);
            BIO_meth_set_read(bm, &tls_state::bio_read);
            BIO_meth_set_ctrl(bm, &tls_state::bio_ctrl);
        }
        return bm;
    }();
    return m;
}

} // namespace coio::detail
