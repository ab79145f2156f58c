// Tests of coio/dns_errors.hpp: gaierror, dns_error, their codes and categories.
//
// ctest-labels: dns
#include <coio/dns_errors.hpp>
#include "support/catch.hpp"

#include <ares.h>
#include <netdb.h>

#include <string>
#include <system_error>
#include <type_traits>

TEST_CASE("gai_errc values are the EAI_* constants, and compare with gaierror::code()") {
    STATIC_REQUIRE(static_cast<int>(coio::gai_errc::noname) == EAI_NONAME);
    STATIC_REQUIRE(static_cast<int>(coio::gai_errc::again) == EAI_AGAIN);
    STATIC_REQUIRE(static_cast<int>(coio::gai_errc::service) == EAI_SERVICE);
    const std::error_code ec = coio::gai_errc::noname;  // implicit, like std::errc
    CHECK(ec.category() == coio::gai_category());
    CHECK(std::string(coio::gai_category().name()) == "getaddrinfo");
    CHECK(ec.message() == ::gai_strerror(EAI_NONAME));
    CHECK(make_error_code(coio::gai_errc::memory) == std::errc::not_enough_memory);
    CHECK_FALSE(make_error_code(coio::gai_errc::again) == std::errc::timed_out);
}

TEST_CASE("gaierror reads like Python's socket.gaierror, then coio's details") {
    const coio::gaierror bare(coio::gai_errc::noname);
    CHECK(bare.code() == coio::gai_errc::noname);
    CHECK(std::string(bare.what()) == "[Errno " + std::to_string(EAI_NONAME) + "] " + ::gai_strerror(EAI_NONAME));
    CHECK_FALSE(bare.dns_code());  // refused before any lookup: no c-ares status

    const coio::gaierror e(coio::gai_errc::noname, "nx.test: Domain name not found", coio::dns_errc::nxdomain);
    CHECK(std::string(e.what()) ==
          "[Errno " + std::to_string(EAI_NONAME) + "] " + ::gai_strerror(EAI_NONAME) + " (nx.test: Domain name not found)");
    CHECK(e.dns_code() == coio::dns_errc::nxdomain);

    // Copying an exception must not throw (the message is shared), and the copy reads the same.
    STATIC_REQUIRE(std::is_nothrow_copy_constructible_v<coio::gaierror>);
    const coio::gaierror copy = e;
    CHECK(std::string(copy.what()) == e.what());
    try {
        throw e;
    } catch (const std::system_error& caught) {
        CHECK(caught.code() == coio::gai_errc::noname);
    }
}

TEST_CASE("dns_errc values are c-ares statuses; timeouts and refusals match std::errc") {
    STATIC_REQUIRE(static_cast<int>(coio::dns_errc::nxdomain) == ARES_ENOTFOUND);
    STATIC_REQUIRE(static_cast<int>(coio::dns_errc::timeout) == ARES_ETIMEOUT);
    const std::error_code ec = coio::dns_errc::timeout;
    CHECK(std::string(ec.category().name()) == "dns");
    CHECK(ec.message() == ::ares_strerror(ARES_ETIMEOUT));
    CHECK(ec == std::errc::timed_out);
    CHECK(make_error_code(coio::dns_errc::connrefused) == std::errc::connection_refused);
    CHECK(make_error_code(coio::dns_errc::cancelled) == std::errc::operation_canceled);
    CHECK_FALSE(make_error_code(coio::dns_errc::nxdomain) == std::errc::timed_out);
}

TEST_CASE("dns_error reads like aiodns' DNSError: status number, c-ares text, details") {
    const coio::dns_error e(coio::dns_errc::nxdomain, "MX nx.test");
    CHECK(e.code() == coio::dns_errc::nxdomain);
    CHECK(std::string(e.what()) == "[Errno " + std::to_string(ARES_ENOTFOUND) + "] " + ::ares_strerror(ARES_ENOTFOUND) +
                                       " (MX nx.test)");
    CHECK(std::string(coio::dns_error(coio::dns_errc::nodata).what()) ==
          "[Errno " + std::to_string(ARES_ENODATA) + "] " + ::ares_strerror(ARES_ENODATA));
    STATIC_REQUIRE(std::is_nothrow_copy_constructible_v<coio::dns_error>);
    STATIC_REQUIRE(std::is_base_of_v<std::system_error, coio::dns_error>);
}
