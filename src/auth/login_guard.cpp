#include "auth/login_guard.hpp"

#include <arpa/inet.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace portcullis::auth {

namespace {

using TimePoint = util::Clock::time_point;

// "IPv4" or "IPv6/prefix" text for the first `bits` of an address; `v4_bits` and
// `v6_bits` say how much of each family to keep.
std::string prefix_key(std::string_view ip, int v4_bits, int v6_bits) {
    const std::string text(ip);
    in6_addr v6{};
    in_addr v4{};
    bool is_v4 = inet_pton(AF_INET, text.c_str(), &v4) == 1;
    if (!is_v4) {
        if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) {
            return text;
        }
        if (IN6_IS_ADDR_V4MAPPED(&v6)) {
            std::memcpy(&v4, v6.s6_addr + 12, 4);
            is_v4 = true;
        }
    }
    std::array<char, INET6_ADDRSTRLEN> out{};
    if (is_v4) {
        if (v4_bits < 32) {
            const std::uint32_t mask = v4_bits == 0 ? 0 : ~std::uint32_t{0} << (32 - v4_bits);
            v4.s_addr = htonl(ntohl(v4.s_addr) & mask);
        }
        inet_ntop(AF_INET, &v4, out.data(), out.size());
        return v4_bits < 32 ? std::string(out.data()) + "/" + std::to_string(v4_bits)
                            : std::string(out.data());
    }
    for (int i = 0; i < 16; ++i) {
        const int keep = std::clamp(v6_bits - i * 8, 0, 8);
        v6.s6_addr[i] &= static_cast<unsigned char>(0xff00u >> keep);
    }
    inet_ntop(AF_INET6, &v6, out.data(), out.size());
    return std::string(out.data()) + "/" + std::to_string(v6_bits);
}

template <class Duration>
TimePoint later(TimePoint now, Duration d) {
    return now + std::chrono::duration_cast<util::Clock::duration>(d);
}

}  // namespace

std::string address_key(std::string_view ip) {
    return prefix_key(ip, 32, 64);
}

std::string network_key(std::string_view ip) {
    return prefix_key(ip, 24, 48);
}

std::string_view scope_name(LockScope scope) {
    switch (scope) {
        case LockScope::none:
            return "none";
        case LockScope::address:
            return "address";
        case LockScope::user:
            return "user";
        case LockScope::network:
            return "network";
    }
    return "none";
}

GuardSettings GuardSettings::from(const config::AuthConfig& auth) {
    return {auth.max_failures, auth.lockout, auth.spray_max_users, auth.spray_lockout,
            auth.spray_exemption};
}

LoginGuard::LoginGuard(const util::Clock& clock, std::size_t max_entries)
    : clock_(clock),
      addresses_(max_entries),
      users_(max_entries),
      networks_(max_entries / 4 > 0 ? max_entries / 4 : 1),
      successes_(max_entries) {
    randombytes_buf(name_key_.data(), name_key_.size());
}

std::uint64_t LoginGuard::name_hash(std::string_view user) const {
    static_assert(crypto_shorthash_KEYBYTES == 16 && crypto_shorthash_BYTES == 8);
    std::array<unsigned char, 8> out{};
    crypto_shorthash(out.data(), reinterpret_cast<const unsigned char*>(user.data()), user.size(),
                     name_key_.data());
    std::uint64_t v = 0;
    std::memcpy(&v, out.data(), sizeof v);
    return v;
}

bool LoginGuard::exempt(std::string_view address, TimePoint now) const {
    return successes_.inspect(
        address, [now](const Success* s) { return s != nullptr && now < s->exempt_until; });
}

LockScope LoginGuard::locked(std::string_view ip, std::string_view user,
                             const GuardSettings& s) const {
    const TimePoint now = clock_.now();
    const std::string address = address_key(ip);
    // A limit turned off by a reload lifts the lockouts it had started.
    if (!s.max_failures.unlimited()) {
        auto running = [now](const Window* w) { return w != nullptr && now < w->locked_until; };
        if (addresses_.inspect(address, running)) {
            return LockScope::address;
        }
        if (users_.inspect(user, running)) {
            return LockScope::user;
        }
    }
    if (!s.spray_max_users.unlimited()) {
        const bool network_locked = networks_.inspect(network_key(ip), [now](const Network* n) {
            return n != nullptr && now < n->locked_until;
        });
        if (network_locked && !exempt(address, now)) {
            return LockScope::network;
        }
    }
    return LockScope::none;
}

std::vector<LockoutStarted> LoginGuard::count(util::ShardedTable<Window>& table, LockScope scope,
                                              std::string_view key, const GuardSettings& s,
                                              TimePoint now) {
    std::vector<LockoutStarted> started;
    if (s.max_failures.unlimited()) {
        return started;
    }
    table.update(key, now, [&](Window& w) {
        if (now < w.locked_until) {
            return;  // already locked: neither counted nor prolonged
        }
        const TimePoint horizon =
            now - std::chrono::duration_cast<util::Clock::duration>(s.max_failures.per);
        std::erase_if(w.failures, [horizon](TimePoint t) { return t <= horizon; });
        w.failures.push_back(now);
        w.forget_at = later(now, s.max_failures.per);
        if (w.failures.size() >= s.max_failures.count) {
            started.push_back({scope, std::string(key), s.lockout, w.failures.size()});
            w.failures.clear();
            w.locked_until = later(now, s.lockout);
            w.forget_at = std::max(w.forget_at, w.locked_until);
        }
    });
    return started;
}

std::vector<LockoutStarted> LoginGuard::record_failure(std::string_view ip, std::string_view user,
                                                       const GuardSettings& s) {
    const TimePoint now = clock_.now();
    const std::string address = address_key(ip);
    std::vector<LockoutStarted> started = count(addresses_, LockScope::address, address, s, now);
    auto by_user = count(users_, LockScope::user, user, s, now);
    started.insert(started.end(), by_user.begin(), by_user.end());
    if (s.spray_max_users.unlimited() || exempt(address, now)) {
        return started;
    }
    const std::string network = network_key(ip);
    const std::uint64_t name = name_hash(user);
    networks_.update(network, now, [&](Network& n) {
        if (now < n.locked_until) {
            return;
        }
        const TimePoint horizon =
            now - std::chrono::duration_cast<util::Clock::duration>(s.spray_max_users.per);
        std::erase_if(n.names, [horizon](const auto& e) { return e.second <= horizon; });
        auto it = std::find_if(n.names.begin(), n.names.end(),
                               [name](const auto& e) { return e.first == name; });
        if (it != n.names.end()) {
            it->second = now;
        } else {
            n.names.emplace_back(name, now);
        }
        n.forget_at = later(now, s.spray_max_users.per);
        if (n.names.size() >= s.spray_max_users.count) {
            started.push_back({LockScope::network, network, s.spray_lockout, n.names.size()});
            n.names.clear();
            n.locked_until = later(now, s.spray_lockout);
            n.forget_at = std::max(n.forget_at, n.locked_until);
        }
    });
    return started;
}

std::vector<LockoutStarted> LoginGuard::record_busy(std::string_view ip, const GuardSettings& s) {
    const TimePoint now = clock_.now();
    const std::string address = address_key(ip);
    if (exempt(address, now)) {
        return {};
    }
    return count(addresses_, LockScope::address, address, s, now);
}

bool LoginGuard::known_good(std::string_view ip) const {
    return exempt(address_key(ip), clock_.now());
}

void LoginGuard::record_success(std::string_view ip, const GuardSettings& s) {
    if (s.spray_exemption.count() == 0) {
        return;
    }
    const TimePoint now = clock_.now();
    successes_.update(address_key(ip), now,
                      [&](Success& e) { e.exempt_until = later(now, s.spray_exemption); });
}

}  // namespace portcullis::auth
