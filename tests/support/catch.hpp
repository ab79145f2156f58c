// tests/support/catch.hpp - include Catch2, whichever major version is installed.
//
// Debian 12 ships Catch2 2.13 (single header <catch2/catch.hpp>); Catch2 v3 split it into
// <catch2/catch_all.hpp> plus a compiled library. The assertion macros used by coio's tests
// (TEST_CASE, SECTION, REQUIRE, CHECK, REQUIRE_THROWS_AS, ...) exist in both.
//
// Include the header under test first, then this file:
//     #include <coio/loop.hpp>
//     #include "support/catch.hpp"
#pragma once

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
