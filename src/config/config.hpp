// config/: TOML -> one immutable Config snapshot. Every error names file:line:column.
// Nothing else in the program reads TOML for the gateway configuration.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/units.hpp"

namespace portcullis::config {

enum class ListenerTls { starttls, implicit, none };
enum class BackendIdentity { none, xclient, proxy_v1, proxy_v2 };
enum class BackendTls { none, starttls, starttls_verify };
enum class BareLineEndings { reject, normalize };
enum class LogFormat { json, text };
enum class LogLevel { debug, info, warn, error };

struct Endpoint {
    std::string host;  // numeric IPv4 or IPv6 literal (no brackets), or a name for the backend
    std::uint16_t port = 0;
    std::string text() const;  // "host:port" or "[v6]:port"
};

struct ServerConfig {
    std::string hostname;        // greeting and EHLO name; default: the machine's host name
    unsigned workers = 0;        // 0 = one per CPU
    std::uint64_t max_connections = 10000;
    std::uint64_t max_connections_per_ip = 50;
};

struct ListenerConfig {
    Endpoint address;
    ListenerTls tls = ListenerTls::starttls;
    bool proxy_protocol = false;  // only false is accepted until the PROXY listener is built
};

struct CertificatePair {
    std::filesystem::path certificate;  // PEM chain, leaf first
    std::filesystem::path private_key;  // PEM
};

struct TlsConfig {
    // One or more certificate/key pairs (e.g. one ECDSA and one RSA). Empty when no
    // listener uses TLS.
    std::vector<CertificatePair> certificates;
    TlsVersion min_version = TlsVersion::tls1_2;
};

struct BackendConfig {
    Endpoint address;
    BackendIdentity identity = BackendIdentity::none;
    BackendTls tls = BackendTls::none;
    Duration connect_timeout = std::chrono::seconds(10);
    Duration reply_timeout = std::chrono::minutes(5);      // per backend reply
    Duration data_reply_timeout = std::chrono::minutes(10); // after end-of-data
};

struct PasswordHashing {
    std::uint64_t opslimit = 3;                   // Argon2id t (iterations)
    std::uint64_t memlimit = 64ull * 1024 * 1024; // Argon2id m, bytes
};

struct AuthConfig {
    std::filesystem::path users_file;  // resolved against the config file's folder
    bool mechanism_plain = true;
    bool mechanism_login = true;
    Duration failure_delay = std::chrono::seconds(2);
    PasswordHashing hashing;
    int min_password_score = 3;  // zxcvbn score 0..4 a new password must reach
};

struct LimitsConfig {
    std::uint64_t message_size = 50ull * 1024 * 1024;
    std::uint64_t recipients_per_message = 100;
    Duration command_timeout = std::chrono::minutes(5);
    BareLineEndings bare_line_endings = BareLineEndings::reject;
};

struct LogConfig {
    LogFormat format = LogFormat::json;
    LogLevel level = LogLevel::info;
};

struct Config {
    std::filesystem::path file;  // the file this snapshot was read from (absolute)
    ServerConfig server;
    std::vector<ListenerConfig> listeners;
    TlsConfig tls;
    BackendConfig backend;
    AuthConfig auth;
    LimitsConfig limits;
    LogConfig log;
};

// One problem found in a file: "FILE:LINE:COL: message".
struct Diagnostic {
    std::string file;
    std::uint32_t line = 0;
    std::uint32_t column = 0;
    std::string message;
    std::string text() const;
};

// Thrown by the loaders; carries every problem found, not just the first.
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<Diagnostic> diagnostics);
    const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

private:
    std::vector<Diagnostic> diagnostics_;
};

// Parses "IP:PORT" or "[IPv6]:PORT" (numeric hosts only), or also "name:port" when
// `allow_names`. Returns nullopt with `error` set to a human-readable reason.
std::optional<Endpoint> parse_endpoint(std::string_view text, bool allow_names, std::string& error);

// Reads and validates the gateway configuration. Unknown keys, wrong types, bad
// values and DESIGN.md keys whose feature is not built yet are all errors.
std::shared_ptr<const Config> load_config(const std::filesystem::path& file);

// Same, from text already in memory (tests, fuzzing); `file` names it in diagnostics
// and is the base for relative paths.
std::shared_ptr<const Config> parse_config(std::string_view text,
                                           const std::filesystem::path& file);

}  // namespace portcullis::config
