#include <coio/errors.hpp>

#include "support/catch.hpp"

#include <exception>
#include <type_traits>

TEST_CASE("coio errors derive from std::exception through coio::error") {
    static_assert(std::is_base_of_v<coio::error, coio::timeout_error>);
    static_assert(std::is_base_of_v<coio::error, coio::invalid_state_error>);
    static_assert(std::is_base_of_v<std::exception, coio::error>);
    CHECK_THROWS_AS(throw coio::timeout_error(), std::exception);
    CHECK(std::string(coio::timeout_error().what()) == "operation timed out");
}

TEST_CASE("cancelled_error is not a std::exception, so catch (std::exception&) cannot swallow it") {
    static_assert(!std::is_base_of_v<std::exception, coio::cancelled_error>);
    static_assert(!std::is_base_of_v<std::exception, coio::keyboard_interrupt>);
    bool swallowed = false;
    bool reached = false;
    try {
        try {
            throw coio::cancelled_error();
        } catch (const std::exception&) {
            swallowed = true;
        }
    } catch (const coio::cancelled_error& e) {
        reached = true;
        CHECK(std::string(e.what()) == "task cancelled");
    }
    CHECK_FALSE(swallowed);
    CHECK(reached);
}
