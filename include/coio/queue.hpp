// coio/queue.hpp - coio::queue, priority_queue, lifo_queue (asyncio.Queue, PriorityQueue,
// LifoQueue), with Python 3.13's shutdown().
#pragma once

#include <coio/impl/waiter_list.hpp>
#include <coio/errors.hpp>
#include <coio/event.hpp>

#include <algorithm>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

namespace coio {

/// put_nowait() on a full queue (asyncio.QueueFull).
class queue_full : public error {
public:
    queue_full() : error("coio: queue is full") {}
    using error::error;
};

/// get_nowait() on an empty queue (asyncio.QueueEmpty).
class queue_empty : public error {
public:
    queue_empty() : error("coio: queue is empty") {}
    using error::error;
};

/// The queue was shut down (asyncio.QueueShutDown, Python 3.13): thrown to putters at once
/// and to getters once the queue is empty.
class queue_shutdown : public error {
public:
    queue_shutdown() : error("coio: queue is shut down") {}
    using error::error;
};

namespace detail {

// Item stores: how a queue orders its items. push/pop/size; pop() requires !empty().
template <class T>
struct fifo_store {
    std::deque<T> items;
    void push(T&& v) { items.push_back(std::move(v)); }
    /// Puts back an item that pop() gave out: it comes out next again.
    void unpop(T&& v) { items.push_front(std::move(v)); }
    T pop() {
        T v = std::move(items.front());
        items.pop_front();
        return v;
    }
    [[nodiscard]] std::size_t size() const noexcept { return items.size(); }
};

template <class T>
struct lifo_store {
    std::vector<T> items;
    void push(T&& v) { items.push_back(std::move(v)); }
    void unpop(T&& v) { items.push_back(std::move(v)); }
    T pop() {
        T v = std::move(items.back());
        items.pop_back();
        return v;
    }
    [[nodiscard]] std::size_t size() const noexcept { return items.size(); }
};

// A binary heap whose top is the SMALLEST item under Compare (Python's heapq order).
template <class T, class Compare>
struct heap_store {
    std::vector<T> items;
    Compare comp;
    auto greater() { return [this](const T& a, const T& b) { return comp(b, a); }; }
    void push(T&& v) {
        items.push_back(std::move(v));
        std::push_heap(items.begin(), items.end(), greater());
    }
    void unpop(T&& v) { push(std::move(v)); }
    T pop() {
        std::pop_heap(items.begin(), items.end(), greater());
        T v = std::move(items.back());
        items.pop_back();
        return v;
    }
    [[nodiscard]] std::size_t size() const noexcept { return items.size(); }
};

} // namespace detail

/// The queue shared by coio::queue, coio::lifo_queue and coio::priority_queue; `Store`
/// decides the order items come out in. Use those three names.
///
/// A bounded queue (maxsize > 0) makes put() wait while it is full; get() waits while it is
/// empty. Waiting tasks are served in FIFO order, and items are handed directly to a waiting
/// getter (and a waiting putter's item straight into the freed slot), so nobody overtakes a
/// waiting task. Waiting never allocates; T may be move-only.
///
/// Cancellation: a put() or get() that throws cancelled_error (or timeout_error under
/// wait_for/timeout) transferred nothing: a cancelled put leaves the caller's item untouched
/// (it was taken by reference) and a cancelled get took no item. That holds also when the
/// cancellation arrives after the queue served the waiter but before the task resumed: a get
/// then puts its item back (it is the next one out, or goes to the next waiting getter), and a
/// put passes its slot to the next waiting putter. No item is ever lost or duplicated, and a
/// retried put() can succeed. A get() or put() that returns has transferred its item.
///
/// Hand-offs: an item put while getters wait goes straight to the first of them, and a slot
/// freed while putters wait is promised to the first of them; until those tasks run, the item
/// or slot counts toward full() (as asyncio keeps the item in the queue until the woken getter
/// takes it), but not toward qsize().
///
/// Shutdown (Python 3.13): shutdown() makes put() throw queue_shutdown, and get() too once
/// the queue is empty; shutdown(true) also drops the items left and releases join().
///
/// Not thread-safe (one loop); not copyable or movable. Destroying a queue while tasks wait on
/// it wakes them with invalid_state_error.
template <class T, class Store>
class basic_queue {
public:
    /// A queue holding at most `maxsize` items (0: unbounded).
    explicit basic_queue(std::size_t maxsize = 0, Store store = Store()) : maxsize_(maxsize), store_(std::move(store)) {
        finished_.set();  // nothing unfinished yet: join() returns at once
    }
    basic_queue(const basic_queue&) = delete;
    basic_queue& operator=(const basic_queue&) = delete;

    class put_awaiter;
    class get_awaiter;

    /// Puts `item` in the queue, waiting while it is full (asyncio's `await q.put(item)`).
    /// `item` is moved from only when it enters the queue, so it survives a failed put; await
    /// the result in the same full expression (it refers to `item`).
    /// Throws (from co_await): queue_shutdown; cancelled_error / timeout_error (item
    /// untouched); invalid_state_error outside a task or when the queue is destroyed meanwhile.
    /// Example: `co_await q.put(std::move(job));`
    [[nodiscard]] put_awaiter put(T&& item) noexcept { return put_awaiter(*this, &item, false); }
    /// Puts a copy of `item` (see the other overload).
    [[nodiscard]] put_awaiter put(const T& item) noexcept
        requires std::copy_constructible<T>
    {
        return put_awaiter(*this, const_cast<T*>(&item), true);
    }

    /// Takes the next item, waiting while the queue is empty (asyncio's `await q.get()`).
    /// Returns (from co_await): the item. Throws: queue_shutdown once shut down and empty;
    /// cancelled_error / timeout_error (no item taken); invalid_state_error outside a task or
    /// when the queue is destroyed meanwhile.
    /// Example: `auto job = co_await q.get();`
    [[nodiscard]] get_awaiter get() noexcept { return get_awaiter(*this); }

    /// Puts `item` without waiting; moved from only on success.
    /// Throws: queue_full when full; queue_shutdown after shutdown().
    /// Example: `try { q.put_nowait(std::move(x)); } catch (const coio::queue_full&) { drop(x); }`
    void put_nowait(T&& item) {
        check_put();
        enqueue(std::move(item));
    }
    /// Puts a copy of `item` without waiting. Throws: as the other overload.
    void put_nowait(const T& item)
        requires std::copy_constructible<T>
    {
        check_put();
        enqueue(T(item));
    }
    /// Takes an item without waiting.
    /// Throws: queue_empty when empty (queue_shutdown instead when also shut down).
    /// Example: `while (!q.empty()) use(q.get_nowait());`
    T get_nowait() {
        if (store_.size() == 0) {
            if (shutdown_) throw queue_shutdown();
            throw queue_empty();
        }
        return dequeue();
    }

    /// Marks one item taken with get() as processed (asyncio's task_done); when every item
    /// put so far is processed, join() returns.
    /// Throws: invalid_state_error when called more times than items were put (asyncio
    /// raises ValueError).
    void task_done() {
        if (unfinished_ == 0) throw invalid_state_error("coio: task_done() called too many times");
        if (--unfinished_ == 0) finished_.set();
    }
    /// Waits until every item put has been marked with task_done() (asyncio's join()).
    /// Throws (from co_await): cancelled_error / timeout_error.
    /// Example: `co_await q.join();`
    [[nodiscard]] event::wait_awaiter join() noexcept { return finished_.wait(); }

    /// Shuts the queue down (Python 3.13): blocked and later put()s throw queue_shutdown;
    /// get()s throw it once the queue is empty. With `immediate`, the items still queued are
    /// destroyed (counted as done for join()) and blocked get()s throw at once.
    void shutdown(bool immediate = false) {
        shutdown_ = true;
        if (immediate) {
            shutdown_immediate_ = true;
            while (store_.size() > 0) {
                (void)store_.pop();
                drop_one();
            }
        }
        // Getters only wait on an empty queue, so all of them must now fail; putters too.
        getters_.wake_all(detail::wait_status::failed);
        putters_.wake_all(detail::wait_status::failed);
    }

    /// Items in the queue.
    [[nodiscard]] std::size_t qsize() const noexcept { return store_.size(); }
    /// The bound given at construction (0: unbounded).
    [[nodiscard]] std::size_t maxsize() const noexcept { return maxsize_; }
    /// True when the queue holds no item.
    [[nodiscard]] bool empty() const noexcept { return store_.size() == 0; }
    /// True when a bounded queue holds maxsize items (counting hand-offs in flight: see the
    /// class comment).
    [[nodiscard]] bool full() const noexcept { return maxsize_ > 0 && occupied() >= maxsize_; }
    /// True after shutdown().
    [[nodiscard]] bool is_shutdown() const noexcept { return shutdown_; }

private:
    // An item dropped by shutdown(immediate) counts as done for join().
    void drop_one() noexcept {
        if (unfinished_ > 0 && --unfinished_ == 0) finished_.set();
    }
    void check_put() const {
        if (shutdown_) throw queue_shutdown();
        if (full()) throw queue_full();
    }
    // Items queued, items handed to getters that have not resumed, slots promised to putters
    // that have not resumed.
    [[nodiscard]] std::size_t occupied() const noexcept { return store_.size() + handed_ + promised_; }

    // Precondition: not full, not shut down.
    void enqueue(T&& v) {
        place(std::move(v), false);
        ++unfinished_;
        finished_.clear();
    }
    // A waiting getter (the queue is then empty) gets the item directly: it cannot be overtaken
    // by a get() that did not wait. `back`: an item a cancelled getter returns; it was the
    // oldest, so it is the next one out.
    void place(T&& v, bool back) {
        if (detail::waiter* w = getters_.front()) {
            static_cast<get_awaiter*>(w)->slot_.emplace(std::move(v));
            ++handed_;
            w->wake_with(detail::wait_status::granted);
        } else if (back) {
            store_.unpop(std::move(v));
        } else {
            store_.push(std::move(v));
        }
    }
    // Precondition: not empty.
    T dequeue() {
        T v = store_.pop();
        promise_slots();
        return v;
    }
    // Freed slots are promised to the waiting putters in order; each puts its item when it
    // resumes (or, cancelled by then, passes the slot on).
    void promise_slots() noexcept {
        while (!full()) {
            detail::waiter* w = putters_.front();
            if (!w) return;
            ++promised_;
            w->wake_with(detail::wait_status::granted);
        }
    }

    std::size_t maxsize_;
    Store store_;
    std::size_t handed_ = 0;    // items in get_awaiter slots whose tasks have not resumed
    std::size_t promised_ = 0;  // slots promised to put_awaiters whose tasks have not resumed
    std::size_t unfinished_ = 0;
    bool shutdown_ = false;
    bool shutdown_immediate_ = false;
    event finished_;
    detail::waiter_list getters_;  // non-empty only while the queue is empty
    detail::waiter_list putters_;  // non-empty only while the queue is full

public:
    /// The awaiter of put() (await it at once; movable only before it is awaited).
    class put_awaiter : detail::waiter {
    public:
        put_awaiter(basic_queue& q, T* item, bool copy) noexcept : q_(&q), item_(item), copy_(copy) {
            what = "queue put";
        }
        bool await_ready() {
            if (q_->shutdown_) return true;  // await_resume throws
            if (q_->full()) return false;
            q_->enqueue(take());
            done_ = true;
            return true;
        }
        bool await_suspend(std::coroutine_handle<> h) { return detail::suspend_on(*this, q_->putters_, h); }
        void await_resume() {
            switch (status) {
            case detail::wait_status::granted:
                // A slot was promised to us; put the item now, unless we are cancelled (the
                // slot passes on, the caller keeps the item) or the queue was shut down.
                --q_->promised_;
                if (task->cancel_pending() || q_->shutdown_) {
                    q_->promise_slots();
                    if (task->cancel_pending()) task->throw_cancel();
                    throw queue_shutdown();
                }
                try {
                    q_->enqueue(take());
                } catch (...) {  // T's copy or move threw: the slot goes to the next putter
                    q_->promise_slots();
                    throw;
                }
                return;
            case detail::wait_status::cancelled: task->throw_cancel();
            case detail::wait_status::failed: throw queue_shutdown();
            case detail::wait_status::orphaned: throw invalid_state_error("coio: queue destroyed while a task waited on it");
            default:
                if (!done_) throw queue_shutdown();
            }
        }

    private:
        friend class basic_queue;
        T take() {
            if constexpr (std::copy_constructible<T>) {
                if (copy_) return T(static_cast<const T&>(*item_));
            }
            return T(std::move(*item_));
        }
        basic_queue* q_;
        T* item_;
        bool copy_;
        bool done_ = false;
    };

    /// The awaiter of get() (await it at once; movable only before it is awaited).
    class get_awaiter : detail::waiter {
    public:
        explicit get_awaiter(basic_queue& q) noexcept : q_(&q) { what = "queue get"; }
        bool await_ready() {
            if (q_->store_.size() > 0) {
                slot_.emplace(q_->dequeue());
                return true;
            }
            return q_->shutdown_;  // empty and shut down: await_resume throws
        }
        bool await_suspend(std::coroutine_handle<> h) { return detail::suspend_on(*this, q_->getters_, h); }
        T await_resume() {
            switch (status) {
            case detail::wait_status::granted:
                --q_->handed_;
                if (task->cancel_pending()) {
                    // Handed an item, then cancelled before running: it goes back, as the
                    // next item out (or to the next waiting getter), unless the queue was
                    // shut down immediately meanwhile, which drops what it holds.
                    if (q_->shutdown_immediate_) q_->drop_one();
                    else q_->place(std::move(*slot_), true);
                    slot_.reset();
                    task->throw_cancel();
                }
                q_->promise_slots();  // the item left the queue: its slot is free
                return std::move(*slot_);
            case detail::wait_status::cancelled: task->throw_cancel();
            case detail::wait_status::failed: throw queue_shutdown();
            case detail::wait_status::orphaned: throw invalid_state_error("coio: queue destroyed while a task waited on it");
            default:
                // Taken without waiting.
                if (!slot_) throw queue_shutdown();
                return std::move(*slot_);
            }
        }

    private:
        friend class basic_queue;
        basic_queue* q_;
        std::optional<T> slot_;
    };
};

/// A first-in, first-out queue for tasks (asyncio.Queue); see basic_queue for the full
/// contract (put/get/put_nowait/get_nowait, qsize/maxsize/empty/full, task_done/join,
/// shutdown, cancellation).
///
/// Example:
/// @code
///   coio::queue<std::string> q(100);                   // at most 100 items
///   co_await q.put("hello");                           // a copy; or std::move(s)
///   std::string s = co_await q.get();
///   q.shutdown();                                      // consumers drain it, then stop
/// @endcode
template <class T>
class queue : public basic_queue<T, detail::fifo_store<T>> {
public:
    /// A queue holding at most `maxsize` items (0: unbounded).
    explicit queue(std::size_t maxsize = 0) : basic_queue<T, detail::fifo_store<T>>(maxsize) {}
};

/// A last-in, first-out queue (asyncio.LifoQueue); see basic_queue.
///
/// Example: `coio::lifo_queue<int> s; s.put_nowait(1); s.put_nowait(2); s.get_nowait(); // 2`
template <class T>
class lifo_queue : public basic_queue<T, detail::lifo_store<T>> {
public:
    /// A stack holding at most `maxsize` items (0: unbounded).
    explicit lifo_queue(std::size_t maxsize = 0) : basic_queue<T, detail::lifo_store<T>>(maxsize) {}
};

/// A queue that hands out its smallest item first under `Compare` (asyncio.PriorityQueue,
/// i.e. Python's heapq order: the opposite of std::priority_queue, which pops the largest);
/// equal items come out in no particular order. See basic_queue.
///
/// Example:
/// @code
///   coio::priority_queue<std::pair<int, std::string>> q;
///   q.put_nowait({2, "later"});  q.put_nowait({1, "first"});
///   auto [prio, what] = co_await q.get();             // {1, "first"}
/// @endcode
template <class T, class Compare = std::less<T>>
class priority_queue : public basic_queue<T, detail::heap_store<T, Compare>> {
public:
    /// A priority queue holding at most `maxsize` items (0: unbounded), ordered by `comp`.
    explicit priority_queue(std::size_t maxsize = 0, Compare comp = Compare())
        : basic_queue<T, detail::heap_store<T, Compare>>(maxsize, detail::heap_store<T, Compare>{{}, std::move(comp)}) {}
};

} // namespace coio
