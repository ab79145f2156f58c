// coio/gather.hpp - coio::gather (asyncio.gather).
#pragma once

#include <coio/awaitable_traits.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/loop.hpp>
#include <coio/outcome.hpp>

#include <array>
#include <cstddef>
#include <exception>
#include <limits>
#include <memory>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace coio {

/// Tag: `gather(coio::return_exceptions, ...)` collects errors as outcomes instead of
/// throwing (asyncio's `return_exceptions=True`).
struct return_exceptions_t {
    explicit return_exceptions_t() = default;
};
/// See return_exceptions_t.
inline constexpr return_exceptions_t return_exceptions{};

namespace detail {

class gather_join;

struct gather_node : done_node {
    gather_join* join = nullptr;
    future_base* child = nullptr;
};

/// Waits for every child; on the first failure (unless collecting outcomes) cancels the
/// others and still waits for all of them, so no child outlives what its caller lent it.
///
/// Subscribes to the children when constructed, in the same pass that takes their
/// references: a gather of a million tasks touches each child's state as few times as
/// possible (the benchmark is bound by those cache misses, not by instructions).
///
/// Who holds the children: a tuple gather keeps its own references and only lends the join
/// plain pointers; a range gather gives the join one reference per child (`owns`), kept in
/// its node. When no result is collected (a range of void), a child that succeeded is let go
/// as soon as it is done, while its state is still in cache: a gather of 100,000 tasks then
/// frees each one when it finishes instead of walking them all again at the end.
class gather_join : cancel_hook {
public:
    gather_join(gather_node* nodes, std::size_t n, bool collect, bool owns = false, bool release_done = false) noexcept
        : nodes_(nodes), size_(n), collect_(collect), owns_(owns), release_done_(release_done) {
        what = "gather";
        inspect = &inspect_wait;
    }
    gather_join(const gather_join&) = delete;
    gather_join& operator=(const gather_join&) = delete;
    ~gather_join() {
        for (std::size_t i = 0; i < size_; ++i) {
            future_base* c = nodes_[i].child;
            if (!c) continue;
            // Never awaited, or destroyed early: stop listening to the children still running.
            if (remaining_ != 0 && !c->done()) c->remove_done_node(&nodes_[i]);
            if (owns_) c->release();
        }
    }

    /// Subscribes node `i` to `child`. When the join owns its children, it takes over one
    /// reference the caller already added.
    void subscribe(std::size_t i, future_base* child) noexcept {
        gather_node& n = nodes_[i];
        n.child = child;
        n.join = this;
        if (child->done()) { note_done(n, *child); return; }
        n.on_done = [](done_node* dn, future_base& f) noexcept {
            auto* node = static_cast<gather_node*>(dn);
            gather_join* self = node->join;
            self->note_done(*node, f);  // may release the child: complete() holds a reference
            if (--self->remaining_ == 0 && self->waiter_) self->waiter_->wake();
        };
        child->add_done_node(&n);
        ++remaining_;
    }

    bool suspend(std::coroutine_handle<> h) {
        waiter_ = &require_current_task();
        if (remaining_ == 0) return false;
        on_cancel = [](cancel_hook* c) noexcept {
            auto* self = static_cast<gather_join*>(c);
            self->cancelled_ = true;
            self->cancel_children();
        };
        waiter_->begin_wait_uncancellable(h, this);
        if (waiter_->cancel_pending()) {
            // Cancelled before we even waited: stop the children, wait for them, then report.
            cancelled_ = true;
            cancel_children();  // may complete futures synchronously and wake us: that is fine
        }
        return true;
    }

    /// After resumption: throws the outer cancellation or the first child failure.
    void check() {
        // A cancellation that arrives after every child finished leaves the results intact; it
        // stays pending for the task's next await.
        if (cancelled_) {
            retrieve_all();
            waiter_->throw_cancel();
        }
        if (failed_ && !collect_) {
            std::exception_ptr first = first_failed_->failure();
            retrieve_all();
            std::rethrow_exception(first);
        }
    }
    [[nodiscard]] bool any_failed() const noexcept { return failed_; }

private:
    static void inspect_wait(const cancel_hook* c, wait_info& w) {
        auto* self = static_cast<const gather_join*>(c);
        for (std::size_t i = 0; i < self->size_; ++i)
            if (const future_base* f = self->nodes_[i].child; f && !f->done()) w.awaits.push_back(f);
        w.detail = std::to_string(self->size_) + " children, " + std::to_string(w.awaits.size()) + " pending";
    }
    void note_done(gather_node& n, future_base& f) noexcept {
        if (!f.failed()) {
            if (release_done_) {  // nothing to collect from it later
                n.child = nullptr;
                f.release();
            }
            return;
        }
        if (failed_) return;
        failed_ = true;
        first_failed_ = &f;
        if (!collect_) cancel_children();
    }
    void cancel_children() noexcept {
        for (std::size_t i = 0; i < size_; ++i)
            if (nodes_[i].child && !nodes_[i].child->done()) nodes_[i].child->cancel();
    }
    void retrieve_all() noexcept {
        // gather looked at every child's outcome: none is reported as "never retrieved".
        for (std::size_t i = 0; i < size_; ++i)
            if (nodes_[i].child && nodes_[i].child->done()) (void)nodes_[i].child->failure();
    }

    gather_node* nodes_;
    std::size_t size_;
    std::size_t remaining_ = 0;
    task_base* waiter_ = nullptr;
    future_base* first_failed_ = nullptr;
    bool collect_;
    bool owns_;
    bool release_done_;
    bool failed_ = false;
    bool cancelled_ = false;
};

template <bool Collect, class... S>
class gather_tuple_awaiter {
    struct state {
        explicit state(ref_ptr<S>... c) : children(std::move(c)...), join(nodes.data(), sizeof...(S), Collect) {
            subscribe(std::index_sequence_for<S...>{});
        }
        template <std::size_t... I>
        void subscribe(std::index_sequence<I...>) noexcept { (join.subscribe(I, std::get<I>(children).get()), ...); }
        std::tuple<ref_ptr<S>...> children;
        std::array<gather_node, sizeof...(S)> nodes{};
        gather_join join;
    };

public:
    explicit gather_tuple_awaiter(ref_ptr<S>... children) : s_(std::make_unique<state>(std::move(children)...)) {}

    bool await_ready() const noexcept { return false; }  // suspend() skips the wait if all are done
    bool await_suspend(std::coroutine_handle<> h) { return s_->join.suspend(h); }
    auto await_resume() {
        s_->join.check();
        return collect(std::index_sequence_for<S...>{});
    }

private:
    template <std::size_t... I>
    auto collect(std::index_sequence<I...>) {
        auto& c = s_->children;
        if constexpr (Collect) return std::tuple{std::get<I>(c)->take_outcome()...};
        else return std::tuple<non_void_t<decltype(std::get<I>(c)->take_for_await())>...>{take_non_void(*std::get<I>(c))...};
    }

    std::unique_ptr<state> s_;  // one allocation per gather; keeps the awaiter movable
};

template <bool Collect, class S>
class gather_range_awaiter {
    using value = decltype(std::declval<S&>().take_for_await());
    // The nodes hold the references (see gather_join); a range of void lets each child go
    // when it succeeds.
    struct state {
        explicit state(std::size_t n) : nodes(n), join(nodes.data(), n, Collect, true, !Collect && std::is_void_v<value>) {}
        std::vector<gather_node> nodes;
        std::size_t size = 0;
        gather_join join;
        [[nodiscard]] S& child(std::size_t i) const noexcept { return *static_cast<S*>(nodes[i].child); }
    };

public:
    /// Takes each child from `make(element)` over `r`, subscribing as it goes.
    template <class R, class Make>
    gather_range_awaiter(R&& r, std::size_t n, Make make) : s_(std::make_unique<state>(n)) {
        for (auto&& a : r) {
            S* child = make(a).detach();  // the join owns this reference from here on
            s_->join.subscribe(s_->size++, child);
        }
    }

    bool await_ready() const noexcept { return s_->size == 0; }
    bool await_suspend(std::coroutine_handle<> h) { return s_->join.suspend(h); }
    auto await_resume() {
        s_->join.check();
        state& s = *s_;
        if constexpr (Collect) {
            std::vector<outcome<value>> out;
            out.reserve(s.size);
            for (std::size_t i = 0; i < s.size; ++i) out.push_back(s.child(i).take_outcome());
            return out;
        } else if constexpr (std::is_void_v<value>) {
            // Nothing failed (check() would have thrown), and the children are gone already.
        } else {
            std::vector<value> out;
            out.reserve(s.size);
            for (std::size_t i = 0; i < s.size; ++i) out.push_back(s.child(i).take_for_await());
            return out;
        }
    }

private:
    std::unique_ptr<state> s_;
};

template <class R>
std::size_t range_size(R& r) {
    if constexpr (std::ranges::sized_range<R>) return static_cast<std::size_t>(std::ranges::size(r));
    else return static_cast<std::size_t>(std::ranges::distance(r));
}

template <class R>
concept awaitable_range = std::ranges::input_range<R> && awaitable_handle<std::ranges::range_value_t<R>>;

} // namespace detail

/// Runs awaitables concurrently and waits for all of them (asyncio.gather).
///
/// Each `coro` argument is scheduled as a task at once (when gather is called, as asyncio
/// does); tasks and futures are awaited as they are.
///
/// Returns (from `co_await`): a std::tuple of the results in argument order, with
/// std::monostate in place of void.
/// Throws: the first exception a child raised. Unlike asyncio, gather then cancels the other
/// children and waits for them to finish before rethrowing, so no child outlives references
/// its caller gave it; their own exceptions are retrieved (not reported).
///
/// Cancellation: cancelling the awaiting task cancels every child; gather waits for them and
/// throws cancelled_error.
///
/// Example:
/// @code
///   auto [a, b] = co_await coio::gather(take_order("A"), take_order("B"));
/// @endcode
template <class... A>
    requires(sizeof...(A) > 0 && (awaitable_handle<A> && ...))
[[nodiscard]] auto gather(A&&... aws) {
    // Braces: the children are created (and so start) in argument order.
    return detail::gather_tuple_awaiter<false, detail::state_of<A>...>{detail::to_state(std::forward<A>(aws))...};
}

/// gather that never throws for a child's failure: each element is an outcome<T> holding a
/// value or the exception (asyncio's `return_exceptions=True`). Cancelling the awaiting task
/// still cancels the children and throws cancelled_error.
///
/// Example:
/// @code
///   auto [a, b] = co_await coio::gather(coio::return_exceptions, f(), g());
///   if (!a) log(a.error());
/// @endcode
template <class... A>
    requires(sizeof...(A) > 0 && (awaitable_handle<A> && ...))
[[nodiscard]] auto gather(return_exceptions_t, A&&... aws) {
    return detail::gather_tuple_awaiter<true, detail::state_of<A>...>{detail::to_state(std::forward<A>(aws))...};
}

/// gather over a range (e.g. `std::vector<coio::coro<T>>`, moved from): returns a
/// std::vector<T> in range order, or void for a range of void awaitables.
///
/// Example:
/// @code
///   std::vector<coio::coro<int>> jobs;  for (int i = 0; i < 100; ++i) jobs.push_back(work(i));
///   std::vector<int> results = co_await coio::gather(std::move(jobs));
/// @endcode
template <class R>
    requires detail::awaitable_range<R>
[[nodiscard]] auto gather(R&& aws) {
    using S = detail::state_of<std::ranges::range_value_t<R>>;
    return detail::gather_range_awaiter<false, S>(aws, detail::range_size(aws), [](auto& a) { return detail::to_state(a); });
}

/// gather over a range collecting outcomes: returns std::vector<outcome<T>>.
template <class R>
    requires detail::awaitable_range<R>
[[nodiscard]] auto gather(return_exceptions_t, R&& aws) {
    using S = detail::state_of<std::ranges::range_value_t<R>>;
    return detail::gather_range_awaiter<true, S>(aws, detail::range_size(aws), [](auto& a) { return detail::to_state(a); });
}

} // namespace coio
