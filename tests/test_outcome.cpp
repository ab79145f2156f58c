#include <coio/outcome.hpp>

#include "support/catch.hpp"

#include <memory>
#include <stdexcept>
#include <string>

TEST_CASE("outcome holds a value or an exception") {
    coio::outcome<std::string> v(std::string("x"));
    CHECK(v.has_value());
    CHECK(static_cast<bool>(v));
    CHECK(v.value() == "x");
    CHECK(v.error() == nullptr);

    coio::outcome<std::string> e(std::make_exception_ptr(std::runtime_error("bad")));
    CHECK_FALSE(e.has_value());
    CHECK_THROWS_WITH(e.value(), "bad");
    CHECK(e.error() != nullptr);

    coio::outcome<std::unique_ptr<int>> m(std::make_unique<int>(3));
    auto p = std::move(m).value();
    CHECK(*p == 3);
}

TEST_CASE("outcome<void> and outcome<T&>") {
    coio::outcome<void> ok;
    CHECK(ok.has_value());
    CHECK_NOTHROW(ok.value());
    coio::outcome<void> bad(std::make_exception_ptr(std::logic_error("no")));
    CHECK_THROWS_AS(bad.value(), std::logic_error);

    int x = 1;
    coio::outcome<int&> r(x);
    r.value() = 2;
    CHECK(x == 2);
}
