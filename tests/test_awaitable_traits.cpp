#include <coio/awaitable_traits.hpp>

#include "support/catch.hpp"

#include <coio/shield.hpp>

#include <string>
#include <type_traits>

TEST_CASE("awaitable traits classify coros, tasks, futures and awaiters") {
    static_assert(coio::awaitable_handle<coio::coro<int>>);
    static_assert(coio::awaitable_handle<coio::task<std::string>&>);
    static_assert(coio::awaitable_handle<const coio::future<void>&>);
    static_assert(!coio::awaitable_handle<int>);
    static_assert(std::is_same_v<coio::await_result_t<coio::coro<int>>, int>);
    static_assert(std::is_same_v<coio::await_result_t<coio::task<void>>, void>);
    using shielded = decltype(coio::shield(std::declval<coio::task<long>&>()));
    static_assert(coio::awaiter<shielded>);
    static_assert(coio::awaitable<shielded>);
    static_assert(!coio::awaitable_handle<shielded>);
    static_assert(std::is_same_v<coio::await_result_t<shielded>, long>);
    CHECK(coio::awaitable<coio::coro<void>>);
}
