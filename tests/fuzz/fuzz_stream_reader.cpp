// tests/fuzz/fuzz_stream_reader.cpp - libFuzzer target: coio::stream_reader's framing
// against a model of asyncio's StreamReader.
//
// Each input is a script: a small limit, the receive mode (multishot ring or plain recv),
// chunks a peer writes into a real AF_UNIX socket pair (with yields between them), and
// reads (readline, readuntil, readexactly, read, read_into, readexactly_into, read_chunk),
// some of them cancelled after a few loop iterations. The peer and the reader run as two
// tasks, so data arrives in chunks the fuzzer chooses while reads wait.
//
// The model knows the whole byte stream S and the reader's position in it. asyncio's
// results depend on how the bytes were split only in bounded ways (how much read(n) gets,
// the `consumed` of an overrun), so each outcome is checked against exactly what asyncio
// allows at that position: readuntil returns the data through the first separator when it
// ends within the limit, else raises LimitOverrunError with limit < consumed <= position
// of the separator (equal when the message says it was found) and leaves the buffer alone;
// at EOF without a separator IncompleteReadError carries every remaining byte (partial);
// readline drops the overlong line as asyncio does; readexactly returns n bytes or raises
// IncompleteReadError(partial = the rest, expected = n); read(n) returns 1..n bytes from
// the position (empty only at EOF). A cancelled read returns nothing and moves nothing. At
// the end the rest of the stream is read and must complete S exactly. A hang (5 s) is a
// finding too.
//
// Run: build with -DCOIO_BUILD_FUZZERS=ON (clang), then
//   build/tests/fuzz/fuzz_stream_reader tests/fuzz/corpus/fuzz_stream_reader -max_total_time=30
#include <coio/stream_reader.hpp>

#include <coio/loop.hpp>
#include <coio/sleep.hpp>
#include <coio/socket.hpp>
#include <coio/streams.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <fuzzer/FuzzedDataProvider.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

[[noreturn]] void finding(const std::string& what) {
    std::fprintf(stderr, "fuzz_stream_reader: %s\n", what.c_str());
    std::abort();
}

std::string printable(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '\\') out += static_cast<char>(c);
        else {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", c);
            out += b;
        }
    }
    return out;
}

enum class kind : std::uint8_t { read_n, read_all, readexactly, readuntil, readline, read_into, readexactly_into, read_chunk };
constexpr int kinds = 8;

struct read_op {
    kind k = kind::read_n;
    std::size_t n = 0;             // read(n), readexactly(n), the span size of the *_into reads
    std::string sep;               // readuntil
    std::optional<int> cancel_after;  // cancel after this many loop iterations
};

struct outcome {
    enum { none, value, incomplete, overrun } what = none;  // none: cancelled
    std::string data;                                       // value, or partial
    std::optional<std::size_t> expected;                    // incomplete_read_error::expected
    std::size_t consumed = 0;                               // limit_overrun_error::consumed
    bool separator_found = false;                           // the overrun message's case
};

struct script {
    std::size_t limit = 1;
    bool multishot = true;
    std::vector<std::string> chunks;
    std::vector<int> yields_after_chunk;
    std::vector<read_op> reads;
    std::string stream;  // S: every chunk in order
};

script parse_script(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    script s;
    s.limit = in.ConsumeIntegralInRange<std::size_t>(1, 48);
    s.multishot = in.ConsumeBool();
    const bool small_alphabet = in.ConsumeBool();  // makes separators common
    auto byte = [&](std::uint8_t b) -> char {
        static constexpr char alphabet[] = {'a', '\n', '\r', 'b'};
        return small_alphabet ? alphabet[b % 4] : static_cast<char>(b);
    };
    while (in.remaining_bytes() > 0 && s.chunks.size() + s.reads.size() < 64) {
        const std::uint8_t action = in.ConsumeIntegral<std::uint8_t>();
        if (action % 2 == 0) {
            std::string c;
            const std::size_t len = in.ConsumeIntegralInRange<std::size_t>(1, 96);
            for (std::size_t i = 0; i < len && in.remaining_bytes() > 0; ++i) c += byte(in.ConsumeIntegral<std::uint8_t>());
            if (c.empty()) break;
            s.stream += c;
            s.chunks.push_back(std::move(c));
            s.yields_after_chunk.push_back(action / 2 % 4);
        } else {
            read_op r;
            r.k = static_cast<kind>((action / 2) % kinds);
            r.n = in.ConsumeIntegralInRange<std::size_t>(0, 3 * s.limit + 2);
            const std::size_t seplen = in.ConsumeIntegralInRange<std::size_t>(1, 3);
            for (std::size_t i = 0; i < seplen; ++i) r.sep += byte(in.ConsumeIntegral<std::uint8_t>());
            if (action & 0x80) r.cancel_after = in.ConsumeIntegralInRange<int>(0, 3);
            s.reads.push_back(std::move(r));
        }
    }
    return s;
}

/// Runs one read and records what it gave (recorded at once: a task whose coroutine returns
/// while a cancellation is pending ends cancelled, but the read's result is what counts).
coio::coro<void> perform(const read_op& op, coio::stream_reader& r, outcome& out) {
    try {
        switch (op.k) {
        case kind::read_n: out.data = co_await r.read(static_cast<std::ptrdiff_t>(op.n)); break;
        case kind::read_all: out.data = co_await r.read(); break;
        case kind::readexactly: out.data = co_await r.readexactly(op.n); break;
        case kind::readuntil: out.data = co_await r.readuntil(op.sep); break;
        case kind::readline: out.data = co_await r.readline(); break;
        case kind::read_into: {
            std::vector<std::byte> buf(op.n);
            const std::size_t got = co_await r.read_into(buf);
            out.data.assign(reinterpret_cast<const char*>(buf.data()), got);
            break;
        }
        case kind::readexactly_into: {
            std::vector<std::byte> buf(op.n);
            co_await r.readexactly_into(buf);
            out.data.assign(reinterpret_cast<const char*>(buf.data()), buf.size());
            break;
        }
        case kind::read_chunk: {
            coio::stream_chunk c = co_await r.read_chunk();
            out.data = std::string(c.view());
            break;
        }
        }
        out.what = outcome::value;
    } catch (const coio::incomplete_read_error& e) {
        out.what = outcome::incomplete;
        out.data = e.partial;
        out.expected = e.expected;
    } catch (const coio::limit_overrun_error& e) {
        out.what = outcome::overrun;
        out.consumed = e.consumed;
        out.separator_found = std::string_view(e.what()).find("is found") != std::string_view::npos;
    }
}

/// Checks `out` against asyncio's semantics at position `pos` of S; advances `pos`.
void check(const script& s, const read_op& op, const outcome& out, std::size_t& pos) {
    const std::string_view S = s.stream;
    const std::string_view rest = S.substr(pos);
    auto fail = [&](const char* why) {
        finding(std::string(why) + " (read kind " + std::to_string(static_cast<int>(op.k)) + ", n " + std::to_string(op.n) +
                ", sep '" + printable(op.sep) + "', limit " + std::to_string(s.limit) + ", multishot " +
                std::to_string(s.multishot) + ", at " + std::to_string(pos) + " of " + std::to_string(S.size()) +
                ", rest '" + printable(rest) + "', got kind " + std::to_string(static_cast<int>(out.what)) + " data '" +
                printable(out.data) + "' consumed " + std::to_string(out.consumed) + ")");
    };
    if (out.what == outcome::none) return;  // cancelled: nothing may have moved
    switch (op.k) {
    case kind::read_n:
    case kind::read_into:
    case kind::read_chunk: {
        if (out.what != outcome::value) fail("read raised");
        const std::size_t max = op.k == kind::read_chunk ? rest.size() : op.n;
        if (rest.empty() || max == 0) {
            if (!out.data.empty()) fail("read returned data at EOF or for n == 0");
        } else {
            if (out.data.empty()) fail("read returned nothing before EOF");
            if (out.data.size() > max) fail("read returned more than n");
            if (rest.substr(0, out.data.size()) != out.data) fail("read returned the wrong bytes");
        }
        pos += out.data.size();
        return;
    }
    case kind::read_all:
        if (out.what != outcome::value || out.data != rest) fail("read() is not the rest of the stream");
        pos = S.size();
        return;
    case kind::readexactly:
    case kind::readexactly_into:
        if (rest.size() >= op.n) {
            if (out.what != outcome::value || out.data != rest.substr(0, op.n)) fail("readexactly did not return the next n bytes");
            pos += op.n;
        } else {
            if (out.what != outcome::incomplete) fail("readexactly short of data did not raise incomplete_read_error");
            if (out.data != rest || out.expected != op.n) fail("incomplete_read_error: wrong partial or expected");
            pos = S.size();
        }
        return;
    case kind::readuntil:
    case kind::readline: {
        const std::string sep = op.k == kind::readline ? std::string("\n") : op.sep;
        const std::size_t m = sep.size();
        const std::size_t q = rest.find(sep);
        const bool never_over = rest.size() < m || rest.size() + 1 - m <= s.limit;
        if (q != std::string_view::npos && q <= s.limit) {
            if (out.what != outcome::value || out.data != rest.substr(0, q + m)) fail("readuntil did not return through the separator");
            pos += q + m;
        } else if (out.what == outcome::overrun) {
            if (q == std::string_view::npos && never_over) fail("overrun although the rest never exceeds the limit");
            if (out.consumed <= s.limit) fail("overrun with consumed <= limit");
            if (out.separator_found) {
                if (out.consumed != q) fail("'separator is found' but consumed is not its position");
            } else {
                if (out.consumed + m - 1 > rest.size()) fail("overrun: consumed beyond the received data");
                if (rest.substr(0, out.consumed + m - 1).find(sep) != std::string_view::npos) fail("'not found' but the separator was there");
            }
            // readuntil leaves the data; readline drops the line (through its '\n', or all
            // that was buffered, which is `consumed` bytes when the separator is one byte).
            if (op.k == kind::readline) pos += out.separator_found ? out.consumed + 1 : out.consumed;
        } else if (op.k == kind::readuntil) {
            if (q != std::string_view::npos || !never_over) fail("readuntil past the limit did not raise limit_overrun_error");
            if (out.what != outcome::incomplete || out.data != rest || out.expected) fail("readuntil at EOF: wrong incomplete_read_error");
            pos = S.size();
        } else {
            if (q != std::string_view::npos || !never_over) fail("readline past the limit did not raise limit_overrun_error");
            if (out.what != outcome::value || out.data != rest) fail("readline at EOF did not return the partial line");
            pos = S.size();
        }
        return;
    }
    }
}

coio::coro<void> writer(const script& s, int fd) {
    for (std::size_t i = 0; i < s.chunks.size(); ++i) {
        // A plain send(2): the chunk is in the reader's socket when it returns (the socket
        // buffer holds far more than an input's bytes, so it never blocks).
        const std::string& c = s.chunks[i];
        if (::send(fd, c.data(), c.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(c.size())) finding("send failed");
        for (int y = 0; y < s.yields_after_chunk[i]; ++y) co_await coio::sleep(0);
    }
    ::shutdown(fd, SHUT_WR);
}

coio::coro<void> reader(const script& s, coio::stream_reader& r) {
    std::size_t pos = 0;
    for (const read_op& op : s.reads) {
        outcome out;
        if (op.cancel_after) {
            auto t = coio::create_task(perform(op, r, out));
            for (int y = 0; y < *op.cancel_after; ++y) co_await coio::sleep(0);
            t.cancel();
            try {
                co_await t;
            } catch (const coio::cancelled_error&) {
            }
        } else {
            co_await perform(op, r, out);
        }
        check(s, op, out, pos);
    }
    const std::string rest = co_await r.read();
    if (std::string_view(s.stream).substr(pos) != rest)
        finding("the rest of the stream is wrong: want '" + printable(std::string_view(s.stream).substr(pos)) + "' got '" +
                printable(rest) + "'");
    if (!r.at_eof()) finding("not at EOF after read()");
}

coio::coro<void> one_input(const script& s) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) finding("socketpair failed");
    auto [r, w] = coio::detail::make_stream(coio::socket::adopt(fds[0], AF_UNIX, SOCK_STREAM),
                                            coio::detail::make_stream_config(s.limit, 64 * 1024, std::nullopt, s.multishot), false);
    auto wt = coio::create_task(writer(s, fds[1]));
    try {
        co_await coio::wait_for(reader(s, r), 5s);
    } catch (const coio::timeout_error&) {
        finding("a read hung (5 s)");
    }
    co_await wt;
    ::close(fds[1]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // One loop for the whole run (a ring per input would dominate the time). Few, small
    // receive buffers: chunks split at 64 bytes and the ring runs dry, both paths of the
    // multishot receive.
    static coio::event_loop* loop = new coio::event_loop({.receive_buffers = 8, .receive_buffer_size = 64});
    const script s = parse_script(data, size);
    try {
        loop->run_until_complete(one_input(s));
    } catch (const std::exception& e) {
        finding(std::string("unexpected exception: ") + e.what());
    }
    return 0;
}
