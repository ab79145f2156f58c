// tests/test_async_generator.cpp - coio::async_generator<T>.
//
// Most tests drive the consumer side with a tiny test-only coroutine type (sync_task, eager,
// result kept in its promise), and the body suspends for real on a test-only awaitable (gate)
// that the test resumes by hand: the generator itself knows nothing about the event loop, and
// these tests show the exact interleaving. The tests at the end run the same code under
// coio::run with real sleeps, cancellation and timeouts. A counting type checks lifetimes:
// every object constructed is destroyed exactly once.
//
// No co_await inside a Catch assertion macro: g++ 12 evaluates it up to three times there
// (the macros repeat the expression in __builtin_constant_p and in a `false && ...` loop
// condition, and g++ runs a co_await in both; Catch2 issues #2591 and #2925). Await into a
// variable, then check the variable.
#include <coio/async_generator.hpp>

#include "support/catch.hpp"

#include <coio/as_completed.hpp>
#include <coio/coro.hpp>
#include <coio/errors.hpp>
#include <coio/run.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <chrono>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <iterator>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

// ---------------------------------------------------------------------------------------------
// Allocation counting: replaces the global operator new/delete of this test executable so a
// test can prove that producing items allocates nothing. Counting is off unless a test turns
// it on around the code it measures. The whole unaligned family is replaced, so that memory
// is always released by the matching function (ASan checks that).
namespace {
bool g_count_allocations = false;
long g_allocations = 0;

void* counted_malloc(std::size_t size) {
    if (g_count_allocations) ++g_allocations;
    return std::malloc(size == 0 ? 1 : size);
}

// Out of line: if g++ inlines it, -Wmismatched-new-delete sees free() applied to the result
// of operator new and (wrongly, for a replacement) flags it.
[[gnu::noinline]] void counted_free(void* p) noexcept { std::free(p); }
} // namespace

void* operator new(std::size_t size) {
    if (void* p = counted_malloc(size)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
    if (void* p = counted_malloc(size)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return counted_malloc(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return counted_malloc(size); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }

namespace {

// ---------------------------------------------------------------------------------------------
// counted: counts constructions and destructions, and catches a destructor running twice on
// the same object (or on storage that never held one).
struct counted {
    static inline int constructed = 0;
    static inline int destroyed = 0;
    static inline int copies = 0;
    static inline int moves = 0;
    static inline int bad_destroys = 0;

    static void reset() { constructed = destroyed = copies = moves = bad_destroys = 0; }
    static int alive() { return constructed - destroyed; }

    static constexpr std::uint32_t live_magic = 0xC0FFEE11;

    explicit counted(int v) : value(v) { ++constructed; }
    counted(const counted& other) : value(other.value) {
        ++constructed;
        ++copies;
    }
    counted(counted&& other) noexcept : value(std::exchange(other.value, -1)) {
        ++constructed;
        ++moves;
    }
    counted& operator=(const counted&) = default;
    counted& operator=(counted&&) = default;
    ~counted() {
        if (magic != live_magic) ++bad_destroys;
        magic = 0;
        ++destroyed;
    }

    int value;
    std::uint32_t magic = live_magic;
};

// Every test that uses `counted` starts from zero and ends with nothing alive.
struct counted_scope {
    counted_scope() { counted::reset(); }
    ~counted_scope() {
        CHECK(counted::alive() == 0);
        CHECK(counted::bad_destroys == 0);
    }
    counted_scope(const counted_scope&) = delete;
    counted_scope& operator=(const counted_scope&) = delete;
};

// ---------------------------------------------------------------------------------------------
// sync_task<R>: the test's consumer coroutine. Eager (runs until its first real suspension
// when called), keeps its result or exception, stays suspended at the end so get() can read it.
template <class R>
struct result_slot {
    std::optional<R> value;
    void return_value(R v) { value.emplace(std::move(v)); }
};
template <>
struct result_slot<void> {
    void return_void() noexcept {}
};

template <class R = void>
class [[nodiscard]] sync_task {
public:
    struct promise_type : result_slot<R> {
        std::exception_ptr exception;
        sync_task get_return_object() {
            return sync_task{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void unhandled_exception() noexcept { exception = std::current_exception(); }
    };

    sync_task(sync_task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    sync_task& operator=(sync_task&&) = delete;
    ~sync_task() {
        if (handle_) handle_.destroy();
    }

    bool done() const { return handle_.done(); }

    // The result, or the exception that escaped the coroutine. Requires done().
    R get() {
        REQUIRE(done());
        if (handle_.promise().exception) std::rethrow_exception(handle_.promise().exception);
        if constexpr (!std::is_void_v<R>) return std::move(*handle_.promise().value);
    }

private:
    explicit sync_task(std::coroutine_handle<promise_type> h) : handle_(h) {}
    std::coroutine_handle<promise_type> handle_;
};

// ---------------------------------------------------------------------------------------------
// gate: an awaitable that really suspends; the test resumes (or "cancels") the waiters by
// hand, standing in for a timer or a socket of the event loop.
class gate {
public:
    class awaiter {
    public:
        explicit awaiter(gate& g) : gate_(&g) {}
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) {
            handle_ = h;
            gate_->waiters_.push_back(this);
        }
        // A cancelled wait throws, as a coio leaf awaiter does when its task is cancelled.
        void await_resume() const {
            if (cancelled_) throw coio::cancelled_error{};
        }

    private:
        friend gate;
        gate* gate_;
        std::coroutine_handle<> handle_;
        bool cancelled_ = false;
    };

    [[nodiscard]] awaiter wait() { return awaiter{*this}; }
    std::size_t waiting() const { return waiters_.size(); }

    // Resumes the oldest waiter (on this stack, like the loop resuming a ready coroutine).
    void open_one(bool cancel = false) {
        REQUIRE(!waiters_.empty());
        awaiter* w = waiters_.front();
        waiters_.erase(waiters_.begin());
        w->cancelled_ = cancel;
        w->handle_.resume();
    }

    // Lets a test that counts allocations keep push_back out of the measurement.
    void reserve(std::size_t n) { waiters_.reserve(n); }

    // Forgets the waiters without resuming them (their frames are being destroyed).
    void abandon() { waiters_.clear(); }

private:
    std::vector<awaiter*> waiters_;
};

// Address of the current machine stack frame: equal values across iterations prove the
// stack does not grow.
[[gnu::noinline]] std::uintptr_t stack_position() {
    return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

// ---------------------------------------------------------------------------------------------
// Generators used by several tests.

coio::async_generator<int> count_to(int n) {
    for (int i = 1; i <= n; ++i) co_yield i;
}

coio::async_generator<int> gated_count(gate& g, int n, std::vector<std::string>& log) {
    for (int i = 1; i <= n; ++i) {
        log.push_back("wait " + std::to_string(i));
        co_await g.wait();
        log.push_back("yield " + std::to_string(i));
        co_yield i;
    }
    log.push_back("end");
}

template <class T>
sync_task<std::vector<T>> collect_next(coio::async_generator<T>& gen) {
    std::vector<T> out;
    while (auto item = co_await gen.next()) out.push_back(std::move(*item));
    co_return out;
}

template <class T>
sync_task<std::vector<T>> collect_iter(coio::async_generator<T>& gen) {
    std::vector<T> out;
    // `(void)`: g++ 12 rejects a bare co_await in a for-loop's increment inside a template
    // ("insufficient contextual information to determine type"); non-template code, like the
    // tests below, can use the plain `co_await ++it`.
    for (auto it = co_await gen.begin(); it != gen.end(); (void)co_await ++it) out.push_back(*it);
    co_return out;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Compile-time properties.

using int_gen = coio::async_generator<int>;

static_assert(!std::is_copy_constructible_v<int_gen> && !std::is_copy_assignable_v<int_gen>);
static_assert(std::is_nothrow_move_constructible_v<int_gen>);
static_assert(std::is_nothrow_move_assignable_v<int_gen>);
static_assert(std::is_nothrow_default_constructible_v<int_gen>);
static_assert(std::is_same_v<int_gen::value_type, int>);
static_assert(std::is_same_v<decltype(std::declval<int_gen&>().next().await_resume()),
                             std::optional<int>>);
static_assert(std::is_same_v<decltype(std::declval<int_gen&>().begin().await_resume()),
                             int_gen::iterator>);
static_assert(std::is_same_v<decltype(std::declval<int_gen::iterator&>().operator++().await_resume()),
                             int_gen::iterator&>);
static_assert(std::is_same_v<decltype(*std::declval<const int_gen::iterator&>()), int&>);
static_assert(std::is_same_v<decltype(std::declval<int_gen&>().end()), std::default_sentinel_t>);
// begin() on a temporary generator is rejected: the iterator would dangle.
template <class G>
concept can_begin = requires(G&& g) { std::forward<G>(g).begin(); };
static_assert(!can_begin<int_gen&&>);
static_assert(can_begin<int_gen&>);
// `co_await ++it` must be awaited: the iterator is not a std::input_iterator on purpose.
static_assert(!std::input_iterator<int_gen::iterator>);

// ---------------------------------------------------------------------------------------------

TEST_CASE("async_generator is lazy: the body starts at the first next()", "[async_generator]") {
    bool started = false;
    auto make = [](bool& flag) -> coio::async_generator<int> {
        flag = true;
        co_yield 1;
    };
    auto gen = make(started);
    CHECK_FALSE(started);

    auto consumer = [](coio::async_generator<int>& g) -> sync_task<std::optional<int>> {
        co_return co_await g.next();
    }(gen);
    CHECK(started);
    REQUIRE(consumer.done());
    CHECK(consumer.get() == 1);
}

TEST_CASE("next() returns the items in order, then std::nullopt every time", "[async_generator]") {
    auto gen = count_to(3);
    auto consumer = [](coio::async_generator<int>& g) -> sync_task<std::vector<std::optional<int>>> {
        std::vector<std::optional<int>> seen;
        for (int i = 0; i < 6; ++i) seen.push_back(co_await g.next());
        co_return seen;
    }(gen);
    REQUIRE(consumer.done());
    const std::vector<std::optional<int>> expected{1, 2, 3, std::nullopt, std::nullopt, std::nullopt};
    CHECK(consumer.get() == expected);
}

TEST_CASE("iteration with begin(), ++it, *it and it != end()", "[async_generator]") {
    SECTION("a few items") {
        auto gen = count_to(4);
        auto consumer = collect_iter(gen);
        CHECK(consumer.get() == std::vector<int>{1, 2, 3, 4});
    }
    SECTION("a body that yields nothing gives begin() == end()") {
        auto gen = count_to(0);
        auto consumer = [](coio::async_generator<int>& g) -> sync_task<bool> {
            auto it = co_await g.begin();
            co_return it == g.end() && g.end() == it && it == coio::async_generator<int>::iterator{};
        }(gen);
        CHECK(consumer.get());
    }
    SECTION("an empty (default-constructed) generator") {
        coio::async_generator<int> gen;
        auto by_iter = collect_iter(gen);
        CHECK(by_iter.get().empty());
        auto by_next = collect_next(gen);
        CHECK(by_next.get().empty());
    }
    SECTION("operator-> and iterator equality") {
        auto make = []() -> coio::async_generator<std::string> {
            co_yield "one";
            co_yield "three";
        };
        auto gen = make();
        auto consumer = [](coio::async_generator<std::string>& g) -> sync_task<std::vector<std::size_t>> {
            std::vector<std::size_t> sizes;
            auto it = co_await g.begin();
            const auto copy = it;
            CHECK(copy == it);
            CHECK(copy != g.end());
            for (; it != g.end(); co_await ++it) sizes.push_back(it->size());
            CHECK(copy == it);  // both at the end now
            co_return sizes;
        }(gen);
        CHECK(consumer.get() == std::vector<std::size_t>{3, 5});
    }
    SECTION("++ at the end stays at the end") {
        auto gen = count_to(1);
        auto consumer = [](coio::async_generator<int>& g) -> sync_task<int> {
            auto it = co_await g.begin();
            int first = *it;
            co_await ++it;
            CHECK(it == g.end());
            co_await ++it;
            CHECK(it == g.end());
            co_return first;
        }(gen);
        CHECK(consumer.get() == 1);
    }
}

TEST_CASE("next() and the iterator can be mixed", "[async_generator]") {
    auto gen = count_to(5);
    auto consumer = [](coio::async_generator<int>& g) -> sync_task<std::vector<int>> {
        std::vector<int> out;
        out.push_back(*co_await g.next());                  // 1
        auto it = co_await g.begin();                       // 2
        out.push_back(*it);
        out.push_back(*(co_await ++it));                    // 3
        out.push_back(*co_await g.next());                  // 4
        CHECK(*it == 4);                                    // the iterator views the current item
        for (co_await ++it; it != g.end(); co_await ++it) out.push_back(*it);  // 5
        const auto after = co_await g.next();
        CHECK_FALSE(after);
        co_return out;
    }(gen);
    CHECK(consumer.get() == std::vector<int>{1, 2, 3, 4, 5});
}

TEST_CASE("co_yield of an lvalue is not copied for *it but next() copies it", "[async_generator]") {
    counted_scope scope;
    const counted* body_address = nullptr;
    auto make = [](const counted** where) -> coio::async_generator<counted> {
        counted local(7);
        *where = &local;
        co_yield local;
        CHECK(local.value == 7);  // next() copied: the body's variable keeps its value
        co_yield local;
        CHECK(local.value == 7);
    };
    auto gen = make(&body_address);
    auto consumer = [](coio::async_generator<counted>& g, const counted** where) -> sync_task<int> {
        auto it = co_await g.begin();
        CHECK(&*it == *where);          // *it refers to the body's own object
        CHECK(counted::copies == 0);
        CHECK(counted::moves == 0);
        auto item = co_await g.next();  // the second co_yield of the same lvalue
        CHECK(counted::copies == 1);
        CHECK(counted::moves == 0);
        const auto after = co_await g.next();
        CHECK(after == std::nullopt);
        co_return item->value;
    }(gen, &body_address);
    CHECK(consumer.get() == 7);
}

TEST_CASE("co_yield of an rvalue is moved out by next(), never copied", "[async_generator]") {
    counted_scope scope;
    auto make = []() -> coio::async_generator<counted> {
        co_yield counted(1);            // a temporary
        counted local(2);
        co_yield std::move(local);      // explicitly given away
        CHECK(local.value == -1);       // next() moved from it
    };
    auto gen = make();
    auto consumer = [](coio::async_generator<counted>& g) -> sync_task<std::vector<int>> {
        std::vector<int> values;
        while (auto item = co_await g.next()) values.push_back(item->value);
        co_return values;
    }(gen);
    CHECK(consumer.get() == std::vector<int>{1, 2});
    CHECK(counted::copies == 0);
    CHECK(counted::constructed == 2 + counted::moves);
}

TEST_CASE("co_yield of a const lvalue or of a convertible value", "[async_generator]") {
    SECTION("const lvalue: copied once into the yield, then moved out") {
        counted_scope scope;
        auto make = []() -> coio::async_generator<counted> {
            const counted c(3);
            co_yield c;
        };
        auto gen = make();
        auto consumer = [](coio::async_generator<counted>& g) -> sync_task<int> {
            auto item = co_await g.next();
            co_return item->value;
        }(gen);
        CHECK(consumer.get() == 3);
        CHECK(counted::copies == 1);
    }
    SECTION("values convertible to T") {
        auto make = []() -> coio::async_generator<std::string> {
            co_yield "literal";
            const char* p = "pointer";
            co_yield p;
            co_yield std::string_view("view").data();
        };
        auto gen = make();
        auto consumer = collect_next(gen);
        CHECK(consumer.get() == std::vector<std::string>{"literal", "pointer", "view"});
    }
    SECTION("arithmetic conversion") {
        auto make = []() -> coio::async_generator<long long> {
            short s = 5;
            co_yield s;
            co_yield 6;
        };
        auto gen = make();
        auto consumer = collect_iter(gen);
        CHECK(consumer.get() == std::vector<long long>{5, 6});
    }
}

TEST_CASE("async_generator<std::string>", "[async_generator]") {
    auto make = [](int n) -> coio::async_generator<std::string> {
        std::string s;
        for (int i = 0; i < n; ++i) {
            s += static_cast<char>('a' + i);
            co_yield s;  // lvalue: next() copies, the body keeps growing s
        }
        co_yield std::string(40, 'x');  // long enough to be heap-allocated: moved out
    };
    auto gen = make(3);
    auto consumer = collect_next(gen);
    CHECK(consumer.get() == std::vector<std::string>{"a", "ab", "abc", std::string(40, 'x')});
}

TEST_CASE("move-only T: next() and std::move(*it) take ownership", "[async_generator]") {
    auto make = [](int n) -> coio::async_generator<std::unique_ptr<int>> {
        for (int i = 0; i < n; ++i) {
            auto p = std::make_unique<int>(i);
            co_yield std::move(p);
        }
        co_yield std::make_unique<int>(100);
    };
    SECTION("next()") {
        auto gen = make(3);
        auto consumer = [](coio::async_generator<std::unique_ptr<int>>& g) -> sync_task<std::vector<int>> {
            std::vector<int> out;
            while (auto item = co_await g.next()) {
                REQUIRE(*item);
                out.push_back(**item);
            }
            co_return out;
        }(gen);
        CHECK(consumer.get() == std::vector<int>{0, 1, 2, 100});
    }
    SECTION("iterator") {
        auto gen = make(2);
        auto consumer = [](coio::async_generator<std::unique_ptr<int>>& g) -> sync_task<std::vector<int>> {
            std::vector<int> out;
            for (auto it = co_await g.begin(); it != g.end(); co_await ++it) {
                std::unique_ptr<int> mine = std::move(*it);
                out.push_back(*mine);
            }
            co_return out;
        }(gen);
        CHECK(consumer.get() == std::vector<int>{0, 1, 100});
    }
}

TEST_CASE("co_await inside the body suspends for real and resumes through the producer",
          "[async_generator]") {
    gate g;
    std::vector<std::string> log;
    auto gen = gated_count(g, 3, log);
    auto consumer = [](coio::async_generator<int>& gen,
                       std::vector<std::string>& log) -> sync_task<int> {
        int sum = 0;
        for (auto it = co_await gen.begin(); it != gen.end(); co_await ++it) {
            log.push_back("got " + std::to_string(*it));
            sum += *it;
        }
        log.push_back("consumer done");
        co_return sum;
    }(gen, log);

    for (int i = 1; i <= 3; ++i) {
        REQUIRE_FALSE(consumer.done());
        REQUIRE(g.waiting() == 1);
        g.open_one();
    }
    REQUIRE(consumer.done());
    CHECK(g.waiting() == 0);
    CHECK(consumer.get() == 6);
    const std::vector<std::string> expected{
        "wait 1", "yield 1", "got 1", "wait 2", "yield 2", "got 2",
        "wait 3", "yield 3", "got 3", "end",    "consumer done"};
    CHECK(log == expected);
}

TEST_CASE("generators compose: a generator consuming another", "[async_generator]") {
    gate g;
    std::vector<std::string> log;
    auto squares = [](coio::async_generator<int> in) -> coio::async_generator<int> {
        while (auto v = co_await in.next()) {
            if (*v % 2 == 0) continue;  // odd ones only
            co_yield *v * *v;
        }
    };
    auto gen = squares(gated_count(g, 5, log));
    auto consumer = collect_next(gen);
    while (!consumer.done()) {
        REQUIRE(g.waiting() == 1);
        g.open_one();
    }
    CHECK(consumer.get() == std::vector<int>{1, 9, 25});
}

TEST_CASE("exceptions from the body reach the consumer", "[async_generator]") {
    counted_scope scope;
    struct boom : std::runtime_error {
        boom() : std::runtime_error("boom") {}
    };
    auto make = [](int throw_after) -> coio::async_generator<int> {
        counted guard(0);  // must be destroyed by the unwinding, before the consumer sees it
        for (int i = 0; i < throw_after; ++i) co_yield i;
        throw boom();
    };

    SECTION("before the first item, through next()") {
        auto gen = make(0);
        auto consumer = [](coio::async_generator<int>& g) -> sync_task<std::optional<int>> {
            try {
                (void)co_await g.next();
            } catch (const boom&) {
                CHECK(counted::alive() == 0);
            }
            co_return co_await g.next();  // finished now
        }(gen);
        CHECK(consumer.get() == std::nullopt);
    }
    SECTION("before the first item, through begin()") {
        auto gen = make(0);
        auto consumer = [](coio::async_generator<int>& g) -> sync_task<> {
            (void)co_await g.begin();
        }(gen);
        CHECK_THROWS_AS(consumer.get(), boom);
        CHECK(counted::alive() == 0);
    }
    SECTION("between items, through ++it; then the iterator is at the end") {
        auto gen = make(2);
        auto consumer = [](coio::async_generator<int>& g) -> sync_task<std::vector<int>> {
            std::vector<int> seen;
            auto it = co_await g.begin();
            try {
                for (; it != g.end(); co_await ++it) seen.push_back(*it);
                FAIL("no exception");
            } catch (const boom&) {
                CHECK(it == g.end());
            }
            const auto after = co_await g.next();
            CHECK_FALSE(after);
            const auto again = co_await g.begin();
            CHECK(again == g.end());
            co_return seen;
        }(gen);
        CHECK(consumer.get() == std::vector<int>{0, 1});
    }
    SECTION("thrown after a real suspension") {
        gate g;
        auto after_wait = [](gate& g) -> coio::async_generator<int> {
            counted guard(1);
            co_yield 1;
            co_await g.wait();
            throw boom();
        };
        auto gen = after_wait(g);
        auto consumer = collect_next(gen);
        REQUIRE(g.waiting() == 1);
        CHECK(counted::alive() == 1);
        g.open_one();
        REQUIRE(consumer.done());
        CHECK_THROWS_AS(consumer.get(), boom);
        CHECK(counted::alive() == 0);
    }
    SECTION("an exception that is not a std::exception") {
        auto make_int_thrower = []() -> coio::async_generator<int> {
            co_yield 1;
            throw 42;
        };
        auto gen = make_int_thrower();
        auto consumer = collect_next(gen);
        CHECK_THROWS_AS(consumer.get(), int);
    }
}

TEST_CASE("cancellation at the body's await propagates to the consumer", "[async_generator]") {
    counted_scope scope;
    gate g;
    auto make = [](gate& g) -> coio::async_generator<int> {
        counted local(1);
        co_yield 1;
        co_await g.wait();  // "cancelled" by the test below
        co_yield 2;
    };
    auto gen = make(g);

    SECTION("not caught by the body") {
        auto consumer = [](coio::async_generator<int>& g) -> sync_task<std::vector<int>> {
            std::vector<int> seen;
            try {
                while (auto v = co_await g.next()) seen.push_back(*v);
            } catch (const coio::cancelled_error&) {
                CHECK(counted::alive() == 0);  // the body's locals unwound first
                seen.push_back(-1);
            }
            const auto after = co_await g.next();
            CHECK_FALSE(after);  // the generator is finished
            co_return seen;
        }(gen);
        REQUIRE(g.waiting() == 1);
        g.open_one(/*cancel=*/true);
        CHECK(consumer.get() == std::vector<int>{1, -1});
    }
    SECTION("caught by the body, which cleans up and rethrows") {
        auto cleaning = [](gate& g, bool& cleaned) -> coio::async_generator<int> {
            try {
                co_await g.wait();
                co_yield 1;
            } catch (const coio::cancelled_error&) {
                cleaned = true;
                throw;
            }
        };
        bool cleaned = false;
        auto gen2 = cleaning(g, cleaned);
        auto consumer = collect_next(gen2);
        g.open_one(/*cancel=*/true);
        CHECK(cleaned);
        CHECK_THROWS_AS(consumer.get(), coio::cancelled_error);
    }
}

TEST_CASE("only one consumer at a time: invalid_state_error", "[async_generator]") {
    SECTION("a second next() while the first is pending") {
        gate g;
        std::vector<std::string> log;
        auto gen = gated_count(g, 2, log);
        auto first = collect_next(gen);
        REQUIRE(g.waiting() == 1);  // first consumer's next() is pending

        auto second = [](coio::async_generator<int>& gen) -> sync_task<> {
            (void)co_await gen.next();
        }(gen);
        CHECK_THROWS_AS(second.get(), coio::invalid_state_error);
        auto third = [](coio::async_generator<int>& gen) -> sync_task<> {
            auto it = co_await gen.begin();
            (void)it;
        }(gen);
        CHECK_THROWS_AS(third.get(), coio::invalid_state_error);

        // The misuse did not disturb the legitimate consumer.
        g.open_one();
        g.open_one();
        CHECK(first.get() == std::vector<int>{1, 2});
    }
    SECTION("a body awaiting its own generator") {
        struct holder {
            coio::async_generator<int> gen;
        };
        auto recursive = [](holder& h) -> coio::async_generator<int> {
            co_yield 1;
            auto again = co_await h.gen.next();  // throws invalid_state_error
            co_yield again ? 2 : 3;
        };
        holder h;
        h.gen = recursive(h);
        auto consumer = collect_next(h.gen);
        CHECK_THROWS_AS(consumer.get(), coio::invalid_state_error);
    }
    SECTION("++it while a next() is pending") {
        gate g;
        auto make = [](gate& g) -> coio::async_generator<int> {
            co_yield 1;
            co_await g.wait();
            co_yield 2;
        };
        auto gen = make(g);
        auto iterating = [](coio::async_generator<int>& gen,
                            coio::async_generator<int>::iterator& out) -> sync_task<> {
            out = co_await gen.begin();
        };
        coio::async_generator<int>::iterator it;
        auto starter = iterating(gen, it);
        REQUIRE(starter.done());
        REQUIRE(*it == 1);
        auto pending = collect_next(gen);  // waits at the gate
        REQUIRE(g.waiting() == 1);
        auto bump = [](coio::async_generator<int>::iterator& it) -> sync_task<> {
            co_await ++it;
        }(it);
        CHECK_THROWS_AS(bump.get(), coio::invalid_state_error);
        g.open_one();
        CHECK(pending.get() == std::vector<int>{2});
    }
}

TEST_CASE("destroying a generator cleans up the body's frame", "[async_generator]") {
    counted_scope scope;
    auto make = [](counted param, gate* g) -> coio::async_generator<counted> {
        counted local(param.value + 1);
        co_yield counted(10);
        if (g != nullptr) co_await g->wait();
        co_yield local;
    };

    SECTION("before the first next(): the parameters are destroyed") {
        {
            auto gen = make(counted(1), nullptr);
            CHECK(counted::alive() == 1);  // the parameter copy in the frame
        }
        CHECK(counted::alive() == 0);
    }
    SECTION("suspended at a co_yield: locals and the yielded temporary are destroyed") {
        {
            auto gen = make(counted(1), nullptr);
            auto consumer = [](coio::async_generator<counted>& g) -> sync_task<int> {
                auto it = co_await g.begin();
                co_return it->value;
            }(gen);
            CHECK(consumer.get() == 10);
            CHECK(counted::alive() == 3);  // param, local, yielded temporary
        }
        CHECK(counted::alive() == 0);
    }
    SECTION("move-assigning an empty generator closes it") {
        auto gen = make(counted(1), nullptr);
        auto consumer = [](coio::async_generator<counted>& g) -> sync_task<int> {
            auto item = co_await g.next();
            co_return item->value;
        }(gen);
        CHECK(consumer.get() == 10);
        CHECK(counted::alive() == 3);  // param, local, and the moved-from yielded temporary
        gen = {};
        CHECK(counted::alive() == 0);
        auto after = collect_next(gen);
        CHECK(after.get().empty());
    }
    SECTION("an exception in the consumer unwinds a generator it owns") {
        {
            auto consumer = [](coio::async_generator<counted> g) -> sync_task<> {
                auto it = co_await g.begin();
                CHECK(it->value == 10);
                throw std::runtime_error("consumer failed");
            }(make(counted(1), nullptr));
            CHECK_THROWS_AS(consumer.get(), std::runtime_error);
        }  // the consumer's frame, which owns the generator parameter, is destroyed here
        CHECK(counted::alive() == 0);
    }
    SECTION("suspended inside its own co_await (its awaitable never resumes it)") {
        // Allowed only because the gate forgets the waiter below; in coio the consumer task
        // guarantees this (see the class comment).
        gate g;
        {
            auto gen = make(counted(1), &g);
            auto consumer = [](coio::async_generator<counted>& g) -> sync_task<int> {
                int sum = 0;
                while (auto v = co_await g.next()) sum += v->value;
                co_return sum;
            }(gen);
            REQUIRE(g.waiting() == 1);
            REQUIRE_FALSE(consumer.done());
            CHECK(counted::alive() == 2);  // param, local
            g.abandon();
        }  // consumer frame destroyed (it was suspended in next()), then the generator frame
        CHECK(counted::alive() == 0);
    }
}

TEST_CASE("moving a generator transfers the frame", "[async_generator]") {
    counted_scope scope;
    auto make = []() -> coio::async_generator<int> {
        counted local(0);
        co_yield 1;
        co_yield 2;
    };
    auto a = make();
    auto first = [](coio::async_generator<int>& g) -> sync_task<std::optional<int>> {
        co_return co_await g.next();
    }(a);
    CHECK(first.get() == 1);

    coio::async_generator<int> b(std::move(a));
    auto from_a = collect_next(a);       // NOLINT(bugprone-use-after-move): a is empty by contract
    CHECK(from_a.get().empty());
    auto from_b = collect_next(b);
    CHECK(from_b.get() == std::vector<int>{2});

    auto c = make();
    auto c_first = [](coio::async_generator<int>& g) -> sync_task<std::optional<int>> {
        co_return co_await g.next();
    }(c);
    CHECK(c_first.get() == 1);
    CHECK(counted::alive() == 1);  // c's local (b's body has finished: its local is gone)
    c = std::move(b);              // destroys c's suspended frame
    CHECK(counted::alive() == 0);
}

TEST_CASE("a million items synchronously: constant stack in both directions",
          "[async_generator]") {
    constexpr long n = 1'000'000;
    std::uintptr_t body_first = 0;
    std::uintptr_t body_last = 0;
    auto make = [](std::uintptr_t& first, std::uintptr_t& last) -> coio::async_generator<long> {
        for (long i = 0; i < n; ++i) {
            if (i == 10) first = stack_position();
            if (i == n - 1) last = stack_position();
            co_yield i;
        }
    };
    auto gen = make(body_first, body_last);
    struct result {
        long count = 0;
        long sum = 0;
        std::uintptr_t first = 0;
        std::uintptr_t last = 0;
    };
    auto consumer = [](coio::async_generator<long>& g) -> sync_task<result> {
        result r;
        while (auto v = co_await g.next()) {
            if (r.count == 10) r.first = stack_position();
            r.last = stack_position();
            ++r.count;
            r.sum += *v;
        }
        co_return r;
    }(gen);
    REQUIRE(consumer.done());
    const result r = consumer.get();
    CHECK(r.count == n);
    CHECK(r.sum == n * (n - 1) / 2);
    // Without symmetric transfer every item would nest a resume() call (tens of MiB of stack
    // for a million items: a crash); with it, item 10 and item 999,999 run at the same depth.
    CHECK(body_first == body_last);
    CHECK(r.first == r.last);
}

TEST_CASE("a pipeline of three generators stays flat too", "[async_generator]") {
    constexpr int n = 300'000;
    auto source = []() -> coio::async_generator<int> {
        for (int i = 0; i < n; ++i) co_yield i;
    };
    // Each stage consumes the previous one inside its own body.
    auto stage = [](coio::async_generator<int> in, std::uintptr_t* depth) -> coio::async_generator<int> {
        int count = 0;
        while (auto v = co_await in.next()) {
            if (depth != nullptr && ++count == 100) depth[0] = stack_position();
            if (depth != nullptr && count == n) depth[1] = stack_position();
            co_yield *v + 1;
        }
    };
    std::uintptr_t depth[2] = {0, 0};
    auto gen = stage(stage(source(), nullptr), depth);
    auto consumer = [](coio::async_generator<int>& g) -> sync_task<long long> {
        long long sum = 0;
        while (auto v = co_await g.next()) sum += *v;
        co_return sum;
    }(gen);
    CHECK(consumer.get() == static_cast<long long>(n) * (n - 1) / 2 + 2LL * n);
    CHECK(depth[0] != 0);
    CHECK(depth[0] == depth[1]);
}

TEST_CASE("producing items allocates nothing", "[async_generator]") {
    auto make = [](gate& g) -> coio::async_generator<int> {
        for (int i = 0; i < 1000; ++i) {
            if (i % 100 == 0) co_await g.wait();
            co_yield i;
        }
    };
    gate g;
    g.reserve(1);
    auto gen = make(g);  // the frame is allocated here, before counting
    g_allocations = 0;
    g_count_allocations = true;
    // The consumer's own frame is allocated too: it is counted and subtracted below.
    auto consumer = [](coio::async_generator<int>& gen) -> sync_task<long> {
        long sum = 0;
        for (auto it = co_await gen.begin(); it != gen.end(); co_await ++it) sum += *it;
        co_return sum;
    }(gen);
    const long after_start = g_allocations;
    int opened = 0;
    while (!consumer.done() && g.waiting() == 1 && opened < 20) {
        g.open_one();
        ++opened;
    }
    g_count_allocations = false;
    CHECK(opened == 10);
    CHECK(after_start == 1);              // only the consumer's frame
    CHECK(g_allocations == after_start);  // 1000 items and 10 suspensions: no allocation
    CHECK(consumer.get() == 999L * 1000 / 2);
}

// ---------------------------------------------------------------------------------------------
// With the real event loop: the body's awaits are the consumer task's awaits.

namespace {

using namespace std::chrono_literals;

coio::async_generator<int> ticks(int n, std::chrono::milliseconds period) {
    counted local(0);
    for (int i = 1; i <= n; ++i) {
        co_await coio::sleep(period);
        co_yield i;
    }
}

// The body is parked in a long sleep after its first item, until something cancels it;
// `seen` records what its sleep threw.
coio::async_generator<int> one_then_sleep(std::string& seen) {
    counted local(0);
    co_yield 1;
    try {
        co_await coio::sleep(60s);
    } catch (const coio::cancelled_error&) {
        seen = "cancelled_error";
        throw;
    } catch (const coio::timeout_error&) {
        seen = "timeout_error";
        throw;
    }
    co_yield 2;
}

coio::coro<int> identity(int v) { co_return v; }

coio::coro<int> delayed(int v, std::chrono::milliseconds d) {
    co_await coio::sleep(d);
    co_return v;
}

// multi_probe as the README shows it (as_completed inside an async generator), with sleeps
// standing in for the probes.
coio::async_generator<int> by_completion(std::vector<int> delays_ms) {
    std::vector<coio::coro<int>> coros;
    for (int d : delays_ms) coros.push_back(delayed(d, std::chrono::milliseconds(d)));
    for (auto&& next : coio::as_completed(std::move(coros))) co_yield co_await next;
}

} // namespace

TEST_CASE("event loop: coio::run(main()) iterating a generator whose body sleeps",
          "[async_generator][loop]") {
    counted_scope scope;
    const auto start = coio::clock::now();
    const int sum = coio::run([]() -> coio::coro<int> {
        auto gen = ticks(3, 2ms);
        int total = 0;
        for (auto it = co_await gen.begin(); it != gen.end(); co_await ++it) total += *it;
        auto again = ticks(2, 1ms);
        while (auto v = co_await again.next()) total += *v * 10;
        co_return total;
    }());
    CHECK(sum == 1 + 2 + 3 + 10 + 20);
    CHECK(coio::clock::now() - start >= 8ms);  // 3 x 2 ms + 2 x 1 ms; timers never fire early
}

TEST_CASE("event loop: an as_completed generator (multi_probe's shape)", "[async_generator][loop]") {
    const auto order = coio::run([]() -> coio::coro<std::vector<int>> {
        auto gen = by_completion({30, 1, 15});
        std::vector<int> seen;
        while (auto v = co_await gen.next()) seen.push_back(*v);
        co_return seen;
    }());
    CHECK(order == std::vector<int>{1, 15, 30});
}

TEST_CASE("event loop: the body awaiting coros that complete without suspending",
          "[async_generator][loop]") {
    // Exercises the interplay with coio's own transfer (a trampoline on g++ -O0 and under
    // ASan): every item bounces through an awaited coro, and the stack must stay flat.
    constexpr int n = 200'000;
    const long long sum = coio::run([]() -> coio::coro<long long> {
        auto gen = []() -> coio::async_generator<int> {
            for (int i = 0; i < n; ++i) co_yield co_await identity(i);
        }();
        long long total = 0;
        while (auto v = co_await gen.next()) total += *v;
        co_return total;
    }());
    CHECK(sum == static_cast<long long>(n) * (n - 1) / 2);
}

TEST_CASE("event loop: cancelling the consumer task reaches the body's sleep",
          "[async_generator][loop]") {
    counted_scope scope;

    SECTION("the generator outlives the cancelled consumer") {
        coio::run([]() -> coio::coro<void> {
            std::string body_saw;
            auto gen = one_then_sleep(body_saw);
            std::vector<int> seen;
            bool consumer_saw_cancel = false;
            auto consumer = [](coio::async_generator<int>& gen, std::vector<int>& seen,
                               bool& consumer_saw_cancel) -> coio::coro<void> {
                try {
                    while (auto v = co_await gen.next()) seen.push_back(*v);
                } catch (const coio::cancelled_error&) {
                    consumer_saw_cancel = true;
                    throw;
                }
            };
            auto t = coio::create_task(consumer(gen, seen, consumer_saw_cancel));
            while (seen.empty()) co_await coio::sleep(0);
            co_await coio::sleep(0);  // let the body enter its 60 s sleep
            CHECK(counted::alive() == 1);
            const auto cancelled_at = coio::clock::now();
            t.cancel();
            bool awaited_cancel = false;
            try {
                co_await t;
            } catch (const coio::cancelled_error&) {
                awaited_cancel = true;
            }
            CHECK(coio::clock::now() - cancelled_at < 10s);  // the 60 s timer was removed
            CHECK(awaited_cancel);
            CHECK(body_saw == "cancelled_error");
            CHECK(consumer_saw_cancel);
            CHECK(seen == std::vector<int>{1});
            CHECK(counted::alive() == 0);  // the body unwound: its local is gone
            const auto after = co_await gen.next();
            CHECK_FALSE(after);  // and the generator is finished
        }());
    }
    SECTION("the consumer owns the generator") {
        coio::run([]() -> coio::coro<void> {
            std::string body_saw;
            int items = 0;
            auto consumer = [](std::string& body_saw, int& items) -> coio::coro<void> {
                auto gen = one_then_sleep(body_saw);
                while (co_await gen.next()) ++items;
            };
            auto t = coio::create_task(consumer(body_saw, items));
            while (items == 0) co_await coio::sleep(0);
            co_await coio::sleep(0);
            t.cancel();
            bool awaited_cancel = false;
            try {
                co_await t;
            } catch (const coio::cancelled_error&) {
                awaited_cancel = true;
            }
            CHECK(awaited_cancel);
            CHECK(body_saw == "cancelled_error");
            CHECK(counted::alive() == 0);  // the consumer's frame, and with it the generator, is gone
        }());
    }
    SECTION("a consumer cancelled between items leaves the generator untouched") {
        coio::run([]() -> coio::coro<void> {
            auto gen = ticks(3, 1ms);
            bool got_first = false;
            auto consumer = [](coio::async_generator<int>& gen, bool& got_first) -> coio::coro<void> {
                got_first = (co_await gen.next()) == 1;
                co_await coio::sleep(60s);  // cancelled here, outside the generator
            };
            auto t = coio::create_task(consumer(gen, got_first));
            while (!got_first) co_await coio::sleep(0);
            t.cancel();
            bool awaited_cancel = false;
            try {
                co_await t;
            } catch (const coio::cancelled_error&) {
                awaited_cancel = true;
            }
            CHECK(awaited_cancel);
            CHECK(counted::alive() == 1);  // the generator's local: still suspended at co_yield
            // Another task (this one) carries on with the same generator.
            std::vector<int> rest;
            while (auto v = co_await gen.next()) rest.push_back(*v);
            CHECK(rest == std::vector<int>{2, 3});
        }());
    }
    SECTION("the body catches the cancellation and awaits during its cleanup") {
        coio::run([]() -> coio::coro<void> {
            auto careful = []() -> coio::async_generator<int> {
                counted local(0);
                co_yield 1;
                std::exception_ptr cancelled;
                try {
                    co_await coio::sleep(60s);
                } catch (const coio::cancelled_error&) {
                    cancelled = std::current_exception();
                }
                // Like `finally: await conn.close()` in Python: cleanup may await (C++ allows
                // no co_await inside a handler, hence the exception_ptr).
                co_await coio::sleep(1ms);
                if (cancelled) std::rethrow_exception(cancelled);
            };
            int items = 0;
            auto consumer = [](decltype(careful)& make, int& items) -> coio::coro<void> {
                auto gen = make();
                while (co_await gen.next()) ++items;
            };
            auto t = coio::create_task(consumer(careful, items));
            while (items == 0) co_await coio::sleep(0);
            co_await coio::sleep(0);
            t.cancel();
            bool awaited_cancel = false;
            try {
                co_await t;
            } catch (const coio::cancelled_error&) {
                awaited_cancel = true;
            }
            CHECK(awaited_cancel);
            CHECK(counted::alive() == 0);
        }());
    }
}

TEST_CASE("event loop: a timeout around next() cancels the body's await",
          "[async_generator][loop]") {
    counted_scope scope;
    coio::run([]() -> coio::coro<void> {
        std::string body_saw;
        auto gen = one_then_sleep(body_saw);
        const auto first = co_await gen.next();
        CHECK(first == 1);
        bool timed_out = false;
        try {
            auto deadline = coio::timeout(5ms);
            (void)co_await gen.next();
        } catch (const coio::timeout_error&) {
            timed_out = true;
        }
        CHECK(timed_out);
        // coio delivers a timeout scope's cancellation as timeout_error at the awaiting
        // point, which is inside the body here.
        CHECK(body_saw == "timeout_error");
        CHECK(counted::alive() == 0);
        const auto after = co_await gen.next();
        CHECK_FALSE(after);
    }());
}
