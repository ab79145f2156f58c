// coio/server.hpp - coio::server, start_server and start_unix_server (asyncio.Server).
//
//   coio::coro<void> handle(coio::stream_reader reader, coio::stream_writer writer) {
//       while (auto data = co_await reader.read(65536); !data.empty()) {
//           writer.write(data);
//           co_await writer.drain();
//       }
//   }
//   auto srv = co_await coio::start_server(handle, "127.0.0.1", 8888);
//   co_await srv.serve_forever();
#pragma once

#include <coio/coro.hpp>
#include <coio/detail/handle_counted.hpp>
#include <coio/impl/net_service.hpp>
#include <coio/impl/stream_state.hpp>
#include <coio/loop.hpp>
#include <coio/socket.hpp>
#include <coio/streams.hpp>
#include <coio/task.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace coio {

/// Options of start_server / start_unix_server (keyword arguments in asyncio).
/// Example: `co_await coio::start_server(cb, "127.0.0.1", 0, {.backlog = 1024, .reuse_port = true});`
struct server_options {
    /// Buffer limit of each connection's reader (see stream_options::limit).
    std::size_t limit = 64 * 1024;
    /// Length of the accept queue (asyncio's default: 100).
    int backlog = 100;
    /// SO_REUSEADDR on the listening sockets (asyncio's default on Unix: true).
    bool reuse_address = true;
    /// SO_REUSEPORT: several listening sockets (one per thread/loop) share the port and the
    /// kernel spreads connections over them: thread-per-core servers.
    bool reuse_port = false;
    /// Address family for host names or an empty host: AF_UNSPEC (both), AF_INET, AF_INET6.
    int family = AF_UNSPEC;
    /// See stream_options::write_high_water.
    std::size_t write_high_water = 64 * 1024;
    /// See stream_options::write_low_water.
    std::optional<std::size_t> write_low_water = std::nullopt;
    /// TCP_NODELAY on accepted connections.
    bool nodelay = true;
    /// See stream_options::multishot_recv.
    bool multishot_recv = true;
};

/// What a server calls for each connection: `coro<void>(stream_reader, stream_writer)`.
using client_connected_callback = std::function<coro<void>(stream_reader, stream_writer)>;

namespace detail {

class server_state;

/// A running connection handler, linked into its server (one small allocation per
/// connection, freed when the handler's frame is destroyed).
struct handler_slot {
    handler_slot* prev = nullptr;
    handler_slot* next = nullptr;
    any_task task;
};

class server_state final : public io_owner, public handle_counted<server_state> {
public:
    server_state(net_service& svc, std::vector<socket> socks, client_connected_callback cb, stream_config cfg, bool nodelay)
        : svc_(&svc), loop_(&svc.loop()), sockets_(std::move(socks)), cb_(std::move(cb)), cfg_(cfg), nodelay_(nodelay) {
        nops_ = sockets_.size();
        ops_ = std::make_unique<accept_op[]>(nops_);
        for (std::size_t i = 0; i < nops_; ++i) {
            ops_[i].self = this;
            ops_[i].index = i;
            ops_[i].complete = &server_state::on_accept;
            ops_[i].retry.self = this;
            ops_[i].retry.index = i;
            ops_[i].retry.on_expire = &server_state::on_retry;
        }
        svc_->add(this);
    }
    server_state(const server_state&) = delete;
    server_state& operator=(const server_state&) = delete;
    ~server_state() {
        cancel_retries();
        if (svc_) svc_->remove(this);
    }

    void start() {
        serving_ = true;
        for (std::size_t i = 0; i < sockets_.size(); ++i) arm(i);
    }

    /// Empty once the listeners are closed.
    [[nodiscard]] const std::vector<socket>& sockets() const noexcept { return sockets_; }
    [[nodiscard]] bool is_serving() const noexcept { return serving_ && !closing_; }
    [[nodiscard]] bool is_closing() const noexcept { return closing_; }
    [[nodiscard]] bool fully_closed() const noexcept { return listeners_closed_ && active_ == 0; }
    [[nodiscard]] std::size_t active_connections() const noexcept { return active_; }
    [[nodiscard]] waiter_list& closed_waiters() noexcept { return closed_waiters_; }
    [[nodiscard]] waiter_list& serve_waiters() noexcept { return serve_waiters_; }

    /// Stops accepting, closes the listening sockets (once their accepts are cancelled) and
    /// cancels every connection handler. Idempotent.
    void close() noexcept {
        if (closing_) return;
        closing_ = true;
        serving_ = false;
        cancel_retries();
        for (std::size_t i = 0; i < sockets_.size(); ++i) {
            if (ops_[i].armed && !ops_[i].cancel_sent) {
                ops_[i].cancel_sent = true;
                submit_cancel(&ops_[i]);
            }
        }
        for (handler_slot* s = handlers_; s; s = s->next)
            if (s->task) s->task.cancel();
        serve_waiters_.wake_all(wait_status::granted);
        maybe_close_listeners();
    }

    // ---- io_owner ----
    void abort() noexcept override { close(); }
    void detach() noexcept override {
        cancel_retries();
        svc_ = nullptr;
        loop_ = nullptr;
        closing_ = true;
        serving_ = false;
        sockets_.clear();
        listeners_closed_ = true;
    }

    // ---- handlers ----
    /// Moves with the handler's frame; unlinks the slot when the frame is destroyed.
    class handler_guard {
    public:
        handler_guard(server_state* s, handler_slot* slot) noexcept : srv_(s), slot_(slot) { srv_->add_ref(); }
        handler_guard(handler_guard&& o) noexcept : srv_(std::exchange(o.srv_, nullptr)), slot_(std::exchange(o.slot_, nullptr)) {}
        handler_guard(const handler_guard&) = delete;
        handler_guard& operator=(const handler_guard&) = delete;
        ~handler_guard() {
            if (srv_) {
                srv_->handler_done(slot_);
                srv_->release();
            }
        }
        [[nodiscard]] server_state* server() const noexcept { return srv_; }

    private:
        server_state* srv_;
        handler_slot* slot_;
    };

    static coro<void> run_handler(handler_guard guard, stream_reader r, stream_writer w) {
        server_state* srv = guard.server();
        coro<void> c = srv->cb_(std::move(r), std::move(w));
        try {
            co_await std::move(c);
        } catch (const cancelled_error&) {
            throw;  // the handler was cancelled (server closed): the task ends cancelled
        } catch (...) {
            // asyncio logs an exception escaping client_connected_cb and closes the
            // connection; the handler's reader and writer are gone by now, so it is closed.
            if (srv->loop_)
                srv->loop_->call_exception_handler({"Unhandled exception in client_connected_cb", std::current_exception(), {}, {}});
        }
    }

private:
    /// The delayed re-arm of one listener's accept (intrusive: no allocation, and close()
    /// takes it off the loop's timers, so it never outlives the server).
    struct retry_timer : timer_node {
        server_state* self = nullptr;
        std::size_t index = 0;
    };
    struct accept_op : operation {
        server_state* self = nullptr;
        std::size_t index = 0;
        bool armed = false;
        bool cancel_sent = false;
        retry_timer retry;
        // Resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM): one episode from the first
        // failure to the next accepted connection. Logged once at each end, retried with a
        // doubling delay in between (a failing accept leaves the connection queued in the
        // backlog, so nothing is lost by waiting).
        std::chrono::milliseconds retry_delay{0};  // 0: no episode
        unsigned failures = 0;                      // failed accepts in this episode
        double episode_start = 0;                   // loop time of the first failure
    };

    /// First and largest delay before accepting again after running out of descriptors or
    /// memory. asyncio waits a flat second and logs every attempt; doubling from 10 ms lets
    /// a short spike (a burst of connections at the descriptor limit) clear quickly, and the
    /// cap bounds the extra latency once the limit is lifted.
    static constexpr std::chrono::milliseconds first_retry_delay{10};
    static constexpr std::chrono::milliseconds max_retry_delay{1000};

    [[nodiscard]] static bool out_of_resources(int res) noexcept {
        return res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM;
    }

    static void on_retry(timer_node* n) noexcept {
        auto* t = static_cast<retry_timer*>(n);
        try {
            t->self->arm(t->index);
        } catch (...) {
            // submit failed (ring broken): this listener stops accepting, as after any
            // failure to re-arm.
        }
    }

    /// Takes every pending retry off the loop's timers (closing, or the state goes away).
    void cancel_retries() noexcept {
        if (!loop_ || !ops_) return;
        for (std::size_t i = 0; i < nops_; ++i)
            if (ops_[i].retry.queued()) loop_->remove_timer(&ops_[i].retry);
    }

    void submit_cancel(operation* op) noexcept {
        if (loop_) loop_->cancel(*op);
    }

    void arm(std::size_t i) {
        if (closing_ || !loop_ || ops_[i].armed) return;
        // One operation keeps accepting (a completion per connection) until it is cancelled.
        ops_[i].set_accept_multishot(sockets_[i].fileno(), SOCK_CLOEXEC);
        loop_->submit(ops_[i]);
        ops_[i].armed = true;
        ops_[i].cancel_sent = false;
        ++ops_in_flight;
        add_ref();
    }

    static void on_accept(operation* op, int res, unsigned flags) noexcept {
        auto* a = static_cast<accept_op*>(op);
        a->self->accepted(*a, res, flags);
    }

    // Messages to the exception handler carry no "coio: " prefix: the default handler adds
    // it (asyncio's messages are plain sentences too).
    void accepted(accept_op& a, int res, unsigned flags) noexcept {
        if (res >= 0) {
            if (a.retry_delay.count() != 0) end_retry_episode(a);
            if (closing_ || !loop_) ::close(res);
            else new_connection(res, sockets_[a.index].family());
        } else if (out_of_resources(res) && !closing_ && loop_) {
            if (a.retry_delay.count() == 0) {
                try {
                    loop_->call_exception_handler(
                        {"accept on " + describe_fd(sockets_[a.index].fileno(), false) + " failed: " + std::strerror(-res) +
                             "; retrying with back-off (up to " + std::to_string(max_retry_delay.count()) +
                             " ms) until it succeeds",
                         {}, {}, {}});
                } catch (...) {  // building the message: the episode goes on unlogged
                }
                a.retry_delay = first_retry_delay;
                a.failures = 0;
                a.episode_start = loop_->time();
            } else {
                a.retry_delay = std::min(a.retry_delay * 2, max_retry_delay);
            }
            ++a.failures;
        } else if (res != -ECANCELED && !closing_ && loop_) {
            try {
                loop_->call_exception_handler(
                    {"accept on " + describe_fd(sockets_[a.index].fileno(), false) + " failed: " + std::strerror(-res), {}, {}, {}});
            } catch (...) {
            }
        }
        if (!(flags & op_more)) {
            a.armed = false;
            --ops_in_flight;
            if (!closing_ && loop_) {
                try {
                    if (out_of_resources(res)) {
                        // Out of descriptors or memory: accept again later instead of spinning
                        // (each failure doubles the delay, up to max_retry_delay).
                        a.retry.deadline = clock::now() + a.retry_delay;
                        loop_->add_timer(&a.retry);
                    } else {
                        arm(a.index);
                    }
                } catch (...) {
                }
            }
            maybe_close_listeners();
            release();
        }
    }

    /// The first connection accepted after a resource episode: says so once.
    void end_retry_episode(accept_op& a) noexcept {
        const unsigned failures = a.failures;
        const double seconds = loop_ ? loop_->time() - a.episode_start : 0;
        a.retry_delay = std::chrono::milliseconds(0);
        a.failures = 0;
        if (!loop_ || closing_) return;
        try {
            char took[32];
            std::snprintf(took, sizeof took, "%.2f", seconds);
            loop_->call_exception_handler({"accept on " + describe_fd(sockets_[a.index].fileno(), false) +
                                               " works again after " + std::to_string(failures) + " failed attempts over " +
                                               took + " s",
                                           {}, {}, {}});
        } catch (...) {
        }
    }

    void new_connection(int fd, int family) noexcept {
        try {
            socket s = socket::adopt(fd, family, SOCK_STREAM);
            if (nodelay_ && (family == AF_INET || family == AF_INET6)) s.set_nodelay(true);
            auto* st = new stream_state(*svc_, std::move(s), cfg_);
            st->add_ref();
            stream_reader r(st);
            stream_writer w(st);
            st->release();
            auto* slot = new handler_slot;
            slot->next = handlers_;
            if (handlers_) handlers_->prev = slot;
            handlers_ = slot;
            ++active_;
            // If create_task throws, the coroutine (and the guard in it) is destroyed and
            // unlinks the slot again.
            slot->task = loop_->create_task(run_handler(handler_guard(this, slot), std::move(r), std::move(w)), "client handler");
        } catch (...) {
            loop_->call_exception_handler({"cannot set up an accepted connection", std::current_exception(), {}, {}});
        }
    }

    void handler_done(handler_slot* slot) noexcept {
        if (slot->prev) slot->prev->next = slot->next; else handlers_ = slot->next;
        if (slot->next) slot->next->prev = slot->prev;
        delete slot;
        --active_;
        if (fully_closed()) closed_waiters_.wake_all(wait_status::granted);
    }

    void maybe_close_listeners() noexcept {
        if (!closing_ || listeners_closed_ || ops_in_flight) return;
        listeners_closed_ = true;
        sockets_.clear();  // closes them (and unlinks a Unix socket's file)
        if (fully_closed()) closed_waiters_.wake_all(wait_status::granted);
    }

    net_service* svc_;
    event_loop* loop_;
    std::vector<socket> sockets_;
    std::unique_ptr<accept_op[]> ops_;
    std::size_t nops_ = 0;  // ops_ entries (sockets_ is emptied once the listeners close)
    client_connected_callback cb_;
    stream_config cfg_;
    bool nodelay_;
    handler_slot* handlers_ = nullptr;
    std::size_t active_ = 0;
    bool serving_ = false;
    bool closing_ = false;
    bool listeners_closed_ = false;
    waiter_list closed_waiters_;
    waiter_list serve_waiters_;
};

} // namespace detail

/// A listening server (asyncio.Server), made by start_server / start_unix_server.
///
/// It accepts connections (one multishot accept per listening socket) and runs the callback
/// as a task per connection, with a stream_reader and a stream_writer. The server tracks
/// those tasks: close() stops accepting, closes the listening sockets and cancels every
/// handler; wait_closed() waits until all of that is done. Destroying the last handle of a
/// server closes it.
///
/// Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM from accept), the server
/// keeps the pending connections in the listen backlog and accepts again after a delay that
/// doubles from 10 ms up to 1 s. Each such episode is reported twice through the loop's
/// exception handler: when it starts and when a connection is accepted again. Other accept
/// errors are reported one by one.
///
/// Move-only handle.
///
/// Throws: invalid_state_error from serve_forever() on a closed server.
///
/// Cancellation: serve_forever() and wait_closed() are cancellation points; cancelling
/// serve_forever() closes the server and waits for it, as asyncio does.
///
/// Example:
/// @code
///   auto srv = co_await coio::start_server(handle, "127.0.0.1", 0);
///   std::cout << "port " << srv.sockets().front().local_address().port() << '\n';
///   co_await srv.serve_forever();
/// @endcode
class server {
public:
    /// An empty server handle.
    server() noexcept = default;
    /// Internal: a handle on `s`.
    explicit server(detail::server_state* s) noexcept : s_(s) {
        if (s_) s_->add_handle();
    }
    /// Takes over `o`'s server (`o` is left empty).
    server(server&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    /// Closes this server if it owns one, then takes over `o`'s.
    server& operator=(server&& o) noexcept {
        if (this != &o) {
            reset();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    /// Closes the server if this is its last handle.
    ~server() { reset(); }

    /// The listening sockets (asyncio's `server.sockets`); empty once closed.
    /// Example: `srv.sockets().front().local_address().port()`
    [[nodiscard]] const std::vector<socket>& sockets() const noexcept {
        static const std::vector<socket> none;
        return s_ ? s_->sockets() : none;
    }
    /// True while accepting connections.
    [[nodiscard]] bool is_serving() const noexcept { return s_ && s_->is_serving(); }
    /// Connection handlers still running.
    [[nodiscard]] std::size_t active_connections() const noexcept { return s_ ? s_->active_connections() : 0; }

    /// Stops accepting, closes the listening sockets and cancels every connection handler
    /// (their streams are closed when the handlers end). Idempotent; never suspends.
    /// Example: `srv.close(); co_await srv.wait_closed();`
    void close() noexcept {
        if (s_) s_->close();
    }

    /// Waits until the server is closed: listening sockets closed and every handler finished.
    /// Returns at once when that is already the case. Cancellation: a cancellation point.
    /// Example: `co_await srv.wait_closed();`
    [[nodiscard]] coro<void> wait_closed() {
        if (!s_) co_return;
        detail::ref_ptr<detail::server_state> keep(s_);
        if (!keep->fully_closed()) co_await detail::list_wait_awaiter(keep->closed_waiters(), "server wait_closed");
    }

    /// Serves until the server is closed (by close() from another task) or this task is
    /// cancelled, which closes the server and waits for it before rethrowing.
    /// Throws: invalid_state_error if the server is already closed; cancelled_error.
    /// Example: `co_await srv.serve_forever();`
    [[nodiscard]] coro<void> serve_forever() {
        if (!s_ || s_->is_closing()) throw invalid_state_error("coio: serve_forever() on a closed server");
        detail::ref_ptr<detail::server_state> keep(s_);
        bool cancelled = false;
        try {
            co_await detail::list_wait_awaiter(keep->serve_waiters(), "server serve_forever");
        } catch (const cancelled_error&) {
            cancelled = true;
        }
        if (cancelled) {
            keep->close();
            if (!keep->fully_closed()) co_await detail::list_wait_awaiter(keep->closed_waiters(), "server wait_closed");
            throw cancelled_error();
        }
    }

private:
    void reset() noexcept {
        if (s_) std::exchange(s_, nullptr)->drop_handle();
    }
    detail::server_state* s_ = nullptr;
};

namespace detail {

inline server make_server(std::vector<socket> socks, client_connected_callback cb, const server_options& o) {
    auto cfg = make_stream_config(o.limit, o.write_high_water, o.write_low_water, o.multishot_recv);
    auto& svc = get_running_loop().service<net_service>();
    auto* st = new server_state(svc, std::move(socks), std::move(cb), cfg, o.nodelay);
    server srv(st);
    st->start();
    return srv;
}

} // namespace detail

/// Starts a TCP server (asyncio.start_server): listens on `host`:`port` and runs
/// `client_connected(reader, writer)` as a new task for every connection.
///
/// @param client_connected  a callable `coro<void>(stream_reader, stream_writer)`.
/// @param host   a numeric address ("127.0.0.1", "::1"), a name (resolved with
///               coio::getaddrinfo, every address is bound), or "" for all interfaces (IPv4
///               and IPv6, as asyncio does).
/// @param port   the port; 0 picks a free one (see server::sockets()).
/// @param options `{.limit, .backlog, .reuse_address, .reuse_port, ...}`; see server_options.
/// Returns: the serving server.
/// Throws: std::system_error naming the address (std::errc::address_in_use, ...).
/// Cancellation: not a suspension point for numeric hosts; a name lookup can be cancelled.
///
/// Example:
/// @code
///   auto srv = co_await coio::start_server(handle, "127.0.0.1", 8888, {.reuse_port = true});
///   co_await srv.serve_forever();
/// @endcode
template <class F>
[[nodiscard]] coro<server> start_server(F client_connected, std::string host, std::uint16_t port, server_options options = {}) {
    std::vector<endpoint> addrs = co_await detail::resolve_host(host, port, options.family, true);
    std::vector<socket> socks;
    for (const endpoint& ep : addrs) {
        socket s(ep.family(), SOCK_STREAM);
        if (options.reuse_address) s.set_reuse_address(true);
        if (options.reuse_port) s.set_reuse_port(true);
        if (ep.family() == AF_INET6 && addrs.size() > 1) s.set_v6only(true);  // no clash with the IPv4 socket
        s.bind(ep);
        s.listen(options.backlog);
        socks.push_back(std::move(s));
    }
    co_return detail::make_server(std::move(socks), client_connected_callback(std::move(client_connected)), options);
}

/// Starts a Unix-domain stream server (asyncio.start_unix_server).
///
/// @param client_connected  a callable `coro<void>(stream_reader, stream_writer)`.
/// @param path   the socket path; a leading '\0' names an abstract socket. A stale socket
///               file at `path` is removed first, and the file is removed when the server
///               closes (as asyncio does).
/// @param options see server_options (`reuse_*`, `family`, `nodelay` do not apply).
/// Returns: the serving server. Throws: std::system_error naming the path.
/// Cancellation: not a suspension point.
///
/// Example: `auto srv = co_await coio::start_unix_server(handle, "/tmp/app.sock");`
template <class F>
[[nodiscard]] coro<server> start_unix_server(F client_connected, std::string path, server_options options = {}) {
    socket s(AF_UNIX, SOCK_STREAM);
    const bool abstract = !path.empty() && path.front() == '\0';
    if (!abstract) {
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
    }
    s.bind_unix(path);
    if (!abstract) s.set_unlink_on_close(path);
    s.listen(options.backlog);
    std::vector<socket> socks;
    socks.push_back(std::move(s));
    co_return detail::make_server(std::move(socks), client_connected_callback(std::move(client_connected)), options);
}

} // namespace coio
