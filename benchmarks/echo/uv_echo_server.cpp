// Echo server written the plain libuv way (epoll underneath): the reference row for "an
// event-loop library over epoll" in run.sh, next to Asio's epoll reactor.
//
// Each connection reads into a buffer libuv asks us for (64 KiB, as the other servers use),
// and echoes it with uv_write; reading pauses while a write is in flight, so memory stays
// bounded the way the coroutine servers' read-write loops are. SIGTERM/SIGINT print
// getrusage as "server_cpu_s=..." and stop the loop.
//
// Usage: uv_echo_server --port P
#include "uring_util.hpp"

#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

namespace {

struct connection {
    uv_tcp_t tcp;
    uv_write_t write;
    char buf[64 * 1024];
    bool reading = false;
};

std::set<connection*> g_connections;
uv_tcp_t g_listener;

void on_close(uv_handle_t* h) {
    auto* c = static_cast<connection*>(h->data);
    g_connections.erase(c);
    delete c;
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*);

void on_alloc(uv_handle_t* h, size_t, uv_buf_t* out) {
    auto* c = static_cast<connection*>(h->data);
    *out = uv_buf_init(c->buf, sizeof c->buf);
}

void on_written(uv_write_t* w, int status) {
    auto* c = static_cast<connection*>(w->data);
    if (status < 0) {
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp)))
            uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_close);
        return;
    }
    c->reading = true;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
    auto* c = static_cast<connection*>(s->data);
    if (n < 0) {
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(s))) uv_close(reinterpret_cast<uv_handle_t*>(s), on_close);
        return;
    }
    if (n == 0) return;
    // One write at a time from the connection's buffer: stop reading until it is done.
    uv_read_stop(s);
    c->reading = false;
    uv_buf_t b = uv_buf_init(c->buf, static_cast<unsigned>(n));
    c->write.data = c;
    uv_write(&c->write, s, &b, 1, on_written);
}

void on_connection(uv_stream_t* server, int status) {
    if (status < 0) return;
    auto* c = new connection;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_close);
        return;
    }
    g_connections.insert(c);
    uv_tcp_nodelay(&c->tcp, 1);
    c->reading = true;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
}

uv_signal_t g_term, g_intr;

// Closes every handle, so that uv_run returns.
void on_signal(uv_signal_t*, int) {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&g_listener))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(&g_listener), nullptr);
    for (connection* c : std::set<connection*>(g_connections))
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp)))
            uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&g_term), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&g_intr), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
    const unsigned port = echo_bench::parse_port_only(argc, argv, "uv_echo_server");
    uv_loop_t* loop = uv_default_loop();
    uv_tcp_init(loop, &g_listener);
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", static_cast<int>(port), &addr);
    if (int r = uv_tcp_bind(&g_listener, reinterpret_cast<const sockaddr*>(&addr), 0); r != 0) {
        std::fprintf(stderr, "uv_echo_server: bind: %s\n", uv_strerror(r));
        return 1;
    }
    if (int r = uv_listen(reinterpret_cast<uv_stream_t*>(&g_listener), SOMAXCONN, on_connection); r != 0) {
        std::fprintf(stderr, "uv_echo_server: listen: %s\n", uv_strerror(r));
        return 1;
    }
    uv_signal_init(loop, &g_term);
    uv_signal_init(loop, &g_intr);
    uv_signal_start(&g_term, on_signal, SIGTERM);
    uv_signal_start(&g_intr, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    echo_bench::print_rusage();
    return 0;
}
