// coio/as_completed.hpp - coio::as_completed (asyncio.as_completed).
#pragma once

#include <coio/awaitable_traits.hpp>
#include <coio/impl/waiter_list.hpp>
#include <coio/gather.hpp>
#include <coio/loop.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <utility>
#include <vector>

namespace coio {

template <class S> class as_completed_next;

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

/// The shared state of one as_completed: its children, their results in completion order,
/// the tasks waiting for a step, and the optional deadline.
///
/// Steps are claimed in FIFO order: a result that completes while tasks wait goes straight
/// to the first of them (as a queue hands an item to a waiting getter), so a step that did
/// not wait cannot overtake one that does. Results are counted as taken when handed over.
template <class S>
class as_completed_state : timer_node {
public:
    as_completed_state(std::vector<ref_ptr<S>> children, std::optional<clock::duration> timeout)
        : children_(std::move(children)), nodes_(children_.size()) {
        for (std::size_t i = 0; i < children_.size(); ++i) {
            node& n = nodes_[i];
            n.owner = this;
            n.child = children_[i].get();
            if (n.child->done()) { push_done(&n); continue; }
            n.on_done = [](done_node* dn, future_base&) noexcept {
                auto* self = static_cast<node*>(dn);
                self->owner->completed(self);
            };
            n.child->add_done_node(&n);
        }
        if (!timeout) return;
        if (*timeout <= clock::duration::zero()) {
            expire();  // what is done already is delivered; the rest never starts
            return;
        }
        loop_ = &get_running_loop();
        deadline = clock::now() + *timeout;
        on_expire = [](timer_node* t) noexcept { static_cast<as_completed_state*>(t)->expire(); };
        loop_->add_timer(this);
    }
    as_completed_state(const as_completed_state&) = delete;
    as_completed_state& operator=(const as_completed_state&) = delete;
    ~as_completed_state() {
        if (loop_ && queued()) loop_->remove_timer(this);
        // Tasks still waiting, or woken with a step they have not resumed to take: their await
        // throws instead of touching this dead state. The handed ones are already woken.
        waiters_.wake_all(wait_status::orphaned);
        while (waiter* w = handed_.front()) {
            handed_.remove(w);
            w->status = wait_status::orphaned;
        }
        // Children whose result nobody will take are cancelled: they may use what the caller
        // lent them. They finish on their own; the loop keeps them alive until then.
        for (auto& n : nodes_) {
            if (n.st == node_state::running) {
                n.child->remove_done_node(&n);
                n.child->cancel();
            } else if (n.st == node_state::queued || n.st == node_state::handed) {
                (void)n.child->failure();  // finished but never taken: not an error to report
            }
        }
    }

    [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }
    /// Steps nobody has taken or is waiting for.
    [[nodiscard]] std::size_t remaining() const noexcept { return nodes_.size() - taken_ - waiters_.size(); }

private:
    friend class coio::as_completed_next<S>;

    enum class node_state : std::uint8_t {
        running,    ///< the child is not done; subscribed to it
        queued,     ///< done, in the done list
        handed,     ///< done, given to a waiting task that has not resumed yet
        delivered,  ///< its result was returned (or rethrown) by a step
        abandoned,  ///< not done at the deadline: unsubscribed and cancelled
    };
    struct node : done_node {
        as_completed_state* owner = nullptr;
        future_base* child = nullptr;
        node* next_done = nullptr;
        node_state st = node_state::running;
    };

    /// A waiting step: the waiter node with the result it was handed.
    struct step : waiter {
        node* got = nullptr;
    };

    void push_done(node* n) noexcept {
        n->st = node_state::queued;
        n->next_done = nullptr;
        if (tail_) tail_->next_done = n; else head_ = n;
        tail_ = n;
    }
    node* pop_done() noexcept {
        node* n = head_;
        head_ = n->next_done;
        if (!head_) tail_ = nullptr;
        return n;
    }
    /// A child finished: to the first waiting task, else into the done list.
    void completed(node* n) noexcept {
        if (waiter* w = waiters_.front()) hand(static_cast<step*>(w), n);
        else push_done(n);
    }
    void hand(step* w, node* n) noexcept {
        n->st = node_state::handed;
        w->got = n;
        ++taken_;
        w->wake_with(wait_status::granted);
        handed_.push_back(w);  // until it resumes, so that ~as_completed_state can reach it
    }
    /// A handed result whose task was cancelled before it resumed: it is the next one out.
    void give_back(node* n) noexcept {
        --taken_;
        if (waiter* w = waiters_.front()) { hand(static_cast<step*>(w), n); return; }
        n->st = node_state::queued;
        n->next_done = head_;
        head_ = n;
        if (!tail_) tail_ = n;
    }
    /// The deadline passed: the children not done are cancelled (their results could never
    /// be taken: every later step throws timeout_error), and waiting tasks get timeout_error.
    void expire() noexcept {
        timed_out_ = true;
        for (auto& n : nodes_) {
            if (n.st != node_state::running) continue;
            n.st = node_state::abandoned;
            n.child->remove_done_node(&n);
            n.child->cancel();
        }
        while (waiter* w = waiters_.front()) {
            ++taken_;
            w->wake_with(wait_status::failed);
            handed_.push_back(w);
        }
    }

    std::vector<ref_ptr<S>> children_;
    std::vector<node> nodes_;
    node* head_ = nullptr;  // done, not yet taken, in completion order
    node* tail_ = nullptr;
    std::size_t taken_ = 0;  // steps that got (or will get, once resumed) a result or a timeout
    waiter_list waiters_;    // tasks suspended in a step, in arrival order
    waiter_list handed_;     // woken with a result or a timeout, not resumed yet
    event_loop* loop_ = nullptr;  // set while a deadline is armed
    bool timed_out_ = false;
};

} // namespace detail

/// One step of as_completed: `co_await` it to get the next result in completion order.
///
/// Throws: that awaitable's exception; timeout_error once the as_completed's deadline has
/// passed and every result that came before it was taken; invalid_state_error when every
/// step is already taken or awaited, or when the as_completed was destroyed while waiting.
///
/// Cancellation: cancelling the awaiting task throws cancelled_error and gives the step back
/// (a result it had been handed but not yet returned goes to the next step); the awaitables
/// keep running.
template <class S>
class [[nodiscard]] as_completed_next : detail::as_completed_state<S>::step {
    using state = detail::as_completed_state<S>;

public:
    /// Internal: made by as_completed_range::next().
    explicit as_completed_next(state* s) noexcept : s_(s) { this->what = "as_completed"; }

    bool await_ready() {
        if (s_->remaining() == 0)
            throw invalid_state_error("coio: as_completed: every result has already been taken (or is being awaited)");
        if (s_->head_) {
            this->got = s_->pop_done();
            ++s_->taken_;
            return true;
        }
        if (s_->timed_out_) {
            ++s_->taken_;
            return true;  // await_resume throws timeout_error
        }
        return false;
    }
    bool await_suspend(std::coroutine_handle<> h) { return detail::suspend_on(*this, s_->waiters_, h); }
    auto await_resume() {
        switch (this->status) {
        case detail::wait_status::granted:
            s_->handed_.remove(this);
            if (this->task->cancel_pending()) {
                s_->give_back(std::exchange(this->got, nullptr));
                this->task->throw_cancel();
            }
            break;
        case detail::wait_status::cancelled: this->task->throw_cancel();
        case detail::wait_status::failed:  // the deadline passed while we waited
            s_->handed_.remove(this);
            if (this->task->cancel_pending()) {
                --s_->taken_;  // the step is given back; it will time out again
                this->task->throw_cancel();
            }
            throw timeout_error();
        case detail::wait_status::orphaned:
            throw invalid_state_error("coio: as_completed destroyed while a task waited on it");
        default:  // taken without waiting
            if (!this->got) throw timeout_error();
            break;
        }
        auto* n = this->got;
        n->st = state::node_state::delivered;
        return static_cast<S*>(n->child)->take_for_await();
    }

private:
    state* s_;
};

/// The range as_completed returns: size() awaitables, each giving the next result to
/// complete. Also `co_await ac.next()`.
///
/// Several tasks may await steps of one as_completed at the same time (asyncio allows it
/// too): each result goes to exactly one of them, in the order they began waiting. Pass the
/// range by reference; if it is destroyed while a task waits, that await throws
/// invalid_state_error. Share it with `while (ac.remaining() > 0) co_await ac.next()` rather
/// than with each task iterating it (each iterator gives size() steps).
///
/// Example:
/// @code
///   auto ac = coio::as_completed(tasks);
///   auto worker = [](auto& ac) -> coio::coro<void> {
///       while (ac.remaining() > 0) handle(co_await ac.next());
///   };
///   co_await coio::gather(worker(ac), worker(ac));
/// @endcode
template <class S>
class as_completed_range {
public:
    /// Internal: made by coio::as_completed.
    explicit as_completed_range(std::vector<detail::ref_ptr<S>> children, std::optional<clock::duration> timeout = {})
        : s_(std::make_unique<detail::as_completed_state<S>>(std::move(children), timeout)) {}

    /// The next result in completion order (rethrows that awaitable's exception).
    /// Throws: timeout_error after the deadline (see as_completed); invalid_state_error
    /// once every step was taken or is being awaited.
    [[nodiscard]] as_completed_next<S> next() noexcept { return as_completed_next<S>(s_.get()); }
    /// Number of awaitables.
    [[nodiscard]] std::size_t size() const noexcept { return s_->size(); }
    /// Steps neither taken nor being awaited by a task: how many more `next()` may be awaited.
    [[nodiscard]] std::size_t remaining() const noexcept { return s_->remaining(); }

    /// Input iterator over size() `next()` awaitables.
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;  ///< Single pass.
        using value_type = as_completed_next<S>;            ///< What `*it` gives: an awaitable.
        using difference_type = std::ptrdiff_t;             ///< Required of iterators.
        iterator() noexcept = default;
        /// Internal: the `i`-th step over `s` (begin() and end()).
        iterator(detail::as_completed_state<S>* s, std::size_t i) noexcept : s_(s), i_(i) {}
        /// The awaitable giving the next result to complete (not the i-th awaitable's).
        value_type operator*() const noexcept { return value_type(s_); }
        /// Advances to the next step.
        iterator& operator++() noexcept { ++i_; return *this; }
        /// Advances to the next step.
        void operator++(int) noexcept { ++i_; }
        /// Same step.
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
/// k-th `co_await` returns the k-th result to complete (or rethrows its exception). Several
/// tasks may await steps concurrently (see as_completed_range).
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

/// as_completed with a deadline `timeout` from now (asyncio.as_completed(aws, timeout=t)).
///
/// Results that complete before the deadline are yielded as usual, in completion order, even
/// if they are taken after it. Once the deadline has passed and those are taken, every
/// remaining step throws timeout_error (a task already waiting for a step gets it at the
/// deadline). The awaitables not done at the deadline are cancelled then, as destroying the
/// range would (asyncio leaves them running; their results can never be taken). A timeout
/// of zero or less delivers what is already done and cancels the rest before it starts.
///
/// Throws: invalid_state_error with no running loop. Steps: see as_completed_next.
///
/// Cancellation: as as_completed; the deadline belongs to the range, not to the awaiting
/// task, so cancelling that task does not stop the clock.
///
/// Example:
/// @code
///   try {
///       for (auto&& next : coio::as_completed(std::move(coros), 2s)) print(co_await next);
///   } catch (const coio::timeout_error&) {
///       std::puts("the rest took longer than 2 s");   // and they were cancelled
///   }
/// @endcode
template <class R, class Rep, class Period>
    requires detail::awaitable_range<R>
[[nodiscard]] auto as_completed(R&& aws, std::chrono::duration<Rep, Period> timeout) {
    using S = detail::state_of<std::ranges::range_value_t<R>>;
    (void)get_running_loop();  // before any task is created: throws with no loop
    return as_completed_range<S>(detail::range_states(std::forward<R>(aws)),
                                 std::chrono::ceil<clock::duration>(timeout));
}

/// as_completed with the timeout in seconds (as in Python).
/// Example: `for (auto&& next : coio::as_completed(tasks, 1.5)) use(co_await next);`
template <class R>
    requires detail::awaitable_range<R>
[[nodiscard]] auto as_completed(R&& aws, double timeout_seconds) {
    return as_completed(std::forward<R>(aws), std::chrono::duration<double>(timeout_seconds));
}

} // namespace coio
