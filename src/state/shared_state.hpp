// Where a session's rate limits and login lockouts are decided: in this process
// ([state] backend = "memory") or in Redis, shared by every gateway ("redis").
//
// One SharedState per worker loop, with at most one Redis connection. Every answer
// comes through a callback; with "memory" (and when falling back) the callback runs
// before the call returns, with "redis" on a later loop turn. When Redis fails or
// misses the deadline, on_state_error decides: "local" answers from the in-process
// tables (the same ones "memory" uses), "fail-closed" answers nullopt and the session
// refuses the operation with 451 4.3.0. Failed logins are always counted somewhere:
// locally when Redis cannot take them. The credential cache stays in-process.
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "auth/login_guard.hpp"
#include "config/config.hpp"
#include "policy/rate_limiter.hpp"
#include "state/redis_link.hpp"
#include "state/scripts.hpp"

namespace portcullis::state {

// Process-wide counters for the metrics endpoint (read with relaxed loads).
struct Stats {
    std::atomic<std::uint64_t> outages{0};    // times Redis became unavailable
    std::atomic<std::uint64_t> errors{0};     // calls Redis did not answer in time
    std::atomic<std::uint64_t> fallbacks{0};  // of those, answered from local state
    std::atomic<std::uint64_t> refusals{0};   // of those, refused (fail-closed)
    std::atomic<bool> available{true};        // false during an outage
};
Stats& stats();

class SharedState {
  public:
    using RateDone = std::function<void(std::optional<policy::RateDecision>)>;
    using CheckDone = std::function<void(std::optional<LoginCheck>)>;
    using FailureDone = std::function<void(std::vector<auth::LockoutStarted>)>;

    SharedState(uv_loop_t* loop, policy::RateLimiter& local_rates, auth::LoginGuard& local_logins);
    ~SharedState();
    SharedState(const SharedState&) = delete;
    SharedState& operator=(const SharedState&) = delete;

    // Connects ahead of the first session when `cfg` uses Redis.
    void warm_up(const config::StateConfig& cfg) { link(cfg); }

    // Takes `cost` from (user, limit) or, when !commit, says whether it would fit.
    void take(const config::StateConfig& cfg, std::string_view user, policy::Limit limit,
              const config::Rate& rate, std::uint64_t cost, bool commit, RateDone done);
    // The lockout that refuses `user` from `ip`, and whether `ip` is known good.
    void check(const config::StateConfig& cfg, std::string_view ip, std::string_view user,
               const auth::GuardSettings& guard, CheckDone done);
    // A failed login (or, when `busy`, a 454 counted against the address alone).
    void record_failure(const config::StateConfig& cfg, std::string_view ip, std::string_view user,
                        const auth::GuardSettings& guard, bool busy, FailureDone done);
    // A successful login: exempts `ip` from network lockouts. Fire and forget.
    void record_success(const config::StateConfig& cfg, std::string_view ip,
                        const auth::GuardSettings& guard);

  private:
    RedisLink* link(const config::StateConfig& cfg);
    // Counts a call Redis did not answer; true when it may be answered locally.
    static bool fall_back(const config::StateConfig& cfg);

    uv_loop_t* loop_;
    policy::RateLimiter& rates_;
    auth::LoginGuard& logins_;
    std::unique_ptr<RedisLink> link_;
};

}  // namespace portcullis::state
