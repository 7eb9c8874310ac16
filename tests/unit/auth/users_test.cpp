#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "auth/password.hpp"
#include "auth/users.hpp"

using namespace portcullis;
using Errors = std::vector<std::string>;

namespace {

const std::string& test_hash() {
    static const std::string hash = auth::hash_password("secret words here", {1, 8192});
    return hash;
}

// A user table with a valid password line; `rest` follows it (lines from 3 on).
std::string user(std::string_view name, std::string_view rest = "") {
    return "[users.\"" + std::string(name) + "\"]\npassword = \"" + test_hash() + "\"\n" +
           std::string(rest);
}

Errors errors(std::string_view text) {
    try {
        (void)auth::parse_users(text, "users.toml");
    } catch (const config::ConfigError& e) {
        Errors out;
        for (const config::Diagnostic& d : e.diagnostics()) {
            out.push_back(d.text());
        }
        return out;
    }
    return {};
}

std::shared_ptr<const auth::UsersSnapshot> parse(std::string_view text) {
    try {
        return auth::parse_users(text, "/srv/pc/users.toml");
    } catch (const config::ConfigError& e) {
        FAIL("unexpected errors:\n" << e.what());
    }
    return nullptr;
}

}  // namespace

TEST_CASE("a users file with several users", "[users]") {
    const auto s = parse("# managed by portcullis user\n" +
                         user("alice@example.com",
                              "senders = [\"alice@example.com\", \"*@alice.example.com\"]\n"
                              "disabled = false\n") +
                         "\n" + user("printer", "disabled = true\n") + "\n" +
                         user("cron@example.com", "senders = []\n"));
    CHECK(s->file == "/srv/pc/users.toml");
    REQUIRE(s->users.size() == 3);
    const auth::User* alice = s->find("alice@example.com");
    REQUIRE(alice != nullptr);
    CHECK(alice->name == "alice@example.com");
    CHECK(alice->password_hash == test_hash());
    CHECK(alice->senders == std::vector<std::string>{"alice@example.com", "*@alice.example.com"});
    CHECK_FALSE(alice->disabled);
    const auth::User* printer = s->find("printer");
    REQUIRE(printer != nullptr);
    CHECK(printer->disabled);
    CHECK(printer->senders.empty());
    CHECK(s->find("cron@example.com")->senders.empty());
}

TEST_CASE("find is an exact match", "[users]") {
    const auto s = parse(user("alice@example.com"));
    CHECK(s->find("alice@example.com") != nullptr);
    CHECK(s->find("Alice@example.com") == nullptr);
    CHECK(s->find("alice") == nullptr);
    CHECK(s->find("") == nullptr);
}

TEST_CASE("an empty users file, or one without users, is valid", "[users]") {
    CHECK(parse("")->users.empty());
    CHECK(parse("# no users yet\n")->users.empty());
    CHECK(parse("[users]\n")->users.empty());
}

TEST_CASE("the password is required and must be an Argon2id hash", "[users]") {
    CHECK(errors("\n[users.\"bob\"]\ndisabled = false\n") ==
          Errors{"users.toml:2:1: users.\"bob\".password is required"});
    CHECK(errors("[users.\"bob\"]\npassword = \"hunter2\"\n") ==
          Errors{"users.toml:2:12: users.\"bob\".password: not an Argon2id hash (expected "
                 "\"$argon2id$v=19$m=...\"; make one with 'portcullis hash' or 'portcullis user "
                 "passwd')"});
    CHECK(errors("[users.\"bob\"]\npassword = \"$argon2id$v=19$m=65536,t=3,p=1$…\"\n").size() == 1);
    CHECK(errors("[users.\"bob\"]\npassword = 5\n") ==
          Errors{"users.toml:2:12: users.\"bob\".password: expected a string, got an integer"});
}

TEST_CASE("sender patterns are validated one by one", "[users]") {
    CHECK(
        errors(user("bob", "senders = [\"bob@example.com\", \"bob\", \"*@*.example.com\", 3]\n")) ==
        Errors{"users.toml:3:31: users.\"bob\".senders[1]: invalid sender pattern \"bob\" "
               "(expected an address, \"*@domain\" or \"<>\")",
               "users.toml:3:38: users.\"bob\".senders[2]: invalid sender pattern "
               "\"*@*.example.com\" (expected an address, \"*@domain\" or \"<>\")",
               "users.toml:3:57: users.\"bob\".senders[3]: expected a string, got an integer"});
    CHECK(errors(user("bob", "senders = \"bob@example.com\"\n")) ==
          Errors{"users.toml:3:11: users.\"bob\".senders: expected an array of strings such as "
                 "[\"alice@example.com\"], got a string"});
    CHECK(errors(user("bob", "senders = [\"<>\", \"*@example.com\"]\n")).empty());
}

TEST_CASE("users: wrong types, unknown keys and unsupported keys", "[users]") {
    CHECK(errors(user("bob", "disabled = \"no\"\n")) ==
          Errors{"users.toml:3:12: users.\"bob\".disabled: expected a boolean (true or false), "
                 "got a string"});
    CHECK(errors(user("bob", "sender = [\"bob@example.com\"]\n")) ==
          Errors{"users.toml:3:1: unknown key 'sender' in [users.\"bob\"] (did you mean "
                 "'senders'?)"});
    CHECK(errors("[users.\"bob\"]\npasword = \"x\"\n") ==
          Errors{"users.toml:1:1: users.\"bob\".password is required",
                 "users.toml:2:1: unknown key 'pasword' in [users.\"bob\"] (did you mean "
                 "'password'?)"});
}

TEST_CASE("users: per-user rate_limits", "[users]") {
    const auto s =
        parse(user("bob",
                   "rate_limits = { messages = \"1000/1h\", bytes = "
                   "\"1GiB/1d\" }\n") +
              user("carol", "rate_limits = { recipients = \"unlimited\" }\n") + user("dave"));
    const auth::User* bob = s->find("bob");
    REQUIRE(bob);
    REQUIRE(bob->rate_limits.messages);
    CHECK(*bob->rate_limits.messages == config::Rate{1000, std::chrono::hours(1)});
    CHECK_FALSE(bob->rate_limits.recipients);
    REQUIRE(bob->rate_limits.bytes);
    CHECK(bob->rate_limits.bytes->count == 1024ull * 1024 * 1024);
    const config::RateLimits defaults{{200, std::chrono::hours(1)},
                                      {500, std::chrono::hours(24)},
                                      {1000000, std::chrono::hours(24)}};
    const auto bob_limits = auth::effective_rate_limits(*bob, defaults);
    CHECK(bob_limits.messages == config::Rate{1000, std::chrono::hours(1)});
    CHECK(bob_limits.recipients == defaults.recipients);  // not given: the default
    CHECK(bob_limits.bytes.count == 1024ull * 1024 * 1024);
    const auto carol_limits = auth::effective_rate_limits(*s->find("carol"), defaults);
    CHECK(carol_limits.recipients.unlimited());
    CHECK(carol_limits.messages == defaults.messages);
    const auto dave_limits = auth::effective_rate_limits(*s->find("dave"), defaults);
    CHECK(dave_limits.messages == defaults.messages);
    CHECK(dave_limits.bytes == defaults.bytes);
}

TEST_CASE("users: bad rate_limits name file, line and column", "[users]") {
    CHECK(errors(user("bob", "rate_limits = { messages = \"lots\" }\n")) ==
          Errors{"users.toml:3:28: users.\"bob\".rate_limits.messages: invalid rate \"lots\": "
                 "expected COUNT/DURATION, e.g. \"200/1h\""});
    CHECK(errors(user("bob", "rate_limits = { mesages = \"1/1h\" }\n")) ==
          Errors{"users.toml:3:17: unknown key 'mesages' in users.\"bob\".rate_limits (did you "
                 "mean 'messages'?)"});
    CHECK(errors(user("bob", "rate_limits = \"1/1h\"\n")) ==
          Errors{"users.toml:3:15: users.\"bob\".rate_limits: expected a table such as { "
                 "messages = \"1000/1h\" }, got a string"});
}

TEST_CASE("users: structure errors", "[users]") {
    CHECK(errors("[user.\"bob\"]\npassword = \"x\"\n") ==
          Errors{"users.toml:1:2: unknown key 'user' at the top level (users are "
                 "[users.\"NAME\"] tables) (did you mean 'users'?)"});
    CHECK(errors("users = 5\n") ==
          Errors{"users.toml:1:9: users: expected a table of [users.\"NAME\"] tables, got an "
                 "integer"});
    CHECK(errors("[users]\nbob = \"x\"\n") ==
          Errors{"users.toml:2:7: users.\"bob\": expected a table [users.\"bob\"], got a "
                 "string"});
    CHECK(errors("[users.\"\"]\npassword = \"x\"\n") ==
          Errors{"users.toml:1:8: a user name must not be empty"});
    CHECK(errors("[users.\"bo\\tb\"]\npassword = \"x\"\n") ==
          Errors{"users.toml:1:8: the user name \"bo\tb\" contains control characters"});
    const Errors syntax = errors("[users.\"bob\"\n");
    REQUIRE(syntax.size() == 1);
    CHECK_THAT(syntax[0],
               Catch::StartsWith("users.toml:1:") && Catch::Contains("TOML syntax error"));
}

TEST_CASE("every problem in a users file is reported", "[users]") {
    const Errors e =
        errors(user("a", "disabled = 1\n") + user("b", "senders = [\"x\"]\n") + "[users.\"c\"]\n");
    CHECK(e == Errors{"users.toml:3:12: users.\"a\".disabled: expected a boolean (true or false), "
                      "got an integer",
                      "users.toml:6:12: users.\"b\".senders[0]: invalid sender pattern \"x\" "
                      "(expected an address, \"*@domain\" or \"<>\")",
                      "users.toml:7:1: users.\"c\".password is required"});
}

TEST_CASE("load_users reads a file; a missing file is an error naming it", "[users]") {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("portcullis-users-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = dir / "users.toml";
    std::ofstream(file) << user("carol@example.com");
    const auto s = auth::load_users(file);
    CHECK(s->file == file);
    CHECK(s->find("carol@example.com") != nullptr);
    std::filesystem::remove_all(dir);
    try {
        (void)auth::load_users(file);
        FAIL("no ConfigError");
    } catch (const config::ConfigError& e) {
        CHECK(std::string(e.what()) == file.string() + ": cannot open: No such file or directory");
    }
}
