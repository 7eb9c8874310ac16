#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "policy/sender_rules.hpp"

using portcullis::policy::sender_allowed;
using portcullis::policy::valid_sender_pattern;
using Patterns = std::vector<std::string>;

TEST_CASE("exact patterns match ignoring ASCII case", "[sender]") {
    const Patterns p{"alice@example.com"};
    CHECK(sender_allowed("alice", p, "alice@example.com"));
    CHECK(sender_allowed("alice", p, "Alice@Example.COM"));
    CHECK_FALSE(sender_allowed("alice", p, "alice@example.org"));
    CHECK_FALSE(sender_allowed("alice", p, "alicea@example.com"));
    CHECK_FALSE(sender_allowed("alice", p, "alice@example.com.evil.net"));
    CHECK_FALSE(sender_allowed("alice", p, "bob@example.com"));
    const Patterns upper{"ALICE@EXAMPLE.COM"};
    CHECK(sender_allowed("alice", upper, "alice@example.com"));
}

TEST_CASE("*@domain matches any local part at exactly that domain", "[sender]") {
    const Patterns p{"*@example.com"};
    CHECK(sender_allowed("u", p, "anyone@example.com"));
    CHECK(sender_allowed("u", p, "Anyone@EXAMPLE.com"));
    CHECK(sender_allowed("u", p, "first.last+tag@example.com"));
    CHECK_FALSE(sender_allowed("u", p, "x@sub.example.com"));
    CHECK_FALSE(sender_allowed("u", p, "x@notexample.com"));
    CHECK_FALSE(sender_allowed("u", p, "x@example.com.evil.net"));
    CHECK_FALSE(sender_allowed("u", p, "@example.com"));
    CHECK_FALSE(sender_allowed("u", p, "example.com"));
    CHECK_FALSE(sender_allowed("u", p, ""));
}

TEST_CASE("any matching pattern in the list allows", "[sender]") {
    const Patterns p{"alice@example.com", "*@alice.example.com"};
    CHECK(sender_allowed("alice", p, "alice@example.com"));
    CHECK(sender_allowed("alice", p, "news@alice.example.com"));
    CHECK_FALSE(sender_allowed("alice", p, "bob@example.com"));
}

TEST_CASE("the null sender matches only <>", "[sender]") {
    const Patterns with_null{"<>", "alice@example.com"};
    CHECK(sender_allowed("alice@example.com", with_null, ""));
    CHECK(sender_allowed("alice@example.com", with_null, "alice@example.com"));
    const Patterns without_null{"alice@example.com", "*@example.com"};
    CHECK_FALSE(sender_allowed("alice@example.com", without_null, ""));
    CHECK_FALSE(sender_allowed("alice@example.com", {}, ""));
    const Patterns only_null{"<>"};
    CHECK_FALSE(sender_allowed("alice@example.com", only_null, "alice@example.com"));
}

TEST_CASE("with no patterns a user may send only as its own address", "[sender]") {
    CHECK(sender_allowed("alice@example.com", {}, "alice@example.com"));
    CHECK(sender_allowed("alice@example.com", {}, "ALICE@example.com"));
    CHECK_FALSE(sender_allowed("alice@example.com", {}, "bob@example.com"));
    CHECK_FALSE(sender_allowed("alice@example.com", {}, "alice@sub.example.com"));
    // A login that is not an address may not send as anything.
    CHECK_FALSE(sender_allowed("printer", {}, "printer"));
    CHECK_FALSE(sender_allowed("printer", {}, "printer@example.com"));
    CHECK_FALSE(sender_allowed("*@example.com", {}, "*@example.com"));
    CHECK_FALSE(sender_allowed("<>", {}, ""));
}

TEST_CASE("valid sender patterns", "[sender]") {
    for (const char* p : {"<>", "alice@example.com", "*@example.com", "first.last+tag@example.com",
                          "o'brien@example.ie", "x@localhost", "*@b\u00fccher.de",
                          "j\u00f6rg@example.de", "ALICE@EXAMPLE.COM"}) {
        INFO(p);
        CHECK(valid_sender_pattern(p));
    }
}

TEST_CASE("invalid sender patterns", "[sender]") {
    for (const char* p : {"",
                          "alice",
                          "@example.com",
                          "alice@",
                          "*",
                          "*@",
                          "*@*.example.com",
                          "a*@example.com",
                          "*.x@example.com",
                          "alice@example..com",
                          "alice@.example.com",
                          "alice@example.com.",
                          ".alice@example.com",
                          "alice.@example.com",
                          "al ice@example.com",
                          "<alice@example.com>",
                          "alice@exa mple.com",
                          "alice@example_com",
                          "a@b@example.com",
                          "<",
                          "\"a b\"@example.com"}) {
        INFO(p);
        CHECK_FALSE(valid_sender_pattern(p));
    }
    CHECK_FALSE(valid_sender_pattern(std::string(65, 'a') + "@example.com"));
    CHECK(valid_sender_pattern(std::string(64, 'a') + "@example.com"));
}
