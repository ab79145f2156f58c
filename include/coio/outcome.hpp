// coio/outcome.hpp - a value or the exception that prevented it.
#pragma once

#include <coio/errors.hpp>

#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <variant>

namespace coio {

/// The result of one awaitable in `gather(coio::return_exceptions, ...)`: either its value or
/// the exception it ended with (a cancelled child holds a `cancelled_error`).
///
/// Mirrors the list asyncio's `gather(..., return_exceptions=True)` returns, with the type
/// telling values and errors apart instead of `isinstance` checks.
///
/// Example:
/// @code
///   auto [a, b] = co_await coio::gather(coio::return_exceptions, f(), g());
///   if (a.has_value()) use(a.value()); else log(a.error());
/// @endcode
template <class T>
class outcome {
public:
    /// Holds a value.
    template <class U = T>
        requires std::is_constructible_v<T, U&&>
    outcome(U&& value) : v_(std::in_place_index<1>, std::forward<U>(value)) {}  // NOLINT
    /// Holds an error.
    outcome(std::exception_ptr error) noexcept : v_(std::in_place_index<2>, std::move(error)) {}  // NOLINT

    /// True when a value is held.
    [[nodiscard]] bool has_value() const noexcept { return v_.index() == 1; }
    /// True when a value is held.
    explicit operator bool() const noexcept { return has_value(); }

    /// The value. Throws: the held exception, rethrown, when there is no value.
    [[nodiscard]] T& value() & { check(); return std::get<1>(v_); }
    /// The value. Throws: the held exception, rethrown, when there is no value.
    [[nodiscard]] const T& value() const& { check(); return std::get<1>(v_); }
    /// The value, moved out. Throws: the held exception, rethrown, when there is no value.
    [[nodiscard]] T&& value() && { check(); return std::get<1>(std::move(v_)); }

    /// The exception, or null when a value is held.
    [[nodiscard]] std::exception_ptr error() const noexcept {
        return v_.index() == 2 ? std::get<2>(v_) : nullptr;
    }

private:
    void check() const {
        if (v_.index() == 2) std::rethrow_exception(std::get<2>(v_));
    }
    std::variant<std::monostate, T, std::exception_ptr> v_;
};

/// outcome of an awaitable that returns nothing: success or an exception.
template <>
class outcome<void> {
public:
    /// Success.
    outcome() noexcept = default;
    /// Failure.
    outcome(std::exception_ptr error) noexcept : error_(std::move(error)) {}  // NOLINT

    /// True on success.
    [[nodiscard]] bool has_value() const noexcept { return !error_; }
    /// True on success.
    explicit operator bool() const noexcept { return has_value(); }
    /// Returns on success. Throws: the held exception.
    void value() const { if (error_) std::rethrow_exception(error_); }
    /// The exception, or null on success.
    [[nodiscard]] std::exception_ptr error() const noexcept { return error_; }

private:
    std::exception_ptr error_;
};

/// outcome of an awaitable that returns a reference.
template <class T>
class outcome<T&> {
public:
    /// Holds a reference.
    outcome(T& value) noexcept : p_(std::addressof(value)) {}  // NOLINT
    /// Holds an error.
    outcome(std::exception_ptr error) noexcept : error_(std::move(error)) {}  // NOLINT
    /// True when a reference is held.
    [[nodiscard]] bool has_value() const noexcept { return !error_; }
    /// True when a reference is held.
    explicit operator bool() const noexcept { return has_value(); }
    /// The reference. Throws: the held exception.
    [[nodiscard]] T& value() const { if (error_) std::rethrow_exception(error_); return *p_; }
    /// The exception, or null.
    [[nodiscard]] std::exception_ptr error() const noexcept { return error_; }

private:
    T* p_ = nullptr;
    std::exception_ptr error_;
};

namespace detail {

/// The one tagged result slot of coroutine promises and task states:
/// empty | value | exception. `T&` is stored as a pointer.
///
/// A hand-made tagged union rather than std::variant: a slot is filled once, so set_value()
/// can construct in place without first destroying an alternative (std::variant's emplace
/// must check), which is on the path of every await of a ready coro.
template <class T>
class result_slot {
    using stored = std::conditional_t<std::is_reference_v<T>, std::remove_reference_t<T>*, T>;
    enum class state : unsigned char { empty, value, error };

public:
    result_slot() noexcept {}
    result_slot(const result_slot&) = delete;
    result_slot& operator=(const result_slot&) = delete;
    /// Takes over `o`'s value or exception; `o` keeps a moved-from value, or none.
    result_slot& operator=(result_slot&& o) noexcept(std::is_nothrow_move_constructible_v<stored>) {
        if (this == &o) return *this;
        reset();
        if (o.state_ == state::value) ::new (static_cast<void*>(std::addressof(value_))) stored(std::move(o.value_));
        else if (o.state_ == state::error) ::new (static_cast<void*>(std::addressof(error_))) std::exception_ptr(std::move(o.error_));
        state_ = o.state_;
        return *this;
    }
    ~result_slot() { reset(); }

    /// Stores the value. Precondition: empty() (a slot is filled once).
    template <class... U>
    void set_value(U&&... v) {
        if constexpr (std::is_reference_v<T>) ::new (static_cast<void*>(std::addressof(value_))) stored(std::addressof(v)...);
        else ::new (static_cast<void*>(std::addressof(value_))) stored(std::forward<U>(v)...);
        state_ = state::value;
    }
    /// Stores the exception, replacing a value if one was stored.
    void set_exception(std::exception_ptr e) noexcept {
        reset();
        ::new (static_cast<void*>(std::addressof(error_))) std::exception_ptr(std::move(e));
        state_ = state::error;
    }

    [[nodiscard]] bool empty() const noexcept { return state_ == state::empty; }
    [[nodiscard]] bool has_value() const noexcept { return state_ == state::value; }
    [[nodiscard]] bool has_exception() const noexcept { return state_ == state::error; }
    [[nodiscard]] std::exception_ptr exception() const noexcept {
        return state_ == state::error ? error_ : nullptr;
    }

    /// Moves the value out (or rethrows). Precondition: not empty.
    T take() {
        if (state_ == state::error) [[unlikely]] std::rethrow_exception(error_);
        if constexpr (std::is_reference_v<T>) return *value_;
        else return std::move(value_);
    }
    /// A reference to the value (or rethrows). Precondition: not empty.
    decltype(auto) get() {
        if (state_ == state::error) [[unlikely]] std::rethrow_exception(error_);
        if constexpr (std::is_reference_v<T>) return static_cast<T>(*value_);
        else return static_cast<T&>(value_);
    }
    /// Copies the value when T is copyable, moves it out otherwise (one consumer).
    T copy_or_take() {
        if constexpr (std::is_reference_v<T> || !std::is_copy_constructible_v<T>) return take();
        else return static_cast<T>(get());
    }

private:
    void reset() noexcept {
        if (state_ == state::value) value_.~stored();
        else if (state_ == state::error) error_.~exception_ptr();
        state_ = state::empty;
    }

    union {
        stored value_;
        std::exception_ptr error_;
    };
    state state_ = state::empty;
};

/// void: success is the absence of an exception (8 bytes instead of a 16-byte variant; a
/// pending task of void is the common case and its size matters).
template <>
class result_slot<void> {
public:
    void set_value() noexcept {}
    void set_exception(std::exception_ptr e) noexcept { e_ = std::move(e); }
    [[nodiscard]] bool empty() const noexcept { return false; }
    [[nodiscard]] bool has_value() const noexcept { return !e_; }
    [[nodiscard]] bool has_exception() const noexcept { return static_cast<bool>(e_); }
    [[nodiscard]] std::exception_ptr exception() const noexcept { return e_; }
    void take() const { if (e_) std::rethrow_exception(e_); }
    void get() const { take(); }
    void copy_or_take() const { take(); }

private:
    std::exception_ptr e_;
};

} // namespace detail
} // namespace coio
