// The pure half of the Redis state: keys, arguments and the decoding of the scripts'
// answers (the scripts themselves run against a real redis-server in tests/e2e).
#include <catch2/catch.hpp>

#include <array>

#include "state/scripts.hpp"

using namespace portcullis;
using namespace std::chrono_literals;

namespace {

auth::GuardSettings guard() {
    auth::GuardSettings s;
    s.max_failures = {3, 10min};
    s.lockout = 1h;
    s.spray_max_users = {20, 1h};
    s.spray_lockout = 2h;
    s.spray_exemption = 24h;
    return s;
}

}  // namespace

TEST_CASE("scripts have the SHA-1 Redis computes for EVALSHA") {
    // SHA-1 of "" is da39a3ee...; ours are 40 hex digits and differ from each other.
    for (const state::Script* s :
         {&state::rate_script(), &state::check_script(), &state::failure_script()}) {
        CHECK(s->sha1.size() == 40);
        CHECK(s->sha1.find_first_not_of("0123456789abcdef") == std::string::npos);
        CHECK(s->body.find("redis.call") != std::string_view::npos);
    }
    CHECK(state::rate_script().sha1 != state::check_script().sha1);
    CHECK(state::failure_script().sha1 != state::check_script().sha1);
}

TEST_CASE("rate call: one key per user and kind, user names hashed") {
    const auto call = state::rate_call("p:", "alice@example.com", policy::Limit::messages,
                                       config::Rate{3, 1h}, 1, true);
    REQUIRE(call.keys.size() == 1);
    CHECK(call.keys[0] == "p:rate:messages:" + state::user_id("alice@example.com"));
    CHECK(call.keys[0].find("alice") == std::string::npos);
    CHECK(call.args == std::vector<std::string>{"3", "3600000", "1", "1"});
    const auto peek = state::rate_call("p:", "alice@example.com", policy::Limit::bytes,
                                       config::Rate{1000, 1min}, 500, false);
    CHECK(peek.keys[0].starts_with("p:rate:bytes:"));
    CHECK(peek.args.back() == "0");
    CHECK(state::user_id("a") != state::user_id("b"));
    CHECK(state::user_id("a").size() == 32);

    const auto argv = state::eval_argv(call, false);
    CHECK(argv == std::vector<std::string>{"EVALSHA", state::rate_script().sha1, "1", call.keys[0],
                                           "3", "3600000", "1", "1"});
    CHECK(state::eval_argv(call, true)[0] == "EVAL");
    CHECK(state::eval_argv(call, true)[1] == state::rate_script().body);
}

TEST_CASE("rate answers decode to the memory version's decisions") {
    std::array<std::int64_t, 3> ok{1, 0, 0};
    CHECK(state::decode_rate(ok).allowed);
    std::array<std::int64_t, 3> wait{0, 0, 1200};
    auto d = state::decode_rate(wait);
    CHECK_FALSE(d.allowed);
    CHECK_FALSE(d.never);
    CHECK(d.retry_after == 1200s);
    std::array<std::int64_t, 3> never{0, 1, 0};
    d = state::decode_rate(never);
    CHECK_FALSE(d.allowed);
    CHECK(d.never);
    std::array<std::int64_t, 3> zero_wait{0, 0, 0};
    CHECK(state::decode_rate(zero_wait).retry_after == 1s);  // at least 1 s, like memory
}

TEST_CASE("login check keys follow the memory version's address and network keys") {
    const auto call = state::check_call("p:", "2001:db8:1:2:3::7", "bob", guard());
    REQUIRE(call.keys.size() == 4);
    CHECK(call.keys[0] == "p:lock:addr:2001:db8:1:2::/64");
    CHECK(call.keys[1] == "p:lock:user:" + state::user_id("bob"));
    CHECK(call.keys[2] == "p:lock:net:2001:db8:1::/48");
    CHECK(call.keys[3] == "p:good:2001:db8:1:2::/64");
    CHECK(call.args == std::vector<std::string>{"1", "1"});
    auth::GuardSettings off = guard();
    off.max_failures = {0, 10min};
    CHECK(state::check_call("p:", "192.0.2.7", "bob", off).args ==
          std::vector<std::string>{"0", "1"});

    std::array<std::int64_t, 2> user_locked{2, 0};
    CHECK(state::decode_check(user_locked).scope == auth::LockScope::user);
    std::array<std::int64_t, 2> good{0, 1};
    CHECK(state::decode_check(good).known_good);
    CHECK(state::decode_check(good).scope == auth::LockScope::none);
    std::array<std::int64_t, 2> network{3, 0};
    CHECK(state::decode_check(network).scope == auth::LockScope::network);
}

TEST_CASE("failure call and the lockouts it reports") {
    const auto call = state::failure_call("p:", "192.0.2.7", "bob", guard(), false, "n1");
    REQUIRE(call.keys.size() == 7);
    CHECK(call.keys[0] == "p:fail:addr:192.0.2.7");
    CHECK(call.keys[4] == "p:spray:192.0.2.0/24");
    CHECK(call.keys[5] == "p:lock:net:192.0.2.0/24");
    CHECK(call.args == std::vector<std::string>{"3", "600000", "3600000", "20", "3600000",
                                                "7200000", state::user_id("bob"), "n1", "0"});
    CHECK(state::failure_call("p:", "192.0.2.7", "bob", guard(), true, "n").args.back() == "1");

    std::array<std::int64_t, 4> started{1, 3, 3, 20};
    const auto lockouts = state::decode_failure(started, "192.0.2.7", "bob", guard());
    REQUIRE(lockouts.size() == 2);
    CHECK(lockouts[0].scope == auth::LockScope::address);
    CHECK(lockouts[0].key == "192.0.2.7");
    CHECK(lockouts[0].duration == 1h);
    CHECK(lockouts[0].failures == 3);
    CHECK(lockouts[1].scope == auth::LockScope::network);
    CHECK(lockouts[1].key == "192.0.2.0/24");
    CHECK(lockouts[1].duration == 2h);
    std::array<std::int64_t, 2> user{2, 3};
    CHECK(state::decode_failure(user, "192.0.2.7", "bob", guard())[0].key == "bob");
    CHECK(state::decode_failure({}, "192.0.2.7", "bob", guard()).empty());
}

TEST_CASE("success call sets the exemption with its lifetime, or nothing when off") {
    const auto call = state::success_call("p:", "192.0.2.7", guard());
    CHECK(call.script == nullptr);
    CHECK(call.args == std::vector<std::string>{"SET", "p:good:192.0.2.7", "1", "PX", "86400000"});
    CHECK(state::eval_argv(call, false) == call.args);
    auth::GuardSettings off = guard();
    off.spray_exemption = 0s;
    CHECK(state::success_call("p:", "192.0.2.7", off).args.empty());
}
