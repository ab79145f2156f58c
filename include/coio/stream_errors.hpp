// coio/stream_errors.hpp - the errors of coio's streams (asyncio.IncompleteReadError and
// asyncio.LimitOverrunError).
//
// Both keep the data that caused them, as asyncio's do: nothing a peer sent is ever lost by
// an exception. OS-level failures (connection refused, reset, broken pipe) are not here: they
// are std::system_error with std::errc codes.
#pragma once

#include <coio/errors.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace coio {

/// The stream ended before the requested data arrived (asyncio.IncompleteReadError).
///
/// Thrown by `stream_reader::readexactly(n)` when EOF comes before `n` bytes, and by
/// `readuntil(sep)` when EOF comes before the separator. The bytes that did arrive are in
/// `partial` (they have been taken out of the reader's buffer).
///
/// Cancellation: not applicable (an exception type).
///
/// Example:
/// @code
///   try { auto hdr = co_await reader.readexactly(16); }
///   catch (const coio::incomplete_read_error& e) {
///       std::cerr << "short header: " << e.partial.size() << " of " << *e.expected << '\n';
///   }
/// @endcode
class incomplete_read_error : public error {
public:
    /// @param partial_bytes  what arrived before EOF.
    /// @param expected_bytes how many bytes were wanted; std::nullopt when reading up to a
    ///                       separator (asyncio's `expected=None`).
    incomplete_read_error(std::string partial_bytes, std::optional<std::size_t> expected_bytes)
        : error(make_message(partial_bytes.size(), expected_bytes)),
          partial(std::move(partial_bytes)),
          expected(expected_bytes) {}

    /// The bytes read before the end of the stream.
    std::string partial;
    /// The number of bytes that were expected, or std::nullopt for readuntil.
    std::optional<std::size_t> expected;

private:
    static std::string make_message(std::size_t got, std::optional<std::size_t> want) {
        std::string m = std::to_string(got) + " bytes read on a total of ";
        m += want ? std::to_string(*want) : std::string("undefined");
        m += " expected bytes";
        return m;
    }
};

/// The reader's buffer limit was reached while looking for a separator
/// (asyncio.LimitOverrunError).
///
/// Thrown by `stream_reader::readuntil` (the data stays in the reader's buffer, so it can
/// still be read with read() or readexactly(consumed)) and by `readline` (which, like
/// asyncio's, discards the overlong line so the next readline can proceed).
///
/// Cancellation: not applicable (an exception type).
///
/// Example:
/// @code
///   try { auto rec = co_await reader.readuntil("\r\n\r\n"); }
///   catch (const coio::limit_overrun_error& e) {
///       auto head = co_await reader.readexactly(e.consumed);  // nothing was lost
///   }
/// @endcode
class limit_overrun_error : public error {
public:
    /// @param message        what happened.
    /// @param consumed_bytes how many bytes may be consumed before the limit (asyncio's
    ///                       `consumed`).
    limit_overrun_error(const std::string& message, std::size_t consumed_bytes)
        : error(message), consumed(consumed_bytes) {}

    /// The number of bytes to be consumed (asyncio's `consumed`).
    std::size_t consumed;
};

} // namespace coio
