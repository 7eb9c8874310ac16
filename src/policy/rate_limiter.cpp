#include "policy/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace portcullis::policy {

namespace {

using Seconds = std::chrono::duration<double>;

// Tokens per second for `rate`.
double refill_per_second(const config::Rate& rate) {
    return static_cast<double>(rate.count) / std::chrono::duration_cast<Seconds>(rate.per).count();
}

}  // namespace

std::string_view limit_name(Limit limit) {
    switch (limit) {
        case Limit::messages:
            return "messages";
        case Limit::recipients:
            return "recipients";
        case Limit::bytes:
            return "bytes";
    }
    return "messages";
}

void TokenBucket::refill(const config::Rate& rate, util::Clock::time_point now) {
    const auto capacity = static_cast<double>(rate.count);
    if (!started_) {
        started_ = true;
        tokens_ = capacity;
    } else if (now > updated_) {
        tokens_ +=
            std::chrono::duration_cast<Seconds>(now - updated_).count() * refill_per_second(rate);
    }
    tokens_ = std::min(tokens_, capacity);  // also applies a smaller limit after a reload
    updated_ = std::max(updated_, now);
}

RateDecision TokenBucket::take(const config::Rate& rate, std::uint64_t cost,
                               util::Clock::time_point now, bool commit) {
    const TokenBucket before = *this;
    refill(rate, now);
    RateDecision decision;
    const auto want = static_cast<double>(cost);
    if (cost > rate.count) {
        decision = {false, true, std::chrono::seconds(0)};
    } else if (tokens_ + 1e-9 >= want) {
        tokens_ = std::max(0.0, tokens_ - want);
    } else {
        const double wait = (want - tokens_) / refill_per_second(rate);
        const auto seconds = static_cast<std::int64_t>(std::ceil(wait - 1e-9));
        decision = {false, false, std::chrono::seconds(std::max<std::int64_t>(1, seconds))};
    }
    if (!commit) {
        *this = before;
        return decision;
    }
    const double missing = static_cast<double>(rate.count) - tokens_;
    full_at_ = updated_ + std::chrono::duration_cast<util::Clock::duration>(
                              Seconds(missing / refill_per_second(rate)));
    return decision;
}

RateLimiter::RateLimiter(const util::Clock& clock, std::size_t max_entries)
    : clock_(clock), table_(max_entries) {}

RateDecision RateLimiter::take(std::string_view user, Limit limit, const config::Rate& rate,
                               std::uint64_t cost) {
    return run(user, limit, rate, cost, true);
}

RateDecision RateLimiter::peek(std::string_view user, Limit limit, const config::Rate& rate,
                               std::uint64_t cost) {
    return run(user, limit, rate, cost, false);
}

RateDecision RateLimiter::run(std::string_view user, Limit limit, const config::Rate& rate,
                              std::uint64_t cost, bool commit) {
    if (rate.count == 0) {
        return {};  // unlimited
    }
    // Reused per thread: this runs for every message and recipient.
    thread_local std::string key;
    key.assign(user);
    key += '\0';
    key += limit_name(limit);
    const auto now = clock_.now();
    if (!commit) {
        return table_.inspect(key, [&](const TokenBucket* bucket) {
            TokenBucket copy = bucket != nullptr ? *bucket : TokenBucket{};
            return copy.take(rate, cost, now, false);
        });
    }
    return table_.update(key, now,
                         [&](TokenBucket& bucket) { return bucket.take(rate, cost, now, true); });
}

}  // namespace portcullis::policy
