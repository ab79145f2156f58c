// Tests of coio/stream_errors.hpp: incomplete_read_error and limit_overrun_error.
#include <coio/stream_errors.hpp>
#include "support/catch.hpp"

#include <stdexcept>
#include <string>

TEST_CASE("incomplete_read_error keeps the partial bytes and the expected count") {
    const coio::incomplete_read_error e(std::string("abc\0d", 5), 10);
    CHECK(e.partial == std::string("abc\0d", 5));
    REQUIRE(e.expected.has_value());
    CHECK(*e.expected == 10);
    CHECK(std::string(e.what()) == "5 bytes read on a total of 10 expected bytes");
    const coio::incomplete_read_error u("", std::nullopt);
    CHECK_FALSE(u.expected.has_value());
    CHECK(std::string(u.what()) == "0 bytes read on a total of undefined expected bytes");
    // Part of coio's error hierarchy, so `catch (const coio::error&)` and std::exception see it.
    const coio::error& base = e;
    CHECK(dynamic_cast<const std::runtime_error*>(&base) != nullptr);
}

TEST_CASE("limit_overrun_error carries consumed") {
    const coio::limit_overrun_error e("Separator is not found, and chunk exceed the limit", 42);
    CHECK(e.consumed == 42);
    CHECK(std::string(e.what()) == "Separator is not found, and chunk exceed the limit");
    try {
        throw e;
    } catch (const coio::error& caught) {
        CHECK(std::string(caught.what()).find("limit") != std::string::npos);
    }
}
