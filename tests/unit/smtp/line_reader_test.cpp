#include <catch2/catch.hpp>

#include <string>

#include "smtp/line_reader.hpp"

using portcullis::smtp::LineReader;
using Kind = LineReader::Kind;

TEST_CASE("LineReader splits CRLF and LF lines", "[smtp][line]") {
    LineReader reader(512);
    const std::string buffer = "EHLO x\r\nNOOP\nQUIT\r\n";
    auto r = reader.next(buffer);
    REQUIRE(r.kind == Kind::line);
    REQUIRE(r.text == "EHLO x");
    REQUIRE(r.consumed == 8);
    r = reader.next(std::string_view(buffer).substr(8));
    REQUIRE(r.kind == Kind::line);
    REQUIRE(r.text == "NOOP");
    REQUIRE(r.consumed == 5);
    r = reader.next(std::string_view(buffer).substr(13));
    REQUIRE(r.text == "QUIT");
    REQUIRE(r.consumed == 6);
}

TEST_CASE("LineReader waits for a complete line", "[smtp][line]") {
    LineReader reader(512);
    REQUIRE(reader.next("").kind == Kind::need_more);
    auto r = reader.next("NOOP\r");
    REQUIRE(r.kind == Kind::need_more);
    REQUIRE(r.consumed == 0);
    r = reader.next("NOOP\r\n");
    REQUIRE(r.kind == Kind::line);
    REQUIRE(r.text == "NOOP");
    r = reader.next("\r\n");
    REQUIRE(r.kind == Kind::line);
    REQUIRE(r.text.empty());
    r = reader.next("a\rb\n");
    REQUIRE(r.text == "a\rb");
}

TEST_CASE("LineReader limit counts the CRLF", "[smtp][line]") {
    LineReader reader(10);
    REQUIRE(reader.next("12345678\r\n").kind == Kind::line);
    REQUIRE(reader.next("12345678\n").kind == Kind::line);
    auto r = reader.next("123456789\r\nNOOP\r\n");
    REQUIRE(r.kind == Kind::too_long);
    REQUIRE(r.consumed == 11);
    REQUIRE_FALSE(reader.skipping());
    r = reader.next("123456789\n");
    REQUIRE(r.kind == Kind::too_long);
    REQUIRE(r.consumed == 10);
}

TEST_CASE("LineReader discards an over-long partial line and reports it once", "[smtp][line]") {
    LineReader reader(10);
    auto r = reader.next("123456789");
    REQUIRE(r.kind == Kind::need_more);
    REQUIRE(r.consumed == 0);
    r = reader.next("1234567890");
    REQUIRE(r.kind == Kind::need_more);
    REQUIRE(r.consumed == 10);
    REQUIRE(reader.skipping());
    r = reader.next(std::string(5000, 'x'));
    REQUIRE(r.kind == Kind::need_more);
    REQUIRE(r.consumed == 5000);
    r = reader.next("tail\r\nQUIT\r\n");
    REQUIRE(r.kind == Kind::too_long);
    REQUIRE(r.consumed == 6);
    REQUIRE_FALSE(reader.skipping());
    r = reader.next("QUIT\r\n");
    REQUIRE(r.kind == Kind::line);
    REQUIRE(r.text == "QUIT");
}
