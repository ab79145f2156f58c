// coio/async_generator.hpp - asynchronous generators: `co_yield` and `co_await` in one body.
//
// The C++ counterpart of Python's async generator (`async def` containing `yield`):
//
//   coio::async_generator<int> ticks(int n) {
//       for (int i = 0; i < n; ++i) {
//           co_await coio::sleep(10ms);    // any awaitable works in the body
//           co_yield i;
//       }
//   }
//
//   // C++20 has no `async for`; iterate either way:
//   for (auto it = co_await gen.begin(); it != gen.end(); co_await ++it) use(*it);
//   while (auto item = co_await gen.next()) use(*item);     // std::optional<T>
//
// How it runs (the contract the rest of coio relies on):
// - Lazy: calling the generator function only creates the frame; the body starts at the first
//   `begin()` / `next()`.
// - Inline, in the consumer's task: `next()` / `++it` / `begin()` resume the body directly, and
//   `co_yield` (or reaching the end) hands control straight back to the consumer. No event-loop
//   round trip and no allocation per item, and the stack does not grow however many items are
//   produced synchronously, at any optimization level (see "Why not pure symmetric transfer"
//   at the bottom of this file).
// - Because the body runs as part of the consumer's task, its `co_await`s are the task's awaits:
//   cancelling the task throws coio::cancelled_error at the body's current await (a deadline of
//   `coio::timeout` around `next()` throws coio::timeout_error there), and it propagates out of
//   the body to the consumer's `next()` / `++it` like any other exception.
// - An exception escaping the body is rethrown by the `next()` / `++it` / `begin()` that resumed
//   it; afterwards the generator is finished and `next()` returns std::nullopt.
// - Destroying the generator object destroys the frame wherever it is suspended (at its start,
//   at a `co_yield`, or at its end), running the destructors of the body's locals. Python's
//   `aclose()` becomes plain destruction (or move-assigning an empty generator).
#pragma once

#include <coio/detail/frame_info.hpp>
#include <coio/errors.hpp>

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace coio {

namespace detail {
template <class T>
class async_generator_promise;
} // namespace detail

/// An asynchronous generator of `T` values: a coroutine that can both `co_await` and `co_yield`.
///
/// A function returning `async_generator<T>` is a coroutine whose body produces values with
/// `co_yield expr` (`expr` is a `T`, or converts implicitly to `T`) and may `co_await` anything.
/// The consumer pulls the values one at a time with `co_await gen.next()` or with the
/// asynchronous iterator (`co_await gen.begin()`, `co_await ++it`, `*it`, `it != gen.end()`).
///
/// @tparam T  the value type: a cv-unqualified, non-array object type. It may be move-only
///            (e.g. `std::unique_ptr<int>`), in which case the body must `co_yield` rvalues
///            (`co_yield std::move(p)`) and the consumer takes ownership through `next()` or
///            `std::move(*it)`. References are not supported: yield a pointer or a
///            `std::reference_wrapper` instead.
///
/// Values are not copied on the way out of the body: while the body is suspended at
/// `co_yield x`, the generator refers to `x` itself (it lives in the suspended frame).
/// `*it` is a reference to it; `next()` moves it out when it was yielded as an rvalue, and
/// copies it when it was an lvalue (so the body's variable keeps its value).
///
/// One consumer at a time: awaiting `next()` / `begin()` / `++it` while a previous one has
/// not completed (another task is waiting on this generator, or the body awaits its own
/// generator) throws coio::invalid_state_error.
///
/// Lifetime: the generator owns its frame; it is move-only, and a moved-from or
/// default-constructed generator is empty (an already finished sequence). Destroying it
/// destroys the frame and every local of the body. Destroying it while the body is *inside*
/// one of its own `co_await`s (i.e. while a `next()` is pending) is a misuse unless whatever
/// the body awaits will never resume it: in coio that situation belongs to the consumer task,
/// which only lets go of the generator after its pending `next()` completed or was cancelled.
///
/// Cancellation: the body runs in the consumer's task, so cancelling that task makes the
/// body's current `co_await` throw coio::cancelled_error (coio::timeout_error when a
/// `coio::timeout` scope around the `next()` expires). Unless the body catches it, it
/// propagates to the consumer's pending `next()` / `++it`, and the generator is finished.
/// The body may catch it to clean up, even with `co_await`s, and should then rethrow.
/// A generator suspended at a `co_yield` is not waiting for anything and is unaffected: a
/// cancelled consumer can leave it to another task.
///
/// Threads: like every coio object, a generator is used from its loop's thread only.
///
/// Example:
/// @code
///   coio::async_generator<std::string> lines(coio::stream_reader& r) {
///       while (true) {
///           std::string line = co_await r.readline();
///           if (line.empty()) co_return;
///           co_yield std::move(line);
///       }
///   }
///   coio::coro<std::size_t> count_lines(coio::stream_reader& r) {
///       std::size_t n = 0;
///       auto gen = lines(r);
///       while (auto line = co_await gen.next()) ++n;
///       co_return n;
///   }
/// @endcode
template <class T>
class [[nodiscard]] async_generator {
    static_assert(std::is_object_v<T> && !std::is_array_v<T>,
                  "coio::async_generator<T>: T must be an object type; for references "
                  "yield a pointer or a std::reference_wrapper");
    static_assert(std::is_same_v<T, std::remove_cv_t<T>>,
                  "coio::async_generator<T>: T must not be cv-qualified");

public:
    /// The promise type the compiler uses for coroutines returning async_generator<T>.
    using promise_type = detail::async_generator_promise<T>;
    /// The type of the yielded values (what `next()` returns inside a std::optional).
    using value_type = T;

    class iterator;
    class begin_awaiter;
    class next_awaiter;

    /// Constructs an empty generator: it yields nothing (`begin() == end()`, `next()` returns
    /// std::nullopt).
    async_generator() noexcept = default;

    /// Takes over `other`'s frame; `other` becomes empty.
    /// @param other  the generator to move from.
    async_generator(async_generator&& other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)) {}

    /// Destroys the current frame (see the class comment for when that is allowed) and takes
    /// over `other`'s; `other` becomes empty. `gen = {}` closes a generator early.
    /// @param other  the generator to move from.
    /// @returns `*this`.
    async_generator& operator=(async_generator&& other) noexcept {
        if (this != &other) {
            destroy();
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }

    /// Not copyable: a generator owns its frame, and a sequence is consumed only once.
    async_generator(const async_generator&) = delete;
    /// Not copyable: see the copy constructor.
    async_generator& operator=(const async_generator&) = delete;

    /// Destroys the frame wherever the body is suspended, running its locals' destructors
    /// (like Python's `aclose()`, except that the body does not get to run any more code).
    ~async_generator() { destroy(); }

    /// Starts (or continues) the body and returns an iterator to the next value.
    ///
    /// Normally called once, before iterating: `auto it = co_await gen.begin();`. If the body
    /// finishes without yielding, the iterator equals `end()`.
    ///
    /// @returns an awaitable whose `co_await` gives an `iterator`.
    /// @throws whatever the body throws before its next `co_yield` (rethrown by the
    ///         `co_await`; the generator is then finished); coio::invalid_state_error if another
    ///         `next()` / `begin()` / `++it` of this generator has not completed yet.
    ///
    /// Cancellation: see the class comment; a cancelled body throws coio::cancelled_error here.
    ///
    /// Example:
    /// @code
    ///   for (auto it = co_await gen.begin(); it != gen.end(); co_await ++it)
    ///       std::cout << *it << '\n';
    /// @endcode
    /// Inside a function *template*, g++ 12 rejects a `co_await` in a for-loop's increment
    /// ("insufficient contextual information to determine type"); write
    /// `(void)co_await ++it` there, or use a while loop.
    [[nodiscard]] begin_awaiter begin() & noexcept { return begin_awaiter{handle_}; }

    /// Deleted: the iterator would outlive the temporary generator it refers to. Store the
    /// generator in a variable first.
    begin_awaiter begin() && = delete;

    /// The end of the sequence: compare an iterator with it (`it != gen.end()`).
    /// @returns std::default_sentinel.
    ///
    /// Cancellation: not a suspension point.
    ///
    /// Example: see begin().
    [[nodiscard]] std::default_sentinel_t end() const noexcept { return std::default_sentinel; }

    /// Runs the body to its next `co_yield` and returns that value, or std::nullopt once the
    /// body has finished (the asyncio `await anext(gen, None)`).
    ///
    /// The value is moved out of the body if it was yielded as an rvalue, copied otherwise.
    /// After the end (or after the body threw), every further `next()` returns std::nullopt
    /// again, without resuming anything.
    ///
    /// @returns an awaitable whose `co_await` gives a `std::optional<T>`.
    /// @throws whatever the body throws before its next `co_yield` (rethrown by the
    ///         `co_await`; the generator is then finished); coio::invalid_state_error if another
    ///         `next()` / `begin()` / `++it` of this generator has not completed yet.
    ///
    /// Cancellation: see the class comment; a cancelled body throws coio::cancelled_error here.
    ///
    /// Example:
    /// @code
    ///   while (auto item = co_await gen.next()) use(*item);
    /// @endcode
    [[nodiscard]] next_awaiter next() noexcept { return next_awaiter{handle_}; }

private:
    friend promise_type;
    using handle_type = std::coroutine_handle<promise_type>;

    explicit async_generator(handle_type handle) noexcept : handle_(handle) {}

    void destroy() noexcept {
        if (handle_) std::exchange(handle_, nullptr).destroy();
    }

    /// Shared by every consumer-side awaiter: runs the body until its next item.
    class resume_awaiter_base;

    handle_type handle_{};
};

namespace detail {

/// The promise of an async_generator<T> coroutine (not API: used by the compiler).
///
/// State machine, all on the loop's thread:
/// - consumer_ != nullptr  <=>  a consumer is waiting for the next item ("running"): the body
///   is executing or suspended inside one of its own co_awaits.
/// - inline_               the consumer's await_suspend is inside handle.resume(): a co_yield
///   reached before that call returns just returns to it ("synchronous item"); one reached
///   later (the body was resumed by whatever it awaited) resumes the consumer by symmetric
///   transfer.
/// - value_ != nullptr     <=>  the body is suspended at a co_yield of *value_.
/// - exception_            an exception escaped the body and the consumer has not seen it yet.
template <class T>
class async_generator_promise : public frame_info {
public:
#if COIO_INTROSPECTION
    // Names the generator function for call graphs (see detail::frame_info).
    explicit async_generator_promise(frame_site_key = {}, const char* fn = __builtin_FUNCTION(),
                                     const char* file = __builtin_FILE(), unsigned line = __builtin_LINE()) noexcept
        : frame_info(alignof(async_generator_promise) <= 16 ? magic_generator : 0, fn, file, line) {}
#else
    async_generator_promise() noexcept = default;
#endif
    async_generator_promise(const async_generator_promise&) = delete;
    async_generator_promise& operator=(const async_generator_promise&) = delete;

    async_generator<T> get_return_object() noexcept {
        return async_generator<T>{std::coroutine_handle<async_generator_promise>::from_promise(*this)};
    }

    // Lazy, like coro<T>: nothing runs until the consumer asks for the first item.
    std::suspend_always initial_suspend() const noexcept { return {}; }

    // Stay suspended at the end so the generator object can see done() and destroy the frame;
    // hand control straight back to the consumer that resumed us.
    auto final_suspend() noexcept { return transfer_awaiter{this}; }

    // Kept for the consumer's pending next()/++, which rethrows it (then done() is true).
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    void return_void() const noexcept {}

    /// `co_yield lvalue`: refer to the body's object; next() copies it (the body may still use
    /// its variable after resuming), `*it` is a reference to it.
    auto yield_value(T& value) noexcept {
        static_assert(std::is_copy_constructible_v<T>,
                      "coio::async_generator<T>: T is move-only, so co_yield an rvalue: "
                      "co_yield std::move(value);");
        return yield_awaiter{{this}, std::addressof(value), false};
    }

    /// `co_yield rvalue`: refer to the object (a temporary or a moved-from-on-purpose variable,
    /// alive until the body resumes); next() moves it out.
    auto yield_value(T&& value) noexcept { return yield_awaiter{{this}, std::addressof(value), true}; }

    /// `co_yield expr` where expr is not a non-const T: a const T or any type convertible to T.
    /// The T is constructed inside the awaiter, which lives in the suspended frame.
    template <class U>
        requires std::convertible_to<U&&, T>
    auto yield_value(U&& value) noexcept(std::is_nothrow_convertible_v<U&&, T>) {
        return owning_yield_awaiter{this, std::forward<U>(value)};
    }

    // Operations used by async_generator's awaiters and iterator.

    /// Called by a consumer just before it resumes the body.
    /// @throws coio::invalid_state_error if another consumer is already waiting.
    void check_not_running() const {
        if (consumer_) {
            throw invalid_state_error(
                "coio::async_generator: next(), begin() or ++it awaited while a previous one "
                "has not completed (only one consumer at a time)");
        }
    }

    /// Runs the body on behalf of `consumer` until it yields, finishes or suspends in one of
    /// its own co_awaits.
    /// @returns true if the consumer must suspend (the body is waiting for something and will
    ///          resume the consumer when it yields), false if the item (or the end) is there.
    bool run_for(std::coroutine_handle<> consumer) noexcept {
        consumer_ = consumer;
#if COIO_INTROSPECTION
        link = reinterpret_cast<std::uintptr_t>(consumer.address());  // for call graphs
#endif
        value_ = nullptr;
        inline_ = true;
        std::coroutine_handle<async_generator_promise>::from_promise(*this).resume();
        // transfer_awaiter clears inline_ when the body got to a co_yield or its end before
        // returning here. Single-threaded: nothing else can resume the body in between.
        return std::exchange(inline_, false);
    }

    /// After the body transferred back: rethrows what escaped the body, once.
    void rethrow_if_failed() {
        if (exception_) std::rethrow_exception(std::exchange(exception_, nullptr));
    }

    /// The current item, or nullptr when the body is not suspended at a co_yield.
    T* value() const noexcept { return value_; }

    /// The current item as next() returns it: moved if yielded as an rvalue, copied otherwise.
    std::optional<T> take_value() {
        if (value_ == nullptr) return std::nullopt;
        if constexpr (std::is_copy_constructible_v<T>) {
            if (!movable_) return std::optional<T>(std::in_place, *value_);
        }
        // Move-only T can only have been yielded as an rvalue (yield_value(T&) rejects it).
        return std::optional<T>(std::in_place, std::move(*value_));
    }

private:
    // Suspends the body and gives control back to the waiting consumer: by returning into
    // run_for() when the consumer's await_suspend is still below us on the stack (constant
    // stack for synchronous items even without tail calls), by symmetric transfer otherwise.
    struct transfer_awaiter {
        async_generator_promise* promise;

        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept {
            std::coroutine_handle<> consumer = std::exchange(promise->consumer_, nullptr);
            if (std::exchange(promise->inline_, false)) return std::noop_coroutine();
            // Every resumption of the body comes from a consumer (run_for()), so consumer_ is
            // set whenever the body reaches a yield or its end; noop is only a safety net.
            return consumer ? consumer : std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

    // The item is published in await_suspend, not in yield_value: by then the awaiter (and
    // the owning awaiter's value) sits at its final address in the frame.
    struct yield_awaiter : transfer_awaiter {
        T* item;
        bool movable;

        std::coroutine_handle<> await_suspend(std::coroutine_handle<> self) const noexcept {
            this->promise->value_ = item;
            this->promise->movable_ = movable;
            return transfer_awaiter::await_suspend(self);
        }
    };

    struct owning_yield_awaiter {
        template <class U>
        owning_yield_awaiter(async_generator_promise* p, U&& v) noexcept(
            std::is_nothrow_convertible_v<U&&, T>)
            : promise(p), item(std::forward<U>(v)) {}
        owning_yield_awaiter(const owning_yield_awaiter&) = delete;
        owning_yield_awaiter& operator=(const owning_yield_awaiter&) = delete;

        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> self) noexcept {
            return yield_awaiter{{promise}, std::addressof(item), true}.await_suspend(self);
        }
        void await_resume() const noexcept {}

        async_generator_promise* promise;
        T item;
    };

    std::coroutine_handle<> consumer_{};
    T* value_ = nullptr;
    bool movable_ = false;
    bool inline_ = false;
    std::exception_ptr exception_{};
};

} // namespace detail

/// The common part of begin_awaiter, next_awaiter and the iterator's increment awaiter:
/// runs the body on the consumer's stack until its next item.
template <class T>
class async_generator<T>::resume_awaiter_base {
public:
    /// Ready (nothing to run) when the generator is empty or finished.
    /// @throws coio::invalid_state_error if another consumer is waiting on this generator.
    bool await_ready() const {
        if (!handle_ || handle_.done()) return true;
        handle_.promise().check_not_running();
        return false;
    }

    /// Runs the body until its next co_yield or its end; the consumer stays suspended only if
    /// the body is waiting for something (it is resumed when the body yields).
    /// @returns whether the consumer stays suspended.
    bool await_suspend(std::coroutine_handle<> consumer) const noexcept {
        return handle_.promise().run_for(consumer);
    }

protected:
    explicit resume_awaiter_base(handle_type handle) noexcept : handle_(handle) {}

    /// Rethrows what escaped the body during this resumption; true if an item is available.
    bool finish() const {
        if (!handle_) return false;
        handle_.promise().rethrow_if_failed();
        return !handle_.done();
    }

    handle_type handle_;
};

/// The asynchronous input iterator of an async_generator.
///
/// Dereferencing gives the item at which the body is suspended; `co_await ++it` resumes the
/// body up to its next item. It is a view of the generator's current item, so it is valid only
/// while the generator is alive, and an item taken with `next()` in between is seen moved-from.
/// Not a std::input_iterator (`++it` must be `co_await`ed), so it deliberately has no
/// `iterator_category`: std algorithms would not compile with it rather than misbehave.
///
/// Example:
/// @code
///   for (auto it = co_await gen.begin(); it != gen.end(); co_await ++it)
///       total += it->size();
/// @endcode
template <class T>
class async_generator<T>::iterator {
public:
    /// The yielded type.
    using value_type = T;
    /// Signed distance type, for completeness of the iterator vocabulary.
    using difference_type = std::ptrdiff_t;
    /// What `*it` returns.
    using reference = T&;
    /// What `it->` returns.
    using pointer = T*;

    /// The awaitable returned by `++it`; `co_await` gives back the iterator.
    ///
    /// @throws (from `co_await`) whatever the body throws before its next `co_yield`, then the
    ///         iterator equals `end()`; coio::invalid_state_error if another consumer is
    ///         waiting on the same generator.
    ///
    /// Cancellation: a cancelled body throws coio::cancelled_error from the `co_await`.
    class [[nodiscard]] increment_awaiter : public resume_awaiter_base {
    public:
        /// Returns the incremented iterator, or rethrows the body's exception.
        iterator& await_resume() const {
            if (!this->finish()) it_->handle_ = nullptr;
            return *it_;
        }

    private:
        friend iterator;
        explicit increment_awaiter(iterator* it) noexcept : resume_awaiter_base(it->handle_), it_(it) {}
        iterator* it_;
    };

    /// An end iterator (equal to `gen.end()`).
    iterator() noexcept = default;

    /// Advances to the next item: `co_await ++it`. Incrementing an end iterator leaves it at
    /// the end.
    /// @returns an awaitable whose `co_await` gives `*this`.
    /// @throws see increment_awaiter.
    ///
    /// Cancellation: see increment_awaiter.
    ///
    /// Example: `for (...; it != gen.end(); co_await ++it)`.
    [[nodiscard]] increment_awaiter operator++() noexcept { return increment_awaiter{this}; }

    /// The current item. Precondition: `*this != end()`.
    /// @returns a reference to the yielded object; `std::move(*it)` takes it over.
    [[nodiscard]] reference operator*() const noexcept { return *handle_.promise().value(); }

    /// Member access to the current item. Precondition: `*this != end()`.
    /// @returns a pointer to the yielded object.
    [[nodiscard]] pointer operator->() const noexcept { return handle_.promise().value(); }

    /// True if `it` is past the last item (or came from an empty generator).
    /// @param it  the iterator.
    /// @returns whether `it` is an end iterator.
    [[nodiscard]] friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
        return it.at_end();
    }

    /// Two iterators are equal if both are at the end, or both refer to the same running
    /// generator.
    /// @returns whether `a` and `b` are interchangeable.
    [[nodiscard]] friend bool operator==(const iterator& a, const iterator& b) noexcept {
        return a.at_end() ? b.at_end() : (!b.at_end() && a.handle_ == b.handle_);
    }

private:
    friend begin_awaiter;
    explicit iterator(handle_type handle) noexcept : handle_(handle) {}

    // done() too, in case the generator was driven to its end through next().
    bool at_end() const noexcept { return !handle_ || handle_.done(); }

    handle_type handle_{};
};

/// The awaitable returned by `gen.begin()`; `co_await` gives an iterator to the first item
/// (or `end()`).
///
/// @throws (from `co_await`) see async_generator::begin().
///
/// Cancellation: a cancelled body throws coio::cancelled_error from the `co_await`.
template <class T>
class [[nodiscard]] async_generator<T>::begin_awaiter : public resume_awaiter_base {
public:
    /// Returns the iterator, or rethrows the body's exception.
    iterator await_resume() const { return this->finish() ? iterator{this->handle_} : iterator{}; }

private:
    friend async_generator;
    explicit begin_awaiter(handle_type handle) noexcept : resume_awaiter_base(handle) {}
};

/// The awaitable returned by `gen.next()`; `co_await` gives `std::optional<T>`.
///
/// @throws (from `co_await`) see async_generator::next().
///
/// Cancellation: a cancelled body throws coio::cancelled_error from the `co_await`.
template <class T>
class [[nodiscard]] async_generator<T>::next_awaiter : public resume_awaiter_base {
public:
    /// Returns the item (moved or copied out of the body), std::nullopt at the end, or
    /// rethrows the body's exception.
    std::optional<T> await_resume() const {
        if (!this->finish()) return std::nullopt;
        return this->handle_.promise().take_value();
    }

private:
    friend async_generator;
    explicit next_awaiter(handle_type handle) noexcept : resume_awaiter_base(handle) {}
};

} // namespace coio

// Why not pure symmetric transfer
// -------------------------------
// The textbook design has the consumer's await_suspend return the body's handle and every
// co_yield return the consumer's handle. That only bounds the stack if the compiler turns the
// resulting resume() into a tail call, and g++ 12 does so only with -foptimize-sibling-calls
// (-O2 and up) and not under -fsanitize=address even at -O2: a million synchronous items then
// overflow an 8 MiB stack (clang does emit the tail call at -O0 and under ASan). So the consumer
// resumes the body with a plain call (run_for), and a co_yield reached during that call simply
// returns to it, so the consumer continues without suspending (await_suspend returns false).
// Symmetric transfer is used only when the body was resumed by something else (the event loop,
// after one of the body's own co_awaits completed): then it hands control to the consumer,
// which adds at most one frame per asynchronous wake-up, not one per item. This header needs
// nothing from the loop: a body awaiting a coio::coro goes through coio's own transfer
// (detail::transfer in detail/core.hpp) exactly as any other coroutine does, and whoever
// resumes the body, coio's loop or anything else, resumes the consumer with it.
