// [limits] max_line_length, and what fuzzing the config and users parsers found in the
// TOML library: text it has bugs on must still end as a syntax error that names the
// file, line and column (tests/fuzz/fuzz_config.cpp).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "auth/users.hpp"
#include "config/config.hpp"

using namespace portcullis;

namespace {

const std::string kMinimal =
    "[[listener]]\naddress = \"127.0.0.1:2525\"\ntls = \"none\"\n"
    "[backend]\naddress = \"127.0.0.1:25\"\n[auth]\nusers_file = \"users.toml\"\n";

std::vector<std::string> config_errors(const std::string& text) {
    try {
        (void)config::parse_config(text, "test.toml");
    } catch (const config::ConfigError& e) {
        std::vector<std::string> out;
        for (const auto& d : e.diagnostics()) {
            out.push_back(d.text());
        }
        return out;
    }
    return {};
}

std::vector<std::string> users_errors(const std::string& text) {
    try {
        (void)auth::parse_users(text, "users.toml");
    } catch (const config::ConfigError& e) {
        std::vector<std::string> out;
        for (const auto& d : e.diagnostics()) {
            out.push_back(d.text());
        }
        return out;
    }
    return {};
}

}  // namespace

TEST_CASE("max_line_length defaults to 64 KiB and takes sizes", "[config][limits]") {
    CHECK(config::parse_config(kMinimal, "test.toml")->limits.max_line_length == 65536);
    CHECK(config::parse_config("[limits]\nmax_line_length = \"4KiB\"\n" + kMinimal, "test.toml")
              ->limits.max_line_length == 4096);
    CHECK(config::parse_config("[limits]\nmax_line_length = 998\n" + kMinimal, "test.toml")
              ->limits.max_line_length == 998);
}

TEST_CASE("max_line_length below RFC 5321's 998 octets is refused", "[config][limits]") {
    CHECK(config_errors("[limits]\nmax_line_length = 997\n" + kMinimal) ==
          std::vector<std::string>{
              "test.toml:2:19: limits.max_line_length: must be at least 998 bytes"});
    CHECK(config_errors("[limits]\nmax_line_length = \"lots\"\n" + kMinimal).size() == 1);
}

// toml++ 3.3.0 asserts (debug builds) on "[#": found by fuzz_config.
TEST_CASE("a comment sign in a table header is a syntax error with its position",
          "[config][fuzz]") {
    CHECK(config_errors("[server]\n[# x\n") ==
          std::vector<std::string>{"test.toml:2:2: TOML syntax error: Error while parsing key: "
                                   "expected bare key starting character or string delimiter, "
                                   "saw '#'"});
    const auto users = users_errors("[# x\n");
    REQUIRE(users.size() == 1);
    CHECK(users[0].rfind("users.toml:1:2: TOML syntax error", 0) == 0);
}

// toml++ 3.3.0 reaches TOML_UNREACHABLE when it looks for white space and finds a code
// point of U+00A1..U+0499 (marzer/tomlplusplus#190): found by fuzz_config. Debian's
// build turns it into a syntax error at the right place; this pins that down.
TEST_CASE("a non-ASCII letter where white space may be is a syntax error with its position",
          "[config][fuzz]") {
    const auto errors = config_errors("[server]\nworkers = 1\xce\x81,\n");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].rfind("test.toml:2:12: TOML syntax error", 0) == 0);
    const auto users = users_errors("[users.\"a\"]\npassword = \"x\"\xc3\xa9\n");
    REQUIRE(users.size() == 1);
    CHECK(users[0].rfind("users.toml:2:15: TOML syntax error", 0) == 0);
}
