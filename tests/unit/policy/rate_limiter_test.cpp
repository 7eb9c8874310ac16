#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "policy/rate_limiter.hpp"
#include "util/clock.hpp"

using namespace portcullis;
using namespace std::chrono_literals;
using policy::Limit;
using policy::RateLimiter;

namespace {

const config::Rate three_per_minute{3, 60s};

}  // namespace

TEST_CASE("a bucket starts full and refuses past its size, with an exact retry time",
          "[policy][rate]") {
    util::ManualClock clock;
    RateLimiter limiter(clock);
    for (int i = 0; i < 3; ++i) {
        CHECK(limiter.take("alice", Limit::messages, three_per_minute, 1).allowed);
    }
    const auto refused = limiter.take("alice", Limit::messages, three_per_minute, 1);
    CHECK_FALSE(refused.allowed);
    CHECK_FALSE(refused.never);
    CHECK(refused.retry_after == 20s);  // one token every 20 s
    clock.advance(19s);
    CHECK(limiter.take("alice", Limit::messages, three_per_minute, 1).retry_after == 1s);
    clock.advance(1s);
    CHECK(limiter.take("alice", Limit::messages, three_per_minute, 1).allowed);
    CHECK_FALSE(limiter.take("alice", Limit::messages, three_per_minute, 1).allowed);
}

TEST_CASE("retry hints round up to whole seconds and are at least 1s", "[policy][rate]") {
    util::ManualClock clock;
    RateLimiter limiter(clock);
    const config::Rate two_per_3s{2, 3s};  // a token every 1.5 s
    CHECK(limiter.take("u", Limit::messages, two_per_3s, 2).allowed);
    CHECK(limiter.take("u", Limit::messages, two_per_3s, 1).retry_after == 2s);  // 1.5 -> 2
    clock.advance(1400ms);
    CHECK(limiter.take("u", Limit::messages, two_per_3s, 1).retry_after == 1s);  // 0.1 -> 1
    const config::Rate many{1000, 1s};
    CHECK(limiter.take("v", Limit::messages, many, 1000).allowed);
    CHECK(limiter.take("v", Limit::messages, many, 1).retry_after == 1s);  // 1 ms -> 1 s
}

TEST_CASE("a refused take takes nothing; peek never takes", "[policy][rate]") {
    util::ManualClock clock;
    RateLimiter limiter(clock);
    const config::Rate bytes{1000, 100s};  // 10 bytes per second
    CHECK(limiter.take("alice", Limit::bytes, bytes, 600).allowed);
    CHECK_FALSE(limiter.take("alice", Limit::bytes, bytes, 500).allowed);  // 400 left
    CHECK(limiter.peek("alice", Limit::bytes, bytes, 400).allowed);
    CHECK(limiter.peek("alice", Limit::bytes, bytes, 400).allowed);
    CHECK(limiter.peek("alice", Limit::bytes, bytes, 401).retry_after == 1s);
    CHECK(limiter.take("alice", Limit::bytes, bytes, 400).allowed);
    CHECK(limiter.peek("alice", Limit::bytes, bytes, 100).retry_after == 10s);
    // peek on a bucket never used answers for a full bucket and creates nothing
    CHECK(limiter.peek("bob", Limit::bytes, bytes, 1000).allowed);
    CHECK(limiter.buckets() == 1);
}

TEST_CASE("a cost larger than the bucket can never pass", "[policy][rate]") {
    util::ManualClock clock;
    RateLimiter limiter(clock);
    const auto d = limiter.take("alice", Limit::bytes, {1000, 1h}, 1001);
    CHECK_FALSE(d.allowed);
    CHECK(d.never);
    CHECK(limiter.take("alice", Limit::bytes, {1000, 1h}, 1000).allowed);  // nothing taken
}

TEST_CASE("users and kinds have separate buckets", "[policy][rate]") {
    util::ManualClock clock;
    RateLimiter limiter(clock);
    const config::Rate one{1, 1h};
    CHECK(limiter.take("alice", Limit::messages, one, 1).allowed);
    CHECK_FALSE(limiter.take("alice", Limit::messages, one, 1).allowed);
    CHECK(limiter.take("bob", Limit::messages, one, 1).allowed);
    CHECK(limiter.take("alice", Limit::recipients, one, 1).allowed);
    // a name that merely starts like another is another user
    CHECK(limiter.take("alice2", Limit::messages, one, 1).allowed);
}

TEST_CASE("an unlimited rate always allows and keeps no state", "[policy][rate]") {
    util::ManualClock clock;
    RateLimiter limiter(clock);
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(limiter.take("alice", Limit::messages, config::Rate{}, 1'000'000).allowed);
    }
    CHECK(limiter.buckets() == 0);
}

TEST_CASE("refill never exceeds the size; a smaller limit after a reload caps the tokens",
          "[policy][rate]") {
    util::ManualClock clock;
    RateLimiter limiter(clock);
    CHECK(limiter.take("alice", Limit::messages, {10, 10s}, 1).allowed);
    clock.advance(24h);  // a long quiet spell refills to 10, not more
    for (int i = 0; i < 10; ++i) {
        REQUIRE(limiter.take("alice", Limit::messages, {10, 10s}, 1).allowed);
    }
    CHECK_FALSE(limiter.take("alice", Limit::messages, {10, 10s}, 1).allowed);
    clock.advance(24h);
    // the operator lowers the limit to 2/10s: the full bucket of 10 shrinks to 2
    CHECK(limiter.take("alice", Limit::messages, {2, 10s}, 1).allowed);
    CHECK(limiter.take("alice", Limit::messages, {2, 10s}, 1).allowed);
    CHECK(limiter.take("alice", Limit::messages, {2, 10s}, 1).retry_after == 5s);
}

TEST_CASE("over one period a bucket lets through at most twice its size", "[policy][rate]") {
    util::ManualClock clock;
    RateLimiter limiter(clock);
    const config::Rate rate{60, 60s};
    int allowed = 0;
    for (int second = 0; second < 60; ++second) {  // try 10 a second for a minute
        for (int i = 0; i < 10; ++i) {
            allowed += limiter.take("alice", Limit::messages, rate, 1).allowed ? 1 : 0;
        }
        clock.advance(1s);
    }
    CHECK(allowed == 60 + 59);  // the full bucket, then one per second as it refills
}

TEST_CASE("buckets are shared safely between threads", "[policy][rate]") {
    util::ManualClock clock;
    RateLimiter limiter(clock);
    const config::Rate rate{1000, 1h};
    std::vector<std::thread> threads;
    std::atomic<int> allowed{0};
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 500; ++i) {
                if (limiter.take("shared", Limit::recipients, rate, 1).allowed) {
                    ++allowed;
                }
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(allowed.load() == 1000);
}
