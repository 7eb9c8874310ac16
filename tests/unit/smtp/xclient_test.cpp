#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "smtp/xclient.hpp"

using namespace portcullis::smtp;
using Lines = std::vector<std::string>;

TEST_CASE("xtext encodes +, = and octets outside ! .. ~", "[smtp][xclient]") {
    CHECK(xtext_encode("alice@example.com") == "alice@example.com");
    CHECK(xtext_encode("a+b=c d") == "a+2Bb+3Dc+20d");
    CHECK(xtext_encode(std::string("\r\n\x7F\xC3\xBC", 5)) == "+0D+0A+7F+C3+BC");
    CHECK(xtext_encode("[UNAVAILABLE]") == "[UNAVAILABLE]");
    CHECK(xtext_encode("") == "");
}

TEST_CASE("xtext decoding is strict and inverts encoding", "[smtp][xclient]") {
    CHECK(xtext_decode("a+2Bb+3Dc+20d") == std::optional<std::string>("a+b=c d"));
    CHECK(xtext_decode("plain") == std::optional<std::string>("plain"));
    CHECK_FALSE(xtext_decode("a+2b"));  // lower-case hex is not xtext
    CHECK_FALSE(xtext_decode("a+2"));
    CHECK_FALSE(xtext_decode("a+"));
    CHECK_FALSE(xtext_decode("a=b"));
    CHECK_FALSE(xtext_decode("a b"));
    CHECK_FALSE(xtext_decode("\xC3\xBC"));
    for (const std::string raw : {"", "x", "+=+", "\x01\xFF ~!", "100% sure"}) {
        CHECK(xtext_decode(xtext_encode(raw)) == std::optional<std::string>(raw));
    }
}

TEST_CASE("XCLIENT ADDR marks IPv6", "[smtp][xclient]") {
    CHECK(xclient_address("192.0.2.7") == "192.0.2.7");
    CHECK(xclient_address("2001:db8::7") == "IPV6:2001:db8::7");
}

TEST_CASE("XCLIENT sends only offered attributes, xtext-encoded", "[smtp][xclient]") {
    const std::vector<XclientAttribute> attributes{
        {"ADDR", "203.0.113.9"}, {"PORT", "40000"},        {"NAME", "[UNAVAILABLE]"},
        {"HELO", "client.test"}, {"LOGIN", "al+ce=x@y.z"}, {"PROTO", "ESMTP"}};
    const std::vector<std::string> postfix{"NAME", "ADDR",  "PROTO",    "HELO",    "REVERSE_NAME",
                                           "PORT", "LOGIN", "DESTADDR", "DESTPORT"};
    CHECK(build_xclient(attributes, postfix) ==
          std::optional<Lines>(Lines{"XCLIENT ADDR=203.0.113.9 PORT=40000 NAME=[UNAVAILABLE] "
                                     "HELO=client.test LOGIN=al+2Bce+3Dx@y.z PROTO=ESMTP\r\n"}));
    const std::vector<std::string> old{"NAME", "ADDR"};
    CHECK(build_xclient(attributes, old) ==
          std::optional<Lines>(Lines{"XCLIENT ADDR=203.0.113.9 NAME=[UNAVAILABLE]\r\n"}));
    CHECK(build_xclient(attributes, std::vector<std::string>{}) == std::optional<Lines>(Lines{}));
}

TEST_CASE("XCLIENT splits over several commands of at most 512 octets", "[smtp][xclient]") {
    const std::string helo(300, 'h');
    const std::string login(300, 'l');
    const std::vector<XclientAttribute> attributes{
        {"ADDR", "203.0.113.9"}, {"HELO", helo}, {"LOGIN", login}, {"PROTO", "ESMTP"}};
    const std::vector<std::string> offered{"ADDR", "HELO", "LOGIN", "PROTO"};
    const auto lines = build_xclient(attributes, offered);
    REQUIRE(lines);
    REQUIRE(lines->size() == 2);
    CHECK((*lines)[0] == "XCLIENT ADDR=203.0.113.9 HELO=" + helo + "\r\n");
    CHECK((*lines)[1] == "XCLIENT LOGIN=" + login + " PROTO=ESMTP\r\n");
    for (const auto& line : *lines) {
        CHECK(line.size() <= kMaxXclientLine);
    }
    // Exactly at the limit still fits on one line.
    const std::string exact(512 - std::string("XCLIENT LOGIN=\r\n").size(), 'x');
    const auto one = build_xclient(std::vector<XclientAttribute>{{"LOGIN", exact}}, offered);
    REQUIRE(one);
    REQUIRE(one->size() == 1);
    CHECK(one->front().size() == 512);
}

TEST_CASE("XCLIENT values that cannot fit", "[smtp][xclient]") {
    const std::vector<std::string> offered{"HELO", "LOGIN"};
    // A HELO name that cannot fit even alone becomes [UNAVAILABLE] ...
    const std::string huge_helo(200, ' ');  // 600 octets once encoded
    const auto lines = build_xclient(std::vector<XclientAttribute>{{"HELO", huge_helo}}, offered);
    REQUIRE(lines);
    CHECK(*lines == Lines{"XCLIENT HELO=[UNAVAILABLE]\r\n"});
    // ... but a login name is never replaced: the caller must fail closed.
    const std::string huge_login(600, 'l');
    CHECK_FALSE(build_xclient(std::vector<XclientAttribute>{{"LOGIN", huge_login}}, offered));
}
