// coio/detail/callback.hpp - what call_soon/call_later/call_at schedule. Not API.
#pragma once

#include <coio/detail/core.hpp>
#include <coio/detail/frame_pool.hpp>

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace coio {
class event_loop;
}

namespace coio::detail {

/// A callback scheduled with call_soon/call_later/call_at (asyncio.Handle). Reference
/// counted: the loop holds one reference while it is queued, each handle one more.
struct callback_base : work_item, timer_node {
    virtual ~callback_base() = default;
    virtual void invoke() = 0;
    void add_ref() noexcept { ++refs; }
    void release() noexcept { if (--refs == 0) delete this; }
    event_loop* loop = nullptr;
    std::uint32_t refs = 1;
    bool cancelled = false;
};

/// A callback running `F`. Loop-thread callbacks come from the frame pool, as task states:
/// 100,000 call_later callbacks are a normal load. One made on another thread
/// (call_soon_threadsafe, `Pooled` false) and freed on the loop's comes from the global heap,
/// which takes blocks back across threads; the pool would keep each such block with the
/// loop's thread while the calling thread kept taking new ones. (The virtual destructor
/// makes `delete` use the dynamic type's operator delete, with its size.)
template <class F, bool Pooled = true>
struct callback_impl final : callback_base {
    explicit callback_impl(F&& fn) : f(std::move(fn)) {}
    void invoke() override { f(); }
    static void* operator new(std::size_t n) {
        if constexpr (Pooled) return frame_pool::allocate(n);
        else return ::operator new(n);
    }
    static void operator delete(void* p, std::size_t n) noexcept {
        if constexpr (Pooled) frame_pool::deallocate(p, n);
        else ::operator delete(p);  // unsized: clang 14 does not declare sized delete by default
    }
    F f;
};

} // namespace coio::detail
