// `portcullis user import`: the Dovecot passwd-file / htpasswd parser and the import
// command against a real config and users file in a temp folder.
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "auth/password.hpp"
#include "auth/users.hpp"
#include "cli/user_import.hpp"

namespace {

namespace fs = std::filesystem;
using namespace portcullis;

// Made with the reference implementation (Debian package argon2):
//   echo -n "correct horse" | argon2 somesaltsalt -id -t 2 -m 12 -p 4 -e
// p=4 is not what libsodium writes, but what it verifies.
constexpr const char* kCliP4 =
    "$argon2id$v=19$m=4096,t=2,p=4$c29tZXNhbHRzYWx0$cDx9uFofkPt49+9VQ/sKby0mY28fRgm2EajluTsVNok";
// The same with -v 10 (Argon2 1.0) and with -l 64 (133 characters).
constexpr const char* kCliV16 =
    "$argon2id$v=16$m=4096,t=2,p=1$c29tZXNhbHRzYWx0$YMt9HEWJPKBk/A3X2BButGEfQ0q2hjIoxvuEdWNXOEI";
constexpr const char* kCliLong =
    "$argon2id$v=19$m=4096,t=2,p=1$c29tZXNhbHRzYWx0$hrYusEmEZfxwWVeusL3I8WW2J350gbc3ceIfAqoPXopvIm0"
    "Uf42QP8tzW6vZGZDpcTBfPjEHHdMWT/Ftj5o8ew";
constexpr const char* kCliPassword = "correct horse";

const config::PasswordHashing kCheap{1, 8192};

const std::string& libsodium_hash() {
    static const std::string h = auth::hash_password("imported secret", kCheap);
    return h;
}

}  // namespace

TEST_CASE("import: hashes of the argon2 CLI are what the gateway verifies", "[cli][import]") {
    CHECK_FALSE(cli::argon2id_hash_problem(kCliP4));
    CHECK(auth::verify_password(kCliP4, kCliPassword));
    CHECK_FALSE(auth::verify_password(kCliP4, "correct horsE"));
    CHECK_FALSE(cli::argon2id_hash_problem(libsodium_hash()));

    CHECK_THAT(cli::argon2id_hash_problem(kCliV16).value_or(""),
               Catch::Contains("libsodium verifies only v=19"));
    CHECK_FALSE(auth::verify_password(kCliV16, kCliPassword));  // the reason it is refused
    CHECK_THAT(cli::argon2id_hash_problem(kCliLong).value_or(""),
               Catch::Contains("133 characters, libsodium takes at most 127"));
    CHECK_FALSE(auth::verify_password(kCliLong, kCliPassword));
    CHECK_THAT(cli::argon2id_hash_problem("$argon2id$m=4096,t=2,p=1$c29tZXNhbHQ$abc").value_or(""),
               Catch::Contains("version 1.0"));
    CHECK_THAT(cli::argon2id_hash_problem("$argon2id$v=19$m=4096,t=2,p=1$$").value_or(""),
               Catch::Contains("cannot decode"));
    CHECK_THAT(cli::argon2id_hash_problem("$argon2i$v=19$m=4096,t=2,p=1$c29tZQ$abc").value_or(""),
               Catch::Contains("not an Argon2id"));

    const auto cost = cli::argon2id_cost(kCliP4);
    REQUIRE(cost);
    CHECK(cost->opslimit == 2);
    CHECK(cost->memlimit == 4096u * 1024u);
}

TEST_CASE("import: Dovecot passwd-file lines", "[cli][import]") {
    const std::string text =
        std::string("# exported from dovecot\n") + "alice@example.com:{ARGON2ID}" + kCliP4 +
        ":1000:1000::/home/alice::userdb_quota_rule=*:storage=1G\r\n" + "\n" +
        "bob@example.com:{SHA512-CRYPT}$6$abc$def:1001:1001\n" + "carol@example.com:{argon2id}" +
        libsodium_hash() + "::::::\n" +
        "dave@example.com:{ARGON2I}$argon2i$v=19$m=4096,t=2,p=1$c2FsdA$x\n" +
        "erin@example.com:{BLF-CRYPT}$2y$05$abc\n" + "frank@example.com:{PLAIN}secret\n" +
        "gina@example.com:{ARGON2ID}" + kCliV16 + "\n";
    const cli::ImportParse p = cli::parse_import(text);
    REQUIRE(p.entries.size() == 2);
    CHECK(p.entries[0].line == 2);
    CHECK(p.entries[0].name == "alice@example.com");
    CHECK(p.entries[0].hash == kCliP4);
    CHECK(p.entries[1].line == 5);
    CHECK(p.entries[1].name == "carol@example.com");
    CHECK(p.entries[1].hash == libsodium_hash());

    REQUIRE(p.problems.size() == 5);
    CHECK(p.problems[0].line == 4);
    CHECK(p.problems[0].unsupported);
    CHECK(p.problems[0].user == "bob@example.com");
    CHECK_THAT(p.problems[0].reason, Catch::Contains("{SHA512-CRYPT} (SHA-512 crypt)") &&
                                         Catch::Contains("needs a new password"));
    CHECK(p.problems[1].line == 6);
    CHECK(p.problems[1].unsupported);
    CHECK_THAT(p.problems[1].reason, Catch::Contains("{ARGON2I} (Argon2i (not Argon2id))"));
    CHECK_THAT(p.problems[2].reason, Catch::Contains("bcrypt"));
    CHECK_THAT(p.problems[3].reason, Catch::Contains("{PLAIN} (plain text)"));
    CHECK(p.problems[4].line == 9);
    CHECK_FALSE(p.problems[4].unsupported);  // claims Argon2id, but libsodium cannot verify it
    CHECK_THAT(p.problems[4].reason, Catch::Contains("v=19"));
}

TEST_CASE("import: htpasswd lines", "[cli][import]") {
    const std::string text = std::string("alice:") + kCliP4 + "\n" +
                             "bcrypt:$2y$05$c2FsdHNhbHRzYWx0c2FsdOabcdefghijklmnopqrstuvwxyz012\n" +
                             "apr:$apr1$salt$hash\n" + "sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n" +
                             "crypt:abJnggxhB/yWI\n" +
                             "argon2i:$argon2i$v=19$m=16,t=2,p=1$c2FsdA$x\n";
    const cli::ImportParse p = cli::parse_import(text);
    REQUIRE(p.entries.size() == 1);
    CHECK(p.entries[0].name == "alice");
    REQUIRE(p.problems.size() == 5);
    for (const auto& problem : p.problems) {
        CHECK(problem.unsupported);
    }
    CHECK_THAT(p.problems[0].reason, Catch::Contains("bcrypt"));
    CHECK_THAT(p.problems[1].reason, Catch::Contains("Apache MD5"));
    CHECK_THAT(p.problems[2].reason, Catch::Contains("{SHA}"));
    CHECK_THAT(p.problems[3].reason, Catch::Contains("plain text or DES crypt"));
    CHECK_THAT(p.problems[4].reason, Catch::Contains("Argon2i (not Argon2id)"));
}

TEST_CASE("import: malformed lines are errors, not skips", "[cli][import]") {
    const std::string text = std::string("no colon here\n") + "bad name:" + kCliP4 + "\n" +
                             "alice:" + kCliP4 + "\n" + "alice:" + libsodium_hash() + "\n" +
                             "bob:{ARGON2ID" + kCliP4 + "\n" + ":" + kCliP4 + "\n";
    const cli::ImportParse p = cli::parse_import(text);
    REQUIRE(p.entries.size() == 1);
    REQUIRE(p.problems.size() == 5);
    for (const auto& problem : p.problems) {
        CHECK_FALSE(problem.unsupported);
    }
    CHECK(p.problems[0].line == 1);
    CHECK_THAT(p.problems[0].reason, Catch::Contains("no ':'"));
    CHECK_THAT(p.problems[1].reason, Catch::Contains("invalid user name: it contains a space"));
    CHECK(p.problems[2].line == 4);
    CHECK_THAT(p.problems[2].reason, Catch::Contains("repeats the user of line 3"));
    CHECK_THAT(p.problems[3].reason, Catch::Contains("without '}'"));
    CHECK_THAT(p.problems[4].reason, Catch::Contains("it is empty"));
}

namespace {

class ImportFixture {
  public:
    ImportFixture() {
        char tmpl[] = "/tmp/portcullis-cli-import-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        config = dir / "portcullis.toml";
        users = dir / "users.toml";
        source = dir / "passwd";
        write(
            config,
            "[[listener]]\naddress = \"127.0.0.1:2587\"\ntls = \"none\"\n\n"
            "[backend]\naddress = \"127.0.0.1:2525\"\n\n"
            "[auth]\nusers_file = \"users.toml\"\nhash_iterations = 2\nhash_memory = \"19MiB\"\n");
    }
    ~ImportFixture() {
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
    int run(cli::ImportOptions options, const std::string& stdin_text = {}) {
        out.str("");
        err.str("");
        if (options.source.empty()) {
            options.source = source;
        }
        cli::Console io{out, err, [](bool) -> SecureString {
                            FAIL("import must not ask for a password");
                            return SecureString(std::string_view());
                        }};
        std::istringstream in(stdin_text);
        return cli::run_user_import(config, options, io, in);
    }

    fs::path dir, config, users, source;
    std::ostringstream out, err;
};

// Import options without designated initializers (GCC warns about the ones left out).
cli::ImportOptions options(bool replace, bool dry_run, bool skip_unsupported,
                           fs::path source = {}) {
    cli::ImportOptions o;
    o.source = std::move(source);
    o.replace = replace;
    o.dry_run = dry_run;
    o.skip_unsupported = skip_unsupported;
    return o;
}

const std::string kExisting =
    "# hand-written header comment\n\n[users.\"carol@example.com\"]\npassword = \"";

}  // namespace

TEST_CASE("import command: all or nothing, --skip-unsupported, --replace, --dry-run",
          "[cli][import]") {
    ImportFixture f;
    const std::string before =
        kExisting + libsodium_hash() + "\"  # keep me\nsenders = [\"*@example.com\"]\n";
    ImportFixture::write(f.users, before);
    ImportFixture::write(f.source, std::string("alice@example.com:{ARGON2ID}") + kCliP4 +
                                       ":1000:1000\n" + "bob@example.com:{SHA512-CRYPT}$6$x$y\n");

    // Dry run: reports, changes nothing, takes no lock.
    CHECK(f.run(options(false, true, true)) == cli::exit_ok);
    CHECK_THAT(f.out.str(), Catch::Contains("would add \"alice@example.com\"") &&
                                Catch::Contains("dry run: would import 1 user(s)"));
    CHECK(ImportFixture::read(f.users) == before);
    CHECK_FALSE(fs::exists(f.dir / "users.toml.lock"));

    // An unsupported scheme fails the import and writes nothing.
    CHECK(f.run(options(false, false, false)) == cli::exit_error);
    CHECK_THAT(f.err.str(), Catch::Contains(f.source.string() +
                                            ":2: user \"bob@example.com\": scheme {SHA512-CRYPT}"));
    CHECK_THAT(f.err.str(), Catch::Contains("nothing imported") &&
                                Catch::Contains("--skip-unsupported imports the 1 Argon2id"));
    CHECK(ImportFixture::read(f.users) == before);

    CHECK(f.run(options(false, false, true)) == cli::exit_ok);
    CHECK_THAT(f.out.str(), Catch::Contains("imported 1 user(s) (1 added, 0 replaced), skipped 1"));
    CHECK_THAT(f.err.str(), Catch::Contains("(skipped)") && Catch::Contains("note: its hash costs "
                                                                            "m=4096 KiB, t=2"));
    const std::string after = ImportFixture::read(f.users);
    CHECK(after.starts_with(before));  // comments and the other user byte for byte
    auto snapshot = auth::load_users(f.users);
    REQUIRE(snapshot->find("alice@example.com") != nullptr);
    CHECK(auth::verify_password(snapshot->find("alice@example.com")->password_hash, kCliPassword));
    CHECK(snapshot->find("bob@example.com") == nullptr);

    // Importing again: the user exists; --replace takes the new hash, keeps the rest.
    CHECK(f.run(options(false, false, true)) == cli::exit_error);
    CHECK_THAT(f.err.str(), Catch::Contains(":1: user \"alice@example.com\": already exists"));
    CHECK(ImportFixture::read(f.users) == after);

    const std::string replacement = auth::hash_password("replacement secret", kCheap);
    CHECK(f.run(options(true, false, false, "-"), "carol@example.com:" + replacement + "\n") ==
          cli::exit_ok);
    CHECK_THAT(f.out.str(), Catch::Contains("replaced \"carol@example.com\""));
    snapshot = auth::load_users(f.users);
    const auth::User* carol = snapshot->find("carol@example.com");
    REQUIRE(carol != nullptr);
    CHECK(carol->password_hash == replacement);
    CHECK(carol->senders == std::vector<std::string>{"*@example.com"});
    CHECK_THAT(ImportFixture::read(f.users), Catch::Contains("\"  # keep me\n"));
}

TEST_CASE("import command: invalid lines fail even with --skip-unsupported", "[cli][import]") {
    ImportFixture f;
    ImportFixture::write(f.source, std::string("alice:") + kCliP4 + "\nbroken line\n");
    CHECK(f.run(options(false, false, true)) == cli::exit_error);
    CHECK_THAT(f.err.str(), Catch::Contains(f.source.string() + ":2: no ':'"));
    CHECK_FALSE(fs::exists(f.users));

    CHECK(f.run(options(false, false, false, f.dir / "missing")) == cli::exit_error);
    CHECK_THAT(f.err.str(), Catch::Contains("missing: no such file"));
}

TEST_CASE("import command: many users at once keep the file's CRLF line endings", "[cli][import]") {
    ImportFixture f;
    const std::string before =
        "# CRLF users file\r\n\r\n[users.\"carol@example.com\"]\r\npassword = \"" +
        libsodium_hash() + "\"\r\n";
    ImportFixture::write(f.users, before);
    std::string source;
    for (int i = 0; i < 50; ++i) {
        source += "user" + std::to_string(i) + "@example.com:" + kCliP4 + "\n";
    }
    ImportFixture::write(f.source, source);
    REQUIRE(f.run(options(false, false, false)) == cli::exit_ok);
    CHECK_THAT(f.out.str(), Catch::Contains("imported 50 user(s) (50 added, 0 replaced)"));
    const std::string after = ImportFixture::read(f.users);
    CHECK(after.starts_with(before));
    std::size_t lf = 0;
    for (std::size_t i = 0; i < after.size(); ++i) {
        if (after[i] == '\n') {
            ++lf;
            CHECK((i > 0 && after[i - 1] == '\r'));
        }
    }
    CHECK(lf == 4 + 50 * 3);  // the 4 lines before, then blank + header + password per user
    const auto snapshot = auth::load_users(f.users);
    CHECK(snapshot->users.size() == 51);
    REQUIRE(snapshot->find("user49@example.com") != nullptr);
    CHECK(snapshot->find("user49@example.com")->password_hash == kCliP4);
}
