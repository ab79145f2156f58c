// coio/detail/handle_counted.hpp - the references of a state shared by user handles and
// operations in flight (a stream connection, a TLS connection, a server). Not API.
#pragma once

#include <cstdint>

namespace coio::detail {

/// Reference counting for a heap-allocated `State` (CRTP base), on one thread (non-atomic):
/// one reference per user handle and one per holder that must keep the state alive (an
/// operation the kernel may still complete, a running handler). The last handle closes the
/// state (`State::close()`, noexcept); the last reference deletes it, so its buffers and
/// operations outlive every completion.
template <class State>
class handle_counted {
public:
    handle_counted(const handle_counted&) = delete;
    handle_counted& operator=(const handle_counted&) = delete;

    void add_ref() noexcept { ++refs_; }
    /// Drops a reference; the last one deletes the state.
    void release() noexcept {
        if (--refs_ == 0) delete static_cast<State*>(this);
    }
    /// A user handle appears (it holds a reference too).
    void add_handle() noexcept {
        ++handles_;
        add_ref();
    }
    /// A user handle disappears; the last one closes the state.
    void drop_handle() noexcept {
        if (--handles_ == 0) static_cast<State*>(this)->close();
        release();
    }

protected:
    handle_counted() noexcept = default;
    ~handle_counted() = default;

private:
    std::uint32_t refs_ = 0;
    std::uint32_t handles_ = 0;
};

} // namespace coio::detail
