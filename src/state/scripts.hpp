// The shared-state protocol of [state] backend = "redis", without any I/O: the Lua
// scripts, the key names and arguments of each operation, and the decoding of the
// scripts' answers. Everything here is pure, so it is unit-tested without Redis; the
// scripts themselves are exercised against a real redis-server in tests/e2e.
//
// Each check is one script, so it is atomic across every gateway sharing the Redis
// server, and every key it writes has a PEXPIRE, so idle state disappears on its own.
// Time comes from the Redis server (TIME), so gateways with skewed clocks agree.
//
// Key layout (PREFIX = [state] key_prefix, default "portcullis:"):
//   PREFIX rate:KIND:UID      hash {tokens, updated}: token bucket (KIND messages|recipients|bytes)
//   PREFIX fail:addr:ADDR     sorted set of failure times (exact sliding window)
//   PREFIX lock:addr:ADDR     exists while ADDR is locked out
//   PREFIX fail:user:UID / lock:user:UID   the same per user name
//   PREFIX spray:NET          sorted set: distinct failing names (UIDs) by last failure
//   PREFIX lock:net:NET       exists while NET is locked out
//   PREFIX good:ADDR          exists while ADDR is exempt from network lockouts
// ADDR is auth::address_key (IPv6 as its /64), NET auth::network_key (/24, /48), UID a
// BLAKE2b-128 of the user name in hex: attacker-chosen names never become key text,
// and a key's length is bounded.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/login_guard.hpp"
#include "policy/rate_limiter.hpp"

namespace portcullis::state {

struct Script {
    std::string_view name;  // for logs
    std::string_view body;  // Lua
    std::string sha1;       // lower-case hex, what EVALSHA wants
};

const Script& rate_script();
const Script& check_script();
const Script& failure_script();

// One call: a script with its keys and arguments, or a plain command (script == null).
struct Call {
    const Script* script = nullptr;
    std::vector<std::string> keys;
    std::vector<std::string> args;  // for a plain command: the whole command
};

// The argv of EVALSHA (or EVAL when `by_body`) for `call`.
std::vector<std::string> eval_argv(const Call& call, bool by_body);

std::string user_id(std::string_view name);  // BLAKE2b-128 hex

// Token bucket take (or peek when !commit) of `cost` from (user, limit) of `rate`.
Call rate_call(std::string_view prefix, std::string_view user, policy::Limit limit,
               const config::Rate& rate, std::uint64_t cost, bool commit);
policy::RateDecision decode_rate(std::span<const std::int64_t> answer);

// Is a login of `user` from `ip` refused by a running lockout, and is `ip` known good?
Call check_call(std::string_view prefix, std::string_view ip, std::string_view user,
                const auth::GuardSettings& s);
struct LoginCheck {
    auth::LockScope scope = auth::LockScope::none;
    bool known_good = false;
};
LoginCheck decode_check(std::span<const std::int64_t> answer);

// Counts a failed login (or, when `busy`, a 454 against the address alone); `nonce`
// keeps two failures in the same millisecond distinct.
Call failure_call(std::string_view prefix, std::string_view ip, std::string_view user,
                  const auth::GuardSettings& s, bool busy, std::string_view nonce);
// The lockouts the failure started, with keys in the memory version's form.
std::vector<auth::LockoutStarted> decode_failure(std::span<const std::int64_t> answer,
                                                 std::string_view ip, std::string_view user,
                                                 const auth::GuardSettings& s);

// SET good:ADDR 1 PX spray_exemption; nullopt-like empty args when exemption is 0.
Call success_call(std::string_view prefix, std::string_view ip, const auth::GuardSettings& s);

}  // namespace portcullis::state
