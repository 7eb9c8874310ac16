#include <catch2/catch.hpp>

#include <chrono>

#include "tls/ticket_keys.hpp"
#include "util/clock.hpp"

using portcullis::tls::TicketKeys;
using portcullis::util::ManualClock;
using namespace std::chrono_literals;

TEST_CASE("a ticket key seals for one interval and opens for two", "[tls]") {
    ManualClock clock;
    TicketKeys keys(clock, 1h);
    const auto first = keys.sealing_key();
    CHECK(keys.sealing_key().name == first.name);  // the same key within the interval
    auto found = keys.opening_key(first.name);
    REQUIRE(found);
    CHECK_FALSE(found->renew);
    CHECK(found->key.aes_key == first.aes_key);
    CHECK(found->key.hmac_key == first.hmac_key);

    clock.advance(61min);  // a new key seals; the first still opens, and asks for renewal
    const auto second = keys.sealing_key();
    CHECK(second.name != first.name);
    CHECK(second.aes_key != first.aes_key);
    found = keys.opening_key(first.name);
    REQUIRE(found);
    CHECK(found->renew);
    found = keys.opening_key(second.name);
    REQUIRE(found);
    CHECK_FALSE(found->renew);

    clock.advance(60min);  // third key: the first is gone, the second opens with renewal
    const auto third = keys.sealing_key();
    CHECK(third.name != second.name);
    CHECK_FALSE(keys.opening_key(first.name));
    REQUIRE(keys.opening_key(second.name));
    CHECK(keys.opening_key(second.name)->renew);
}

TEST_CASE("after a quiet spell no ticket key opens past two intervals", "[tls]") {
    ManualClock clock;
    TicketKeys keys(clock, 1h);
    const auto first = keys.sealing_key();
    clock.advance(90min);  // no handshake for 1.5 intervals: the key opens, with renewal
    REQUIRE(keys.opening_key(first.name));
    clock.advance(31min);  // 2 intervals and a minute since the first key was made
    CHECK_FALSE(keys.opening_key(first.name));

    TicketKeys other(clock, 1h);
    const auto old = other.sealing_key();
    clock.advance(3h);  // longer than two intervals: nothing of before opens
    CHECK_FALSE(other.opening_key(old.name));
    CHECK(other.sealing_key().name != old.name);
}

TEST_CASE("unknown key names open nothing; a new interval applies to the next key", "[tls]") {
    ManualClock clock;
    TicketKeys keys(clock, 1h);
    const auto first = keys.sealing_key();
    auto forged = first.name;
    forged[0] ^= 1;
    CHECK_FALSE(keys.opening_key(forged));
    keys.set_rotation(10min);
    CHECK(keys.rotation() == 10min);
    clock.advance(11min);
    CHECK(keys.sealing_key().name != first.name);
}
