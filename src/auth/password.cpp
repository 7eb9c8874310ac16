// Argon2id via libsodium, password strength via zxcvbn-c.
#include "auth/password.hpp"

#include <sodium.h>
#include <zxcvbn.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "util/secure.hpp"

namespace portcullis::auth {
namespace {

constexpr std::string_view argon2id_prefix = "$argon2id$";
constexpr std::size_t min_password_length = 8;
constexpr int max_score = 4;

using PhcBuffer = std::array<char, crypto_pwhash_argon2id_STRBYTES>;

void ensure_sodium() {
    static const int status = sodium_init();
    if (status < 0) {
        throw std::runtime_error("libsodium could not be initialised");
    }
}

// Copies a PHC string into the fixed, NUL-terminated buffer libsodium's API expects.
std::optional<PhcBuffer> phc_buffer(std::string_view phc_hash) {
    if (phc_hash.size() >= crypto_pwhash_argon2id_STRBYTES ||
        phc_hash.find('\0') != std::string_view::npos) {
        return std::nullopt;
    }
    PhcBuffer buffer{};
    std::copy(phc_hash.begin(), phc_hash.end(), buffer.begin());
    return buffer;
}

}  // namespace

std::string hash_password(std::string_view password, const config::PasswordHashing& params) {
    ensure_sodium();
    if (params.opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
        params.opslimit > crypto_pwhash_argon2id_OPSLIMIT_MAX ||
        params.memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
        params.memlimit > crypto_pwhash_argon2id_MEMLIMIT_MAX) {
        throw std::invalid_argument("Argon2id parameters out of range");
    }
    PhcBuffer out{};
    if (crypto_pwhash_str_alg(out.data(), password.data(), password.size(), params.opslimit,
                              static_cast<std::size_t>(params.memlimit),
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        throw std::runtime_error("Argon2id hashing failed (out of memory?)");
    }
    return out.data();
}

bool verify_password(std::string_view phc_hash, std::string_view password) {
    ensure_sodium();
    if (!phc_hash.starts_with(argon2id_prefix)) {
        return false;
    }
    const auto buffer = phc_buffer(phc_hash);
    return buffer &&
           crypto_pwhash_argon2id_str_verify(buffer->data(), password.data(), password.size()) == 0;
}

bool is_argon2id_hash(std::string_view phc_hash) {
    ensure_sodium();
    if (!phc_hash.starts_with(argon2id_prefix)) {
        return false;
    }
    const auto buffer = phc_buffer(phc_hash);
    // needs_rehash decodes the whole string and returns -1 when it cannot.
    return buffer && crypto_pwhash_argon2id_str_needs_rehash(
                         buffer->data(), crypto_pwhash_argon2id_OPSLIMIT_MIN,
                         crypto_pwhash_argon2id_MEMLIMIT_MIN) >= 0;
}

const std::string& dummy_hash(const config::PasswordHashing& params) {
    // One per cost, so that after a reload with new parameters an unknown user still
    // costs what a wrong password does. std::map keeps references stable.
    static std::mutex mutex;
    static std::map<std::pair<std::uint64_t, std::uint64_t>, std::string> hashes;
    const std::lock_guard lock(mutex);
    const auto key = std::pair(params.opslimit, params.memlimit);
    if (auto it = hashes.find(key); it != hashes.end()) {
        return it->second;
    }
    ensure_sodium();
    std::array<unsigned char, 32> secret{};
    randombytes_buf(secret.data(), secret.size());
    std::array<char, secret.size() * 2 + 1> hex{};
    sodium_bin2hex(hex.data(), hex.size(), secret.data(), secret.size());
    const SecureString password(std::string_view(hex.data(), secret.size() * 2));
    sodium_memzero(secret.data(), secret.size());
    sodium_memzero(hex.data(), hex.size());
    return hashes.emplace(key, hash_password(password.view(), params)).first->second;
}

// ---- strength ----

namespace {

std::size_t count_characters(std::string_view utf8) {
    return static_cast<std::size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

int score_from_entropy(double bits) {
    const double log10_guesses = bits * std::log10(2.0);
    constexpr std::array<double, 4> thresholds{3, 6, 8, 10};
    int score = 0;
    while (score < max_score && log10_guesses >= thresholds[static_cast<std::size_t>(score)]) {
        ++score;
    }
    return score;
}

bool is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (static_cast<unsigned char>(c) >= 0x80);
}

// The context words and their parts ("alice@mail.example.com" -> also "alice", "mail",
// "example"), so that a caller may simply pass the login name.
std::vector<std::string> expand_context(std::span<const std::string> context) {
    std::vector<std::string> words;
    auto add = [&words](std::string_view w) {
        if (w.size() >= 3 && std::find(words.begin(), words.end(), w) == words.end()) {
            words.emplace_back(w);
        }
    };
    for (const std::string& item : context) {
        add(item);
        std::size_t start = 0;
        for (std::size_t i = 0; i <= item.size(); ++i) {
            if (i == item.size() || !is_word_char(item[i])) {
                add(std::string_view(item).substr(start, i - start));
                start = i + 1;
            }
        }
    }
    return words;
}

std::string_view describe(ZxcTypeMatch_t type) {
    switch (static_cast<int>(type) & ~MULTIPLE_MATCH) {
        case DICTIONARY_MATCH:
        case DICT_LEET_MATCH:
            return "a common word";
        case USER_MATCH:
        case USER_LEET_MATCH:
            return "the user name";
        case REPEATS_MATCH:
            return "repeated characters";
        case SEQUENCE_MATCH:
            return "a sequence such as abc or 123";
        case SPATIAL_MATCH:
            return "a keyboard pattern";
        case DATE_MATCH:
            return "a date";
        case YEAR_MATCH:
            return "a year";
        default:
            return {};
    }
}

// "it is built from the user name and a year", from zxcvbn's matches.
std::string explain(const ZxcMatch_t* info) {
    std::vector<std::string_view> parts;
    for (const ZxcMatch_t* m = info; m != nullptr; m = m->Next) {
        const std::string_view what = describe(m->Type);
        if (!what.empty() && std::find(parts.begin(), parts.end(), what) == parts.end()) {
            parts.push_back(what);
        }
    }
    if (parts.empty()) {
        return "it is too short for the characters it uses";
    }
    std::string out = "it is built from ";
    for (std::size_t i = 0; i < parts.size(); ++i) {
        out += i == 0 ? "" : (i + 1 == parts.size() ? " and " : ", ");
        out += parts[i];
    }
    return out;
}

struct InfoDeleter {
    void operator()(ZxcMatch_t* info) const { ZxcvbnFreeInfo(info); }
};

}  // namespace

Strength check_strength(std::string_view password, int min_score,
                        std::span<const std::string> context) {
    min_score = std::clamp(min_score, 0, max_score);
    if (password.empty()) {
        return {0, "the password is empty"};
    }
    if (password.find('\0') != std::string_view::npos) {
        return {0, "the password contains a NUL character"};
    }
    const SecureString terminated(password);  // data() is NUL-terminated
    const std::vector<std::string> words = expand_context(context);
    std::vector<const char*> dict;
    for (const std::string& w : words) {
        dict.push_back(w.c_str());
    }
    dict.push_back(nullptr);
    ZxcMatch_t* raw_info = nullptr;
    const double bits = ZxcvbnMatch(terminated.data(), dict.data(), &raw_info);
    const std::unique_ptr<ZxcMatch_t, InfoDeleter> info(raw_info);
    Strength result{score_from_entropy(bits), {}};
    const std::size_t length = count_characters(password);
    if (length < min_password_length) {
        result.reason = "too short (" + std::to_string(length) + " characters, need at least " +
                        std::to_string(min_password_length) + ")";
    } else if (result.score < min_score) {
        result.reason = "too guessable (score " + std::to_string(result.score) + " of 4, need " +
                        std::to_string(min_score) + "): " + explain(info.get());
    }
    return result;
}

}  // namespace portcullis::auth
