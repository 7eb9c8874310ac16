// Argon2id hashing (libsodium crypto_pwhash_str) and password strength (zxcvbn-c).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace portcullis::auth {

// Returns a PHC string "$argon2id$v=19$m=...,t=...,p=1$...". Throws on failure (out of
// memory). Blocking and slow by design: never call on an event loop.
std::string hash_password(std::string_view password, const config::PasswordHashing& params);

// Constant-time comparison inside libsodium. False for a malformed hash as well.
// Blocking and slow by design: never call on an event loop.
bool verify_password(std::string_view phc_hash, std::string_view password);

// True when `phc_hash` is a well-formed Argon2id PHC string libsodium can verify.
bool is_argon2id_hash(std::string_view phc_hash);

// A valid hash of a random password nobody knows, with the given cost, so that an
// unknown user costs the same time as a wrong password. Made once per process.
const std::string& dummy_hash(const config::PasswordHashing& params);

struct Strength {
    int score = 0;       // zxcvbn 0..4
    std::string reason;  // empty when acceptable; otherwise why it was refused
};

// Judges `password` against `min_score`; `context` are words the password must not
// be built from (the user name, its domain parts).
Strength check_strength(std::string_view password, int min_score,
                        std::span<const std::string> context);

}  // namespace portcullis::auth
