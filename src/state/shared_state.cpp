#include "state/shared_state.hpp"

#include <sodium.h>

#include <string>

#include "ops/log.hpp"

namespace portcullis::state {

namespace {

using config::LogLevel;

// Logs the start and the end of an outage once for the whole process, however many
// workers (each with its own connection) notice it.
void health_changed(const config::StateConfig& cfg, bool up, std::string_view why) {
    Stats& s = stats();
    if (up) {
        if (!s.available.exchange(true)) {
            ops::log(LogLevel::info, "state.restored", {{"address", cfg.address}});
        }
        return;
    }
    if (s.available.exchange(false)) {
        s.outages.fetch_add(1, std::memory_order_relaxed);
        ops::log(LogLevel::error, "state.unavailable",
                 {{"address", cfg.address},
                  {"reason", why},
                  {"on_state_error",
                   cfg.on_error == config::StateErrorMode::local ? "local" : "fail-closed"}});
    }
}

std::string nonce() {
    unsigned char bytes[8];
    randombytes_buf(bytes, sizeof bytes);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const unsigned char b : bytes) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

}  // namespace

Stats& stats() {
    static Stats s;
    return s;
}

SharedState::SharedState(uv_loop_t* loop, policy::RateLimiter& local_rates,
                         auth::LoginGuard& local_logins)
    : loop_(loop), rates_(local_rates), logins_(local_logins) {}

SharedState::~SharedState() = default;

RedisLink* SharedState::link(const config::StateConfig& cfg) {
    if (cfg.backend != config::StateBackend::redis) {
        return nullptr;
    }
    if (!link_ || !link_->serves(cfg)) {  // first use, or a reload changed the server
        link_ = std::make_unique<RedisLink>(
            loop_, cfg, [cfg](bool up, std::string_view why) { health_changed(cfg, up, why); });
    }
    return link_.get();
}

bool SharedState::fall_back(const config::StateConfig& cfg) {
    Stats& s = stats();
    s.errors.fetch_add(1, std::memory_order_relaxed);
    if (cfg.on_error == config::StateErrorMode::local) {
        s.fallbacks.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    s.refusals.fetch_add(1, std::memory_order_relaxed);
    return false;
}

void SharedState::take(const config::StateConfig& cfg, std::string_view user, policy::Limit limit,
                       const config::Rate& rate, std::uint64_t cost, bool commit, RateDone done) {
    auto local = [this, user = std::string(user), limit, rate, cost, commit] {
        return commit ? rates_.take(user, limit, rate, cost) : rates_.peek(user, limit, rate, cost);
    };
    RedisLink* redis = link(cfg);
    if (redis == nullptr || rate.unlimited()) {
        done(local());
        return;
    }
    redis->call(rate_call(cfg.key_prefix, user, limit, rate, cost, commit),
                [cfg, local, done = std::move(done)](Answer answer) {
                    if (answer.ok) {
                        done(decode_rate(answer.values));
                    } else if (fall_back(cfg)) {
                        done(local());
                    } else {
                        done(std::nullopt);
                    }
                });
}

void SharedState::check(const config::StateConfig& cfg, std::string_view ip, std::string_view user,
                        const auth::GuardSettings& guard, CheckDone done) {
    auto local = [this, ip = std::string(ip), user = std::string(user), guard] {
        return LoginCheck{logins_.locked(ip, user, guard), logins_.known_good(ip)};
    };
    RedisLink* redis = link(cfg);
    if (redis == nullptr) {
        done(local());
        return;
    }
    redis->call(check_call(cfg.key_prefix, ip, user, guard),
                [cfg, local, done = std::move(done)](Answer answer) {
                    if (answer.ok) {
                        done(decode_check(answer.values));
                    } else if (fall_back(cfg)) {
                        done(local());
                    } else {
                        done(std::nullopt);
                    }
                });
}

void SharedState::record_failure(const config::StateConfig& cfg, std::string_view ip,
                                 std::string_view user, const auth::GuardSettings& guard, bool busy,
                                 FailureDone done) {
    auto local = [this, ip = std::string(ip), user = std::string(user), guard, busy] {
        return busy ? logins_.record_busy(ip, guard) : logins_.record_failure(ip, user, guard);
    };
    RedisLink* redis = link(cfg);
    if (redis == nullptr) {
        done(local());
        return;
    }
    // A failure Redis cannot take is counted locally in both modes: refusing to count
    // it would only help the guesser.
    redis->call(failure_call(cfg.key_prefix, ip, user, guard, busy, nonce()),
                [cfg, local, guard, ip = std::string(ip), user = std::string(user),
                 done = std::move(done)](Answer answer) {
                    if (answer.ok) {
                        done(decode_failure(answer.values, ip, user, guard));
                    } else {
                        (void)fall_back(cfg);
                        done(local());
                    }
                });
}

void SharedState::record_success(const config::StateConfig& cfg, std::string_view ip,
                                 const auth::GuardSettings& guard) {
    RedisLink* redis = link(cfg);
    Call call = success_call(cfg.key_prefix, ip, guard);
    if (redis == nullptr || call.args.empty()) {
        logins_.record_success(ip, guard);
        return;
    }
    redis->call(std::move(call), [this, ip = std::string(ip), guard](Answer answer) {
        if (!answer.ok) {
            logins_.record_success(ip, guard);
        }
    });
}

}  // namespace portcullis::state
