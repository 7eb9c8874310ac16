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

TEST_CASE("LineReader reports a runaway line once, as soon as it passes max_skip", "[smtp][line]") {
    LineReader reader(10, 100);
    auto r = reader.next(std::string(60, 'x'));
    REQUIRE(r.kind == Kind::need_more);
    REQUIRE(r.consumed == 60);
    r = reader.next(std::string(40, 'x'));
    REQUIRE(r.kind == Kind::need_more);  // 100 octets so far: not past the bound yet
    r = reader.next("x");
    REQUIRE(r.kind == Kind::runaway);
    REQUIRE(r.consumed == 1);
    r = reader.next(std::string(1000, 'y'));  // still the same line: no second report
    REQUIRE(r.kind == Kind::need_more);
    REQUIRE(r.consumed == 1000);
    r = reader.next("end\r\nNOOP\r\n");  // its end is consumed without another report
    REQUIRE(r.kind == Kind::need_more);
    REQUIRE(r.consumed == 5);
    r = reader.next("NOOP\r\n");
    REQUIRE(r.kind == Kind::line);
    REQUIRE(r.text == "NOOP");
}

TEST_CASE("LineReader: an over-long line ending past max_skip is a runaway, not too_long",
          "[smtp][line]") {
    LineReader reader(10, 100);
    REQUIRE(reader.next(std::string(50, 'x')).consumed == 50);
    auto r = reader.next(std::string(60, 'x') + "\r\n");
    REQUIRE(r.kind == Kind::runaway);
    REQUIRE(r.consumed == 62);
    // A complete line in one buffer too.
    r = reader.next(std::string(200, 'z') + "\n");
    REQUIRE(r.kind == Kind::runaway);
    REQUIRE(r.consumed == 201);
    // Within the bound it stays too_long (the session goes on).
    r = reader.next(std::string(50, 'z') + "\n");
    REQUIRE(r.kind == Kind::too_long);
    REQUIRE(r.consumed == 51);
}

TEST_CASE("LineReader: a 10 MB line is dropped as it arrives", "[smtp][line]") {
    LineReader reader(512);
    const std::string chunk(64 * 1024, 'a');
    std::size_t runaways = 0;
    for (int i = 0; i < 160; ++i) {  // 10 MiB in 64 KiB reads
        const auto r = reader.next(chunk);
        REQUIRE(r.consumed == chunk.size());
        runaways += r.kind == Kind::runaway ? 1 : 0;
    }
    REQUIRE(runaways == 1);
}
