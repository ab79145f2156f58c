#include <coio/resolver_options.hpp>

#include "support/catch.hpp"

#include <coio/loop.hpp>

using namespace std::chrono_literals;

TEST_CASE("resolver_options defaults keep the system configuration, with a bounded burst") {
    coio::resolver_options o;
    CHECK(o.servers.empty());
    CHECK(o.timeout == 0ms);
    CHECK(o.tries == 0);
    CHECK(o.ndots < 0);
    CHECK(o.max_inflight == 100);
    coio::resolver_options custom{.servers = {"127.0.0.1:5353"}, .timeout = 500ms, .tries = 2};
    CHECK(custom.servers.front() == "127.0.0.1:5353");
    coio::run_options run{.entries = 256, .resolver = custom};
    CHECK(run.resolver.tries == 2);
}
