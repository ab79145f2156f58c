// coio/detail/wait_info.hpp - what a suspended await tells a call graph about itself
// (filled by cancel_hook::inspect). Not API.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace coio::detail {

class future_base;

/// Filled by an awaiter's inspect function: details of the wait and what it waits for.
struct wait_info {
    /// Free text after the kind: "fd 5", "0.093 s left", "3 children".
    std::string detail;
    /// The futures and tasks this await waits for (a task awaited, gather's children).
    std::vector<const future_base*> awaits;
};

/// "0.093 s" for call graphs: three decimals, as a person reads a deadline.
inline std::string format_seconds(std::chrono::nanoseconds d) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.3f s", std::chrono::duration<double>(d).count());
    return buf;
}

} // namespace coio::detail
