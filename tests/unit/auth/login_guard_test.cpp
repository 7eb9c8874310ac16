#include <catch2/catch.hpp>

#include "auth/login_guard.hpp"
#include "util/clock.hpp"

using namespace portcullis;
using namespace std::chrono_literals;
using auth::LockScope;
using auth::LoginGuard;

namespace {

auth::GuardSettings settings(std::uint64_t failures = 3, std::uint64_t spray = 0) {
    auth::GuardSettings s;
    s.max_failures = {failures, 10min};
    s.lockout = 15min;
    s.spray_max_users = {spray, 1h};
    s.spray_lockout = 1h;
    s.spray_exemption = 24h;
    return s;
}

}  // namespace

TEST_CASE("address and network keys", "[auth][guard]") {
    CHECK(auth::address_key("192.0.2.7") == "192.0.2.7");
    CHECK(auth::network_key("192.0.2.7") == "192.0.2.0/24");
    CHECK(auth::address_key("::ffff:192.0.2.7") == "192.0.2.7");
    CHECK(auth::network_key("::ffff:192.0.2.7") == "192.0.2.0/24");
    CHECK(auth::address_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64");
    CHECK(auth::network_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1::/48");
    CHECK(auth::network_key("2001:db8:1:ff02::1") == "2001:db8:1::/48");
    CHECK(auth::address_key("::1") == "::/64");
    CHECK(auth::address_key("not an address") == "not an address");
}

TEST_CASE("max_failures from one address locks it out, and only once", "[auth][guard]") {
    util::ManualClock clock;
    LoginGuard guard(clock);
    const auto s = settings(3);
    CHECK(guard.record_failure("192.0.2.7", "a", s).empty());
    CHECK(guard.record_failure("192.0.2.7", "b", s).empty());
    CHECK(guard.locked("192.0.2.7", "c", s) == LockScope::none);
    const auto started = guard.record_failure("192.0.2.7", "c", s);
    REQUIRE(started.size() == 1);
    CHECK(started[0].scope == LockScope::address);
    CHECK(started[0].key == "192.0.2.7");
    CHECK(started[0].failures == 3);
    CHECK(started[0].duration == 15min);
    // locked for every name, including ones never tried; other addresses are not
    CHECK(guard.locked("192.0.2.7", "anyone", s) == LockScope::address);
    CHECK(guard.locked("192.0.2.8", "anyone", s) == LockScope::none);
    // a failure that lands during the lockout (a verification in flight) starts
    // nothing new and does not prolong it
    clock.advance(10min);
    CHECK(guard.record_failure("192.0.2.7", "d", s).empty());
    clock.advance(5min - 1ms);
    CHECK(guard.locked("192.0.2.7", "x", s) == LockScope::address);
    clock.advance(1ms);
    CHECK(guard.locked("192.0.2.7", "x", s) == LockScope::none);
}

TEST_CASE("failures are counted over a sliding window", "[auth][guard]") {
    util::ManualClock clock;
    LoginGuard guard(clock);
    const auto s = settings(3);
    guard.record_failure("192.0.2.7", "a", s);
    clock.advance(6min);
    guard.record_failure("192.0.2.7", "b", s);
    clock.advance(4min);  // the first failure is now 10 minutes old: out of the window
    CHECK(guard.record_failure("192.0.2.7", "c", s).empty());
    clock.advance(5min);
    const auto started = guard.record_failure("192.0.2.7", "d", s);  // b, c, d within 10m
    REQUIRE(started.size() == 1);
    CHECK(started[0].scope == LockScope::address);
}

TEST_CASE("max_failures for one user name locks the name from every address", "[auth][guard]") {
    util::ManualClock clock;
    LoginGuard guard(clock);
    const auto s = settings(3);
    guard.record_failure("192.0.2.1", "alice", s);
    guard.record_failure("198.51.100.1", "alice", s);
    const auto started = guard.record_failure("203.0.113.1", "alice", s);
    REQUIRE(started.size() == 1);
    CHECK(started[0].scope == LockScope::user);
    CHECK(started[0].key == "alice");
    CHECK(guard.locked("10.9.9.9", "alice", s) == LockScope::user);
    CHECK(guard.locked("10.9.9.9", "bob", s) == LockScope::none);
    CHECK(guard.locked("10.9.9.9", "Alice", s) == LockScope::none);  // names are exact
}

TEST_CASE("a success clears neither an address's lockout nor its count", "[auth][guard]") {
    util::ManualClock clock;
    LoginGuard guard(clock);
    const auto s = settings(3);
    guard.record_failure("192.0.2.7", "a", s);
    guard.record_failure("192.0.2.7", "b", s);
    guard.record_success("192.0.2.7", s);
    CHECK(guard.record_failure("192.0.2.7", "c", s).size() == 1);  // still the third
    guard.record_success("192.0.2.7", s);
    CHECK(guard.locked("192.0.2.7", "alice", s) == LockScope::address);
}

TEST_CASE("attempts turned away as busy count against the address only", "[auth][guard]") {
    util::ManualClock clock;
    LoginGuard guard(clock);
    const auto s = settings(3, 2);
    CHECK(guard.record_busy("192.0.2.7", s).empty());
    CHECK(guard.record_busy("192.0.2.7", s).empty());
    const auto started = guard.record_busy("192.0.2.7", s);
    REQUIRE(started.size() == 1);
    CHECK(started[0].scope == LockScope::address);
    CHECK(guard.locked("192.0.2.7", "alice", s) == LockScope::address);
    CHECK(guard.locked("192.0.2.8", "alice", s) == LockScope::none);  // no network count
    // an address that logged in recently is never locked for being turned away
    guard.record_success("192.0.2.9", s);
    CHECK(guard.known_good("192.0.2.9"));
    CHECK_FALSE(guard.known_good("192.0.2.7"));
    for (int i = 0; i < 10; ++i) {
        REQUIRE(guard.record_busy("192.0.2.9", s).empty());
    }
    CHECK(guard.locked("192.0.2.9", "alice", s) == LockScope::none);
    clock.advance(24h);
    CHECK_FALSE(guard.known_good("192.0.2.9"));
}

TEST_CASE("IPv6 clients are counted per /64", "[auth][guard]") {
    util::ManualClock clock;
    LoginGuard guard(clock);
    const auto s = settings(3);
    guard.record_failure("2001:db8:1:2::1", "a", s);
    guard.record_failure("2001:db8:1:2::2", "b", s);
    CHECK(guard.record_failure("2001:db8:1:2:ffff::3", "c", s).size() == 1);
    CHECK(guard.locked("2001:db8:1:2::99", "z", s) == LockScope::address);
    CHECK(guard.locked("2001:db8:1:3::1", "z", s) == LockScope::none);
}

TEST_CASE("password spraying locks the /24 past distinct failing names", "[auth][guard]") {
    util::ManualClock clock;
    LoginGuard guard(clock);
    const auto s = settings(100, 3);  // per-address limit out of the way
    guard.record_failure("192.0.2.1", "alice", s);
    guard.record_failure("192.0.2.2", "alice", s);  // the same name again: still one
    guard.record_failure("192.0.2.3", "bob", s);
    CHECK(guard.locked("192.0.2.200", "x", s) == LockScope::none);
    const auto started = guard.record_failure("192.0.2.4", "carol", s);
    REQUIRE(started.size() == 1);
    CHECK(started[0].scope == LockScope::network);
    CHECK(started[0].key == "192.0.2.0/24");
    CHECK(started[0].failures == 3);
    CHECK(started[0].duration == 1h);
    CHECK(guard.locked("192.0.2.200", "x", s) == LockScope::network);
    CHECK(guard.locked("192.0.3.1", "x", s) == LockScope::none);
    clock.advance(1h);
    CHECK(guard.locked("192.0.2.200", "x", s) == LockScope::none);
}

TEST_CASE("spraying counts distinct names within the window only", "[auth][guard]") {
    util::ManualClock clock;
    LoginGuard guard(clock);
    const auto s = settings(100, 3);
    guard.record_failure("192.0.2.1", "alice", s);
    guard.record_failure("192.0.2.1", "bob", s);
    clock.advance(61min);
    CHECK(guard.record_failure("192.0.2.1", "carol", s).empty());
    CHECK(guard.record_failure("192.0.2.1", "dave", s).empty());
    CHECK(guard.record_failure("192.0.2.1", "erin", s).size() == 1);
}

TEST_CASE("an address that logged in recently is exempt from the network lockout",
          "[auth][guard]") {
    util::ManualClock clock;
    LoginGuard guard(clock);
    const auto s = settings(100, 3);
    guard.record_success("192.0.2.50", s);
    // its own failures do not count towards the network
    for (const char* name : {"a", "b", "c", "d"}) {
        CHECK(guard.record_failure("192.0.2.50", name, s).empty());
    }
    CHECK(guard.locked("192.0.2.9", "x", s) == LockScope::none);
    guard.record_failure("192.0.2.1", "a", s);
    guard.record_failure("192.0.2.1", "b", s);
    CHECK(guard.record_failure("192.0.2.1", "c", s).size() == 1);
    CHECK(guard.locked("192.0.2.9", "x", s) == LockScope::network);
    CHECK(guard.locked("192.0.2.50", "x", s) == LockScope::none);  // exempt
    clock.advance(24h);  // the exemption ran out (and so did the lockout)
    guard.record_failure("192.0.2.1", "a", s);
    guard.record_failure("192.0.2.1", "b", s);
    guard.record_failure("192.0.2.1", "c", s);
    CHECK(guard.locked("192.0.2.50", "x", s) == LockScope::network);
}

TEST_CASE("limits set to unlimited turn the protection off, lifting running lockouts",
          "[auth][guard]") {
    util::ManualClock clock;
    LoginGuard guard(clock);
    auto s = settings(2, 2);
    guard.record_failure("192.0.2.1", "a", s);
    guard.record_failure("192.0.2.1", "b", s);
    CHECK(guard.locked("192.0.2.1", "x", s) == LockScope::address);
    CHECK(guard.locked("192.0.2.2", "x", s) == LockScope::network);
    s.max_failures = {};
    s.spray_max_users = {};
    CHECK(guard.locked("192.0.2.1", "x", s) == LockScope::none);
    CHECK(guard.locked("192.0.2.2", "x", s) == LockScope::none);
    for (int i = 0; i < 50; ++i) {
        REQUIRE(guard.record_failure("192.0.2.3", "n" + std::to_string(i), s).empty());
    }
}

TEST_CASE("memory stays bounded whatever names a bot tries", "[auth][guard]") {
    util::ManualClock clock;
    LoginGuard guard(clock, 1024);
    const auto s = settings(5, 0);
    for (int i = 0; i < 20000; ++i) {
        guard.record_failure(
            "10." + std::to_string(i / 250 % 250) + "." + std::to_string(i % 250) + ".1",
            "user" + std::to_string(i), s);
    }
    // still works: a fresh name is counted and locked as usual
    for (int i = 0; i < 4; ++i) {
        guard.record_failure("192.0.2.1", "target", s);
    }
    CHECK(guard.record_failure("192.0.2.2", "target", s).size() == 1);
    CHECK(guard.locked("203.0.113.9", "target", s) == LockScope::user);
}
