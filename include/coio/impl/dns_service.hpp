// coio/impl/dns_service.hpp - the per-loop DNS service: owns every c-ares channel of one
// loop and the loop's /etc/hosts cache. Not API.
//
// Contracts:
//  * Created by loop.service<dns_service>() on first use; one per loop.
//  * loop.close() (shutdown) ends every lookup and destroys every channel after all tasks
//    finished; resolver objects forget their channel then, so they never touch this loop
//    again.
//  * A channel's memory is freed only once its polls drained, or when the service itself is
//    destroyed, which happens after the ring is gone (event_loop::close): the kernel never
//    completes into freed memory.
#pragma once

#include <coio/detail/loop_service.hpp>
#include <coio/errors.hpp>
#include <coio/impl/dns_channel.hpp>
#include <coio/impl/dns_hosts_file.hpp>
#include <coio/loop.hpp>
#include <coio/resolver_options.hpp>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace coio::detail::dns {

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
        if (ch->drained()) {
            reap(ch);
        } else {
            ch->on_drained = [](channel* c) noexcept { c->service().reap(c); };
        }
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

} // namespace coio::detail::dns
