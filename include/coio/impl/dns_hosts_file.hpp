// coio/impl/dns_hosts_file.hpp - /etc/hosts, read by coio itself for getaddrinfo and
// getnameinfo. Not API.
//
// Why coio reads the file instead of letting c-ares do it: c-ares 1.18 opens and parses it
// for every lookup, and its getnameinfo sends PTR queries for names the file knows. The
// channel is configured for DNS only (lookups "b"), and the loop's dns_service keeps one
// cached hosts_file.
#pragma once

#include <coio/detail/core.hpp>
#include <coio/endpoint.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <bitset>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace coio::detail::dns {

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

} // namespace coio::detail::dns
