// Brute-force and password-spraying protection: failure windows and lockouts per
// client address, per user name and per network, shared by every worker thread.
//
//   - max_failures "10/10m": 10 failed logins from one address (an IPv6 client counts
//     as its /64, which one host usually owns whole) or for one user name within 10
//     minutes lock that address or name out for `lockout`. Counted over an exact
//     sliding window (the last N failure times), so "10/10m" means exactly that.
//   - An AUTH turned away with 454 because the hashing queue was full counts as a
//     failure of the address (not of the user name), unless the address is known good.
//   - spray_max_users "20/1h": 20 distinct user names failing from one /24 (IPv6 /48)
//     within an hour lock the whole network out for `spray_lockout`, the way Mailu
//     does. An address with a successful login within `spray_exemption` is exempt
//     from network lockouts, and its failures do not count towards them.
//
// Unknown user names are counted like known ones, so a lockout never tells whether a
// name exists. A success clears nothing: neither an address's lockout nor its failure
// count (else one valid account would let a bot reset its counter at will). State is
// bounded (util::ShardedTable) and lives in the Runtime, so it survives a reload.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "util/clock.hpp"
#include "util/sharded_table.hpp"

namespace portcullis::auth {

enum class LockScope { none, address, user, network };
std::string_view scope_name(LockScope scope);  // "none", "address", "user", "network"

struct GuardSettings {
    config::Rate max_failures;  // count 0 = off
    config::Duration lockout{};
    config::Rate spray_max_users;  // count 0 = off
    config::Duration spray_lockout{};
    config::Duration spray_exemption{};
    static GuardSettings from(const config::AuthConfig& auth);
};

// A lockout that began with the failure just recorded (reported exactly once).
struct LockoutStarted {
    LockScope scope = LockScope::none;
    std::string key;  // the address, "network/prefix" or user name
    config::Duration duration{};
    std::uint64_t failures = 0;  // failures (or distinct names) that triggered it
};

class LoginGuard {
  public:
    explicit LoginGuard(const util::Clock& clock, std::size_t max_entries = 1u << 16);

    // The lockout that refuses a login of `user` from `ip` now, or LockScope::none.
    LockScope locked(std::string_view ip, std::string_view user, const GuardSettings& s) const;
    // Counts one failed login and returns the lockouts it started. A failure that
    // lands while a lockout already runs (a verification that was in flight) starts
    // nothing and does not prolong it.
    std::vector<LockoutStarted> record_failure(std::string_view ip, std::string_view user,
                                               const GuardSettings& s);
    // Counts an attempt turned away because too many verifications were pending (454)
    // against the address alone, unless it is known_good(): a bot hammering AUTH
    // while the hashing queue is full is locked out like one that guesses wrong.
    std::vector<LockoutStarted> record_busy(std::string_view ip, const GuardSettings& s);
    // Remembers a successful login from `ip`, exempting it from network lockouts.
    void record_success(std::string_view ip, const GuardSettings& s);
    // True when `ip` logged in successfully within spray_exemption.
    bool known_good(std::string_view ip) const;

  private:
    struct Window {  // failure times within the window, oldest first
        std::vector<util::Clock::time_point> failures;
        util::Clock::time_point locked_until{};
        util::Clock::time_point forget_at{};
        bool idle(util::Clock::time_point now) const { return now >= forget_at; }
    };
    struct Network {  // distinct failing names (keyed hashes) and when each last failed
        std::vector<std::pair<std::uint64_t, util::Clock::time_point>> names;
        util::Clock::time_point locked_until{};
        util::Clock::time_point forget_at{};
        bool idle(util::Clock::time_point now) const { return now >= forget_at; }
    };
    struct Success {
        util::Clock::time_point exempt_until{};
        bool idle(util::Clock::time_point now) const { return now >= exempt_until; }
    };

    bool exempt(std::string_view address, util::Clock::time_point now) const;
    std::vector<LockoutStarted> count(util::ShardedTable<Window>& table, LockScope scope,
                                      std::string_view key, const GuardSettings& s,
                                      util::Clock::time_point now);
    std::uint64_t name_hash(std::string_view user) const;

    const util::Clock& clock_;
    std::array<unsigned char, 16> name_key_{};
    util::ShardedTable<Window> addresses_;
    util::ShardedTable<Window> users_;
    util::ShardedTable<Network> networks_;
    util::ShardedTable<Success> successes_;
};

// The key an address is counted under: IPv4 as is ("192.0.2.7"), IPv6 as its /64
// ("2001:db8:1:2::/64"), an IPv4-mapped IPv6 address as the IPv4 address. Text that
// is not an address is returned unchanged.
std::string address_key(std::string_view ip);
// The network for spraying: "192.0.2.0/24" or "2001:db8:1::/48".
std::string network_key(std::string_view ip);

}  // namespace portcullis::auth
