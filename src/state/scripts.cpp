#include "state/scripts.hpp"

#include <openssl/sha.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>

namespace portcullis::state {

namespace {

// Token bucket, the same arithmetic as policy::TokenBucket: capacity N, refilled at N
// per period, a new bucket starts full. Returns {allowed, never, retry_after_s}.
// KEYS[1] bucket; ARGV capacity, period_ms, cost, commit.
constexpr std::string_view kRateLua = R"lua(
local cap = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
if cost > cap then return {0, 1, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local speed = cap / per
local s = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(s[1])
local updated = tonumber(s[2])
if tokens == nil or updated == nil then
  tokens = cap
  updated = now
end
if now > updated then
  tokens = tokens + (now - updated) * speed
  updated = now
end
if tokens > cap then tokens = cap end
if tokens + 1e-9 >= cost then
  if ARGV[4] == '1' then
    tokens = math.max(0, tokens - cost)
    redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'updated', updated)
    redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) / speed) + 1000)
  end
  return {1, 0, 0}
end
local wait = math.ceil((cost - tokens) / speed / 1000 - 1e-9)
if wait < 1 then wait = 1 end
return {0, 0, wait}
)lua";

// KEYS lock:addr, lock:user, lock:net, good:addr; ARGV failures_on, spray_on.
// Returns {scope, known_good}: scope 0 none, 1 address, 2 user, 3 network.
constexpr std::string_view kCheckLua = R"lua(
local good = redis.call('EXISTS', KEYS[4])
if ARGV[1] == '1' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return {1, good} end
  if redis.call('EXISTS', KEYS[2]) == 1 then return {2, good} end
end
if ARGV[2] == '1' and good == 0 and redis.call('EXISTS', KEYS[3]) == 1 then return {3, good} end
return {0, good}
)lua";

// The exact sliding windows of auth::LoginGuard::record_failure / record_busy.
// KEYS fail:addr, lock:addr, fail:user, lock:user, spray:net, lock:net, good:addr.
// ARGV max_count, per_ms, lockout_ms, spray_count, spray_per_ms, spray_lockout_ms,
//      name_id, nonce, busy. Returns pairs {scope, count} of the lockouts started.
constexpr std::string_view kFailureLua = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local function count(win, lock, scope)
  if redis.call('EXISTS', lock) == 1 then return end
  local per = tonumber(ARGV[2])
  redis.call('ZREMRANGEBYSCORE', win, '-inf', now - per)
  redis.call('ZADD', win, now, now .. ':' .. ARGV[8])
  redis.call('PEXPIRE', win, per)
  local n = redis.call('ZCARD', win)
  if n >= tonumber(ARGV[1]) then
    redis.call('DEL', win)
    redis.call('SET', lock, '1', 'PX', ARGV[3])
    table.insert(out, scope)
    table.insert(out, n)
  end
end
local good = redis.call('EXISTS', KEYS[7]) == 1
local failures_on = tonumber(ARGV[1]) > 0
if ARGV[9] == '1' then
  if failures_on and not good then count(KEYS[1], KEYS[2], 1) end
  return out
end
if failures_on then
  count(KEYS[1], KEYS[2], 1)
  count(KEYS[3], KEYS[4], 2)
end
if tonumber(ARGV[4]) > 0 and not good and redis.call('EXISTS', KEYS[6]) == 0 then
  local per = tonumber(ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - per)
  redis.call('ZADD', KEYS[5], now, ARGV[7])
  redis.call('PEXPIRE', KEYS[5], per)
  local n = redis.call('ZCARD', KEYS[5])
  if n >= tonumber(ARGV[4]) then
    redis.call('DEL', KEYS[5])
    redis.call('SET', KEYS[6], '1', 'PX', ARGV[6])
    table.insert(out, 3)
    table.insert(out, n)
  end
end
return out
)lua";

std::string sha1_hex(std::string_view text) {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const unsigned char b : digest) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

// Milliseconds, at least 1 (PX 0 is an error in Redis).
std::string ms_arg(config::Duration d) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return std::to_string(std::max<std::int64_t>(1, ms));
}

std::string prefixed(std::string_view prefix, std::string_view kind, std::string_view id) {
    std::string key(prefix);
    key += kind;
    key += id;
    return key;
}

auth::LockScope scope_of(std::int64_t code) {
    switch (code) {
        case 1:
            return auth::LockScope::address;
        case 2:
            return auth::LockScope::user;
        case 3:
            return auth::LockScope::network;
        default:
            return auth::LockScope::none;
    }
}

}  // namespace

const Script& rate_script() {
    static const Script script{"rate", kRateLua, sha1_hex(kRateLua)};
    return script;
}

const Script& check_script() {
    static const Script script{"check", kCheckLua, sha1_hex(kCheckLua)};
    return script;
}

const Script& failure_script() {
    static const Script script{"failure", kFailureLua, sha1_hex(kFailureLua)};
    return script;
}

std::vector<std::string> eval_argv(const Call& call, bool by_body) {
    if (call.script == nullptr) {
        return call.args;
    }
    std::vector<std::string> argv;
    argv.reserve(3 + call.keys.size() + call.args.size());
    argv.emplace_back(by_body ? "EVAL" : "EVALSHA");
    argv.emplace_back(by_body ? std::string(call.script->body) : call.script->sha1);
    argv.push_back(std::to_string(call.keys.size()));
    argv.insert(argv.end(), call.keys.begin(), call.keys.end());
    argv.insert(argv.end(), call.args.begin(), call.args.end());
    return argv;
}

std::string user_id(std::string_view name) {
    unsigned char out[16];
    crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(name.data()),
                       name.size(), nullptr, 0);
    static constexpr char hex[] = "0123456789abcdef";
    std::string text;
    for (const unsigned char b : out) {
        text += hex[b >> 4];
        text += hex[b & 15];
    }
    return text;
}

Call rate_call(std::string_view prefix, std::string_view user, policy::Limit limit,
               const config::Rate& rate, std::uint64_t cost, bool commit) {
    std::string kind = "rate:";
    kind += policy::limit_name(limit);
    kind += ':';
    return {
        &rate_script(),
        {prefixed(prefix, kind, user_id(user))},
        {std::to_string(rate.count), ms_arg(rate.per), std::to_string(cost), commit ? "1" : "0"}};
}

policy::RateDecision decode_rate(std::span<const std::int64_t> answer) {
    if (answer.size() < 3 || answer[0] == 1) {
        return {};
    }
    if (answer[1] == 1) {
        return {false, true, std::chrono::seconds(0)};
    }
    return {false, false, std::chrono::seconds(std::max<std::int64_t>(1, answer[2]))};
}

Call check_call(std::string_view prefix, std::string_view ip, std::string_view user,
                const auth::GuardSettings& s) {
    const std::string address = auth::address_key(ip);
    return {
        &check_script(),
        {prefixed(prefix, "lock:addr:", address), prefixed(prefix, "lock:user:", user_id(user)),
         prefixed(prefix, "lock:net:", auth::network_key(ip)), prefixed(prefix, "good:", address)},
        {s.max_failures.unlimited() ? "0" : "1", s.spray_max_users.unlimited() ? "0" : "1"}};
}

LoginCheck decode_check(std::span<const std::int64_t> answer) {
    if (answer.size() < 2) {
        return {};
    }
    return {scope_of(answer[0]), answer[1] == 1};
}

Call failure_call(std::string_view prefix, std::string_view ip, std::string_view user,
                  const auth::GuardSettings& s, bool busy, std::string_view nonce) {
    const std::string address = auth::address_key(ip);
    const std::string network = auth::network_key(ip);
    const std::string uid = user_id(user);
    return {&failure_script(),
            {prefixed(prefix, "fail:addr:", address), prefixed(prefix, "lock:addr:", address),
             prefixed(prefix, "fail:user:", uid), prefixed(prefix, "lock:user:", uid),
             prefixed(prefix, "spray:", network), prefixed(prefix, "lock:net:", network),
             prefixed(prefix, "good:", address)},
            {std::to_string(s.max_failures.count), ms_arg(s.max_failures.per), ms_arg(s.lockout),
             std::to_string(s.spray_max_users.count), ms_arg(s.spray_max_users.per),
             ms_arg(s.spray_lockout), uid, std::string(nonce), busy ? "1" : "0"}};
}

std::vector<auth::LockoutStarted> decode_failure(std::span<const std::int64_t> answer,
                                                 std::string_view ip, std::string_view user,
                                                 const auth::GuardSettings& s) {
    std::vector<auth::LockoutStarted> started;
    for (std::size_t i = 0; i + 1 < answer.size(); i += 2) {
        const auth::LockScope scope = scope_of(answer[i]);
        const auto failures = static_cast<std::uint64_t>(std::max<std::int64_t>(0, answer[i + 1]));
        switch (scope) {
            case auth::LockScope::address:
                started.push_back({scope, auth::address_key(ip), s.lockout, failures});
                break;
            case auth::LockScope::user:
                started.push_back({scope, std::string(user), s.lockout, failures});
                break;
            case auth::LockScope::network:
                started.push_back({scope, auth::network_key(ip), s.spray_lockout, failures});
                break;
            case auth::LockScope::none:
                break;
        }
    }
    return started;
}

Call success_call(std::string_view prefix, std::string_view ip, const auth::GuardSettings& s) {
    if (s.spray_exemption.count() == 0) {
        return {};
    }
    return {nullptr,
            {},
            {"SET", prefixed(prefix, "good:", auth::address_key(ip)), "1", "PX",
             ms_arg(s.spray_exemption)}};
}

}  // namespace portcullis::state
