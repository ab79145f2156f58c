// tests/support/stream_pair.hpp - the fixture of the stream tests: a coio stream connected
// over 127.0.0.1 to a raw coio::socket that the test drives byte by byte.
#pragma once

#include <coio/run.hpp>
#include <coio/socket.hpp>
#include <coio/streams.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace stream_test {

/// Runs the coroutine `body()` on a fresh loop, failing with timeout_error after 30 s
/// instead of hanging the test run.
template <class F>
void run_test(F body, coio::run_options options = {}) {
    using namespace std::chrono_literals;
    coio::run([](F b) -> coio::coro<void> { co_await coio::wait_for(b(), 30s); }(std::move(body)), options);
}

/// A stream (reader, writer) and the raw socket at the other end.
struct conn {
    coio::stream_reader reader;
    coio::stream_writer writer;
    coio::socket peer;
};

/// Connects a stream with `opts` to a socket accepted on an ephemeral loopback port.
inline coio::coro<conn> connect_pair(coio::stream_options opts = {}) {
    coio::socket l(AF_INET, SOCK_STREAM);
    l.bind(coio::endpoint("127.0.0.1", 0));
    l.listen();
    auto acc = coio::create_task([](coio::socket& l) -> coio::coro<coio::accepted_connection> { co_return co_await l.accept(); }(l));
    auto [r, w] = co_await coio::open_connection("127.0.0.1", l.local_address().port(), opts);
    auto a = co_await acc;
    co_return conn{std::move(r), std::move(w), std::move(a.socket)};
}

/// Receives until `n` bytes or EOF.
inline coio::coro<std::string> recv_exactly(coio::socket& s, std::size_t n) {
    std::string out;
    while (out.size() < n) {
        std::string part = co_await s.recv(std::min<std::size_t>(n - out.size(), 1 << 20));
        if (part.empty()) break;
        out += part;
    }
    co_return out;
}

/// The receive modes every reader test runs in: multishot into the ring, then plain recv.
inline std::vector<bool> modes() { return {true, false}; }

} // namespace stream_test
