// coio/impl/dns_channel.hpp - c-ares on the loop's ring: the machinery behind coio/dns.hpp.
// Not API.
//
// Shape (STYLE 17, the way c-ares' own event thread drives a channel):
//  * ARES_OPT_SOCK_STATE_CB only records which events c-ares wants on which socket.
//  * After every call into c-ares (a new lookup, ares_process_fd, a timeout), the channel
//    reconciles that interest with the poll operations it has on the ring (sync_polls).
//  * ONE loop timer per channel, armed from ares_timeout when it fires. In between it is only
//    ever moved earlier, to now + the first-try timeout, when c-ares may have started a new
//    try (a new lookup, a socket event): no query can time out sooner than that, so the timer
//    never fires late, and the O(queries) ares_timeout walk runs once per expiry instead of
//    after every batch of answers. A timer that fires early just finds nothing due.
//  * Each socket is watched by one single-shot poll operation (a `watch`, a typed
//    operation), re-armed after each readiness. Single-shot on purpose: a poll armed on a
//    socket that is still readable completes at once, so this is level-triggered, and c-ares'
//    TCP reader (which reads one chunk per call) can never be left with unread data.
//  * Readiness calls ares_process_fd(fd); the timer calls ares_process_fd(BAD, BAD), which
//    only handles timeouts.
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
//    resolv.conf or $RES_OPTIONS set one (read by coio: see system_resolver_settings).
//  * Every lookup has a deadline of timeout x tries x servers from the moment it was STARTED
//    (time spent queued counts): c-ares doubles its timeout on each retry round, so without it
//    a silent server would cost timeout x (2^tries - 1) per server instead of the configured
//    timeout x tries, and a queued lookup would wait for the lookups ahead of it on top. The
//    deadline is start time + a per-channel constant and ops enter c-ares in start order, so
//    both the FIFO and the running list are in deadline order (intrusive, O(1) removal),
//    checked by the channel's one timer.
//  * A channel is owned by the loop's dns service. Destroying it ends every lookup (FIFO and
//    c-ares, with ARES_EDESTRUCTION), then cancels its polls. A poll's memory is freed only
//    after its CQE has arrived, or after the ring is gone (the service is destroyed after
//    the backend is closed, see event_loop::close), so the kernel never completes into freed
//    memory.
//  * /etc/hosts is read by coio itself (hosts_file, cached, re-read when it changes) and
//    c-ares is configured with lookups "b" (DNS only): c-ares 1.18 would otherwise open and
//    parse the file for every lookup, and getnameinfo would send PTR queries for names the
//    file knows.
#pragma once

#include <coio/detail/core.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/endpoint.hpp>
#include <coio/errors.hpp>
#include <coio/loop.hpp>
#include <coio/resolver_options.hpp>

#include <ares.h>
#include <netdb.h>
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <bitset>
#include <chrono>
#include <climits>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace coio::detail::dns {

class channel;
class dns_service;
struct lookup_op;

/// The argument c-ares gets for one lookup. Pooled by the channel: no allocation per lookup
/// in steady state. `op` is null once the awaiting op went away (cancelled, timed out).
struct request {
    lookup_op* op = nullptr;
    channel* ch = nullptr;
    request* next_free = nullptr;
    unsigned weight = 0;  // queries it counts for: against the cap, or as orphans once op is null
};

/// One lookup, living in the awaiting coroutine frame: a node of the channel's FIFO while it
/// waits for a free slot, then the owner of a request while c-ares works on it. Derived ops
/// (addrinfo_op, nameinfo_op, query_op) say how to hand it to c-ares and keep its result.
///
/// Awaiting it: `co_await op` suspends until it is done; afterwards `status` holds the c-ares
/// status (ARES_SUCCESS, ARES_ETIMEOUT, ...). Throws cancelled_error (or timeout_error) when
/// the awaiting task was cancelled; the op is then detached and any late answer is dropped.
struct lookup_op : cancel_hook {
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
    lookup_op* prev = nullptr;   // links in the channel's FIFO (queued) or deadline list (running)
    lookup_op* next = nullptr;
    clock::time_point deadline{};  // start + the channel's budget
    int status = ARES_SUCCESS;
    state st = state::idle;
    bool suspended = false;
    bool cancelled = false;

private:
    static void cancel_fn(cancel_hook* c) noexcept;
};

// ---------------------------------------------------------------------------------------
// /etc/hosts

/// A cached, parsed hosts file. Looked up by lower-case name (no trailing dot) and by address.
/// Re-read when its inode, size or mtime changes, checked at most once per second, so an
/// edit is seen about as soon as glibc (which re-reads on every call) would see it.
class hosts_file {
public:
    struct entry {
        endpoint address;       // port 0
        std::string canonical;  // the first name of the line
    };

    explicit hosts_file(std::string path = "/etc/hosts") : path_(std::move(path)) {}

    /// The entries for `name` (any case, trailing dot or not) in file order, or null.
    const std::vector<entry>* find(std::string_view name) {
        refresh();
        // Most names looked up are not in the file: reject by length before lower-casing
        // and hashing.
        const std::size_t n = !name.empty() && name.back() == '.' ? name.size() - 1 : name.size();
        if (n >= name_lengths_.size() || !name_lengths_[n]) return nullptr;
        auto it = by_name_.find(lower(name));
        return it == by_name_.end() ? nullptr : &it->second;
    }
    /// The first name given to `address` (port ignored), or null.
    const std::string* find_name(const endpoint& address) {
        refresh();
        auto it = by_address_.find(address.with_port(0));
        return it == by_address_.end() ? nullptr : &it->second;
    }

private:
    void refresh() {
        const auto now = clock::now();
        if (loaded_ && now < next_check_) return;
        next_check_ = now + std::chrono::seconds(1);
        struct stat st {};
        if (::stat(path_.c_str(), &st) != 0) {
            by_name_.clear();
            by_address_.clear();
            name_lengths_.reset();
            loaded_ = true;
            have_stat_ = false;
            return;
        }
        if (loaded_ && have_stat_ && st.st_ino == st_.st_ino && st.st_size == st_.st_size &&
            st.st_mtim.tv_sec == st_.st_mtim.tv_sec && st.st_mtim.tv_nsec == st_.st_mtim.tv_nsec)
            return;
        st_ = st;
        have_stat_ = true;
        loaded_ = true;
        parse();
    }

    void parse() {
        by_name_.clear();
        by_address_.clear();
        name_lengths_.reset();
        std::FILE* f = std::fopen(path_.c_str(), "re");
        if (!f) return;
        std::string text;
        char buf[4096];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
        std::fclose(f);
        std::string_view rest = text;
        while (!rest.empty()) {
            const auto eol = rest.find('\n');
            std::string_view line = rest.substr(0, eol);
            rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 1);
            if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
            std::vector<std::string_view> words;
            while (!line.empty()) {
                const auto start = line.find_first_not_of(" \t\r");
                if (start == std::string_view::npos) break;
                line = line.substr(start);
                const auto end = line.find_first_of(" \t\r");
                words.push_back(line.substr(0, end));
                line = end == std::string_view::npos ? std::string_view{} : line.substr(end);
            }
            if (words.size() < 2) continue;
            // An address, never "ip:port" or "[v6]" (endpoint::try_parse would accept those).
            if (words[0].find('[') != std::string_view::npos) continue;
            if (std::count(words[0].begin(), words[0].end(), ':') == 1) continue;
            const auto address = endpoint::try_parse(words[0]);
            if (!address) continue;
            const std::string canonical = lower(words[1]);
            by_address_.try_emplace(*address, canonical);
            for (std::size_t i = 1; i < words.size(); ++i) {
                std::string name = lower(words[i]);
                if (name.size() < name_lengths_.size()) name_lengths_.set(name.size());
                auto& list = by_name_[std::move(name)];
                const bool dup = std::any_of(list.begin(), list.end(), [&](const entry& e) { return e.address == *address; });
                if (!dup) list.push_back(entry{*address, canonical});
            }
        }
    }

public:
    /// ASCII lower case, trailing dot removed: the key names are looked up by.
    static std::string lower(std::string_view s) {
        if (!s.empty() && s.back() == '.') s.remove_suffix(1);
        std::string out(s);
        for (char& c : out)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        return out;
    }

private:
    std::string path_;
    std::unordered_map<std::string, std::vector<entry>> by_name_;
    std::unordered_map<endpoint, std::string> by_address_;
    std::bitset<256> name_lengths_;  // lengths of the names in by_name_ (all are < 256)
    struct stat st_ {};
    clock::time_point next_check_{};
    bool loaded_ = false;
    bool have_stat_ = false;
};

// ---------------------------------------------------------------------------------------
// The system's timeout and attempts settings

/// What /etc/resolv.conf's "options" lines and $RES_OPTIONS say about retries.
struct system_settings {
    std::optional<std::chrono::milliseconds> timeout;  // first-try timeout
    std::optional<int> tries;                          // attempts per server
};

/// Applies whitespace-separated resolver options (a resolv.conf "options" line without the
/// keyword, or $RES_OPTIONS) to `out`, later words winning: "timeout:n" (seconds) and
/// "attempts:n", as glibc and later c-ares read them, and c-ares 1.18's own "retrans:n"
/// (milliseconds) and "retry:n". Values that are not positive numbers are ignored.
inline void apply_resolver_options(std::string_view words, system_settings& out) noexcept {
    auto number = [](std::string_view v) -> long {
        if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string_view::npos) return 0;
        long n = 0;
        for (char c : v) n = n * 10 + (c - '0');
        return n;
    };
    while (!words.empty()) {
        const auto start = words.find_first_not_of(" \t\r");
        if (start == std::string_view::npos) return;
        words.remove_prefix(start);
        const auto end = words.find_first_of(" \t\r");
        const std::string_view w = words.substr(0, end);
        words = end == std::string_view::npos ? std::string_view{} : words.substr(end);
        const auto colon = w.find(':');
        if (colon == std::string_view::npos) continue;
        const std::string_view key = w.substr(0, colon);
        const long v = number(w.substr(colon + 1));
        if (v <= 0) continue;
        if (key == "timeout") out.timeout = std::chrono::seconds(v);
        else if (key == "retrans") out.timeout = std::chrono::milliseconds(v);
        else if (key == "attempts" || key == "retry") out.tries = static_cast<int>(v);
    }
}

/// The settings of a resolv.conf text, then of $RES_OPTIONS (`env`, may be null), which
/// overrides the file as it does for glibc.
inline system_settings read_system_settings(std::string_view resolv_conf, const char* env) noexcept {
    system_settings out;
    while (!resolv_conf.empty()) {
        const auto eol = resolv_conf.find('\n');
        std::string_view line = resolv_conf.substr(0, eol);
        resolv_conf = eol == std::string_view::npos ? std::string_view{} : resolv_conf.substr(eol + 1);
        constexpr std::string_view key = "options";
        if (line.rfind(key, 0) == 0 && line.size() > key.size() && (line[key.size()] == ' ' || line[key.size()] == '\t'))
            apply_resolver_options(line.substr(key.size()), out);
    }
    if (env) apply_resolver_options(env, out);
    return out;
}

/// The system's settings: /etc/resolv.conf and $RES_OPTIONS. coio reads them itself because
/// c-ares 1.18 knows only its own "retrans:"/"retry:" spellings, so a resolv.conf saying
/// "options timeout:2 attempts:3" would otherwise be ignored.
inline system_settings system_resolver_settings() {
    std::string text;
    if (std::FILE* f = std::fopen("/etc/resolv.conf", "re")) {
        char buf[4096];
        for (std::size_t n; text.size() < (1u << 20) && (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
        std::fclose(f);
    }
    return read_system_settings(text, std::getenv("RES_OPTIONS"));
}

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

    channel(event_loop& loop, dns_service& svc) noexcept : loop_(loop), svc_(svc) {
        timer_.ch = this;
        timer_.on_expire = [](timer_node* n) noexcept { static_cast<channel_timer*>(n)->ch->on_timer(); };
        kick_.ch = this;
        kick_.on_expire = [](timer_node* n) noexcept { static_cast<channel_timer*>(n)->ch->on_kick(); };
    }
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    /// Frees memory only: destroy() has run, and either every poll's CQE arrived or the ring
    /// is gone.
    ~channel() {
        for (watch* w : watches_) delete w;
        while (watch* w = retired_) {
            retired_ = w->next_retired;
            delete w;
        }
    }

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
        opts.sock_state_cb = &channel::on_sock_state;
        opts.sock_state_cb_data = this;
        char lookups[] = "b";  // DNS only: /etc/hosts is coio's (see the file comment)
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
        watches_.reserve(8);  // sockets are few (one UDP socket per server, TCP rarely)
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
    [[nodiscard]] std::size_t queued() const noexcept { return queued_; }
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
        if (fifo_.head || !has_room(op->weight) || burst_ >= admit_per_pump) {
            push_back(op);
            arm_timer(fifo_.head->deadline);  // a queued lookup expires on time, too
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
        rq->next_free = free_;
        free_ = rq;
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
            kick();
        }
        op->req = nullptr;
    }

    /// Takes a queued op out of the FIFO.
    void unlink(lookup_op* op) noexcept {
        list_remove(fifo_, op);
        --queued_;
    }
    /// Takes a running op out of the deadline list.
    void unlink_running(lookup_op* op) noexcept { list_remove(running_, op); }

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
        for (watch* w : watches_) w->closed = true;
        sync_polls();
    }

    /// True when no poll of this channel is on the ring any more.
    [[nodiscard]] bool drained() const noexcept { return retired_ == nullptr && watches_.empty(); }
    /// The ring is gone (the service is being destroyed): never touch it again.
    void forget_ring() noexcept { ring_gone_ = true; }
    /// Set when the owner let go: the channel deletes itself (through the service) once drained.
    bool zombie = false;

private:
    // One socket c-ares uses, watched by a single-shot poll on the ring.
    struct watch : operation {
        channel* ch = nullptr;
        int fd = -1;
        unsigned want = 0;      // POLLIN/POLLOUT c-ares asked for
        unsigned armed = 0;     // events of the poll in flight
        bool in_flight = false;
        bool closed = false;    // c-ares closed the socket (its number may be reused)
        bool retired = false;   // cancelled; freed when its CQE arrives
        watch* next_retired = nullptr;
        watch* prev_retired = nullptr;
    };
    struct channel_timer : timer_node {
        channel* ch = nullptr;
    };

    // ARES_OPT_SOCK_STATE_CB: only records interest; sync_polls acts on it after c-ares
    // returns. A socket number that c-ares closed and reopened gets a fresh watch, because a
    // poll still in flight refers to the old file.
    static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) noexcept {
        auto* self = static_cast<channel*>(data);
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
            fresh->ch = self;
            fresh->fd = fd;
            fresh->complete = &channel::on_poll;
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

    static void on_poll(operation* op, int res, unsigned) noexcept {
        auto* w = static_cast<watch*>(op);
        channel* ch = w->ch;
        w->in_flight = false;
        if (w->retired) {
            ch->drop_retired(w);  // may delete ch
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
        ares_process_fd(ch->ares_, rfd, wfd);
        ch->after_call();
    }

    // After any call into c-ares: drop orphans if nothing live is left, start queued lookups
    // that now fit, bring the polls in line with what c-ares wants, and make sure the timer
    // fires no later than a try that may have just started can time out, or the first
    // lookup's deadline.
    void after_call() noexcept {
        if (destroyed_) return;
        purge_orphans();
        pump();
        sync_polls();
        if (inflight_ + orphans_ > 0) arm_timer(clock::now() + first_try_);
        if (running_.head) arm_timer(running_.head->deadline);
        if (fifo_.head) arm_timer(fifo_.head->deadline);
    }

    // The channel timer: let c-ares handle its timeouts, end the lookups whose deadline
    // passed (running or queued), then re-arm from what is actually due next.
    void on_timer() noexcept {
        ares_process_fd(ares_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts only
        const auto now = clock::now();
        while (running_.head && running_.head->deadline <= now) running_.head->expire();
        while (fifo_.head && fifo_.head->deadline <= now) fifo_.head->expire();
        purge_orphans();
        pump();
        sync_polls();
        timeval tv{};
        std::optional<clock::time_point> next;
        if (const timeval* t = ares_timeout(ares_, nullptr, &tv))
            next = clock::now() + std::chrono::seconds(t->tv_sec) + std::chrono::microseconds(t->tv_usec);
        if (running_.head && (!next || running_.head->deadline < *next)) next = running_.head->deadline;
        if (fifo_.head && (!next || fifo_.head->deadline < *next)) next = fifo_.head->deadline;
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

    // An intrusive doubly-linked list of ops (through prev/next).
    struct op_list {
        lookup_op* head = nullptr;
        lookup_op* tail = nullptr;
    };
    static void list_push(op_list& l, lookup_op* op) noexcept {
        op->next = nullptr;
        op->prev = l.tail;
        if (l.tail) l.tail->next = op; else l.head = op;
        l.tail = op;
    }
    static void list_remove(op_list& l, lookup_op* op) noexcept {
        if (op->prev) op->prev->next = op->next; else l.head = op->next;
        if (op->next) op->next->prev = op->prev; else l.tail = op->prev;
        op->prev = op->next = nullptr;
    }

    void push_back(lookup_op* op) noexcept {
        list_push(fifo_, op);
        op->st = lookup_op::state::queued;
        ++queued_;
    }

    void fail_queued(int status) noexcept {
        while (lookup_op* op = fifo_.head) {
            unlink(op);
            op->complete(status);
        }
    }

    void pump() noexcept {
        if (pumping_) return;
        pumping_ = true;
        // burst_ >= admit_per_pump: the kick armed by the first submit of this burst
        // continues.
        while (fifo_.head && has_room(fifo_.head->weight) && burst_ < admit_per_pump && !destroyed_) {
            lookup_op* op = fifo_.head;
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
        request* rq = free_;
        if (rq) {
            free_ = rq->next_free;
        } else {
            requests_.emplace_back();
            rq = &requests_.back();
        }
        rq->ch = this;
        rq->op = op;
        rq->weight = op->weight;
        op->req = rq;
        op->st = lookup_op::state::running;
        list_push(running_, op);
        inflight_ += op->weight;
        if (burst_ == 0) kick();  // ends this burst: pacing restarts from zero
        burst_ += op->weight;
        op->submit(op, rq);  // may call back synchronously
    }

    void sync_polls() noexcept {
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
                fresh->ch = this;
                fresh->fd = w->fd;
                fresh->want = w->want;
                fresh->complete = &channel::on_poll;
                retire(w);
                watches_[i] = fresh;
                w = fresh;
            }
            if (!w->in_flight) arm(w);
            ++i;
        }
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
        w->prev_retired = nullptr;
        w->next_retired = retired_;
        if (retired_) retired_->prev_retired = w;
        retired_ = w;
        if (ring_gone_) return;
        // If the cancellation cannot be submitted, the poll ends when the socket (already
        // closed by c-ares) is released, or when the loop goes away; the watch stays retired
        // until then.
        loop_.cancel(*w);
    }

    void drop_retired(watch* w) noexcept;  // needs dns_service (below)

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
    channel_timer timer_;
    std::vector<watch*> watches_;        // sockets c-ares has open
    watch* retired_ = nullptr;           // cancelled polls whose CQE has not arrived
    std::deque<request> requests_;       // stable addresses
    request* free_ = nullptr;
    op_list fifo_;       // waiting for a slot, in arrival order
    op_list running_;    // handed to c-ares, in deadline order
    channel_timer kick_;  // deadline "now": after_call on the next pass over the timers
    std::size_t queued_ = 0;
    std::size_t inflight_ = 0;  // queries of live lookups in c-ares (against max_inflight_)
    std::size_t orphans_ = 0;   // queries c-ares still has for detached lookups
    std::size_t burst_ = 0;     // queries submitted since the last kick (admit_per_pump)
    std::size_t max_inflight_ = 100;
    clock::duration budget_{};     // a lookup's deadline after submit
    clock::duration first_try_{};  // c-ares' timeout of a first try
    bool destroyed_ = false;
    bool pumping_ = false;
    bool ring_gone_ = false;
};

// ---------------------------------------------------------------------------------------
// The per-loop service

/// Owns every channel of one loop (the default resolver's and those of coio::resolver
/// objects) and the hosts-file cache. Created by loop.service<dns_service>() on first use.
class dns_service final : public loop_service {
public:
    explicit dns_service(event_loop& loop) : loop_(loop) {}
    dns_service(const dns_service&) = delete;
    dns_service& operator=(const dns_service&) = delete;

    /// Runs after the ring is gone: nothing can complete into the watches any more.
    ~dns_service() override {
        for (auto& ch : channels_) {
            ch->forget_ring();
            ch->destroy();  // no-op after shutdown()
        }
    }

    /// loop.close(): every task has finished. Ends all lookups and destroys every channel;
    /// owners (resolver objects) forget theirs so they never touch this loop again.
    void shutdown() noexcept override {
        shut_down_ = true;
        for (auto& ch : channels_) {
            if (ch->owner) *ch->owner = nullptr;
            ch->owner = nullptr;
            ch->destroy();
        }
        default_ = nullptr;
    }

    /// The default resolver's channel, or null before open_default().
    [[nodiscard]] channel* default_channel() const noexcept { return default_; }
    /// Creates the default resolver's channel from the loop options' `resolver`.
    /// Returns null and sets `status` when c-ares cannot create it.
    channel* open_default(const std::string& servers_csv, int& status) {
        if (!default_) default_ = open(loop_.options().resolver, servers_csv, nullptr, status);
        return default_;
    }

    /// A new channel for `options`; `owner` is cleared when the loop shuts down.
    /// Returns null and sets `status` when c-ares cannot create it.
    channel* open(const resolver_options& options, const std::string& servers_csv, channel** owner, int& status) {
        if (shut_down_) throw invalid_state_error("coio: the event loop is closing; no new DNS lookups");
        auto ch = std::make_unique<channel>(loop_, *this);
        status = ch->init(options, servers_csv);
        if (status != ARES_SUCCESS) return nullptr;
        channels_.push_back(std::move(ch));
        channel* p = channels_.back().get();
        p->owner = owner;
        return p;
    }

    /// The owner let go of `ch`: end its lookups; free it now, or once its polls drained.
    void release(channel* ch) noexcept {
        ch->owner = nullptr;
        ch->destroy();
        if (ch->drained()) reap(ch); else ch->zombie = true;
    }

    /// Frees a destroyed, drained channel.
    void reap(channel* ch) noexcept {
        auto it = std::find_if(channels_.begin(), channels_.end(), [ch](const auto& p) { return p.get() == ch; });
        if (it != channels_.end()) channels_.erase(it);
    }

    /// The hosts-file cache of this loop.
    [[nodiscard]] hosts_file& hosts() noexcept { return hosts_; }
    /// Channels alive, including destroyed ones whose polls have not completed yet (tests).
    [[nodiscard]] std::size_t channels() const noexcept { return channels_.size(); }

private:
    event_loop& loop_;
    std::vector<std::unique_ptr<channel>> channels_;
    channel* default_ = nullptr;
    hosts_file hosts_;
    bool shut_down_ = false;
};

inline void channel::drop_retired(watch* w) noexcept {
    if (w->prev_retired) w->prev_retired->next_retired = w->next_retired; else retired_ = w->next_retired;
    if (w->next_retired) w->next_retired->prev_retired = w->prev_retired;
    delete w;
    if (zombie && drained()) svc_.reap(this);  // deletes *this: nothing may follow
}

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

// ---------------------------------------------------------------------------------------
// The three kinds of lookups

/// ares_getaddrinfo. The result stays owned by the op (freed by its destructor).
struct addrinfo_op final : lookup_op {
    addrinfo_op(channel& c, const char* n, const ares_addrinfo_hints& h) noexcept : lookup_op(c), name(n), hints(h) {
        submit = &submit_fn;
        weight = h.ai_family == AF_UNSPEC ? 2 : 1;  // A and AAAA go out together
    }
    ~addrinfo_op() {
        abandon();
        if (result) ares_freeaddrinfo(result);
    }

    const char* name;
    ares_addrinfo_hints hints;
    ares_addrinfo* result = nullptr;

private:
    static void submit_fn(lookup_op* op, request* rq) noexcept {
        auto* self = static_cast<addrinfo_op*>(op);
        ares_getaddrinfo(rq->ch->ares(), self->name, nullptr, &self->hints, &on_result, rq);
    }
    static void on_result(void* arg, int status, int /*timeouts*/, ares_addrinfo* res) noexcept {
        auto* rq = static_cast<request*>(arg);
        if (auto* self = static_cast<addrinfo_op*>(rq->op)) {
            self->result = res;
            res = nullptr;
        }
        if (res) ares_freeaddrinfo(res);  // a late answer nobody waits for
        rq->ch->finish(rq, status);
    }
};

/// ares_getnameinfo (host part only: coio finds the service itself).
struct nameinfo_op final : lookup_op {
    nameinfo_op(channel& c, const endpoint& a, int f) noexcept : lookup_op(c), address(a), flags(f) { submit = &submit_fn; }
    ~nameinfo_op() { abandon(); }

    endpoint address;
    int flags;
    char host[NI_MAXHOST] = {};

private:
    static void submit_fn(lookup_op* op, request* rq) noexcept {
        auto* self = static_cast<nameinfo_op*>(op);
        ares_getnameinfo(rq->ch->ares(), self->address.data(), self->address.size(), self->flags, &on_result, rq);
    }
    static void on_result(void* arg, int status, int /*timeouts*/, char* node, char* /*service*/) noexcept {
        auto* rq = static_cast<request*>(arg);
        if (auto* self = static_cast<nameinfo_op*>(rq->op); self && status == ARES_SUCCESS) {
            if (node) {
                std::strncpy(self->host, node, sizeof self->host - 1);
            } else {
                status = ARES_ENOTFOUND;
            }
        }
        rq->ch->finish(rq, status);
    }
};

/// ares_query for one record type; the answer is parsed in the callback (the buffer is
/// c-ares') into `out` by `parse`, which returns an ARES_* status and may throw.
struct query_op final : lookup_op {
    using parse_fn = int (*)(const unsigned char* abuf, int alen, void* out);
    query_op(channel& c, const char* n, int t, parse_fn p, void* o) noexcept
        : lookup_op(c), name(n), type(t), parse(p), out(o) {
        submit = &submit_fn;
    }
    ~query_op() { abandon(); }

    const char* name;
    int type;
    parse_fn parse;
    void* out;
    std::exception_ptr error;

private:
    static void submit_fn(lookup_op* op, request* rq) noexcept {
        auto* self = static_cast<query_op*>(op);
        ares_query(rq->ch->ares(), self->name, 1 /* class IN */, self->type, &on_result, rq);
    }
    static void on_result(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) noexcept {
        auto* rq = static_cast<request*>(arg);
        if (auto* self = static_cast<query_op*>(rq->op); self && status == ARES_SUCCESS) {
            try {
                status = self->parse(abuf, alen, self->out);
            } catch (...) {
                self->error = std::current_exception();
            }
        }
        rq->ch->finish(rq, status);
    }
};

// ---------------------------------------------------------------------------------------
// Input checks shared by getaddrinfo and query

/// Why `name` cannot be a DNS name, or null when it can: empty, an embedded NUL, longer
/// than 253 bytes (a trailing dot aside), an empty label, or a label over 63 bytes.
/// `allow_root`: "." alone is valid (query of the root zone).
inline const char* name_problem(std::string_view name, bool allow_root) noexcept {
    if (name.empty()) return "empty host name";
    if (name == ".") return allow_root ? nullptr : "empty host name";
    if (name.back() == '.') name.remove_suffix(1);
    if (name.size() > 253) return "host name longer than 253 bytes";
    // This runs for every lookup: memchr/find are vectorised, a loop over the bytes is not.
    if (name.find('\0') != std::string_view::npos) return "host name contains a NUL byte";
    while (true) {
        const auto dot = name.find('.');
        const auto label = dot == std::string_view::npos ? name.size() : dot;
        if (label == 0) return "empty label in host name";
        if (label > 63) return "label longer than 63 bytes in host name";
        if (dot == std::string_view::npos) return nullptr;
        name.remove_prefix(dot + 1);
    }
}

/// A numeric IPv4/IPv6 address (with an optional %scope), as getaddrinfo's host argument
/// accepts it: no brackets, no port.
inline std::optional<endpoint> numeric_host(std::string_view host) noexcept {
    // A cheap scan first, since most hosts are names: an address has only hex digits, dots
    // and colons before its optional %scope, and an IPv4 one no letters and no colon. "[v6]"
    // and "a:80" are not accepted.
    std::size_t colons = 0;
    bool letters = false;
    for (char c : host) {
        if (c == '%') break;
        if (c == ':') {
            ++colons;
        } else if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
            letters = true;
        } else if ((c < '0' || c > '9') && c != '.') {
            return std::nullopt;  // 'n' of "bench.test": a name
        }
    }
    if (host.empty() || colons == 1 || (colons == 0 && letters)) return std::nullopt;
    return endpoint::try_parse(host);
}

/// True for "localhost" and names under ".localhost", in any case, with or without a
/// trailing dot (RFC 6761: always the loopback address, never sent to a DNS server).
inline bool is_localhost(std::string_view name) noexcept {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    constexpr std::string_view lh = "localhost";
    if (name.size() < lh.size()) return false;
    const auto tail = name.substr(name.size() - lh.size());
    for (std::size_t i = 0; i < lh.size(); ++i) {
        const char c = tail[i];
        if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != lh[i]) return false;
    }
    return name.size() == lh.size() || name[name.size() - lh.size() - 1] == '.';
}

} // namespace coio::detail::dns
