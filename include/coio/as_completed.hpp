// coio/as_completed.hpp - coio::as_completed (asyncio.as_completed).
#pragma once

#include <coio/awaitable_traits.hpp>
#include <coio/gather.hpp>
#include <coio/loop.hpp>

#include <cstddef>
#include <iterator>
#include <memory>
#include <ranges>
#include <utility>
#include <vector>

namespace coio {

namespace detail {

/// The states of the awaitables of `r`, in order (coros are moved out of the range and
/// scheduled as tasks).
template <class R>
auto range_states(R&& r) {
    using S = state_of<std::ranges::range_value_t<R>>;
    std::vector<ref_ptr<S>> out;
    if constexpr (std::ranges::sized_range<R>) out.reserve(std::ranges::size(r));
    for (auto&& a : r) out.push_back(to_state(a));  // coros are moved out of the range
    return out;
}

template <class S>
class as_completed_state : cancel_hook {
public:
    explicit as_completed_state(std::vector<ref_ptr<S>> children)
        : children_(std::move(children)), nodes_(children_.size()) {
        what = "as_completed";
        for (std::size_t i = 0; i < children_.size(); ++i) {
            node& n = nodes_[i];
            n.owner = this;
            n.child = children_[i].get();
            if (n.child->done()) { push_done(&n); continue; }
            n.on_done = [](done_node* dn, future_base&) noexcept {
                auto* self = static_cast<node*>(dn);
                self->owner->push_done(self);
                if (task_base* w = std::exchange(self->owner->waiter_, nullptr)) w->wake();
            };
            n.child->add_done_node(&n);
        }
        on_cancel = [](cancel_hook* c) noexcept {
            auto* self = static_cast<as_completed_state*>(c);
            self->cancelled_ = true;
            std::exchange(self->waiter_, nullptr)->wake();
        };
    }
    as_completed_state(const as_completed_state&) = delete;
    as_completed_state& operator=(const as_completed_state&) = delete;
    ~as_completed_state() {
        // Children whose result nobody will take are cancelled: they may use what the caller
        // lent them. They finish on their own; the loop keeps them alive until then.
        for (auto& n : nodes_) {
            n.child->remove_done_node(&n);
            if (!n.delivered && !n.child->done()) n.child->cancel();
            else if (!n.delivered) (void)n.child->failure();  // finished but never taken: not an error to report
        }
    }

    [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }
    [[nodiscard]] std::size_t remaining() const noexcept { return nodes_.size() - taken_; }

    bool ready() const {
        if (taken_ == nodes_.size())
            throw invalid_state_error("coio: as_completed: every result has already been taken");
        return head_ != nullptr;
    }
    bool suspend(std::coroutine_handle<> h) {
        if (waiter_) throw invalid_state_error("coio: as_completed: another task is already waiting for the next result");
        task_ = &require_current_task();
        if (!task_->begin_wait(h, this)) { cancelled_ = true; return false; }
        waiter_ = task_;
        return true;
    }
    auto resume() {
        if (std::exchange(cancelled_, false)) task_->throw_cancel();
        node* n = head_;
        head_ = n->next_done;
        if (!head_) tail_ = nullptr;
        n->delivered = true;
        ++taken_;
        return static_cast<S*>(n->child)->take_for_await();
    }

private:
    struct node : done_node {
        as_completed_state* owner = nullptr;
        future_base* child = nullptr;
        node* next_done = nullptr;
        bool delivered = false;
    };
    void push_done(node* n) noexcept {
        n->next_done = nullptr;
        if (tail_) tail_->next_done = n; else head_ = n;
        tail_ = n;
    }

    std::vector<ref_ptr<S>> children_;
    std::vector<node> nodes_;
    node* head_ = nullptr;  // completed, not yet taken, in completion order
    node* tail_ = nullptr;
    std::size_t taken_ = 0;
    task_base* waiter_ = nullptr;  // set while a task is suspended in next()
    task_base* task_ = nullptr;    // the task that last awaited next()
    bool cancelled_ = false;
};

} // namespace detail

/// One step of as_completed: `co_await` it to get the next result in completion order.
template <class S>
class [[nodiscard]] as_completed_next {
public:
    explicit as_completed_next(detail::as_completed_state<S>* s) noexcept : s_(s) {}
    bool await_ready() const { return s_->ready(); }
    bool await_suspend(std::coroutine_handle<> h) { return s_->suspend(h); }
    auto await_resume() { return s_->resume(); }

private:
    detail::as_completed_state<S>* s_;
};

/// The range as_completed returns: size() awaitables, each giving the next result to
/// complete. Also `co_await ac.next()`.
template <class S>
class as_completed_range {
public:
    explicit as_completed_range(std::vector<detail::ref_ptr<S>> children)
        : s_(std::make_unique<detail::as_completed_state<S>>(std::move(children))) {}

    /// The next result in completion order (rethrows that awaitable's exception).
    /// Throws: invalid_state_error once every result was taken, or when another task is
    /// already waiting on this as_completed.
    [[nodiscard]] as_completed_next<S> next() noexcept { return as_completed_next<S>(s_.get()); }
    /// Number of awaitables.
    [[nodiscard]] std::size_t size() const noexcept { return s_->size(); }
    /// Results not taken yet.
    [[nodiscard]] std::size_t remaining() const noexcept { return s_->remaining(); }

    /// Input iterator over size() `next()` awaitables.
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = as_completed_next<S>;
        using difference_type = std::ptrdiff_t;
        iterator() noexcept = default;
        iterator(detail::as_completed_state<S>* s, std::size_t i) noexcept : s_(s), i_(i) {}
        value_type operator*() const noexcept { return value_type(s_); }
        iterator& operator++() noexcept { ++i_; return *this; }
        void operator++(int) noexcept { ++i_; }
        friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.i_ == b.i_; }

    private:
        detail::as_completed_state<S>* s_ = nullptr;
        std::size_t i_ = 0;
    };
    /// First step.
    iterator begin() noexcept { return iterator(s_.get(), 0); }
    /// Past the last step.
    iterator end() noexcept { return iterator(s_.get(), s_->size()); }

private:
    std::unique_ptr<detail::as_completed_state<S>> s_;
};

/// Runs awaitables concurrently and yields their results in the order they complete
/// (asyncio.as_completed).
///
/// Coros in `aws` are scheduled as tasks at once. Iterating gives size() awaitables; the
/// k-th `co_await` returns the k-th result to complete (or rethrows its exception).
///
/// Cancellation: cancelling the task awaiting a step throws cancelled_error there; the
/// children keep running. Destroying the range cancels every child whose result was not
/// taken (unlike asyncio, which leaves them running: a C++ child may use what the caller
/// lent it).
///
/// Example:
/// @code
///   for (auto&& next : coio::as_completed(std::move(coros))) {
///       auto r = co_await next;   // completion order
///   }
///   auto ac = coio::as_completed(std::move(coros));
///   auto first = co_await ac.next();
/// @endcode
template <class R>
    requires detail::awaitable_range<R>
[[nodiscard]] auto as_completed(R&& aws) {
    using S = detail::state_of<std::ranges::range_value_t<R>>;
    return as_completed_range<S>(detail::range_states(std::forward<R>(aws)));
}

} // namespace coio
