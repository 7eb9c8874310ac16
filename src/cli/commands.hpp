// cli/: the offline subcommands (user add/passwd/del/list, hash, check-config).
// `serve` and `healthcheck` live in ops/. Each run_* returns the process exit code and
// reports problems on `err`: config and users file problems as "FILE:LINE:COL: message",
// anything else as "portcullis: message". Passwords are never printed.
#pragma once

#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/secure.hpp"

namespace portcullis::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_error = 1;
inline constexpr int exit_usage = 2;

// Where a command writes and reads passwords from; tests substitute all three.
struct Console {
    std::ostream& out;
    std::ostream& err;
    // A new password; `confirm` asks twice when reading from a terminal.
    std::function<SecureString(bool confirm)> read_password;
};

// std::cout, std::cerr, and read_new_password(password_stdin, confirm).
Console standard_console(bool password_stdin);

// Why `name` cannot be a login name, or nullopt when it can: 1..255 bytes of UTF-8 with
// no control characters, spaces, double quotes or backslashes.
std::optional<std::string> user_name_problem(std::string_view name);

// Words a user's password must not be built from: the name, and for an address its
// local part and each label of its domain.
std::vector<std::string> context_words(std::string_view name);

// Prints `e` on `err`: every diagnostic of a config::ConfigError on its own line,
// anything else as "portcullis: what()".
void print_error(std::ostream& err, const std::exception& e);

int run_user_add(const std::filesystem::path& config_file, std::string_view name,
                 std::span<const std::string> senders, Console& io);
int run_user_passwd(const std::filesystem::path& config_file, std::string_view name, Console& io);
int run_user_del(const std::filesystem::path& config_file, std::string_view name, Console& io);
// One line per user, sorted: "NAME<TAB>enabled|disabled<TAB>PATTERN,PATTERN" ("-" when
// the user has no sender patterns).
int run_user_list(const std::filesystem::path& config_file, Console& io);
// Prints the Argon2id PHC string of a new password. Hashing cost and strength policy
// come from `config_file` when given, else from the built-in defaults.
int run_hash(const std::optional<std::filesystem::path>& config_file, Console& io);
// Loads the config, the users file and (when a listener uses TLS) the certificates;
// prints "configuration OK: N listeners, M users" or every problem found.
int run_check_config(const std::filesystem::path& config_file, Console& io);

}  // namespace portcullis::cli
