// auth/: the users snapshot, password hashing and verification.
// Users file -> immutable UsersSnapshot. Same error style as config/ (file:line:col).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <optional>
#include <vector>

#include "config/config.hpp"

namespace portcullis::auth {

// A user's own rate limits; each one given replaces the [rate_limits] default.
struct UserRateLimits {
    std::optional<config::Rate> messages;
    std::optional<config::Rate> recipients;
    std::optional<config::Rate> bytes;
};

struct User {
    std::string name;                  // the login name, exactly as in the file
    std::string password_hash;         // Argon2id PHC string
    std::vector<std::string> senders;  // patterns; empty = only its own name
    bool disabled = false;
    UserRateLimits rate_limits;
};

// The limits in force for `user`: its own where given, else the defaults.
config::RateLimits effective_rate_limits(const User& user, const config::RateLimits& defaults);

struct UsersSnapshot {
    std::filesystem::path file;
    std::unordered_map<std::string, User> users;
    const User* find(std::string_view name) const;  // exact match; nullptr if absent
};

// Throws config::ConfigError listing every problem (file:line:col).
std::shared_ptr<const UsersSnapshot> load_users(const std::filesystem::path& file);
std::shared_ptr<const UsersSnapshot> parse_users(std::string_view text,
                                                 const std::filesystem::path& file);

}  // namespace portcullis::auth
