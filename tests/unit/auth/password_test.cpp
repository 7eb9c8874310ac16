#include <catch2/catch.hpp>

#include <sodium.h>

#include <array>
#include <string>
#include <thread>
#include <vector>

#include "auth/password.hpp"

using namespace portcullis;
using portcullis::config::PasswordHashing;

namespace {

// libsodium's minimum Argon2id cost keeps these tests fast.
constexpr PasswordHashing fast{1, 8192};

std::string argon2i_hash(std::string_view password) {
    REQUIRE(sodium_init() >= 0);
    std::array<char, crypto_pwhash_STRBYTES> out{};
    REQUIRE(crypto_pwhash_str_alg(out.data(), password.data(), password.size(), 3, 8192,
                                  crypto_pwhash_ALG_ARGON2I13) == 0);
    return out.data();
}

}  // namespace

TEST_CASE("hash then verify round-trips", "[password]") {
    const std::string hash = auth::hash_password("correct horse", fast);
    CHECK(hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
    CHECK(auth::is_argon2id_hash(hash));
    CHECK(auth::verify_password(hash, "correct horse"));
    CHECK_FALSE(auth::verify_password(hash, "correct horsE"));
    CHECK_FALSE(auth::verify_password(hash, "correct horse "));
    CHECK_FALSE(auth::verify_password(hash, ""));
}

TEST_CASE("hashes are salted and record their cost", "[password]") {
    const std::string a = auth::hash_password("same", fast);
    const std::string b = auth::hash_password("same", fast);
    CHECK(a != b);
    CHECK(auth::verify_password(b, "same"));
    const std::string costly = auth::hash_password("same", {2, 16384});
    CHECK(costly.starts_with("$argon2id$v=19$m=16,t=2,p=1$"));
    CHECK(auth::verify_password(costly, "same"));
}

TEST_CASE("passwords with any bytes round-trip", "[password]") {
    const std::string odd("p\0ss\xff\xfe word", 11);
    const std::string hash = auth::hash_password(odd, fast);
    CHECK(auth::verify_password(hash, odd));
    CHECK_FALSE(auth::verify_password(hash, std::string_view(odd).substr(0, 1)));
}

TEST_CASE("hash_password refuses parameters below libsodium's minimum", "[password]") {
    CHECK_THROWS_AS(auth::hash_password("x", {0, 8192}), std::invalid_argument);
    CHECK_THROWS_AS(auth::hash_password("x", {1, 8191}), std::invalid_argument);
}

TEST_CASE("malformed or foreign hashes never verify", "[password]") {
    const std::string good = auth::hash_password("pw", fast);
    CHECK_FALSE(auth::verify_password("", "pw"));
    CHECK_FALSE(auth::verify_password("pw", "pw"));
    CHECK_FALSE(auth::verify_password(good.substr(0, good.size() - 4), "pw"));
    CHECK_FALSE(auth::verify_password(good + std::string(200, 'A'), "pw"));
    const std::string argon2i = argon2i_hash("pw");
    CHECK_FALSE(auth::verify_password(argon2i, "pw"));
    CHECK_FALSE(
        auth::verify_password("$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ012", "pw"));
}

TEST_CASE("is_argon2id_hash accepts only parseable Argon2id PHC strings", "[password]") {
    const std::string good = auth::hash_password("pw", fast);
    CHECK(auth::is_argon2id_hash(good));
    CHECK(
        auth::is_argon2id_hash("$argon2id$v=19$m=65536,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$"
                               "RdescudvJCsgt3ub+b+dWRWJTmaaJObG8Cc0zIE8dAc"));
    CHECK_FALSE(auth::is_argon2id_hash(""));
    CHECK_FALSE(auth::is_argon2id_hash("$argon2id$"));
    CHECK_FALSE(auth::is_argon2id_hash("$argon2id$v=19$m=65536,t=3,p=1$…"));
    CHECK_FALSE(auth::is_argon2id_hash("$argon2id$v=19$m=x,t=3,p=1$c29tZXNhbHQ$aGFzaA"));
    CHECK_FALSE(auth::is_argon2id_hash(good.substr(0, good.rfind('$'))));
    CHECK_FALSE(auth::is_argon2id_hash(argon2i_hash("pw")));
    CHECK_FALSE(auth::is_argon2id_hash(" " + good));
    CHECK_FALSE(auth::is_argon2id_hash(good + std::string(1, '\0')));
}

TEST_CASE("dummy_hash is made once per cost and verifies nothing", "[password]") {
    const std::string& a = auth::dummy_hash(fast);
    const std::string& b = auth::dummy_hash(fast);
    CHECK(&a == &b);
    CHECK(auth::is_argon2id_hash(a));
    CHECK(a.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
    for (const std::string guess : {"", "password", "dummy", "0000000000000000"}) {
        CHECK_FALSE(auth::verify_password(a, guess));
    }
    const std::string& costly = auth::dummy_hash({2, 16384});
    CHECK(&costly != &a);
    CHECK(costly.starts_with("$argon2id$v=19$m=16,t=2,p=1$"));
    CHECK(&auth::dummy_hash(fast) == &a);
}

TEST_CASE("dummy_hash is safe to call from many threads", "[password]") {
    const PasswordHashing params{1, 12288};
    std::vector<const std::string*> seen(8);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < seen.size(); ++i) {
        threads.emplace_back([&seen, i, params] { seen[i] = &auth::dummy_hash(params); });
    }
    for (std::thread& t : threads) {
        t.join();
    }
    for (const std::string* p : seen) {
        CHECK(p == seen[0]);
    }
    CHECK(seen[0]->starts_with("$argon2id$v=19$m=12,t=1,p=1$"));
}

// ---- strength ----

TEST_CASE("common passwords are refused as too guessable", "[password]") {
    const auto s = auth::check_strength("password", 3, {});
    CHECK(s.score == 0);
    CHECK(s.reason == "too guessable (score 0 of 4, need 3): it is built from a common word");
    const auto q = auth::check_strength("zxcvbnm,./", 3, {});
    CHECK(q.score < 3);
    CHECK_THAT(q.reason, Catch::StartsWith("too guessable") && Catch::Contains("keyboard pattern"));
}

TEST_CASE("a password built from the user name is refused", "[password]") {
    const std::vector<std::string> alice{"alice"};
    const auto s = auth::check_strength("alice2024", 3, alice);
    CHECK(s.score < 3);
    CHECK_THAT(s.reason, Catch::StartsWith("too guessable (score ") &&
                             Catch::Contains("of 4, need 3): it is built from the user name"));
    // The login name is split into its parts, so callers may pass it whole.
    const std::vector<std::string> login{"alice@example.com"};
    CHECK_THAT(auth::check_strength("alice2024", 3, login).reason,
               Catch::Contains("the user name"));
    const std::vector<std::string> domain{"bob@zanzibarmail.org"};
    CHECK_THAT(auth::check_strength("Zanzibarmail!", 3, domain).reason,
               Catch::Contains("the user name"));
}

TEST_CASE("short and empty passwords are refused whatever the score", "[password]") {
    CHECK(auth::check_strength("", 0, {}).reason == "the password is empty");
    CHECK(auth::check_strength("Xk#9v!2", 0, {}).reason ==
          "too short (7 characters, need at least 8)");
    // Characters, not bytes: seven two-byte letters are still seven characters.
    CHECK(auth::check_strength("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 0, {})
              .reason == "too short (7 characters, need at least 8)");
    CHECK(auth::check_strength(std::string_view("abcdefgh\0ij", 11), 0, {}).reason ==
          "the password contains a NUL character");
}

TEST_CASE("a long random passphrase is accepted", "[password]") {
    const std::vector<std::string> context{"alice@example.com"};
    const auto s = auth::check_strength("gravel Umbrella 73 plinth Quixotic", 3, context);
    CHECK(s.score == 4);
    CHECK(s.reason.empty());
    const auto r = auth::check_strength("x7$Qm!2pLz#9vRw", 4, context);
    CHECK(r.score == 4);
    CHECK(r.reason.empty());
}

TEST_CASE("the required score is the caller's", "[password]") {
    CHECK(auth::check_strength("password", 0, {}).reason.empty());
    const auto s = auth::check_strength("1qaz2wsx3edc", 3, {});
    CHECK(s.score == 2);
    CHECK_THAT(s.reason, Catch::StartsWith("too guessable (score 2 of 4, need 3): "));
    CHECK(auth::check_strength("1qaz2wsx3edc", 2, {}).reason.empty());
    // Out-of-range requirements are clamped to 0..4.
    CHECK(auth::check_strength("1qaz2wsx3edc", -1, {}).reason.empty());
    CHECK_THAT(auth::check_strength("x7$Qm!2pLz#9vRw", 9, {}).reason, Catch::Equals(""));
}
