// coio/detail/hold.hpp - what the guards of lock and semaphore share. Not API.
#pragma once

#include <coroutine>
#include <utility>

namespace coio::detail {

/// Owns one acquisition of a `P` (a lock, or a unit of a semaphore) and gives it back with
/// `P::hand_over()` when destroyed. Move-only. The public guards derive from it and name
/// the early release as their std counterparts do (unlock, release); P befriends hold<P>.
template <class P>
class hold {
public:
    hold() noexcept = default;
    /// Adopts an acquisition of `p` that the caller made.
    explicit hold(P& p) noexcept : p_(&p) {}
    hold(hold&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    hold& operator=(hold&& o) noexcept {
        if (this != &o) {
            drop();
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    ~hold() { drop(); }

protected:
    /// Gives the acquisition back now (no effect when nothing is held).
    void drop() noexcept {
        if (p_) std::exchange(p_, nullptr)->hand_over();
    }
    [[nodiscard]] bool holds() const noexcept { return p_ != nullptr; }

private:
    P* p_ = nullptr;
};

/// The awaiter of `P::scoped()`: awaits `P::acquire_awaiter`, then returns a `Guard` that
/// adopts the acquisition.
template <class P, class Guard>
class scoped_acquire {
public:
    explicit scoped_acquire(P& p) noexcept : inner_(p), p_(&p) {}
    bool await_ready() noexcept { return inner_.await_ready(); }
    bool await_suspend(std::coroutine_handle<> h) { return inner_.await_suspend(h); }
    Guard await_resume() {
        inner_.await_resume();
        return Guard(*p_);
    }

private:
    typename P::acquire_awaiter inner_;
    P* p_;
};

} // namespace coio::detail
