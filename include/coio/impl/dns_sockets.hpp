// coio/impl/dns_sockets.hpp - the sockets of one c-ares channel, each watched by a poll
// operation on the loop's ring. Not API.
//
// Contracts:
//  * c-ares says which events it wants on which socket through ARES_OPT_SOCK_STATE_CB
//    (on_sock_state), which only records that interest: calling back into the loop from
//    inside c-ares would re-enter it. sync() brings the polls in line after each call into
//    c-ares.
//  * Each socket is watched by one single-shot poll operation (a `watch`), re-armed after
//    each readiness. Single-shot on purpose: a poll armed on a socket that is still readable
//    completes at once, so this is level-triggered, and c-ares' TCP reader (which reads one
//    chunk per call) can never be left with unread data.
//  * Readiness goes to the owner (the channel) as the (read fd, write fd) pair that
//    ares_process_fd takes.
//  * A watch is freed only after its poll's completion arrived, or after the ring is gone
//    (forget_ring), so the kernel never completes into freed memory. A poll cancelled before
//    its completion (its socket closed, or its interest changed) waits in the retired list;
//    the owner hears about each one freed, because it may be waiting for drained().
#pragma once

#include <coio/detail/intrusive_list.hpp>
#include <coio/detail/operation.hpp>
#include <coio/loop.hpp>

#include <ares.h>
#include <poll.h>

#include <cstddef>
#include <exception>
#include <new>
#include <vector>

namespace coio::detail::dns {

/// The sockets one c-ares channel has open, and the polls on the ring that watch them.
class dns_sockets {
public:
    /// Called with what became ready, in ares_process_fd's form (ARES_SOCKET_BAD: nothing).
    using ready_fn = void (*)(void* owner, ares_socket_t read_fd, ares_socket_t write_fd) noexcept;
    /// Called after a retired watch was freed: drained() may have become true. The owner may
    /// destroy this object from inside it.
    using dropped_fn = void (*)(void* owner) noexcept;

    dns_sockets(event_loop& loop, void* owner, ready_fn ready, dropped_fn dropped) noexcept
        : loop_(loop), owner_(owner), ready_(ready), dropped_(dropped) {}
    dns_sockets(const dns_sockets&) = delete;
    dns_sockets& operator=(const dns_sockets&) = delete;
    /// Frees memory only: every poll's completion arrived, or the ring is gone.
    ~dns_sockets() {
        for (watch* w : watches_) delete w;
        while (watch* w = retired_.pop_front()) delete w;
    }

    /// Room for `n` sockets (one UDP socket per server, TCP rarely: they are few).
    void reserve(std::size_t n) { watches_.reserve(n); }

    /// ARES_OPT_SOCK_STATE_CB, with `data` = this object: only records interest. A socket
    /// number that c-ares closed and reopened gets a fresh watch, because a poll still in
    /// flight refers to the old file.
    static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) noexcept {
        auto* self = static_cast<dns_sockets*>(data);
        const unsigned want = (readable ? POLLIN : 0u) | (writable ? POLLOUT : 0u);
        watch* w = nullptr;
        for (watch* x : self->watches_)
            if (x->fd == fd && !x->closed) { w = x; break; }
        if (want == 0) {
            if (w) {
                w->closed = true;
                w->want = 0;
            }
            return;
        }
        if (!w) {
            // Out of memory here only loses readiness for this socket: c-ares' own timeouts
            // (the channel timer) still end its queries.
            auto* fresh = new (std::nothrow) watch;
            if (!fresh) return;
            fresh->set = self;
            fresh->fd = fd;
            fresh->complete = &dns_sockets::on_poll;
            try {
                self->watches_.push_back(fresh);
            } catch (...) {
                delete fresh;
                return;
            }
            w = fresh;
        }
        w->want = want;
    }

    /// Brings the polls in line with what c-ares wants: drops the watches of closed sockets,
    /// replaces polls whose interest changed, arms the idle ones.
    void sync() noexcept {
        for (std::size_t i = 0; i < watches_.size();) {
            watch* w = watches_[i];
            if (w->closed || w->want == 0) {
                watches_[i] = watches_.back();
                watches_.pop_back();
                if (w->in_flight) retire(w); else delete w;
                continue;
            }
            if (w->in_flight && w->armed != w->want) {
                // Interest changed (a TCP connect finished, ...): a fresh poll for the new
                // events; the old one is cancelled.
                auto* fresh = new (std::nothrow) watch;
                if (!fresh) { ++i; continue; }
                fresh->set = this;
                fresh->fd = w->fd;
                fresh->want = w->want;
                fresh->complete = &dns_sockets::on_poll;
                retire(w);
                watches_[i] = fresh;
                w = fresh;
            }
            if (!w->in_flight) arm(w);
            ++i;
        }
    }

    /// c-ares closed every socket (the channel was destroyed): cancel every poll.
    void close_all() noexcept {
        for (watch* w : watches_) w->closed = true;
        sync();
    }

    /// True when no poll is on the ring any more.
    [[nodiscard]] bool drained() const noexcept { return retired_.empty() && watches_.empty(); }
    /// The ring is gone (the loop's services are being destroyed): never touch it again.
    void forget_ring() noexcept { ring_gone_ = true; }

private:
    // One socket c-ares uses, watched by a single-shot poll on the ring; linked in retired_
    // once cancelled.
    struct watch : operation, list_hook<> {
        dns_sockets* set = nullptr;
        int fd = -1;
        unsigned want = 0;      // POLLIN/POLLOUT c-ares asked for
        unsigned armed = 0;     // events of the poll in flight
        bool in_flight = false;
        bool closed = false;    // c-ares closed the socket (its number may be reused)
        bool retired = false;   // cancelled; freed when its completion arrives
    };

    static void on_poll(operation* op, int res, unsigned) noexcept {
        auto* w = static_cast<watch*>(op);
        dns_sockets* self = w->set;
        w->in_flight = false;
        if (w->retired) {
            self->retired_.remove(w);
            delete w;
            self->dropped_(self->owner_);  // may destroy *self: nothing may follow
            return;
        }
        ares_socket_t rfd = ARES_SOCKET_BAD;
        ares_socket_t wfd = ARES_SOCKET_BAD;
        if (res < 0) {
            // The poll itself failed: let c-ares read the socket and meet the error there
            // (it closes broken sockets and retries their queries elsewhere).
            rfd = w->fd;
        } else {
            const auto ev = static_cast<unsigned>(res);
            if ((ev & (POLLIN | POLLERR | POLLHUP)) && (w->want & POLLIN)) rfd = w->fd;
            if ((ev & (POLLOUT | POLLERR | POLLHUP)) && (w->want & POLLOUT)) wfd = w->fd;
        }
        self->ready_(self->owner_, rfd, wfd);
    }

    void arm(watch* w) noexcept {
        if (ring_gone_) return;
        w->set_poll(w->fd, w->want);
        try {
            loop_.submit(*w);
        } catch (...) {
            loop_.call_exception_handler({"cannot watch a DNS socket", std::current_exception(), {}, {}});
            return;
        }
        w->in_flight = true;
        w->armed = w->want;
    }

    void retire(watch* w) noexcept {
        w->retired = true;
        retired_.push_front(w);
        if (ring_gone_) return;
        // If the cancellation cannot be submitted, the poll ends when the socket (already
        // closed by c-ares) is released, or when the loop goes away; the watch stays retired
        // until then.
        loop_.cancel(*w);
    }

    event_loop& loop_;
    void* owner_;
    ready_fn ready_;
    dropped_fn dropped_;
    std::vector<watch*> watches_;       // sockets c-ares has open
    intrusive_list<watch> retired_;     // cancelled polls whose completion has not arrived
    bool ring_gone_ = false;
};

} // namespace coio::detail::dns
