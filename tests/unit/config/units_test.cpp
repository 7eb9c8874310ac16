#include <catch2/catch.hpp>

#include <chrono>
#include <limits>

#include "config/units.hpp"

using namespace portcullis::config;
using namespace std::chrono_literals;

namespace {

Duration duration_ok(std::string_view text) {
    std::string error;
    const auto d = parse_duration(text, error);
    INFO(text << " -> " << error);
    REQUIRE(d.has_value());
    CHECK(error.empty());
    return *d;
}

std::string duration_error(std::string_view text) {
    std::string error;
    const auto d = parse_duration(text, error);
    INFO(text);
    CHECK_FALSE(d.has_value());
    return error;
}

std::uint64_t size_ok(std::string_view text) {
    std::string error;
    const auto s = parse_size(text, error);
    INFO(text << " -> " << error);
    REQUIRE(s.has_value());
    return *s;
}

std::string size_error(std::string_view text) {
    std::string error;
    const auto s = parse_size(text, error);
    INFO(text);
    CHECK_FALSE(s.has_value());
    return error;
}

std::string rate_error(std::string_view text) {
    std::string error;
    const auto r = parse_rate(text, error);
    INFO(text);
    CHECK_FALSE(r.has_value());
    return error;
}

}  // namespace

TEST_CASE("durations in every unit", "[units]") {
    CHECK(duration_ok("500ms") == 500ms);
    CHECK(duration_ok("30s") == 30s);
    CHECK(duration_ok("5m") == 5min);
    CHECK(duration_ok("1h") == 1h);
    CHECK(duration_ok("1d") == 24h);
    CHECK(duration_ok("0s") == 0ms);
    CHECK(duration_ok("007s") == 7s);
}

TEST_CASE("durations at the limit of milliseconds", "[units]") {
    constexpr auto max = std::numeric_limits<Duration::rep>::max();
    CHECK(duration_ok(std::to_string(max) + "ms") == Duration(max));
    CHECK(duration_error(std::to_string(max / 1000 + 1) + "s") ==
          "invalid duration \"" + std::to_string(max / 1000 + 1) + "s\": too large");
    CHECK(duration_error("99999999999999999999999d") ==
          "invalid duration \"99999999999999999999999d\": too large");
}

TEST_CASE("malformed durations are refused with a reason", "[units]") {
    CHECK(duration_error("") == "empty duration");
    CHECK(duration_error("-5s") == "invalid duration \"-5s\": it must not be negative");
    CHECK(duration_error("30") == "invalid duration \"30\": missing unit (use ms, s, m, h or d)");
    CHECK(duration_error("5x") ==
          "invalid duration \"5x\": unknown unit \"x\" (use ms, s, m, h or d)");
    CHECK(duration_error("5S") ==
          "invalid duration \"5S\": unknown unit \"S\" (use ms, s, m, h or d)");
    CHECK(duration_error("1.5s") ==
          "invalid duration \"1.5s\": fractions are not allowed; use a smaller unit (use ms, s, "
          "m, h or d)");
    CHECK(duration_error("5 m") ==
          "invalid duration \"5 m\": spaces are not allowed (use ms, s, m, h or d)");
    CHECK(duration_error(" 5m") == "invalid duration \" 5m\": spaces are not allowed");
    CHECK(duration_error("m") == "invalid duration \"m\": it must start with a number");
    CHECK(duration_error("+5s") == "invalid duration \"+5s\": it must start with a number");
    CHECK(duration_error("1h30m") ==
          "invalid duration \"1h30m\": unknown unit \"h30m\" (use ms, s, m, h or d)");
}

TEST_CASE("sizes: plain bytes and binary suffixes", "[units]") {
    CHECK(size_ok("0") == 0);
    CHECK(size_ok("512") == 512);
    CHECK(size_ok("512B") == 512);
    CHECK(size_ok("64KiB") == 64 * 1024);
    CHECK(size_ok("50MiB") == 50ull * 1024 * 1024);
    CHECK(size_ok("2GiB") == 2ull * 1024 * 1024 * 1024);
    CHECK(size_ok("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("malformed sizes are refused with a reason", "[units]") {
    CHECK(size_error("") == "empty size");
    CHECK(size_error("-1") == "invalid size \"-1\": it must not be negative");
    CHECK(size_error("50MB") ==
          "invalid size \"50MB\": unknown unit \"MB\" (use B, KiB, MiB or GiB)");
    CHECK(size_error("50M") == "invalid size \"50M\": unknown unit \"M\" (use B, KiB, MiB or GiB)");
    CHECK(size_error("50mib") ==
          "invalid size \"50mib\": unknown unit \"mib\" (use B, KiB, MiB or GiB)");
    CHECK(size_error("1.5MiB") ==
          "invalid size \"1.5MiB\": fractions are not allowed; use a smaller unit (use B, KiB, "
          "MiB or GiB)");
    CHECK(size_error(" 1") == "invalid size \" 1\": spaces are not allowed");
    CHECK(size_error("MiB") == "invalid size \"MiB\": it must start with a number");
    CHECK(size_error("18446744073709551616") == "invalid size \"18446744073709551616\": too large");
    CHECK(size_error("17179869184GiB") == "invalid size \"17179869184GiB\": too large");
}

TEST_CASE("rates: COUNT/DURATION", "[units]") {
    std::string error;
    CHECK(parse_rate("200/1h", error) == Rate{200, 1h});
    CHECK(parse_rate("1000/1d", error) == Rate{1000, 24h});
    CHECK(parse_rate("10/10m", error) == Rate{10, 10min});
    CHECK(parse_rate("1/500ms", error) == Rate{1, 500ms});
    CHECK(error.empty());
}

TEST_CASE("malformed rates are refused with a reason", "[units]") {
    CHECK(rate_error("200") == "invalid rate \"200\": expected COUNT/DURATION, e.g. \"200/1h\"");
    CHECK(rate_error("0/1h") ==
          "invalid rate \"0/1h\": the count must be a whole number of at least 1");
    CHECK(rate_error("/1h") ==
          "invalid rate \"/1h\": the count must be a whole number of at least 1");
    CHECK(rate_error("-1/1h") ==
          "invalid rate \"-1/1h\": the count must be a whole number of at least 1");
    CHECK(rate_error("99999999999999999999/1h") ==
          "invalid rate \"99999999999999999999/1h\": the count must be a whole number of at "
          "least 1");
    CHECK(rate_error("200/h") ==
          "invalid rate \"200/h\": invalid duration \"h\": it must start with a number");
    CHECK(rate_error("200/0s") == "invalid rate \"200/0s\": the period must be longer than 0");
    CHECK(rate_error("200/1h/2") ==
          "invalid rate \"200/1h/2\": invalid duration \"1h/2\": unknown unit \"h/2\" (use ms, "
          "s, m, h or d)");
}

TEST_CASE("format_duration picks the shortest exact form", "[units]") {
    CHECK(format_duration(0ms) == "0s");
    CHECK(format_duration(2s) == "2s");
    CHECK(format_duration(1500ms) == "1500ms");
    CHECK(format_duration(15min) == "15m");
    CHECK(format_duration(90s) == "90s");
    CHECK(format_duration(2h) == "2h");
    CHECK(format_duration(48h) == "2d");
    CHECK(format_duration(25h) == "25h");
    CHECK(format_duration(-3s) == "-3s");
}

TEST_CASE("format_duration output parses back to the same value", "[units]") {
    for (const Duration d : {Duration(1), Duration(999), Duration(1000), Duration(61'000),
                             Duration(3'600'000), Duration(86'400'001), Duration(172'800'000)}) {
        CHECK(duration_ok(format_duration(d)) == d);
    }
}
