// tests/support/dnsmasq_catch.hpp - Catch2 glue for the dnsmasq fixture.
//
// COIO_TEST_REQUIRE_DNSMASQ() at the top of a TEST_CASE:
//   - dnsmasq found            -> the test runs;
//   - missing, $CI unset       -> the test is skipped with the reason printed
//                                 (Catch2 v3.3+: SKIP(); Catch2 v2, which has no skip: a
//                                 WARN with "SKIP: <reason>" and an early return, so the
//                                 test case passes with that warning in the output);
//   - missing, $CI set         -> the test FAILs: CI must not silently lose DNS coverage.
//
// Example:
//     #include <coio/dns.hpp>
//     #include "support/catch.hpp"
//     #include "support/dnsmasq_catch.hpp"
//
//     TEST_CASE("query() returns MX records") {
//         COIO_TEST_REQUIRE_DNSMASQ();
//         coio_test::dnsmasq server({.mx = {{"test", "mail.test", 10}}});
//         ...
//     }
#pragma once

#include "support/catch.hpp"
#include "support/dnsmasq.hpp"

#include <string>

namespace coio_test {

/// Catch2 flavour of dnsmasq::require_or_skip(): true = run the test. On CI without dnsmasq
/// it FAILs the current test (throws, does not return). Without CI it skips (Catch2 v3:
/// SKIP throws; v2: WARN and return false). Use through COIO_TEST_REQUIRE_DNSMASQ().
inline bool catch_require_dnsmasq() {
    if (dnsmasq::available()) return true;
    const std::string reason = dnsmasq::unavailable_reason();
    if (detail_dnsmasq::running_in_ci()) FAIL("dnsmasq is required on CI ($CI is set): " << reason);
#ifdef SKIP
    SKIP(reason);
#else
    WARN("SKIP: " << reason);
#endif
    return false;
}

}  // namespace coio_test

/// Skips (or on CI fails) the enclosing TEST_CASE when dnsmasq is not installed.
/// Must be used directly in a TEST_CASE/SECTION body (it may `return`).
#define COIO_TEST_REQUIRE_DNSMASQ()                                                           \
    do {                                                                                      \
        if (!::coio_test::catch_require_dnsmasq()) return;                                    \
    } while (false)
