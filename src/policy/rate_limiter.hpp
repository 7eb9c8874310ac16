// Per-user rate limits ([rate_limits] and the users file's rate_limits): token buckets.
//
// Each (user, kind) has a bucket that holds at most N tokens and refills continuously
// at N per period ("200/1h": 200 at once, then one every 18 s). A message takes one
// token at MAIL, a recipient one at RCPT, a message its size in bytes at end of DATA.
// Why a token bucket rather than a sliding window: its state is two numbers per
// bucket whatever N is (a sliding-window log of "1000/1d" keeps 1000 timestamps per
// user), it lets a user send a burst of N after a quiet spell, and the exact time at
// which the next message fits is known, which gives the client an honest "try again
// in 37s". The price: over any stretch of one period a user can get up to 2N through
// (a full bucket plus one period of refill), the same bound a fixed-window counter
// such as Postfix's anvil has.
//
// Buckets live in the gateway-wide Runtime, not in the config snapshot, so a reload
// keeps them; a changed limit applies from the next check on (tokens are capped to
// the new size).
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "config/units.hpp"
#include "util/clock.hpp"
#include "util/sharded_table.hpp"

namespace portcullis::policy {

enum class Limit { messages, recipients, bytes };

std::string_view limit_name(Limit limit);  // "messages", "recipients", "bytes"

struct RateDecision {
    bool allowed = true;
    // Only when refused: the cost is more than the bucket can ever hold.
    bool never = false;
    // Only when refused and not `never`: when the cost will fit (whole seconds, >= 1).
    std::chrono::seconds retry_after{0};
};

// The arithmetic of one bucket; no locking, no clock of its own.
class TokenBucket {
  public:
    // Refills for the time since the last call and takes `cost` if it is there.
    // A new bucket starts full. `rate.count` must be > 0.
    RateDecision take(const config::Rate& rate, std::uint64_t cost, util::Clock::time_point now,
                      bool commit);
    // True when the bucket is full again (forgetting it changes nothing).
    bool idle(util::Clock::time_point now) const { return !started_ || now >= full_at_; }
    double tokens() const { return tokens_; }

  private:
    void refill(const config::Rate& rate, util::Clock::time_point now);
    bool started_ = false;
    double tokens_ = 0;
    util::Clock::time_point updated_{};
    util::Clock::time_point full_at_{};
};

class RateLimiter {
  public:
    explicit RateLimiter(const util::Clock& clock, std::size_t max_entries = 1u << 16);

    // Takes `cost` from the bucket of (user, limit) when it holds that much; otherwise
    // takes nothing and says when to retry. An unlimited rate (count 0) always allows.
    RateDecision take(std::string_view user, Limit limit, const config::Rate& rate,
                      std::uint64_t cost);
    // What take() would answer, without taking anything.
    RateDecision peek(std::string_view user, Limit limit, const config::Rate& rate,
                      std::uint64_t cost);

    std::size_t buckets() const { return table_.size(); }

  private:
    RateDecision run(std::string_view user, Limit limit, const config::Rate& rate,
                     std::uint64_t cost, bool commit);
    const util::Clock& clock_;
    util::ShardedTable<TokenBucket> table_;
};

}  // namespace portcullis::policy
