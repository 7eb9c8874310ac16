// The offline subcommands, run against a real config and users file in a temp folder.
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "auth/password.hpp"
#include "auth/users.hpp"
#include "cli/commands.hpp"
#include "cli/users_file.hpp"

namespace {

namespace fs = std::filesystem;
using namespace portcullis;

constexpr const char* kStrong = "correct horse battery staple 42";
constexpr const char* kStrong2 = "violet tractor umbrella 1987 quietly";

class Fixture {
  public:
    Fixture() {
        char tmpl[] = "/tmp/portcullis-cli-cmd-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        config = dir / "portcullis.toml";
        users = dir / "users.toml";
        write(config,
              "# test gateway\n"
              "[[listener]]\n"
              "address = \"127.0.0.1:2587\"\n"
              "tls = \"none\"\n"
              "\n"
              "[backend]\n"
              "address = \"127.0.0.1:2525\"\n"
              "\n"
              "[auth]\n"
              "users_file = \"users.toml\"\n"
              "hash_iterations = 2\n"
              "hash_memory = \"19MiB\"\n");
    }
    ~Fixture() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    static void write(const fs::path& p, const std::string& text) {
        std::ofstream(p, std::ios::binary) << text;
    }
    static std::string read(const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }

    // A fresh console (output cleared) whose password source hands out `passwords` in
    // turn and fails the test when asked for more.
    cli::Console& console(std::vector<std::string> passwords) {
        out.str("");
        err.str("");
        auto queue = std::make_shared<std::vector<std::string>>(std::move(passwords));
        io_.emplace(cli::Console{out, err, [queue](bool) {
                                     REQUIRE_FALSE(queue->empty());
                                     SecureString pw(queue->front());
                                     queue->erase(queue->begin());
                                     return pw;
                                 }});
        return *io_;
    }

    fs::path dir;
    fs::path config;
    fs::path users;
    std::ostringstream out;
    std::ostringstream err;

  private:
    std::optional<cli::Console> io_;
};

}  // namespace

TEST_CASE("user names: 1..255 bytes, no controls, spaces, quotes, backslashes", "[cli]") {
    CHECK_FALSE(cli::user_name_problem("alice@example.com"));
    CHECK_FALSE(cli::user_name_problem("printer-3"));
    CHECK_FALSE(cli::user_name_problem("o'brien@example.com"));
    CHECK_FALSE(cli::user_name_problem("j\xC3\xBCrgen@example.com"));
    CHECK_FALSE(cli::user_name_problem(std::string(255, 'a')));
    CHECK(cli::user_name_problem("") == "it is empty");
    CHECK(cli::user_name_problem(std::string(256, 'a')) == "it is longer than 255 bytes");
    CHECK(cli::user_name_problem("a b") == "it contains a space");
    CHECK(cli::user_name_problem("a\"b") == "it contains a double quote");
    CHECK(cli::user_name_problem("a\\b") == "it contains a backslash");
    CHECK(cli::user_name_problem("a\tb") == "it contains a control character");
    CHECK(cli::user_name_problem("a\x7f") == "it contains a control character");
    CHECK(cli::user_name_problem("a\xC2\x85") == "it contains a control character");
    CHECK(cli::user_name_problem("a\xFF") == "it is not valid UTF-8");
    CHECK(cli::user_name_problem("a\xC3") == "it is not valid UTF-8");
    CHECK(cli::user_name_problem("\xED\xA0\x80") == "it is not valid UTF-8");  // surrogate
}

TEST_CASE("context words: name, local part, domain labels", "[cli]") {
    CHECK(cli::context_words("alice@mail.example.com") ==
          std::vector<std::string>{"alice@mail.example.com", "alice", "mail", "example", "com"});
    CHECK(cli::context_words("printer") == std::vector<std::string>{"printer"});
    CHECK(cli::context_words("a@a") == std::vector<std::string>{"a@a", "a"});
}

TEST_CASE("user add, passwd, list, del through the users file", "[cli]") {
    Fixture f;
    Fixture::write(f.users, "# managed by hand and by portcullis\n");
    const std::vector<std::string> senders{"alice@example.com", "*@alice.example.com"};

    REQUIRE(cli::run_user_add(f.config, "alice@example.com", senders, f.console({kStrong})) ==
            cli::exit_ok);
    CHECK(f.err.str().empty());
    CHECK_THAT(f.out.str(), Catch::Contains("added user \"alice@example.com\""));
    std::string text = Fixture::read(f.users);
    CHECK_THAT(text, Catch::StartsWith("# managed by hand and by portcullis\n\n"
                                       "[users.\"alice@example.com\"]\npassword = \"$argon2id$"));
    auto snapshot = auth::load_users(f.users);
    const auth::User* alice = snapshot->find("alice@example.com");
    REQUIRE(alice != nullptr);
    CHECK(alice->senders == senders);
    CHECK(auth::verify_password(alice->password_hash, kStrong));
    CHECK_THAT(alice->password_hash, Catch::Contains("m=19456,t=2,p=1"));
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(f.dir)) {
        names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"portcullis.toml", "users.toml", "users.toml.lock"});

    CHECK(cli::run_user_add(f.config, "printer", {}, f.console({kStrong2})) == cli::exit_ok);

    SECTION("an existing user is refused before a password is asked for") {
        CHECK(cli::run_user_add(f.config, "alice@example.com", {}, f.console({})) ==
              cli::exit_error);
        CHECK_THAT(f.err.str(), Catch::Contains("users.toml:3: user \"alice@example.com\" "
                                                "already exists"));
    }
    SECTION("passwd changes only the hash") {
        const std::string before = Fixture::read(f.users);
        REQUIRE(cli::run_user_passwd(f.config, "alice@example.com", f.console({kStrong2})) ==
                cli::exit_ok);
        const auto after = auth::load_users(f.users);
        const auth::User* changed = after->find("alice@example.com");
        REQUIRE(changed != nullptr);
        CHECK(auth::verify_password(changed->password_hash, kStrong2));
        CHECK(Fixture::read(f.users) ==
              cli::set_password(before, f.users, "alice@example.com", changed->password_hash));
    }
    SECTION("passwd of an unknown user") {
        CHECK(cli::run_user_passwd(f.config, "nobody", f.console({})) == cli::exit_error);
        CHECK_THAT(f.err.str(), Catch::Contains("no user \"nobody\""));
    }
    SECTION("list") {
        REQUIRE(cli::run_user_list(f.config, f.console({})) == cli::exit_ok);
        CHECK(f.out.str() ==
              "alice@example.com\tenabled\talice@example.com,*@alice.example.com\n"
              "printer\tenabled\t-\n");
    }
    SECTION("del") {
        REQUIRE(cli::run_user_del(f.config, "alice@example.com", f.console({})) == cli::exit_ok);
        CHECK(auth::load_users(f.users)->find("alice@example.com") == nullptr);
        CHECK(auth::load_users(f.users)->find("printer") != nullptr);
        CHECK(cli::run_user_del(f.config, "alice@example.com", f.console({})) == cli::exit_error);
        CHECK_THAT(f.err.str(), Catch::Contains("no user \"alice@example.com\""));
    }
    CHECK(f.out.str().find(kStrong) == std::string::npos);
    CHECK(f.err.str().find(kStrong) == std::string::npos);
    CHECK(f.out.str().find(kStrong2) == std::string::npos);
}

TEST_CASE("user add creates a missing users file with mode 0600", "[cli]") {
    Fixture f;
    REQUIRE(cli::run_user_add(f.config, "carol", {}, f.console({kStrong})) == cli::exit_ok);
    struct stat st {};
    REQUIRE(::stat(f.users.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK_THAT(Fixture::read(f.users), Catch::StartsWith("[users.\"carol\"]\n"));
}

TEST_CASE("weak passwords and bad arguments are refused", "[cli]") {
    Fixture f;
    SECTION("weak password: exit 1 with the reason, file untouched") {
        CHECK(cli::run_user_add(f.config, "alice@example.com", {}, f.console({"alice2024"})) ==
              cli::exit_error);
        CHECK_THAT(f.err.str(), Catch::Contains("password refused:"));
        CHECK(f.err.str().find("alice2024") == std::string::npos);
        CHECK_FALSE(fs::exists(f.users));
    }
    SECTION("password built from the user name") {
        CHECK(cli::run_user_add(f.config, "zebulon@quartzfield.example", {},
                                f.console({"Zebulon@Quartzfield.example"})) == cli::exit_error);
        CHECK_THAT(f.err.str(), Catch::Contains("password refused:"));
    }
    SECTION("invalid name: usage error") {
        CHECK(cli::run_user_add(f.config, "bad name", {}, f.console({})) == cli::exit_usage);
        CHECK_THAT(f.err.str(), Catch::Contains("invalid user name \"bad name\""));
    }
    SECTION("invalid sender pattern: usage error") {
        const std::vector<std::string> senders{"not a pattern"};
        CHECK(cli::run_user_add(f.config, "alice@example.com", senders, f.console({})) ==
              cli::exit_usage);
        CHECK_THAT(f.err.str(), Catch::Contains("invalid --sender pattern"));
    }
    SECTION("a broken config is reported with file:line:col") {
        Fixture::write(f.config, "[auth]\nusers_file = 7\n");
        CHECK(cli::run_user_add(f.config, "alice@example.com", {}, f.console({})) ==
              cli::exit_error);
        CHECK_THAT(f.err.str(), Catch::Contains(f.config.string() + ":"));
    }
}

TEST_CASE("hash prints a verifiable Argon2id string", "[cli]") {
    Fixture f;
    REQUIRE(cli::run_hash(f.config, f.console({kStrong})) == cli::exit_ok);
    std::string hash = f.out.str();
    REQUIRE(hash.ends_with("\n"));
    hash.pop_back();
    CHECK(auth::is_argon2id_hash(hash));
    CHECK_THAT(hash, Catch::Contains("m=19456,t=2,p=1"));
    CHECK(auth::verify_password(hash, kStrong));

    CHECK(cli::run_hash(std::nullopt, f.console({"password"})) == cli::exit_error);
    CHECK_THAT(f.err.str(), Catch::Contains("password refused"));
    CHECK(f.out.str().empty());
}

TEST_CASE("check-config reports OK or every problem", "[cli]") {
    Fixture f;
    REQUIRE(cli::run_user_add(f.config, "alice@example.com", {}, f.console({kStrong})) ==
            cli::exit_ok);

    CHECK(cli::run_check_config(f.config, f.console({})) == cli::exit_ok);
    CHECK(f.out.str() == "configuration OK: 1 listeners, 1 users\n");

    SECTION("broken users file") {
        Fixture::write(f.users, Fixture::read(f.users) + "\n[users.bob]\nsenders = 3\n");
        CHECK(cli::run_check_config(f.config, f.console({})) == cli::exit_error);
        CHECK_THAT(f.err.str(), Catch::Contains(f.users.string() + ":5:"));
        CHECK(f.out.str().empty());
    }
    SECTION("TLS listener with missing certificate") {
        Fixture::write(f.config, Fixture::read(f.config) +
                                     "\n[[listener]]\naddress = \"127.0.0.1:2465\"\n"
                                     "tls = \"implicit\"\n\n[tls]\n"
                                     "certificate = \"missing.pem\"\n"
                                     "private_key = \"missing.key\"\n");
        CHECK(cli::run_check_config(f.config, f.console({})) == cli::exit_error);
        CHECK_THAT(f.err.str(), Catch::Contains("missing.pem"));
    }
    SECTION("broken config") {
        Fixture::write(f.config, "[[listener]]\naddress = \"nowhere\"\n");
        CHECK(cli::run_check_config(f.config, f.console({})) == cli::exit_error);
        CHECK_THAT(f.err.str(), Catch::Contains(f.config.string() + ":2:"));
    }
}
