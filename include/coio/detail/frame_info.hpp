// coio/detail/frame_info.hpp - what every coio coroutine frame says about itself, for call
// graphs (coio/call_graph.hpp). Not API.
//
// Contracts:
//  * frame_info is the first base of the promise of coro<T> and async_generator<T>, so a
//    frame's info sits right after the two function pointers that start every frame (the
//    layout GCC and Clang share). A type-erased handle (a task's resume point) is decoded
//    with frame_of(); `magic` tells a coio frame from anything else, and a promise whose
//    alignment would move it (an over-aligned T) leaves magic 0, so its frame is skipped.
//  * Where a frame was created is captured by default arguments of the promise constructor,
//    which the compiler calls inside the coroutine: they name the coroutine function itself.
//    Three stores into a frame being written anyway; no lookup, no allocation.
//  * `link` is the frame that resumes this one when it finishes or yields: for a coro, 0
//    before it is awaited, the awaiting frame's address, or a task's address tagged with
//    root_tag; for an async generator, its current consumer while it runs.
#pragma once

// COIO_INTROSPECTION: whether coroutine frames record where they were created, so that call
// graphs (coio/call_graph.hpp) show the chain of coroutines a task is suspended in, and debug
// mode reports coros never awaited. It costs three stores per coroutine creation and 24 bytes
// per frame: measured (benchmarks/core bench_core, g++ 12 -O3, 2 cores, same run as main) at
// 10-12% on spawn+gather and 24-27% on awaiting a ready coro, over the 5% coio allows itself
// on those paths. So it is on by default only in builds without NDEBUG (Debug); define it to
// 1 or 0 to choose, the same in every translation unit of a program (it changes the
// promise's layout). Without it, call
// graphs still say what each task waits on and who awaits it; only the call stacks are empty.
#ifndef COIO_INTROSPECTION
#ifdef NDEBUG
#define COIO_INTROSPECTION 0
#else
#define COIO_INTROSPECTION 1
#endif
#endif

#include <atomic>
#include <coroutine>
#include <cstdint>

namespace coio::detail {

/// Constructor key of frame_info: no coroutine parameter can match it, so the compiler's
/// attempt to build a promise from the coroutine's arguments always falls back to the
/// defaulted constructor.
struct frame_site_key {};

/// The common first part of coio's coroutine promises.
struct frame_info {
    /// Which kind of frame: coro (magic_coro) or async generator (magic_generator).
    static constexpr std::uint32_t magic_coro = 0xC0C0F4A3u;
    static constexpr std::uint32_t magic_generator = 0xC0C0F4A7u;
    /// The tag of `link` for the root of a task (frames and tasks are 8-byte aligned).
    static constexpr std::uintptr_t root_tag = 1;

#if COIO_INTROSPECTION
    explicit frame_info(std::uint32_t m, const char* fn, const char* f, unsigned l) noexcept
        : magic(m), line(l), function(fn), file(f) {}

    std::uint32_t magic;
    std::uint32_t line;        // of the coroutine function (GCC: its closing brace)
    const char* function;      // unqualified name of the coroutine function
    const char* file;
#endif
    std::uintptr_t link = 0;   // see the header comment
};

/// A stand-in promise with frame_info's alignment: its offset in a frame is the one every
/// coio promise of alignment <= 16 has.
struct frame_probe : frame_info {};

/// The frame_info of the coroutine whose frame is at `address`, or null when it is not a
/// coio coroutine (or cannot be decoded).
inline const frame_info* frame_of([[maybe_unused]] void* address) noexcept {
#if !COIO_INTROSPECTION
    return nullptr;
#else
    if (!address) return nullptr;
    const frame_info& fi = std::coroutine_handle<frame_probe>::from_address(address).promise();
    return fi.magic == frame_info::magic_coro || fi.magic == frame_info::magic_generator ? &fi : nullptr;
#endif
}

/// Called when a coro that never ran is destroyed (debug mode reports it); null until a loop
/// in debug mode installs it. Process-wide (loops on several threads may set it, always to
/// the same function, which reports through the calling thread's running loop); relaxed: a
/// plain load where it is read.
using never_awaited_fn = void (*)(const frame_info&) noexcept;
inline std::atomic<never_awaited_fn> never_awaited_hook{nullptr};

} // namespace coio::detail
