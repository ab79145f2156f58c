// coio/impl/dns_channel.hpp - one c-ares channel driven by the loop: the lookups it runs,
// their cap, their deadlines and its timer. Not API.
//
// Shape: the way c-ares' own event thread drives a channel, because c-ares 1.18 gives no
// other way to run it without a thread of its own:
//  * ARES_OPT_SOCK_STATE_CB only records which events c-ares wants on which socket, and
//    after every call into c-ares (a new lookup, ares_process_fd, a timeout), the channel
//    reconciles that interest with its polls on the ring (dns_sockets.hpp). Readiness calls
//    ares_process_fd(fd); the timer calls ares_process_fd(BAD, BAD), which only handles
//    timeouts.
//  * ONE loop timer per channel, armed from ares_timeout when it fires. In between it is only
//    ever moved earlier, to now + the first-try timeout, when c-ares may have started a new
//    try (a new lookup, a socket event): no query can time out sooner than that, so the timer
//    never fires late, and the O(queries) ares_timeout walk runs once per expiry instead of
//    after every batch of answers. A timer that fires early just finds nothing due.
//
// Contracts:
//  * A lookup (lookup_op) lives in the awaiting coroutine frame. c-ares gets a pooled
//    `request` as its callback argument, never the op: c-ares 1.18 cannot cancel one query,
//    so a cancelled or timed-out op detaches itself (request->op = nullptr) and the callback,
//    when the late answer comes, frees only c-ares' result and the request.
//  * The cap, options.max_inflight, counts QUERIES, not lookups: an AF_UNSPEC getaddrinfo
//    sends two at once (A and AAAA), every other lookup one (lookup_op::weight). Lookups that
//    do not fit wait in a FIFO of ops (intrusive, no allocation). A burst of thousands of
//    queries on one UDP socket otherwise overflows the server's receive buffer, and every
//    dropped query waits for c-ares' retry timeout (measured with dnsmasq on loopback: 2,000
//    AF_UNSPEC lookups with the cap counting lookups dropped ~6 queries per burst, and each
//    burst took the whole first-try timeout instead of ~50 ms).
//  * A detached (cancelled or expired) lookup gives its slot back at once: its queries become
//    "orphans" that c-ares keeps until an answer or its own timeout ends them. Orphans are
//    bounded too (new lookups wait while max_inflight of them exist), and as soon as no live
//    query is left, ares_cancel drops them all (c-ares can cancel only everything), so a dead
//    server cannot hold the cap for c-ares' whole retry schedule.
//  * Refills are paced: at most admit_per_pump queries go to c-ares between two runs of the
//    kick timer (about one loop iteration), so a large cap does not turn into one burst.
//  * The first-try timeout defaults to 1 s (channel::default_timeout), not c-ares' 5 s, unless
//    resolv.conf or $RES_OPTIONS set one (read by coio: see dns_resolv_conf.hpp).
//  * Every lookup has a deadline of timeout x tries x servers from the moment it was STARTED
//    (time spent queued counts): c-ares doubles its timeout on each retry round, so without it
//    a silent server would cost timeout x (2^tries - 1) per server instead of the configured
//    timeout x tries, and a queued lookup would wait for the lookups ahead of it on top. The
//    deadline is start time + a per-channel constant and ops enter c-ares in start order, so
//    both the FIFO and the running list are in deadline order (intrusive, O(1) removal),
//    checked by the channel's one timer.
//  * A channel is owned by the loop's dns service (dns_service.hpp). Destroying it ends every
//    lookup (FIFO and c-ares, with ARES_EDESTRUCTION), then cancels its polls; its memory is
//    freed once they drained.
#pragma once

#include <coio/detail/core.hpp>
#include <coio/detail/intrusive_list.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/errors.hpp>
#include <coio/impl/dns_resolv_conf.hpp>
#include <coio/impl/dns_sockets.hpp>
#include <coio/loop.hpp>
#include <coio/resolver_options.hpp>

#include <ares.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace coio::detail::dns {

class channel;
class dns_service;
struct lookup_op;

/// The argument c-ares gets for one lookup. Pooled by the channel: no allocation per lookup
/// in steady state. `op` is null once the awaiting op went away (cancelled, timed out).
struct request : list_hook<> {  // linked in the channel's free list while unused
    lookup_op* op = nullptr;
    channel* ch = nullptr;
    unsigned weight = 0;  // queries it counts for: against the cap, or as orphans once op is null
};

/// One lookup, living in the awaiting coroutine frame: a node of the channel's FIFO while it
/// waits for a free slot, then the owner of a request and a node of the deadline list while
/// c-ares works on it (one list at a time, so one list_hook). Derived ops
/// (addrinfo_op, nameinfo_op, query_op) say how to hand it to c-ares and keep its result.
///
/// Awaiting it: `co_await op` suspends until it is done; afterwards `status` holds the c-ares
/// status (ARES_SUCCESS, ARES_ETIMEOUT, ...). Throws cancelled_error (or timeout_error) when
/// the awaiting task was cancelled; the op is then detached and any late answer is dropped.
struct lookup_op : cancel_hook, list_hook<> {
    enum class state : std::uint8_t { idle, queued, running, done };

    explicit lookup_op(channel& c) noexcept : ch(&c) {
        what = "dns lookup";
        on_cancel = &cancel_fn;
    }
    lookup_op(const lookup_op&) = delete;
    lookup_op& operator=(const lookup_op&) = delete;
    ~lookup_op() { abandon(); }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() {
        if (cancelled) task->throw_cancel();
    }

    /// Hands the lookup to c-ares with `rq` as the callback argument (derived ops).
    void (*submit)(lookup_op*, request* rq) noexcept = nullptr;
    /// Queries the lookup keeps in flight at once: 2 for an AF_UNSPEC getaddrinfo (A and AAAA
    /// in parallel), else 1. What it counts for against max_inflight.
    unsigned weight = 1;

    /// The lookup ended with `s`: wake the task if it is suspended here.
    void complete(int s) noexcept;
    /// Detaches from wherever the lookup is (FIFO, c-ares, deadline list); marks it done.
    void abandon() noexcept;
    /// The deadline passed (queued, or while c-ares still retries): end the wait with
    /// ARES_ETIMEOUT.
    void expire() noexcept;

    channel* ch = nullptr;
    task_base* task = nullptr;
    request* req = nullptr;
    clock::time_point deadline{};  // start + the channel's budget
    int status = ARES_SUCCESS;
    state st = state::idle;
    bool suspended = false;
    bool cancelled = false;

private:
    static void cancel_fn(cancel_hook* c) noexcept;
};

// ---------------------------------------------------------------------------------------
// The channel

/// One ares_channel driven by one loop's ring.
class channel {
public:
    /// New queries handed to c-ares between two kicks (about one loop iteration); the rest go
    /// out on the next. 64 small datagrams are ~60 KiB of skb memory at the server, well
    /// inside a default 208 KiB receive buffer.
    static constexpr std::size_t admit_per_pump = 64;
    /// The first-try timeout when neither the options nor the system configuration set one:
    /// c-ares' own 5 s makes the first lost datagram cost 5 s. c-ares doubles it on every
    /// retry round (1 s, 2 s, 4 s, ...), within the lookup's budget of timeout x tries.
    static constexpr std::chrono::milliseconds default_timeout{1000};

    channel(event_loop& loop, dns_service& svc) noexcept
        : loop_(loop), svc_(svc), sockets_(loop, this, &channel::on_ready, &channel::on_socket_dropped) {
        timer_.ch = this;
        timer_.on_expire = [](timer_node* n) noexcept { static_cast<channel_timer*>(n)->ch->on_timer(); };
        kick_.ch = this;
        kick_.on_expire = [](timer_node* n) noexcept { static_cast<channel_timer*>(n)->ch->on_kick(); };
    }
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    /// Frees memory only (sockets_ frees the watches): destroy() has run, and either every
    /// poll's completion arrived or the ring is gone.
    ~channel() = default;

    /// Creates the ares_channel. `servers_csv` is empty (system servers) or the form
    /// ares_set_servers_ports_csv accepts. Returns an ARES_* status.
    int init(const resolver_options& o, const std::string& servers_csv) {
        // ares_library_init is reference counted and not thread-safe; on Linux it sets up
        // nothing a channel depends on, but the documented contract is to call it first.
        // Once per process, never cleaned up (it holds no memory on Linux).
        static const int library_status = ares_library_init(ARES_LIB_INIT_ALL);
        if (library_status != ARES_SUCCESS) return library_status;

        ares_options opts{};
        int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS;
        opts.sock_state_cb = &dns_sockets::on_sock_state;
        opts.sock_state_cb_data = &sockets_;
        char lookups[] = "b";  // DNS only: /etc/hosts is coio's (see dns_hosts_file.hpp)
        opts.lookups = lookups;
        // Explicit options, else the system's, else coio's first-try timeout and c-ares'
        // tries (4).
        const system_settings sys = (o.timeout.count() > 0 && o.tries > 0) ? system_settings{} : system_resolver_settings();
        const std::chrono::milliseconds timeout = o.timeout.count() > 0 ? o.timeout : sys.timeout.value_or(default_timeout);
        opts.timeout = static_cast<int>(std::min<std::chrono::milliseconds::rep>(timeout.count(), INT_MAX));
        mask |= ARES_OPT_TIMEOUTMS;
        if (const int tries = o.tries > 0 ? o.tries : sys.tries.value_or(0); tries > 0) {
            opts.tries = tries;
            mask |= ARES_OPT_TRIES;
        }
        if (o.rotate) mask |= ARES_OPT_ROTATE;
        // Keep the UDP sockets open when no query is pending: without it c-ares closes and
        // re-creates (socket, connect, fcntl) its socket, and coio its poll, between every
        // two bursts of queries.
        opts.flags = ARES_FLAG_STAYOPEN;
        mask |= ARES_OPT_FLAGS;
        if (o.servers.size() == 1) {
            // One server: its REFUSED/SERVFAIL/NOTIMP answer is final, so hand it to the
            // caller as is (dns_errc::refused, ...). By default c-ares treats such an answer
            // as a broken server, retries, and reports "could not contact DNS servers";
            // with several servers that failover is worth keeping.
            opts.flags |= ARES_FLAG_NOCHECKRESP;
        }
        if (o.ndots >= 0) {
            opts.ndots = o.ndots;
            mask |= ARES_OPT_NDOTS;
        }
        std::vector<char*> domains;
        if (!o.search.empty()) {
            for (const auto& d : o.search) domains.push_back(const_cast<char*>(d.c_str()));  // c-ares copies them
            opts.domains = domains.data();
            opts.ndomains = static_cast<int>(domains.size());
            mask |= ARES_OPT_DOMAINS;
        }
        sockets_.reserve(8);
        int rc = ares_init_options(&ares_, &opts, mask);
        if (rc != ARES_SUCCESS) {
            ares_ = nullptr;
            return rc;
        }
        // Replaced before any query exists: the system's servers are never contacted.
        if (!servers_csv.empty()) rc = ares_set_servers_ports_csv(ares_, servers_csv.c_str());
        if (rc == ARES_SUCCESS) rc = compute_budget();
        if (rc != ARES_SUCCESS) {
            ares_destroy(ares_);
            ares_ = nullptr;
            return rc;
        }
        max_inflight_ = o.max_inflight;
        return ARES_SUCCESS;
    }

    [[nodiscard]] event_loop& loop() const noexcept { return loop_; }
    [[nodiscard]] dns_service& service() const noexcept { return svc_; }
    [[nodiscard]] ares_channel ares() const noexcept { return ares_; }
    /// Queries of the lookups handed to c-ares that still wait for them (what max_inflight
    /// bounds); a cancelled or expired lookup's queries no longer count.
    [[nodiscard]] std::size_t in_flight() const noexcept { return inflight_; }
    /// Queries c-ares still retries for lookups nobody waits for any more (tests).
    [[nodiscard]] std::size_t orphans() const noexcept { return orphans_; }
    /// Lookups waiting in the FIFO for a free slot.
    [[nodiscard]] std::size_t queued() const noexcept { return fifo_.size(); }
    /// A lookup's budget: timeout x tries x servers, counted from its start (tests).
    [[nodiscard]] clock::duration budget() const noexcept { return budget_; }
    /// c-ares' timeout of a first try (tests).
    [[nodiscard]] clock::duration first_try() const noexcept { return first_try_; }

    /// The resolver (if any) whose pointer must be cleared when the service destroys us.
    channel** owner = nullptr;

    /// Starts `op`: hands it to c-ares now, or queues it when max_inflight lookups are
    /// running. May complete it synchronously (c-ares answers numeric names, errors, ...).
    /// Throws std::bad_alloc; then `op` was not started.
    void start(lookup_op* op) {
        op->ch = this;
        if (destroyed_) {
            op->st = lookup_op::state::done;
            op->status = ARES_EDESTRUCTION;
            return;
        }
        const auto now = clock::now();
        op->deadline = now + budget_;
        if (!fifo_.empty() || !has_room(op->weight) || burst_ >= admit_per_pump) {
            push_back(op);
            arm_timer(fifo_.front()->deadline);  // a queued lookup expires on time, too
            return;
        }
        submit(op);
        after_call();
    }

    /// c-ares finished the lookup of `rq` with `status` (called from c-ares callbacks).
    /// The freed slot is refilled by after_call, once c-ares has read every answer that
    /// arrived: queries then leave in batches, which measured clearly faster against a local
    /// server than refilling each slot from inside the callback (every query, and every
    /// answer, then costs the server and us a wake-up of our own).
    void finish(request* rq, int status) noexcept {
        if (lookup_op* op = rq->op) {
            inflight_ -= rq->weight;
            op->complete(status);
        } else {
            orphans_ -= rq->weight;
        }
        rq->op = nullptr;
        free_.push_front(rq);
        update_clock_hold();
    }

    /// A running op goes away before c-ares answered (cancelled, expired, destroyed): its
    /// slot is free at once, its queries become orphans (see the file comment), and the kick
    /// refills the slot and, when nothing live is left, drops the orphans from c-ares.
    void detach(lookup_op* op) noexcept {
        unlink_running(op);
        if (request* rq = op->req) {
            rq->op = nullptr;
            inflight_ -= rq->weight;
            orphans_ += rq->weight;
            update_clock_hold();
            kick();
        }
        op->req = nullptr;
    }

    /// Takes a queued op out of the FIFO.
    void unlink(lookup_op* op) noexcept { fifo_.remove(op); }
    /// Takes a running op out of the deadline list.
    void unlink_running(lookup_op* op) noexcept { running_.remove(op); }

    /// Ends every lookup with ARES_ECANCELLED (queued ones and those c-ares is running).
    void cancel_all() noexcept {
        if (destroyed_) return;
        fail_queued(ARES_ECANCELLED);
        ares_cancel(ares_);
        after_call();
    }

    /// Ends every lookup with ARES_EDESTRUCTION, destroys the ares_channel (closing its
    /// sockets) and cancels the polls still on the ring. Idempotent. The channel's memory
    /// must stay until drained() (or until the ring is gone).
    void destroy() noexcept {
        if (destroyed_) return;
        destroyed_ = true;
        fail_queued(ARES_EDESTRUCTION);
        if (ares_) {
            ares_destroy(ares_);  // running lookups end through their callbacks
            ares_ = nullptr;
        }
        if (timer_.queued()) loop_.remove_timer(&timer_);
        if (kick_.queued()) loop_.remove_timer(&kick_);
        sockets_.close_all();
        update_clock_hold();  // destroyed: released, whatever c-ares still counted
    }

    /// True when no poll of this channel is on the ring any more.
    [[nodiscard]] bool drained() const noexcept { return sockets_.drained(); }
    /// The ring is gone (the service is being destroyed): never touch it again.
    void forget_ring() noexcept { sockets_.forget_ring(); }
    /// Set by the service when the owner let go before the polls drained: called once they
    /// have, it frees the channel.
    void (*on_drained)(channel*) noexcept = nullptr;

private:
    struct channel_timer : timer_node {
        channel* ch = nullptr;
    };

    // Readiness of a c-ares socket (dns_sockets).
    static void on_ready(void* self, ares_socket_t read_fd, ares_socket_t write_fd) noexcept {
        auto* ch = static_cast<channel*>(self);
        ares_process_fd(ch->ares_, read_fd, write_fd);
        ch->after_call();
    }
    // A cancelled poll's memory was freed (dns_sockets).
    static void on_socket_dropped(void* self) noexcept {
        auto* ch = static_cast<channel*>(self);
        if (ch->on_drained && ch->drained()) ch->on_drained(ch);  // frees *ch: nothing may follow
    }

    // After any call into c-ares: drop orphans if nothing live is left, start queued lookups
    // that now fit, bring the polls in line with what c-ares wants, and make sure the timer
    // fires no later than a try that may have just started can time out, or the first
    // lookup's deadline.
    void after_call() noexcept {
        if (destroyed_) return;
        purge_orphans();
        pump();
        sockets_.sync();
        if (inflight_ + orphans_ > 0) arm_timer(clock::now() + first_try_);
        if (!running_.empty()) arm_timer(running_.front()->deadline);
        if (!fifo_.empty()) arm_timer(fifo_.front()->deadline);
    }

    // The channel timer: let c-ares handle its timeouts, end the lookups whose deadline
    // passed (running or queued), then re-arm from what is actually due next.
    void on_timer() noexcept {
        ares_process_fd(ares_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts only
        const auto now = clock::now();
        while (!running_.empty() && running_.front()->deadline <= now) running_.front()->expire();
        while (!fifo_.empty() && fifo_.front()->deadline <= now) fifo_.front()->expire();
        purge_orphans();
        pump();
        sockets_.sync();
        timeval tv{};
        std::optional<clock::time_point> next;
        if (const timeval* t = ares_timeout(ares_, nullptr, &tv))
            next = clock::now() + std::chrono::seconds(t->tv_sec) + std::chrono::microseconds(t->tv_usec);
        if (lookup_op* r = running_.front(); r && (!next || r->deadline < *next)) next = r->deadline;
        if (lookup_op* q = fifo_.front(); q && (!next || q->deadline < *next)) next = q->deadline;
        if (next) arm_timer(*next);
    }

    // Asks for after_call on the next pass over the loop's timers: refills slots freed outside
    // a call into c-ares (a cancelled lookup) and continues a pump that hit admit_per_pump.
    // Never calls into c-ares itself, so it is safe from a cancel hook or a destructor.
    void kick() noexcept {
        if (destroyed_ || kick_.queued()) return;
        kick_.deadline = clock::now();
        try {
            loop_.add_timer(&kick_);
        } catch (...) {
            // No pacing then (never a stall); freed slots are refilled by the next answer or
            // the channel timer.
            burst_ = 0;
        }
    }
    void on_kick() noexcept {
        burst_ = 0;
        after_call();
    }

    // No live query left but orphans are: c-ares can only cancel everything, and everything
    // is now what nobody waits for. Their callbacks (ARES_ECANCELLED) free the requests.
    void purge_orphans() noexcept {
        if (inflight_ == 0 && orphans_ > 0 && !pumping_) ares_cancel(ares_);
    }

    // Room for a lookup of `weight` queries. One lookup always fits when nothing live runs
    // (a cap below 2 must not starve an AF_UNSPEC lookup); orphans have a bound of their own.
    [[nodiscard]] bool has_room(unsigned weight) const noexcept {
        if (max_inflight_ == 0) return true;
        if (orphans_ >= max_inflight_) return false;
        return inflight_ == 0 || inflight_ + weight <= max_inflight_;
    }

    void push_back(lookup_op* op) noexcept {
        fifo_.push_back(op);
        op->st = lookup_op::state::queued;
    }

    void fail_queued(int status) noexcept {
        while (lookup_op* op = fifo_.front()) {
            unlink(op);
            op->complete(status);
        }
    }

    void pump() noexcept {
        if (pumping_) return;
        pumping_ = true;
        // burst_ >= admit_per_pump: the kick armed by the first submit of this burst
        // continues.
        while (!fifo_.empty() && has_room(fifo_.front()->weight) && burst_ < admit_per_pump && !destroyed_) {
            lookup_op* op = fifo_.front();
            unlink(op);
            try {
                submit(op);
            } catch (...) {
                op->complete(ARES_ENOMEM);
            }
        }
        pumping_ = false;
    }

    // Hands `op` to c-ares; its deadline was set when it started.
    void submit(lookup_op* op) {
        request* rq = free_.pop_front();
        if (!rq) {
            requests_.emplace_back();
            rq = &requests_.back();
        }
        rq->ch = this;
        rq->op = op;
        rq->weight = op->weight;
        op->req = rq;
        op->st = lookup_op::state::running;
        running_.push_back(op);
        inflight_ += op->weight;
        update_clock_hold();
        if (burst_ == 0) kick();  // ends this burst: pacing restarts from zero
        burst_ += op->weight;
        op->submit(op, rq);  // may call back synchronously
    }

    // Makes the timer fire at `when` at the latest.
    void arm_timer(clock::time_point when) noexcept {
        if (timer_.queued()) {
            if (timer_.deadline <= when) return;
            loop_.remove_timer(&timer_);
        }
        timer_.deadline = when;
        try {
            loop_.add_timer(&timer_);
        } catch (...) {
            loop_.call_exception_handler({"cannot arm the DNS timer", std::current_exception(), {}, {}});
        }
    }

    // The deadline of one lookup: every try on every server at the configured timeout.
    int compute_budget() {
        ares_options saved{};
        int mask = 0;
        const int rc = ares_save_options(ares_, &saved, &mask);
        if (rc != ARES_SUCCESS) return rc;
        ares_addr_port_node* servers = nullptr;
        int nservers = 0;
        if (ares_get_servers_ports(ares_, &servers) == ARES_SUCCESS) {
            for (auto* s = servers; s; s = s->next) ++nservers;
            ares_free_data(servers);
        }
        const long long timeout_ms = std::max((mask & ARES_OPT_TIMEOUTMS) ? saved.timeout : 1000LL * saved.timeout, 1LL);
        const long long tries = saved.tries > 0 ? saved.tries : 1;
        first_try_ = std::chrono::milliseconds(timeout_ms);
        budget_ = std::chrono::milliseconds(timeout_ms * tries * std::max(nservers, 1));
        ares_destroy_options(&saved);
        return ARES_SUCCESS;
    }

    event_loop& loop_;
    dns_service& svc_;
    ares_channel ares_ = nullptr;
    dns_sockets sockets_;
    channel_timer timer_;
    std::deque<request> requests_;        // stable addresses
    intrusive_list<request> free_;        // requests c-ares does not hold
    intrusive_list<lookup_op> fifo_;      // waiting for a slot, in arrival order
    intrusive_list<lookup_op> running_;   // handed to c-ares, in deadline order
    channel_timer kick_;  // deadline "now": after_call on the next pass over the timers
    std::size_t inflight_ = 0;  // queries of live lookups in c-ares (against max_inflight_)
    std::size_t orphans_ = 0;   // queries c-ares still has for detached lookups
    std::size_t burst_ = 0;     // queries submitted since the last kick (admit_per_pump)
    std::size_t max_inflight_ = 100;
    clock::duration budget_{};     // a lookup's deadline after submit
    clock::duration first_try_{};  // c-ares' timeout of a first try
    bool destroyed_ = false;
    bool pumping_ = false;
    bool holds_clock_ = false;  // see update_clock_hold

    // Under a virtual clock (coio::clock_kind) the loop waits in real time while queries are
    // out: their answers come from a server outside the loop, and c-ares times its tries
    // with the real clock, so a jump would only make it spin until real time caught up.
    void update_clock_hold() noexcept {
        const bool want = !destroyed_ && inflight_ + orphans_ > 0;
        if (want == holds_clock_) return;
        holds_clock_ = want;
        if (want) loop_.hold_clock();
        else loop_.release_clock();
    }
};

// ---------------------------------------------------------------------------------------
// lookup_op

inline bool lookup_op::await_suspend(std::coroutine_handle<> h) {
    task = &require_current_task();
    if (task->cancel_pending()) {  // deliver it without starting anything
        cancelled = true;
        return false;
    }
    ch->start(this);  // may finish synchronously (errors, answers c-ares needs no server for)
    if (st == state::done) return false;
    if (!task->begin_wait(h, this)) {  // cannot happen (checked above), but never hang
        abandon();
        cancelled = true;
        return false;
    }
    suspended = true;
    return true;
}

inline void lookup_op::complete(int s) noexcept {
    if (st == state::running) ch->unlink_running(this);  // finish() already took its slot back
    req = nullptr;
    status = s;
    st = state::done;
    if (suspended) task->wake();
}

inline void lookup_op::abandon() noexcept {
    if (st == state::queued) {
        ch->unlink(this);
    } else if (st == state::running) {
        ch->detach(this);  // c-ares keeps the query as an orphan; its callback only frees its own state
    }
    st = state::done;
}

inline void lookup_op::cancel_fn(cancel_hook* c) noexcept {
    auto* self = static_cast<lookup_op*>(c);
    self->abandon();
    self->cancelled = true;
    self->task->wake();
}

inline void lookup_op::expire() noexcept {
    // A running lookup's queries stay with c-ares as orphans (bounded, and dropped as soon as
    // nothing live is left), so a dead server is not flooded by replacements either.
    abandon();
    status = ARES_ETIMEOUT;
    if (suspended) task->wake();
}


} // namespace coio::detail::dns
