// cli/: `portcullis user import`: users from a Dovecot passwd-file or an Apache htpasswd
// file. Only Argon2id hashes can be carried over: the gateway verifies with libsodium's
// crypto_pwhash_argon2id_str_verify, and a hash of another scheme cannot be converted
// without the password, so those users need a password reset.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.hpp"
#include "config/config.hpp"

namespace portcullis::cli {

// One importable line: a valid user name with an Argon2id hash libsodium can verify.
struct ImportEntry {
    std::uint32_t line = 0;
    std::string name;
    std::string hash;  // "$argon2id$v=19$m=...,t=...,p=...$salt$hash", scheme prefix removed
};

struct ImportProblem {
    std::uint32_t line = 0;
    // True for a well-formed line whose hash uses another scheme (bcrypt, SHA-512 crypt,
    // {PLAIN}, …): skippable with --skip-unsupported. False for a line that is wrong in
    // itself (no ':', bad user name, repeated user, broken Argon2id string).
    bool unsupported = false;
    std::string user;  // empty when the line has none
    std::string reason;
};

struct ImportParse {
    std::vector<ImportEntry> entries;
    std::vector<ImportProblem> problems;
};

// Parses a Dovecot passwd-file ("user:{SCHEME}hash:uid:gid:gecos:home:shell:extra") or an
// htpasswd file ("user:hash"); the formats are told apart per line by the "{SCHEME}"
// prefix, so a mix of both is fine. Blank lines and lines starting with '#' are skipped;
// CRLF is accepted. Pure: no I/O.
ImportParse parse_import(std::string_view text);

// Why libsodium's Argon2id verifier (and so the users file) would refuse `hash`, or
// nullopt when it accepts it. Accepts "$argon2id$v=19$m=M,t=T,p=P$salt$hash" with any
// parallelism P, and an output length that keeps the string under 128 bytes.
std::optional<std::string> argon2id_hash_problem(std::string_view hash);

// The Argon2id cost (t, m in bytes) written in a hash accepted by argon2id_hash_problem.
std::optional<config::PasswordHashing> argon2id_cost(std::string_view hash);

struct ImportOptions {
    std::filesystem::path source;   // "-" = standard input
    bool replace = false;           // existing users get the imported hash
    bool dry_run = false;           // report only; the users file is not touched
    bool skip_unsupported = false;  // unsupported schemes do not make the import fail
};

// Imports into the users file of `config_file` with the same locked, atomic,
// comment-preserving edit as `user add` (new users may send as their own name only;
// replaced users keep their senders and state). All or nothing: a problem that is not
// skipped writes nothing and exits 1.
int run_user_import(const std::filesystem::path& config_file, const ImportOptions& options,
                    Console& io, std::istream& standard_input);

}  // namespace portcullis::cli
