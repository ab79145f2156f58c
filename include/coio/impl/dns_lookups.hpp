// coio/impl/dns_lookups.hpp - the three kinds of c-ares lookups coio makes: ares_getaddrinfo,
// ares_getnameinfo and ares_query, each a lookup_op living in the awaiting coroutine frame.
// Not API.
//
// Contract: c-ares calls back with the channel's pooled `request`, never the op. When the
// op went away (cancelled, expired), request->op is null and the callback frees only what
// c-ares handed over; then it gives the request back with channel::finish.
#pragma once

#include <coio/endpoint.hpp>
#include <coio/impl/dns_channel.hpp>

#include <ares.h>
#include <netdb.h>

#include <cstring>
#include <string>
#include <exception>

namespace coio::detail::dns {

/// ares_getaddrinfo. The result stays owned by the op (freed by its destructor).
/// For call graphs: the name a lookup asks for.
template <class Op>
void name_detail(const cancel_hook* h, wait_info& w) {
    if (const char* n = static_cast<const Op*>(h)->name) w.detail = std::string("'") + n + "'";
}

struct addrinfo_op final : lookup_op {
    addrinfo_op(channel& c, const char* n, const ares_addrinfo_hints& h) noexcept : lookup_op(c), name(n), hints(h) {
        submit = &submit_fn;
        weight = h.ai_family == AF_UNSPEC ? 2 : 1;  // A and AAAA go out together
        inspect = &name_detail<addrinfo_op>;
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
        inspect = &name_detail<query_op>;
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

} // namespace coio::detail::dns
