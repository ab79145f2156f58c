// tests/consumer/main_tls.cpp - the smallest coio::tls program, built by tests/consumer/run.sh
// when coio::tls exists (OpenSSL 3 found).
//
// It must compile and link with nothing but `target_link_libraries(consumer_tls PRIVATE
// coio::tls)`: OpenSSL's headers and libraries come from the target. Running it makes a
// client context with the system CAs and a TLS round trip over 127.0.0.1 would need
// certificates, so it only checks the context's defaults and that the loop runs.
#include <coio/coio.hpp>
#include <coio/tls.hpp>

namespace {

coio::coro<int> main_coro() {
    auto ctx = coio::create_default_context();
    co_return ctx.check_hostname() && ctx.verify_mode() == coio::verify_mode::cert_required ? 0 : 1;
}

} // namespace

int main() {
    return coio::run(main_coro());
}
