// coio/wait.hpp - coio::wait (asyncio.wait).
#pragma once

#include <coio/awaitable_traits.hpp>
#include <coio/gather.hpp>
#include <coio/loop.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <ranges>
#include <string>
#include <vector>

namespace coio {

/// When `coio::wait` returns (asyncio's FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED).
enum class return_when { first_completed, first_exception, all_completed };
/// Return as soon as any awaitable finishes or is cancelled.
inline constexpr return_when first_completed = return_when::first_completed;
/// Return when any awaitable ends with an exception (or all finish).
inline constexpr return_when first_exception = return_when::first_exception;
/// Return when all awaitables finish.
inline constexpr return_when all_completed = return_when::all_completed;

/// What `coio::wait` returns: the awaitables that are done and those still pending, each in
/// the order they were given (asyncio returns two sets).
template <class H>
struct wait_result {
    /// Finished (with a value, an exception, or cancelled).
    std::vector<H> done;
    /// Not finished yet (still running: wait never cancels anything).
    std::vector<H> pending;
};

namespace detail {

template <class H>
class wait_awaiter : cancel_hook, timer_node {
public:
    wait_awaiter(std::vector<H> items, return_when when, std::optional<clock::duration> timeout)
        : items_(std::move(items)), nodes_(items_.size()), when_(when), timeout_(timeout) {
        what = "wait";
        inspect = [](const cancel_hook* c, wait_info& w) {
            auto* self = static_cast<const wait_awaiter*>(c);
            for (const H& it : self->items_)
                if (!it.state()->done()) w.awaits.push_back(it.state());
            w.detail = std::to_string(self->items_.size()) + " tasks, " + std::to_string(w.awaits.size()) + " pending";
        };
    }

    bool await_ready() const noexcept { return items_.empty() || satisfied(); }
    bool await_suspend(std::coroutine_handle<> h) {
        task_ = &require_current_task();
        if (!task_->begin_wait(h, this)) { cancelled_ = true; return false; }
        for (std::size_t i = 0; i < items_.size(); ++i) {
            auto* s = items_[i].state();
            if (s->done()) continue;
            nodes_[i].owner = this;
            nodes_[i].on_done = [](done_node* dn, future_base&) noexcept {
                auto* self = static_cast<node*>(dn)->owner;
                if (self->satisfied()) self->finish();
            };
            s->add_done_node(&nodes_[i]);
        }
        on_cancel = [](cancel_hook* c) noexcept {
            auto* self = static_cast<wait_awaiter*>(c);
            self->cancelled_ = true;
            self->finish();
        };
        if (timeout_) {
            deadline = clock::now() + *timeout_;
            on_expire = [](timer_node* n) noexcept { static_cast<wait_awaiter*>(n)->finish(); };
            task_->loop()->add_timer(this);
        }
        return true;
    }
    wait_result<H> await_resume() {
        if (cancelled_) task_->throw_cancel();
        wait_result<H> r;
        for (auto& it : items_) (it.state()->done() ? r.done : r.pending).push_back(it);
        return r;
    }

private:
    struct node : done_node {
        wait_awaiter* owner = nullptr;
    };
    bool satisfied() const noexcept {
        std::size_t done = 0;
        for (auto& it : items_) {
            auto* s = it.state();
            if (!s->done()) continue;
            ++done;
            if (when_ == return_when::first_completed) return true;
            if (when_ == return_when::first_exception && s->failed() && !s->is_cancelled()) return true;
        }
        return done == items_.size();
    }
    void finish() noexcept {  // stop listening, wake the task once
        for (std::size_t i = 0; i < items_.size(); ++i) items_[i].state()->remove_done_node(&nodes_[i]);
        if (queued()) task_->loop()->remove_timer(this);
        if (!woken_) { woken_ = true; task_->wake(); }
    }

    std::vector<H> items_;
    std::vector<node> nodes_;
    return_when when_;
    std::optional<clock::duration> timeout_;
    task_base* task_ = nullptr;
    bool cancelled_ = false;
    bool woken_ = false;
};

template <class R>
auto to_handles(R&& r) {
    using H = std::remove_cvref_t<std::ranges::range_value_t<R>>;
    return std::vector<H>(std::ranges::begin(r), std::ranges::end(r));
}

} // namespace detail

/// Waits for tasks or futures until `when` is satisfied or `timeout` passes (asyncio.wait).
///
/// @param aws      a range of `task<T>` (or `future<T>`); like asyncio 3.11+, bare coros are
///                 not accepted: create tasks first, so you hold handles to what stays pending.
/// @param when     first_completed, first_exception or all_completed (the default).
/// @param timeout  optional upper bound; reaching it is not an error.
/// Returns: a wait_result with the done and pending handles. Nothing is cancelled, and
/// exceptions are not raised: inspect the done tasks.
/// Throws: cancelled_error when the awaiting task is cancelled (the awaitables keep running).
///
/// Example:
/// @code
///   auto [done, pending] = co_await coio::wait(tasks, coio::first_completed, 500ms);
///   for (auto& t : pending) t.cancel();
/// @endcode
template <class R, class Rep = double, class Period = std::ratio<1>>
    requires std::ranges::input_range<R>
[[nodiscard]] auto wait(R&& aws, return_when when = all_completed,
                        std::optional<std::chrono::duration<Rep, Period>> timeout = std::nullopt) {
    using H = std::remove_cvref_t<std::ranges::range_value_t<R>>;
    std::optional<clock::duration> t;
    if (timeout) t = std::chrono::ceil<clock::duration>(*timeout);
    return detail::wait_awaiter<H>(detail::to_handles(std::forward<R>(aws)), when, t);
}

/// coio::wait with a timeout given as a chrono duration.
template <class R, class Rep, class Period>
    requires std::ranges::input_range<R>
[[nodiscard]] auto wait(R&& aws, return_when when, std::chrono::duration<Rep, Period> timeout) {
    return wait(std::forward<R>(aws), when, std::optional<std::chrono::duration<Rep, Period>>(timeout));
}

/// coio::wait with a timeout in seconds.
template <class R>
    requires std::ranges::input_range<R>
[[nodiscard]] auto wait(R&& aws, return_when when, double timeout_seconds) {
    return wait(std::forward<R>(aws), when, std::chrono::duration<double>(timeout_seconds));
}

} // namespace coio
