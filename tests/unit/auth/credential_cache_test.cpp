#include <catch2/catch.hpp>

#include "auth/credential_cache.hpp"
#include "util/clock.hpp"

using namespace portcullis;
using namespace std::chrono_literals;

TEST_CASE("a remembered credential hits until cache_ttl", "[auth][cache]") {
    util::ManualClock clock;
    auth::CredentialCache cache(clock);
    const auto d = cache.digest(1, "alice", "$argon2id$hash-1", "right password");
    CHECK_FALSE(cache.contains("alice", d));
    cache.remember("alice", d, 5min);
    CHECK(cache.contains("alice", d));
    clock.advance(5min - 1ms);
    CHECK(cache.contains("alice", d));  // hits do not extend the entry...
    clock.advance(1ms);
    CHECK_FALSE(cache.contains("alice", d));  // ...which ends cache_ttl after it was made
}

TEST_CASE("a different password, user, stored hash or snapshot misses", "[auth][cache]") {
    util::ManualClock clock;
    auth::CredentialCache cache(clock);
    cache.remember("alice", cache.digest(1, "alice", "$argon2id$hash-1", "right password"), 5min);
    CHECK(cache.contains("alice", cache.digest(1, "alice", "$argon2id$hash-1", "right password")));
    CHECK_FALSE(
        cache.contains("alice", cache.digest(1, "alice", "$argon2id$hash-1", "wrong password")));
    // the password was changed: the stored hash differs
    CHECK_FALSE(
        cache.contains("alice", cache.digest(1, "alice", "$argon2id$hash-2", "right password")));
    // after a reload (a new snapshot generation)
    CHECK_FALSE(
        cache.contains("alice", cache.digest(2, "alice", "$argon2id$hash-1", "right password")));
    // another user with the same password and hash
    CHECK_FALSE(
        cache.contains("bob", cache.digest(1, "alice", "$argon2id$hash-1", "right password")));
    CHECK_FALSE(
        cache.contains("bob", cache.digest(1, "bob", "$argon2id$hash-1", "right password")));
}

TEST_CASE("digests are keyed, length-prefixed and per process", "[auth][cache]") {
    util::ManualClock clock;
    auth::CredentialCache a(clock);
    auth::CredentialCache b(clock);
    // moving bytes between fields changes the digest
    CHECK(a.digest(1, "ab", "c", "d") != a.digest(1, "a", "bc", "d"));
    CHECK(a.digest(1, "a", "bc", "d") != a.digest(1, "a", "b", "cd"));
    // two caches (two processes) use different keys
    CHECK(a.digest(1, "alice", "h", "p") != b.digest(1, "alice", "h", "p"));
    CHECK(a.digest(1, "alice", "h", "p") == a.digest(1, "alice", "h", "p"));
}

TEST_CASE("cache_ttl 0 remembers nothing", "[auth][cache]") {
    util::ManualClock clock;
    auth::CredentialCache cache(clock);
    const auto d = cache.digest(1, "alice", "h", "p");
    cache.remember("alice", d, 0s);
    CHECK_FALSE(cache.contains("alice", d));
    CHECK(cache.size() == 0);
}
