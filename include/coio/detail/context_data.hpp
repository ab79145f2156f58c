// coio/detail/context_data.hpp - the storage behind coio::context_var: a task's context.
// Not API.
//
// Contracts:
//  * A context maps variable ids to values. It is shared, copy-on-write: a task created from
//    another shares its creator's context (one reference count, no copy), and the first
//    set() on a shared context clones it, so a child's changes never reach its parent and
//    the parent's later changes never reach the child (asyncio's copy_context at create_task).
//  * Values are immutable once stored (set() replaces the entry), so clones share them.
//  * Null is the empty context: tasks that never see a context_var cost nothing.
#pragma once

#include <coio/detail/core.hpp>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace coio::detail {

class context_data {
public:
    struct entry {
        std::uint64_t id;                   // the context_var's id
        std::shared_ptr<const void> value;  // a const T
    };

    void add_ref() noexcept { ++refs_; }
    void release() noexcept { if (--refs_ == 0) delete this; }
    [[nodiscard]] bool shared() const noexcept { return refs_ > 1; }

    /// The value of variable `id`, or null. Linear: a program has a handful of variables.
    [[nodiscard]] const void* find(std::uint64_t id) const noexcept {
        for (const entry& e : entries_)
            if (e.id == id) return e.value.get();
        return nullptr;
    }
    /// The stored value (shared) of `id`, or null.
    [[nodiscard]] std::shared_ptr<const void> find_shared(std::uint64_t id) const noexcept {
        for (const entry& e : entries_)
            if (e.id == id) return e.value;
        return nullptr;
    }
    /// Sets (or, with a null value, removes) `id`. Precondition: !shared().
    void assign(std::uint64_t id, std::shared_ptr<const void> value) {
        for (auto it = entries_.begin(); it != entries_.end(); ++it) {
            if (it->id != id) continue;
            if (value) it->value = std::move(value);
            else entries_.erase(it);
            return;
        }
        if (value) entries_.push_back(entry{id, std::move(value)});
    }
    /// A private copy (same values, shared).
    [[nodiscard]] ref_ptr<context_data> clone() const {
        auto* c = new context_data;
        c->entries_ = entries_;
        return ref_ptr<context_data>(c);
    }

private:
    std::vector<entry> entries_;
    std::uint32_t refs_ = 0;
};

/// The context of code that runs outside any task on this thread (before run, in callbacks,
/// in to_thread workers); tasks created there start from a copy of it.
inline thread_local ref_ptr<context_data> thread_context;

} // namespace coio::detail
