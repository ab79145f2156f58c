// Tests of coio/tls.hpp: TLS over coio streams (OpenSSL 3), against coio itself and against
// the openssl s_server / s_client tools and curl, with certificates made at test time.
// ctest-labels: serial tls
#include <coio/tls.hpp>
#include "support/catch.hpp"

#include <coio/gather.hpp>
#include <coio/run.hpp>
#include <coio/server.hpp>
#include <coio/sleep.hpp>
#include <coio/socket.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include "support/count_allocations.hpp"
#include "support/tls_env.hpp"

#include <openssl/evp.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using tls_test::the_env;

namespace {

template <class F>
void run_test(F body) {
    coio::run([](F b) -> coio::coro<void> { co_await coio::wait_for(b(), 30s); }(std::move(body)));
}

coio::ssl_context server_ctx(const std::string& cert = "server.pem", const std::string& key = "server.key") {
    coio::ssl_context ctx(coio::ssl_protocol::tls_server);
    ctx.load_cert_chain(the_env().path(cert), the_env().path(key));
    return ctx;
}

coio::ssl_context client_ctx(const std::string& ca = "ca.pem") {
    coio::ssl_context ctx(coio::ssl_protocol::tls_client);
    if (!ca.empty()) ctx.load_verify_locations(the_env().path(ca));
    return ctx;
}

coio::coro<void> echo(coio::ssl_stream_reader r, coio::ssl_stream_writer w) {
    for (int i = 0; i < 10'000'000; ++i) {  // bounded; ends at EOF long before
        std::string d = co_await r.read(1 << 16);
        if (d.empty()) break;
        w.write(d);
        co_await w.drain();
    }
    w.close();
}

std::uint16_t port_of(const coio::server& s) { return s.sockets().front().local_address().port(); }

/// Waits (bounded) until something accepts TCP connections on 127.0.0.1:port.
coio::coro<void> wait_listening(std::uint16_t port) {
    for (int i = 0; i < 500; ++i) {
        try {
            auto [r, w] = co_await coio::open_connection("127.0.0.1", port);
            w.close();
            co_await w.wait_closed();
            co_return;
        } catch (const std::system_error&) {
        }
        co_await coio::sleep(10ms);
    }
    throw std::runtime_error("nothing listens on port " + std::to_string(port));
}

/// Waits (bounded) for a child to exit; returns its status.
coio::coro<int> wait_exit(tls_test::child& c, std::chrono::seconds limit = 20s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (const int st = c.poll(); st >= 0) co_return st;
        co_await coio::sleep(10ms);
    }
    co_return -1;
}

/// The expected failure of a client handshake, as its message (empty: it succeeded).
coio::coro<std::string> handshake_error(std::uint16_t port, coio::ssl_stream_options opts) {
    try {
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port, std::move(opts));
        // TLS 1.3: a server's refusal of the client certificate arrives after the client's
        // handshake is done, with the first read. (Our servers echo, s_server -www answers.)
        w.write("GET / HTTP/1.0\r\n\r\n");
        std::string d = co_await r.read(1);
        if (d.empty()) co_return "EOF";
        co_return "";
    } catch (const coio::ssl_error& e) {
        co_return e.what();
    }
}

}  // namespace

TEST_CASE("tls: coio client and coio server round trip, peer info, close_notify EOF") {
    run_test([]() -> coio::coro<void> {
        auto srv = co_await coio::start_server(echo, "127.0.0.1", 0, {.ssl = server_ctx()});
        auto ctx = client_ctx();
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv), {.ssl = ctx, .server_hostname = "localhost"});
        w.write("hello over tls\n");
        std::string line = co_await r.readline();
        CHECK(line == "hello over tls\n");
        CHECK(w.version() == "TLSv1.3");
        CHECK(!w.cipher().name.empty());
        CHECK(w.cipher().secret_bits >= 128);
        auto cert = w.peercert();
        REQUIRE(cert);
        CHECK(cert->subject == "CN=localhost");
        CHECK(cert->issuer == "CN=coio-test-CA");
        CHECK(cert->subject_alt_names == std::vector<std::string>{"DNS:localhost", "IP:127.0.0.1"});
        CHECK(!cert->der.empty());
        CHECK(!w.selected_alpn_protocol());
        CHECK(!w.can_write_eof());
        w.write("a\nb\n");
        const std::string ab = co_await r.readexactly(4);
        CHECK(ab == "a\nb\n");
        w.close();
        CHECK(w.is_closing());
        // The server echoes, then closes with close_notify after our close_notify: EOF.
        std::string rest = co_await r.read();
        CHECK(rest.empty());
        CHECK(r.at_eof());
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    });
}

TEST_CASE("tls: the IP address is checked against the certificate when it is the host") {
    run_test([]() -> coio::coro<void> {
        auto srv = co_await coio::start_server(echo, "127.0.0.1", 0, {.ssl = server_ctx()});
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv), {.ssl = client_ctx()});
        CHECK(!w.server_name());
        w.write("x");
        const std::string x = co_await r.read(10);
        CHECK(x == "x");
        srv.close();
        co_await srv.wait_closed();
    });
}

TEST_CASE("tls: verification failures are ssl_cert_verification_error with OpenSSL's reason") {
    run_test([]() -> coio::coro<void> {
        auto good = co_await coio::start_server(echo, "127.0.0.1", 0, {.ssl = server_ctx()});
        auto expired = co_await coio::start_server(echo, "127.0.0.1", 0, {.ssl = server_ctx("expired.pem")});
        auto self = co_await coio::start_server(echo, "127.0.0.1", 0, {.ssl = server_ctx("self.pem", "self.key")});

        // No CA loaded at all / a different CA: the chain cannot be built.
        std::string e = co_await handshake_error(port_of(good), {.ssl = client_ctx("")});
        CHECK(e == "certificate verify failed: unable to get local issuer certificate");
        e = co_await handshake_error(port_of(good), {.ssl = client_ctx("other_ca.pem")});
        CHECK(e == "certificate verify failed: unable to get local issuer certificate");

        // Wrong host name.
        try {
            auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(good),
                                                         {.ssl = client_ctx(), .server_hostname = "wrong.example"});
            FAIL("connected despite the wrong host name");
        } catch (const coio::ssl_cert_verification_error& err) {
            CHECK(std::string(err.what()) ==
                  "certificate verify failed: hostname mismatch, certificate is not valid for 'wrong.example'");
            CHECK(err.verify_code() == X509_V_ERR_HOSTNAME_MISMATCH);
            CHECK(err.verify_message() == "hostname mismatch");
            CHECK(err.code().category() == coio::ssl_category());
            CHECK(err.code().value() == SSL_R_CERTIFICATE_VERIFY_FAILED);
        }

        e = co_await handshake_error(port_of(expired), {.ssl = client_ctx(), .server_hostname = "localhost"});
        CHECK(e == "certificate verify failed: certificate has expired");
        e = co_await handshake_error(port_of(self), {.ssl = client_ctx(), .server_hostname = "localhost"});
        CHECK(e == "certificate verify failed: self-signed certificate");

        // Verification off, explicitly: the self-signed server is accepted.
        auto lax = client_ctx("");
        CHECK_THROWS_AS(lax.verify_mode(coio::verify_mode::cert_none), std::invalid_argument);
        lax.check_hostname(false);
        lax.verify_mode(coio::verify_mode::cert_none);
        e = co_await handshake_error(port_of(self), {.ssl = lax});
        CHECK(e.empty());

        // The self-signed certificate itself as the trusted CA: accepted.
        e = co_await handshake_error(port_of(self), {.ssl = client_ctx("self.pem"), .server_hostname = "localhost"});
        CHECK(e.empty());

        // The servers survived every failed handshake.
        e = co_await handshake_error(port_of(good), {.ssl = client_ctx(), .server_hostname = "localhost"});
        CHECK(e.empty());
        for (auto* s : {&good, &expired, &self}) {
            s->close();
            co_await s->wait_closed();
        }
    });
}

TEST_CASE("tls: ssl_context errors name the file; contradictory settings are refused") {
    coio::ssl_context ctx(coio::ssl_protocol::tls_server);
    try {
        ctx.load_cert_chain("/nonexistent/cert.pem", "/nonexistent/key.pem");
        FAIL("loaded a missing file");
    } catch (const coio::ssl_error& e) {
        CHECK(std::string(e.what()).find("/nonexistent/cert.pem") != std::string::npos);
    }
    CHECK_THROWS_AS(ctx.load_cert_chain(the_env().path("server.pem"), the_env().path("client.key")), coio::ssl_error);
    CHECK_THROWS_AS(ctx.set_alpn_protocols({""}), std::invalid_argument);
    CHECK_THROWS_AS(ctx.set_ciphers("NO-SUCH-CIPHER"), coio::ssl_error);
    coio::ssl_context empty;
    CHECK_THROWS_AS(empty.check_hostname(), coio::invalid_state_error);
    auto def = coio::create_default_context();
    CHECK(def.check_hostname());
    CHECK(def.verify_mode() == coio::verify_mode::cert_required);
    CHECK(def.minimum_version() == coio::tls_version::tlsv1_2);
    CHECK(!def.server_side());
    def.minimum_version(coio::tls_version::tlsv1_3);
    CHECK(def.minimum_version() == coio::tls_version::tlsv1_3);
}

namespace {

/// openssl s_server on a free port with `extra` arguments; waits until it listens.
struct s_server {
    std::uint16_t port = tls_test::free_port();
    tls_test::child proc;
    explicit s_server(std::vector<std::string> extra)
        : proc([&] {
              std::vector<std::string> a{"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port),
                                         "-cert", the_env().path("server.pem"), "-key", the_env().path("server.key")};
              a.insert(a.end(), extra.begin(), extra.end());
              return a;
          }(),
               "/dev/null", the_env().path("s_server.out"), the_env().path("s_server.err")) {}
};

coio::coro<std::string> https_get_all(coio::ssl_stream_reader& r, coio::ssl_stream_writer& w) {
    w.write("GET / HTTP/1.0\r\n\r\n");
    co_await w.drain();
    co_return co_await r.read();
}

}  // namespace

TEST_CASE("tls: client against openssl s_server: GET, ALPN, client certificates") {
    SECTION("plain GET with verification, and ALPN") {
        s_server srv({"-www", "-alpn", "http/1.1,h2"});
        run_test([&]() -> coio::coro<void> {
            co_await wait_listening(srv.port);
            auto ctx = client_ctx();
            ctx.set_alpn_protocols({"h2", "http/1.1"});
            auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port, {.ssl = ctx, .server_hostname = "localhost"});
            CHECK(w.selected_alpn_protocol() == std::optional<std::string>("http/1.1"));  // the server's preference
            std::string page = co_await https_get_all(r, w);
            CHECK(page.rfind("HTTP/1.0 200 ok\r\n", 0) == 0);
            CHECK(page.find("TLSv1.3") != std::string::npos);
        });
    }
    SECTION("TLS 1.2 only, with a chosen cipher") {
        s_server srv({"-www", "-tls1_2"});
        run_test([&]() -> coio::coro<void> {
            co_await wait_listening(srv.port);
            auto ctx = client_ctx();
            ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256");
            auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port, {.ssl = ctx, .server_hostname = "localhost"});
            CHECK(w.version() == "TLSv1.2");
            CHECK(w.cipher().name == "ECDHE-ECDSA-AES128-GCM-SHA256");
            std::string page = co_await https_get_all(r, w);
            CHECK(page.rfind("HTTP/1.0 200 ok\r\n", 0) == 0);
            w.close();  // s_server serves one connection at a time
            co_await w.wait_closed();
            // A client that insists on TLS 1.3 cannot talk to it.
            auto strict = client_ctx();
            strict.minimum_version(coio::tls_version::tlsv1_3);
            std::string e = co_await handshake_error(srv.port, {.ssl = strict, .server_hostname = "localhost"});
            CHECK(e == "tlsv1 alert protocol version");
        });
    }
    SECTION("a server that requires a client certificate") {
        s_server srv({"-www", "-Verify", "1", "-CAfile", the_env().path("ca.pem")});
        run_test([&]() -> coio::coro<void> {
            co_await wait_listening(srv.port);
            // Without a certificate: the server's alert arrives with the first read (TLS 1.3).
            std::string e = co_await handshake_error(srv.port, {.ssl = client_ctx(), .server_hostname = "localhost"});
            CHECK(e == "tlsv13 alert certificate required");
            auto ctx = client_ctx();
            ctx.load_cert_chain(the_env().path("client.pem"), the_env().path("client.key"));
            auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port, {.ssl = ctx, .server_hostname = "localhost"});
            std::string page = co_await https_get_all(r, w);
            CHECK(page.rfind("HTTP/1.0 200 ok\r\n", 0) == 0);
        });
    }
}

namespace {

/// Echoes exactly `n` bytes back (then closes): s_client -quiet ends when the server closes.
coio::coro<void> echo_n(coio::ssl_stream_reader r, coio::ssl_stream_writer w, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        std::string d = co_await r.read(1 << 16);
        if (d.empty()) break;
        done += d.size();
        w.write(d);
        co_await w.drain();
    }
    w.close();
    co_await w.wait_closed();
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 61) % 26);
    for (std::size_t i = 80; i < n; i += 81) s[i] = '\n';
    return s;
}

}  // namespace

TEST_CASE("tls: server against openssl s_client: echo, ALPN, client certificate authentication") {
    const std::string input = pattern(1 << 20);
    std::ofstream(the_env().path("input.txt"), std::ios::binary) << input;
    auto sctx = server_ctx();
    sctx.set_alpn_protocols({"coio-echo", "http/1.1"});
    sctx.verify_mode(coio::verify_mode::cert_optional);
    sctx.load_verify_locations(the_env().path("ca.pem"));
    std::string seen_alpn, seen_subject, seen_sni;
    run_test([&]() -> coio::coro<void> {
        auto srv = co_await coio::start_server(
            [&](coio::ssl_stream_reader r, coio::ssl_stream_writer w) -> coio::coro<void> {
                seen_alpn = w.selected_alpn_protocol().value_or("none");
                seen_sni = w.server_name().value_or("none");
                auto c = w.peercert();
                seen_subject = c ? c->subject : "none";
                co_await echo_n(std::move(r), std::move(w), input.size());
            },
            "127.0.0.1", 0, {.ssl = sctx});
        tls_test::child cl({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_of(srv)), "-CAfile",
                            the_env().path("ca.pem"), "-servername", "localhost", "-verify_return_error", "-quiet",
                            "-alpn", "coio-echo", "-cert", the_env().path("client.pem"), "-key", the_env().path("client.key")},
                           the_env().path("input.txt"), the_env().path("s_client.out"), the_env().path("s_client.err"));
        const int st = co_await wait_exit(cl);
        CHECK(st == 0);
        srv.close();
        co_await srv.wait_closed();
    });
    CHECK(seen_alpn == "coio-echo");
    CHECK(seen_sni == "localhost");
    CHECK(seen_subject == "CN=coio-client");
    const std::string out = tls_test::slurp(the_env().path("s_client.out"));
    CHECK(out.size() == input.size());
    CHECK(out == input);
}

TEST_CASE("tls: a server that requires client certificates drops clients without one") {
    auto sctx = server_ctx();
    sctx.verify_mode(coio::verify_mode::cert_required);
    sctx.load_verify_locations(the_env().path("ca.pem"));
    run_test([&]() -> coio::coro<void> {
        int served = 0;
        auto srv = co_await coio::start_server(
            [&](coio::ssl_stream_reader r, coio::ssl_stream_writer w) -> coio::coro<void> {
                ++served;
                co_await echo(std::move(r), std::move(w));
            },
            "127.0.0.1", 0, {.ssl = sctx});
        std::string e = co_await handshake_error(port_of(srv), {.ssl = client_ctx(), .server_hostname = "localhost"});
        CHECK(e == "tlsv13 alert certificate required");
        auto cctx = client_ctx();
        cctx.load_cert_chain(the_env().path("client.pem"), the_env().path("client.key"));
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv), {.ssl = cctx, .server_hostname = "localhost"});
        w.write("ok\n");
        const std::string ok = co_await r.readline();
        CHECK(ok == "ok\n");
        CHECK(served == 1);
        srv.close();
        co_await srv.wait_closed();
    });
}

namespace {

/// Makes close() send a reset instead of a FIN.
void linger_zero(int fd) {
    const linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

/// A mini SMTP server: greeting, EHLO, STARTTLS, then lines echoed over TLS until QUIT.
coio::coro<void> smtp_starttls(coio::stream_reader r, coio::stream_writer w, coio::ssl_context ctx) {
    w.write("220 coio ESMTP\r\n");
    std::string ehlo = co_await r.readline();
    if (ehlo.rfind("EHLO", 0) != 0) co_return;
    w.write("250-coio\r\n250 STARTTLS\r\n");
    std::string cmd = co_await r.readline();
    if (cmd != "STARTTLS\r\n") co_return;
    w.write("220 Go ahead\r\n");
    auto [tr, tw] = co_await w.start_tls(ctx);
    CHECK(!w);  // taken over
    for (int i = 0; i < 1000; ++i) {
        std::string line = co_await tr.readline();
        if (line.empty() || line.rfind("QUIT", 0) == 0) break;
        tw.write("echo: " + line);
    }
    tw.close();
    co_await tw.wait_closed();
}

}  // namespace

TEST_CASE("tls: STARTTLS upgrade with start_tls, server side against s_client -starttls smtp and coio") {
    auto sctx = server_ctx();
    std::ofstream(the_env().path("smtp.txt")) << "hello\nQUIT\n";
    run_test([&]() -> coio::coro<void> {
        auto srv = co_await coio::start_server(
            [&](coio::stream_reader r, coio::stream_writer w) { return smtp_starttls(std::move(r), std::move(w), sctx); },
            "127.0.0.1", 0);
        const auto port = port_of(srv);

        // openssl s_client as the STARTTLS client.
        tls_test::child cl({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-starttls", "smtp",
                            "-CAfile", the_env().path("ca.pem"), "-verify_return_error", "-quiet", "-crlf"},
                           the_env().path("smtp.txt"), the_env().path("smtp.out"), the_env().path("smtp.err"));
        const int st = co_await wait_exit(cl);
        CHECK(st == 0);
        CHECK(tls_test::slurp(the_env().path("smtp.out")) == "echo: hello\r\n");

        // coio as the STARTTLS client (writer.start_tls on the client side).
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port);
        std::string greet = co_await r.readline();
        CHECK(greet == "220 coio ESMTP\r\n");
        w.write("EHLO me\r\n");
        std::string l1 = co_await r.readline();
        std::string l2 = co_await r.readline();
        CHECK(l2 == "250 STARTTLS\r\n");
        w.write("STARTTLS\r\n");
        std::string go = co_await r.readline();
        CHECK(go == "220 Go ahead\r\n");
        auto cctx = client_ctx();
        auto [tr, tw] = co_await w.start_tls(cctx, {.server_hostname = "localhost"});
        CHECK(tw.version() == "TLSv1.3");
        tw.write("over tls\r\n");
        std::string echoed = co_await tr.readline();
        CHECK(echoed == "echo: over tls\r\n");
        tw.write("QUIT\r\n");
        std::string end = co_await tr.read();
        CHECK(end.empty());
        srv.close();
        co_await srv.wait_closed();
    });
}

TEST_CASE("tls: 100 MiB each way at once between coio client and coio server, data intact") {
    constexpr std::size_t total = std::size_t(100) << 20;
    run_test([&]() -> coio::coro<void> {
        auto srv = co_await coio::start_server(echo, "127.0.0.1", 0, {.ssl = server_ctx()});
        auto ctx = client_ctx();
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv), {.ssl = ctx, .server_hostname = "localhost"});
        const std::string block = pattern(1 << 20);
        auto sender = coio::create_task([](coio::ssl_stream_writer& w, const std::string& block) -> coio::coro<void> {
            for (std::size_t sent = 0; sent < total; sent += block.size()) {
                w.write(block);
                co_await w.drain();
            }
        }(w, block));
        std::size_t got = 0;
        bool intact = true;
        std::vector<std::byte> buf(256 * 1024);
        while (got < total) {
            const std::size_t n = co_await r.read_into(buf);
            if (n == 0) break;
            for (std::size_t i = 0; i < n; i += 4093)  // sample the pattern (a full compare costs seconds under ASan)
                intact = intact && static_cast<char>(buf[i]) == block[(got + i) % block.size()];
            intact = intact && static_cast<char>(buf[n - 1]) == block[(got + n - 1) % block.size()];
            got += n;
        }
        co_await sender;
        CHECK(got == total);
        CHECK(intact);
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    });
}

TEST_CASE("tls: a peer that resets or closes mid-handshake; servers drop such clients and go on") {
    run_test([]() -> coio::coro<void> {
        // A plain TCP server that reads the ClientHello, then resets (SO_LINGER 0) or closes.
        bool reset = true;
        auto rude = co_await coio::start_server(
            [&](coio::stream_reader r, coio::stream_writer w) -> coio::coro<void> {
                std::string hello = co_await r.read(100);
                if (reset) linger_zero(w.socket().fileno());
                w.close();
                co_await w.wait_closed();
            },
            "127.0.0.1", 0);
        try {
            auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(rude), {.ssl = client_ctx()});
            FAIL("handshake succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_reset);
        }
        reset = false;
        try {
            auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(rude), {.ssl = client_ctx()});
            FAIL("handshake succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_reset);
            CHECK(std::string(e.what()).find("the peer closed the connection") != std::string::npos);
        }
        rude.close();
        co_await rude.wait_closed();

        // A TLS server and clients that send half a ClientHello and reset, or plain text.
        int served = 0;
        auto srv = co_await coio::start_server(
            [&](coio::ssl_stream_reader r, coio::ssl_stream_writer w) -> coio::coro<void> {
                ++served;
                co_await echo(std::move(r), std::move(w));
            },
            "127.0.0.1", 0, {.ssl = server_ctx()});
        for (int i = 0; i < 3; ++i) {
            auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv));
            if (i == 2) {
                w.write("GET / HTTP/1.0\r\n\r\n");  // not TLS at all: the server drops it
                std::string rest = co_await r.read();
                CHECK(rest.size() < 100);  // at most an alert
                continue;
            }
            w.write(std::string_view("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));  // a truncated ClientHello
            co_await coio::sleep(20ms);
            if (i == 0) linger_zero(w.socket().fileno());
            w.close();
            co_await w.wait_closed();
        }
        co_await coio::sleep(50ms);
        CHECK(srv.active_connections() == 0);
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv), {.ssl = client_ctx()});
        w.write("still here\n");
        std::string line = co_await r.readline();
        CHECK(line == "still here\n");
        CHECK(served == 1);
        srv.close();
        co_await srv.wait_closed();
    });
}

TEST_CASE("tls: cancellation and ssl_handshake_timeout during the handshake close the connection") {
    run_test([]() -> coio::coro<void> {
        // A server that accepts and never answers.
        int closed = 0;
        auto silent = co_await coio::start_server(
            [&](coio::stream_reader r, coio::stream_writer) -> coio::coro<void> {
                std::string all = co_await r.read();  // until the client goes
                ++closed;
            },
            "127.0.0.1", 0);
        const auto port = port_of(silent);
        try {
            auto [r, w] = co_await coio::wait_for(coio::open_connection("127.0.0.1", port, {.ssl = client_ctx()}), 100ms);
            FAIL("handshake with a silent server succeeded");
        } catch (const coio::timeout_error&) {
        }
        try {
            auto [r, w] = co_await coio::open_connection("127.0.0.1", port, {.ssl = client_ctx(), .ssl_handshake_timeout = 100ms});
            FAIL("handshake with a silent server succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_aborted);
            CHECK(std::string(e.what()).find("SSL handshake is taking longer than 0.1 seconds") != std::string::npos);
        }
        // An outer deadline shorter than ssl_handshake_timeout stays a timeout_error.
        try {
            auto deadline = coio::timeout(50ms);
            auto [r, w] = co_await coio::open_connection("127.0.0.1", port, {.ssl = client_ctx(), .ssl_handshake_timeout = 10s});
            FAIL("handshake with a silent server succeeded");
        } catch (const coio::timeout_error&) {
        }
        // A task cancelled in the handshake.
        auto t = coio::create_task(coio::open_connection("127.0.0.1", port, {.ssl = client_ctx()}));
        co_await coio::sleep(50ms);
        t.cancel();
        try {
            co_await t;
            FAIL("not cancelled");
        } catch (const coio::cancelled_error&) {
        }
        // Each abandoned connection was closed: the server saw EOF four times.
        for (int i = 0; i < 100 && closed < 4; ++i) co_await coio::sleep(10ms);
        CHECK(closed == 4);
        silent.close();
        co_await silent.wait_closed();

        // The server side: a client that never sends its ClientHello is dropped after the timeout.
        auto srv = co_await coio::start_server(echo, "127.0.0.1", 0, {.ssl = server_ctx(), .ssl_handshake_timeout = 100ms});
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv));
        std::string none = co_await coio::wait_for(r.read(), 5s);
        CHECK(none.empty());  // EOF: dropped
        srv.close();
        co_await srv.wait_closed();
    });
}

TEST_CASE("tls: one reader at a time; write after close; reads after the peer's close_notify") {
    run_test([]() -> coio::coro<void> {
        auto srv = co_await coio::start_server(echo, "127.0.0.1", 0, {.ssl = server_ctx()});
        auto ctx = client_ctx();
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv), {.ssl = ctx, .server_hostname = "localhost"});
        auto first = coio::create_task(r.read(10));
        co_await coio::sleep(10ms);
        CHECK_THROWS_AS(co_await r.read(10), coio::invalid_state_error);
        w.write("ab");
        std::string got = co_await first;
        CHECK(got == "ab");
        w.write("line one\nline two\nrest");
        std::vector<std::string> lines;
        auto gen = r.lines();
        for (int i = 0; i < 2; ++i) {
            auto l = co_await gen.next();
            if (l) lines.push_back(*l);
        }
        CHECK(lines == std::vector<std::string>{"line one\n", "line two\n"});
        std::string rest = co_await r.readexactly(4);
        CHECK(rest == "rest");
        w.close();
        CHECK_THROWS_AS(w.write("late"), coio::invalid_state_error);
        srv.close();
        co_await srv.wait_closed();
    });
}

namespace {

/// A minimal HTTPS responder: GET /big sends `big` bytes of the pattern; PUT counts the body
/// and checks it against the pattern; anything else answers "hello".
coio::coro<void> http_handler(coio::ssl_stream_reader r, coio::ssl_stream_writer w, std::size_t big) {
    std::string head = co_await r.readuntil("\r\n\r\n");
    std::string body;
    if (head.rfind("GET /big ", 0) == 0) {
        w.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(big) + "\r\nConnection: close\r\n\r\n");
        const std::string block = pattern(1 << 20);
        for (std::size_t sent = 0; sent < big; sent += block.size()) {
            w.write(std::string_view(block).substr(0, std::min(block.size(), big - sent)));
            co_await w.drain();
        }
    } else if (head.rfind("PUT ", 0) == 0) {
        std::string lower = head;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const auto pos = lower.find("content-length:");
        const std::size_t n = pos == std::string::npos ? 0 : std::stoull(lower.substr(pos + 15));
        if (lower.find("expect: 100-continue") != std::string::npos) w.write("HTTP/1.1 100 Continue\r\n\r\n");
        const std::string block = pattern(1 << 20);
        std::size_t got = 0;
        bool intact = true;
        std::vector<std::byte> buf(1 << 18);
        while (got < n) {
            const std::size_t k = co_await r.read_into(std::span(buf).first(std::min(buf.size(), n - got)));
            if (k == 0) break;
            for (std::size_t i = 0; i < k; i += 4093) intact = intact && static_cast<char>(buf[i]) == block[(got + i) % block.size()];
            got += k;
        }
        body = "received " + std::to_string(got) + (intact ? " intact" : " corrupted");
        w.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    } else {
        body = "hello";
        w.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n" + body);
    }
    co_await w.drain();
    w.close();
    co_await w.wait_closed();
}

}  // namespace

TEST_CASE("tls: curl --cacert against a coio HTTPS server, 100 MiB down and 100 MiB up") {
    constexpr std::size_t big = std::size_t(100) << 20;
    const std::string upload = the_env().path("upload.bin");
    {
        const std::string block = pattern(1 << 20);
        std::ofstream f(upload, std::ios::binary);
        for (std::size_t i = 0; i < big; i += block.size()) f << block;
    }
    run_test([&]() -> coio::coro<void> {
        auto sctx = server_ctx();
        auto srv = co_await coio::start_server(
            [&](coio::ssl_stream_reader r, coio::ssl_stream_writer w) { return http_handler(std::move(r), std::move(w), big); },
            "127.0.0.1", 0, {.ssl = sctx});
        const std::string port = std::to_string(port_of(srv));
        // --resolve: curl must not ask any resolver for "localhost".
        const std::vector<std::string> base{"curl", "-sS", "--cacert", the_env().path("ca.pem"), "--resolve",
                                            "localhost:" + port + ":127.0.0.1"};
        auto cmd = [&](std::vector<std::string> extra) {
            std::vector<std::string> a = base;
            a.insert(a.end(), extra.begin(), extra.end());
            return a;
        };
        {
            tls_test::child c(cmd({"https://localhost:" + port + "/hello"}), "/dev/null", the_env().path("curl1.out"),
                              the_env().path("curl1.err"));
            const int status = co_await wait_exit(c);
            CHECK(status == 0);
            CHECK(tls_test::slurp(the_env().path("curl1.out")) == "hello");
        }
        {
            tls_test::child c(cmd({"https://localhost:" + port + "/big", "-o", "/dev/null", "-w", "%{size_download}"}), "/dev/null",
                              the_env().path("curl2.out"), the_env().path("curl2.err"));
            const int status = co_await wait_exit(c);
            CHECK(status == 0);
            CHECK(tls_test::slurp(the_env().path("curl2.out")) == std::to_string(big));
        }
        {
            tls_test::child c(cmd({"https://localhost:" + port + "/up", "-T", upload}), "/dev/null", the_env().path("curl3.out"),
                              the_env().path("curl3.err"));
            const int status = co_await wait_exit(c);
            CHECK(status == 0);
            CHECK(tls_test::slurp(the_env().path("curl3.out")) == "received " + std::to_string(big) + " intact");
        }
        {
            // curl without our CA refuses the server (exit 60: peer certificate cannot be authenticated).
            tls_test::child c({"curl", "-sS", "--resolve", "localhost:" + port + ":127.0.0.1", "https://localhost:" + port + "/hello"},
                              "/dev/null", the_env().path("curl4.out"), the_env().path("curl4.err"));
            const int status = co_await wait_exit(c);
            CHECK(status == 60);
        }
        srv.close();
        co_await srv.wait_closed();
    });
    std::remove(upload.c_str());
}

TEST_CASE("tls: close waits for the peer's close_notify, at most ssl_shutdown_timeout") {
    run_test([]() -> coio::coro<void> {
        // A server that never reads nor closes: our close_notify gets no answer.
        coio::ssl_stream_writer held;
        auto mute = co_await coio::start_server(
            [&](coio::ssl_stream_reader, coio::ssl_stream_writer w) -> coio::coro<void> {
                held = std::move(w);
                co_await coio::sleep(10s);
            },
            "127.0.0.1", 0, {.ssl = server_ctx()});
        auto ctx = client_ctx();
        {
            auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(mute),
                                                         {.ssl = ctx, .server_hostname = "localhost", .ssl_shutdown_timeout = 200ms});
            const auto t0 = std::chrono::steady_clock::now();
            w.close();
            std::string none = co_await r.read();  // EOF at once after close()
            CHECK(none.empty());
            co_await w.wait_closed();
            const auto waited = std::chrono::steady_clock::now() - t0;
            CHECK(waited >= 150ms);
            CHECK(waited < 5s);
        }
        // An echo server answers close_notify with its own: no waiting for the timeout.
        auto srv = co_await coio::start_server(echo, "127.0.0.1", 0, {.ssl = server_ctx()});
        {
            auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv), {.ssl = ctx, .server_hostname = "localhost"});
            w.write("x");
            std::string x = co_await r.read(1);
            CHECK(x == "x");
            const auto t0 = std::chrono::steady_clock::now();
            w.close();
            co_await w.wait_closed();
            CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // far below the default 30 s
        }
        // Zero: close at once.
        {
            auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(mute),
                                                         {.ssl = ctx, .server_hostname = "localhost", .ssl_shutdown_timeout = 0s});
            const auto t0 = std::chrono::steady_clock::now();
            w.close();
            co_await w.wait_closed();
            CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // not the 200 ms or 30 s of a wait
        }
        held = {};
        for (auto* s : {&mute, &srv}) {
            s->close();
            co_await s->wait_closed();
        }
    });
}

TEST_CASE("tls: steady-state echo round trips make no C++ allocation (OpenSSL's own aside)") {
    run_test([]() -> coio::coro<void> {
        auto srv = co_await coio::start_server(
            [](coio::ssl_stream_reader r, coio::ssl_stream_writer w) -> coio::coro<void> {
                std::vector<std::byte> buf(1 << 16);
                for (int i = 0; i < 1'000'000; ++i) {
                    const std::size_t n = co_await r.read_into(buf);
                    if (n == 0) break;
                    w.write(std::span<const std::byte>(buf.data(), n));
                    co_await w.drain();
                }
            },
            "127.0.0.1", 0, {.ssl = server_ctx()});
        auto ctx = client_ctx();
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv), {.ssl = ctx, .server_hostname = "localhost"});
        const std::string msg(100, 'm');
        std::vector<std::byte> buf(msg.size());
        for (int i = 0; i < 200; ++i) {  // warm up: buffers, frame pool
            w.write(msg);
            co_await r.readexactly_into(buf);
        }
        coio_test::g_allocs = 0;
        coio_test::g_count = true;
        for (int i = 0; i < 2000; ++i) {
            w.write(msg);
            co_await r.readexactly_into(buf);
        }
        coio_test::g_count = false;
        INFO("allocations in 2000 round trips (both ends): " << coio_test::g_allocs);
#if COIO_FRAME_POOL
        CHECK(coio_test::g_allocs == 0);
#else
        // Under ASan/TSan coroutine frames come from the heap (the frame pool is off so the
        // sanitizers see them): only those, a handful per round trip, are allowed.
        CHECK(coio_test::g_allocs <= 2000 * 8);
#endif
        srv.close();
        co_await srv.wait_closed();
    });
}

TEST_CASE("tls: a peer that closes without close_notify after the handshake is an ordinary EOF") {
    run_test([]() -> coio::coro<void> {
        auto srv = co_await coio::start_server(
            [](coio::ssl_stream_reader, coio::ssl_stream_writer w) -> coio::coro<void> {
                w.write("bye\n");
                co_await w.drain();
                SSL_set_quiet_shutdown(w.native_handle(), 1);  // close() sends no close_notify
                w.close();
                co_await w.wait_closed();
            },
            "127.0.0.1", 0, {.ssl = server_ctx(), .ssl_shutdown_timeout = 0s});
        auto ctx = client_ctx();
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv), {.ssl = ctx, .server_hostname = "localhost"});
        std::string all = co_await r.read();  // until EOF: no exception for the missing close_notify
        CHECK(all == "bye\n");
        CHECK(r.at_eof());
        CHECK((SSL_get_shutdown(w.native_handle()) & SSL_RECEIVED_SHUTDOWN) == 0);  // really no close_notify
        std::string more = co_await r.read(10);
        CHECK(more.empty());
        srv.close();
        co_await srv.wait_closed();
    });
}

TEST_CASE("tls: ALPN between coio ends: the server's preference, or none without overlap") {
    run_test([]() -> coio::coro<void> {
        auto sctx = server_ctx();
        sctx.set_alpn_protocols({"h2", "http/1.1"});
        std::vector<std::string> seen;
        auto srv = co_await coio::start_server(
            [&](coio::ssl_stream_reader r, coio::ssl_stream_writer w) -> coio::coro<void> {
                seen.push_back(w.selected_alpn_protocol().value_or("none"));
                co_await echo(std::move(r), std::move(w));
            },
            "127.0.0.1", 0, {.ssl = sctx});
        for (auto offer : {std::vector<std::string>{"http/1.1", "h2"}, std::vector<std::string>{"spdy/3"}}) {
            auto ctx = client_ctx();
            ctx.set_alpn_protocols(offer);
            auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv), {.ssl = ctx, .server_hostname = "localhost"});
            w.write("x");
            std::string x = co_await r.read(1);
            CHECK(x == "x");
            CHECK(w.selected_alpn_protocol() == (offer.size() == 2 ? std::optional<std::string>("h2") : std::nullopt));
            w.close();
            co_await w.wait_closed();
        }
        CHECK(seen == std::vector<std::string>{"h2", "none"});
        srv.close();
        co_await srv.wait_closed();
    });
}

TEST_CASE("tls: a cancelled read loses nothing; TLS 1.3 key updates in both directions mid-stream") {
    run_test([]() -> coio::coro<void> {
        int updates = 0;
        auto srv = co_await coio::start_server(
            [&](coio::ssl_stream_reader r, coio::ssl_stream_writer w) -> coio::coro<void> {
                for (int i = 0; i < 1000; ++i) {
                    std::string line = co_await r.readline();
                    if (line.empty()) break;
                    if (line == "update\n") {
                        // Sent with the next record; the peer answers with its own update.
                        if (SSL_key_update(w.native_handle(), SSL_KEY_UPDATE_REQUESTED) == 1) ++updates;
                    }
                    w.write(line);
                    co_await w.drain();
                }
            },
            "127.0.0.1", 0, {.ssl = server_ctx()});
        auto ctx = client_ctx();
        auto [r, w] = co_await coio::open_connection("127.0.0.1", port_of(srv), {.ssl = ctx, .server_hostname = "localhost"});

        // A read cancelled while waiting: the data that comes later is read by the next read.
        auto t = coio::create_task(r.readline());
        co_await coio::sleep(20ms);
        t.cancel();
        try {
            co_await t;
            FAIL("not cancelled");
        } catch (const coio::cancelled_error&) {
        }
        w.write("after cancel\n");
        std::string l = co_await r.readline();
        CHECK(l == "after cancel\n");

        // Key updates: the server's, answered by ours (written while reading), then traffic.
        for (int i = 0; i < 3; ++i) {
            w.write("update\n");
            std::string u = co_await r.readline();
            CHECK(u == "update\n");
            w.write("more\n");
            std::string m = co_await r.readline();
            CHECK(m == "more\n");
        }
        CHECK(updates == 3);
        // Our own key update, sent with the next write.
        CHECK(SSL_key_update(w.native_handle(), SSL_KEY_UPDATE_REQUESTED) == 1);
        w.write("mine\n");
        std::string mine = co_await r.readline();
        CHECK(mine == "mine\n");
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    });
}
