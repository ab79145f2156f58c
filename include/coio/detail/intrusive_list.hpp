// coio/detail/intrusive_list.hpp - the one intrusive doubly-linked list coio's queues of
// waiters, owners and children are made of. Not API.
//
// Contracts:
//  * A node derives from list_hook<Tag> once per list it can be in (the Tag tells the hooks
//    apart); it is in at most one list per Tag at a time and must not move while linked.
//  * O(1) push, pop and unlink; no allocation; iteration with front()/next().
//  * Single-threaded, like everything on a loop.
#pragma once

#include <cstddef>

namespace coio::detail {

/// The links a node carries for the lists of one Tag.
template <class Tag = void>
struct list_hook {
    list_hook* hook_prev = nullptr;
    list_hook* hook_next = nullptr;
};

/// A FIFO of T linked through T's list_hook<Tag> base.
template <class T, class Tag = void>
class intrusive_list {
    using hook = list_hook<Tag>;

public:
    intrusive_list() noexcept = default;
    intrusive_list(const intrusive_list&) = delete;
    intrusive_list& operator=(const intrusive_list&) = delete;

    void push_back(T* t) noexcept {
        hook* h = t;
        h->hook_next = nullptr;
        h->hook_prev = tail_;
        if (tail_) tail_->hook_next = h; else head_ = h;
        tail_ = h;
        ++size_;
    }
    void push_front(T* t) noexcept {
        hook* h = t;
        h->hook_prev = nullptr;
        h->hook_next = head_;
        if (head_) head_->hook_prev = h; else tail_ = h;
        head_ = h;
        ++size_;
    }
    /// Unlinks `t`. Precondition: `t` is linked in this list.
    void remove(T* t) noexcept {
        hook* h = t;
        if (h->hook_prev) h->hook_prev->hook_next = h->hook_next; else head_ = h->hook_next;
        if (h->hook_next) h->hook_next->hook_prev = h->hook_prev; else tail_ = h->hook_prev;
        h->hook_prev = h->hook_next = nullptr;
        --size_;
    }
    /// Unlinks and returns the first node, or null.
    T* pop_front() noexcept {
        T* t = front();
        if (t) remove(t);
        return t;
    }
    [[nodiscard]] T* front() const noexcept { return head_ ? static_cast<T*>(head_) : nullptr; }
    [[nodiscard]] T* back() const noexcept { return tail_ ? static_cast<T*>(tail_) : nullptr; }
    /// The node after `t` in its list, or null.
    [[nodiscard]] static T* next(T* t) noexcept {
        hook* n = static_cast<hook*>(t)->hook_next;
        return n ? static_cast<T*>(n) : nullptr;
    }
    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    hook* head_ = nullptr;
    hook* tail_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace coio::detail
