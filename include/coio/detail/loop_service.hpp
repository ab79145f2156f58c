// coio/detail/loop_service.hpp - the base of per-loop services (resolver, executor,
// sockets). Not API.
#pragma once

namespace coio::detail {

/// A per-loop service (the DNS resolver, the default executor): created on first use,
/// shut down when the loop closes, after every task has finished.
struct loop_service {
    virtual ~loop_service() = default;
    /// Called once by event_loop::close() after all tasks are done and before the ring is
    /// torn down. May run the loop (run_once) to let its own operations finish.
    virtual void shutdown() noexcept {}
};

} // namespace coio::detail
