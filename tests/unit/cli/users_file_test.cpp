// Text-preserving edits of the users file, atomic writes and the edit lock.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "auth/password.hpp"
#include "auth/users.hpp"
#include "cli/users_file.hpp"
#include "config/config.hpp"

namespace {

namespace fs = std::filesystem;
using namespace portcullis;
using cli::UsersFileError;

// The cheapest Argon2id libsodium accepts: the tests need well-formed hashes, not slow ones.
const config::PasswordHashing kCheap{1, 8192};

const std::string& hash_a() {
    static const std::string h = auth::hash_password("first secret", kCheap);
    return h;
}
const std::string& hash_b() {
    static const std::string h = auth::hash_password("second secret", kCheap);
    return h;
}
const std::string& hash_c() {
    static const std::string h = auth::hash_password("third secret", kCheap);
    return h;
}
const std::string& hash_new() {
    static const std::string h = auth::hash_password("new secret", kCheap);
    return h;
}

const fs::path kFile = "/etc/portcullis/users.toml";

// Lines: 1 comment, 2 blank, 3 comment, 4 alice header, 5 password, 6 senders, 7 blank,
// 8-9 comments, 10 printer header, 11 password, 12 disabled, 13 blank, 14 bob header,
// 15 password.
std::string sample() {
    return "# Portcullis users\n"
           "\n"
           "# Alice runs the shop\n"
           "[users.\"alice@example.com\"]\n"
           "password = \"" +
           hash_a() +
           "\"  # set 2024-01-01\n"
           "senders = [\"alice@example.com\", \"*@alice.example.com\"]\n"
           "\n"
           "# The printer\n"
           "# (second comment line)\n"
           "[users.printer]\n"
           "password = '" +
           hash_b() +
           "'\n"
           "disabled = true\n"
           "\n"
           "[users.\"bob@example.com\"]\n"
           "password = \"" +
           hash_c() + "\"\n";
}

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    return text;
}

std::string crlf(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '\n') {
            out += '\r';
        }
        out += c;
    }
    return out;
}

class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/portcullis-cli-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

std::vector<std::string> entries(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

mode_t mode_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("the sample users file is valid", "[cli]") {
    const auto users = auth::parse_users(sample(), kFile);
    CHECK(users->users.size() == 3);
    REQUIRE(users->find("printer") != nullptr);
    CHECK(users->find("printer")->password_hash == hash_b());
}

TEST_CASE("add_user appends a table and keeps the rest byte-for-byte", "[cli]") {
    const std::vector<std::string> senders{"carol@example.com", "*@carol.example.com"};
    const std::string out =
        cli::add_user(sample(), kFile, "carol@example.com", hash_new(), senders);
    CHECK(out == sample() + "\n[users.\"carol@example.com\"]\npassword = \"" + hash_new() +
                     "\"\nsenders = [\"carol@example.com\", \"*@carol.example.com\"]\n");
    const auto users = auth::parse_users(out, kFile);
    const auth::User* carol = users->find("carol@example.com");
    REQUIRE(carol != nullptr);
    CHECK(carol->password_hash == hash_new());
    CHECK(carol->senders == senders);
    CHECK_FALSE(carol->disabled);
}

TEST_CASE("add_user on empty and unusual endings", "[cli]") {
    const std::string block = "[users.\"dave\"]\npassword = \"" + hash_new() + "\"\n";
    SECTION("empty file") {
        CHECK(cli::add_user("", kFile, "dave", hash_new(), {}) == block);
    }
    SECTION("no final newline") {
        CHECK(cli::add_user("# only a comment", kFile, "dave", hash_new(), {}) ==
              "# only a comment\n\n" + block);
    }
    SECTION("already ends with a blank line") {
        CHECK(cli::add_user("# c\n\n", kFile, "dave", hash_new(), {}) == "# c\n\n" + block);
    }
    SECTION("CRLF file stays CRLF") {
        const std::string text = crlf(sample());
        CHECK(cli::add_user(text, kFile, "dave", hash_new(), {}) == text + "\r\n" + crlf(block));
    }
}

TEST_CASE("add_user refuses an existing user with its line", "[cli]") {
    try {
        cli::add_user(sample(), kFile, "printer", hash_new(), {});
        FAIL("no error");
    } catch (const UsersFileError& e) {
        CHECK_THAT(e.what(), Catch::Contains("/etc/portcullis/users.toml:10:"));
        CHECK_THAT(e.what(), Catch::Contains("already exists"));
    }
}

TEST_CASE("user names are written as escaped TOML basic strings", "[cli]") {
    CHECK(cli::toml_basic_string("plain@example.com") == "\"plain@example.com\"");
    CHECK(cli::toml_basic_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(cli::toml_basic_string("t\tn\nr\rb\bf\f") == "\"t\\tn\\nr\\rb\\bf\\f\"");
    CHECK(cli::toml_basic_string(std::string("\x01\x1f\x7f", 3)) == "\"\\u0001\\u001F\\u007F\"");
    CHECK(cli::toml_basic_string("j\xC3\xBCrgen") == "\"j\xC3\xBCrgen\"");
    CHECK_THROWS_AS(cli::toml_basic_string("bad \xFF byte"), UsersFileError);

    for (const std::string& s : {std::string("a\"b\\c"), std::string("x\x01y\x7fz\t"),
                                 std::string("j\xC3\xBCrgen@example.com"), std::string("")}) {
        const toml::table t = toml::parse("k = " + cli::toml_basic_string(s));
        CHECK(t["k"].value<std::string>() == s);
    }

    const std::string weird = "we\"ird\\name@example.com";
    const std::string out = cli::add_user("", kFile, weird, hash_new(), {});
    CHECK_THAT(out, Catch::StartsWith("[users.\"we\\\"ird\\\\name@example.com\"]\n"));
    CHECK(auth::parse_users(out, kFile)->find(weird) != nullptr);

    const std::string utf8 = "j\xC3\xBCrgen@example.com";
    const std::string out2 = cli::add_user(out, kFile, utf8, hash_a(), {});
    CHECK(auth::parse_users(out2, kFile)->find(utf8) != nullptr);
    // Source columns count code points: editing after a non-ASCII header still works.
    const std::string out3 = cli::set_password(out2, kFile, utf8, hash_b());
    CHECK(out3 == replace_once(out2, hash_a(), hash_b()));
}

TEST_CASE("set_password replaces only the value", "[cli]") {
    SECTION("basic string with a trailing comment") {
        const std::string out = cli::set_password(sample(), kFile, "alice@example.com", hash_new());
        CHECK(out == replace_once(sample(), hash_a(), hash_new()));
        CHECK_THAT(out, Catch::Contains("password = \"" + hash_new() + "\"  # set 2024-01-01\n"));
    }
    SECTION("literal string becomes a basic string") {
        const std::string out = cli::set_password(sample(), kFile, "printer", hash_new());
        CHECK(out == replace_once(sample(), "'" + hash_b() + "'", "\"" + hash_new() + "\""));
        const auto users = auth::parse_users(out, kFile);
        CHECK(users->find("printer")->password_hash == hash_new());
        CHECK(users->find("printer")->disabled);
    }
    SECTION("last user, CRLF") {
        const std::string text = crlf(sample());
        CHECK(cli::set_password(text, kFile, "bob@example.com", hash_new()) ==
              replace_once(text, hash_c(), hash_new()));
    }
    SECTION("unknown user") {
        CHECK_THROWS_WITH(cli::set_password(sample(), kFile, "nobody", hash_new()),
                          Catch::Contains("no user \"nobody\""));
    }
}

TEST_CASE("users defined in forms that cannot be edited safely are refused", "[cli]") {
    const std::string pw = "password = \"" + hash_a() + "\"";
    struct Case {
        std::string text;
        std::string where;
        std::string why;
    };
    const std::vector<Case> cases = {
        {"# c\n[users]\n\"carol\" = { " + pw + " }\n", "users.toml:3:", "inline table"},
        {"users = { carol = { " + pw + " } }\n", "users.toml:1:", "inline table"},
        {"[users]\ncarol." + pw + "\n", "users.toml:2:", "dotted keys"},
        {"users.carol." + pw + "\n", "users.toml:1:", "dotted keys"},
    };
    for (const Case& c : cases) {
        INFO(c.text);
        REQUIRE(auth::parse_users(c.text, kFile)->find("carol") != nullptr);
        CHECK_THROWS_WITH(cli::set_password(c.text, kFile, "carol", hash_new()),
                          Catch::Contains(c.where) && Catch::Contains(c.why));
        CHECK_THROWS_WITH(cli::delete_user(c.text, kFile, "carol"),
                          Catch::Contains(c.where) && Catch::Contains(c.why));
        CHECK_THROWS_WITH(cli::require_editable(c.text, kFile, "carol"),
                          Catch::Contains(c.where) && Catch::Contains(c.why));
    }
}

TEST_CASE("delete_user removes the table and keeps the next header's comments", "[cli]") {
    const std::string s = sample();
    auto lines = [&s](std::initializer_list<int> keep) {
        std::vector<std::string> all;
        std::size_t start = 0;
        while (start < s.size()) {
            const auto nl = s.find('\n', start);
            all.push_back(s.substr(start, nl + 1 - start));
            start = nl + 1;
        }
        std::string out;
        for (int n : keep) {
            out += all.at(static_cast<std::size_t>(n - 1));
        }
        return out;
    };
    SECTION("first user: its own block goes, the printer's comments stay") {
        CHECK(cli::delete_user(s, kFile, "alice@example.com") ==
              lines({1, 2, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15}));
    }
    SECTION("middle user") {
        CHECK(cli::delete_user(s, kFile, "printer") ==
              lines({1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15}));
    }
    SECTION("last user takes its separating blank line along") {
        CHECK(cli::delete_user(s, kFile, "bob@example.com") ==
              lines({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
    }
    SECTION("comments directly above the next header stay even without a blank line") {
        const std::string text = "[users.a]\npassword = \"" + hash_a() +
                                 "\"\n# about b\n[users.b]\npassword = \"" + hash_b() + "\"\n";
        CHECK(cli::delete_user(text, kFile, "a") ==
              "# about b\n[users.b]\npassword = \"" + hash_b() + "\"\n");
    }
    SECTION("CRLF") {
        CHECK(cli::delete_user(crlf(s), kFile, "printer") ==
              crlf(lines({1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15})));
    }
    SECTION("the only user") {
        const std::string text = "[users.a]\npassword = \"" + hash_a() + "\"\n";
        CHECK(cli::delete_user(text, kFile, "a").empty());
    }
    SECTION("unknown user") {
        CHECK_THROWS_WITH(cli::delete_user(s, kFile, "nobody"),
                          Catch::Contains(kFile.string()) && Catch::Contains("no user"));
    }
}

TEST_CASE("an edit that would break the file is refused", "[cli]") {
    SECTION("appending a table to an inline [users] table") {
        CHECK_THROWS_WITH(
            cli::add_user("users = {}\n", kFile, "carol", hash_new(), {}),
            Catch::Contains("refusing to write") && Catch::Contains("would not be valid"));
    }
    SECTION("invalid TOML after the edit") {
        CHECK_THROWS_WITH(cli::verify_edit(sample(), sample() + "[users.\"x\"\n", kFile,
                                           cli::EditKind::remove, "x"),
                          Catch::Contains("refusing to write"));
    }
    SECTION("another user changed") {
        const std::string after = replace_once(replace_once(sample(), hash_a(), hash_new()),
                                               "disabled = true", "disabled = false");
        CHECK_THROWS_WITH(cli::verify_edit(sample(), after, kFile, cli::EditKind::set_password,
                                           "alice@example.com", hash_new()),
                          Catch::Contains("also change user \"printer\""));
    }
    SECTION("another user removed") {
        const std::string after = cli::delete_user(sample(), kFile, "printer");
        CHECK_THROWS_WITH(
            cli::verify_edit(sample(), after, kFile, cli::EditKind::remove, "bob@example.com"),
            Catch::Contains("also change user \"printer\""));
    }
    SECTION("intended change missing") {
        CHECK_THROWS_WITH(cli::verify_edit(sample(), sample(), kFile, cli::EditKind::set_password,
                                           "printer", hash_new()),
                          Catch::Contains("intended change"));
        CHECK_NOTHROW(cli::verify_edit(sample(), cli::delete_user(sample(), kFile, "printer"),
                                       kFile, cli::EditKind::remove, "printer"));
    }
    SECTION("a broken input file is reported with its position") {
        try {
            cli::add_user("[users.a]\npassword = 42\n", kFile, "carol", hash_new(), {});
            FAIL("no error");
        } catch (const config::ConfigError& e) {
            REQUIRE_FALSE(e.diagnostics().empty());
            CHECK(e.diagnostics().front().line == 2);
        }
    }
}

TEST_CASE("list_users is sorted with state and senders", "[cli]") {
    const auto users = cli::list_users(sample(), kFile);
    REQUIRE(users.size() == 3);
    CHECK(users[0].name == "alice@example.com");
    CHECK(users[0].senders == std::vector<std::string>{"alice@example.com", "*@alice.example.com"});
    CHECK(users[1].name == "bob@example.com");
    CHECK_FALSE(users[1].disabled);
    CHECK(users[2].name == "printer");
    CHECK(users[2].disabled);
    CHECK(users[2].senders.empty());
}

TEST_CASE("atomic_write replaces the file, keeps its mode, leaves no temp file", "[cli]") {
    TempDir dir;
    const fs::path file = dir.path() / "users.toml";

    cli::atomic_write(file, "first\n");
    CHECK(slurp(file) == "first\n");
    CHECK(mode_of(file) == 0600);
    CHECK(entries(dir.path()) == std::vector<std::string>{"users.toml"});

    REQUIRE(::chmod(file.c_str(), 0640) == 0);
    cli::atomic_write(file, "second\n");
    CHECK(slurp(file) == "second\n");
    CHECK(mode_of(file) == 0640);
    CHECK(entries(dir.path()) == std::vector<std::string>{"users.toml"});

    REQUIRE(::chmod(file.c_str(), 0604) == 0);
    cli::atomic_write(file, "");
    CHECK(slurp(file).empty());
    CHECK(mode_of(file) == 0604);
}

TEST_CASE("atomic_write follows a symbolic link", "[cli]") {
    TempDir dir;
    const fs::path real = dir.path() / "real.toml";
    const fs::path link = dir.path() / "users.toml";
    cli::atomic_write(real, "old\n");
    fs::create_symlink("real.toml", link);
    cli::atomic_write(link, "new\n");
    CHECK(fs::is_symlink(link));
    CHECK(slurp(real) == "new\n");
    CHECK(entries(dir.path()) == std::vector<std::string>{"real.toml", "users.toml"});
}

TEST_CASE("atomic_write failures name the path and leave nothing behind", "[cli]") {
    TempDir dir;
    SECTION("the target is a folder") {
        const fs::path target = dir.path() / "users.toml";
        fs::create_directory(target);
        CHECK_THROWS_WITH(cli::atomic_write(target, "x"), Catch::Contains(target.string()));
        CHECK(entries(dir.path()) == std::vector<std::string>{"users.toml"});
        CHECK(fs::is_directory(target));
    }
    SECTION("the folder does not exist") {
        const fs::path target = dir.path() / "missing" / "users.toml";
        CHECK_THROWS_WITH(
            cli::atomic_write(target, "x"),
            Catch::Contains(target.string()) && Catch::Contains("No such file or directory"));
        CHECK(entries(dir.path()).empty());
    }
}

TEST_CASE("read_text_file reads bytes and reports a missing file as nullopt", "[cli]") {
    TempDir dir;
    const fs::path file = dir.path() / "u.toml";
    CHECK_FALSE(cli::read_text_file(file).has_value());
    const std::string content("a\r\nb\0c", 6);
    cli::atomic_write(file, content);
    CHECK(cli::read_text_file(file) == content);
    CHECK_THROWS_AS(cli::read_text_file(dir.path() / "u.toml" / "x"), UsersFileError);
}

TEST_CASE("FileLock excludes a second editor until released", "[cli]") {
    TempDir dir;
    const fs::path file = dir.path() / "users.toml";
    {
        const cli::FileLock first(file);
        CHECK(first.path() == dir.path() / "users.toml.lock");
        CHECK(fs::exists(first.path()));
        CHECK_THROWS_WITH(cli::FileLock(file, std::chrono::milliseconds(120)),
                          Catch::Contains("users.toml.lock") && Catch::Contains("another process"));
    }
    CHECK_NOTHROW(cli::FileLock(file, std::chrono::milliseconds(0)));
}
