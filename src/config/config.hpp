// config/: TOML -> one immutable Config snapshot. Every error names file:line:column.
// Nothing else in the program reads TOML for the gateway configuration.
#pragma once

#include <array>
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
    std::string hostname;  // greeting and EHLO name; default: the machine's host name
    unsigned workers = 0;  // 0 = one per CPU
    // cpu_affinity = "auto": worker i runs only on the i-th CPU the process may use
    // (wrapping around); "none" (default): the kernel moves the threads as it likes.
    bool cpu_affinity = false;
    std::uint64_t max_connections = 10000;
    std::uint64_t max_connections_per_ip = 50;
    // After binding the listeners, switch to this account (name from the passwd
    // database); empty = keep running as the starting user.
    std::string user;
    // SIGTERM/SIGINT: how long sessions in progress may finish before they get 421.
    Duration drain_timeout = std::chrono::seconds(30);
};

// An IPv4 or IPv6 network, e.g. 10.0.0.0/8 or 2001:db8::/32 (a bare address is /32
// or /128). IPv4-mapped IPv6 addresses match the IPv4 networks.
struct Cidr {
    bool v6 = false;
    std::array<unsigned char, 16> bytes{};  // network address (host bits zero)
    unsigned prefix = 0;
    std::string text() const;
    // `ip` is a numeric address ("10.1.2.3", "::1"); anything else never matches.
    bool contains(std::string_view ip) const;
};

// Parses "ADDRESS/PREFIX" or "ADDRESS"; nullopt with `error` set when invalid (also when
// host bits are set below the prefix).
std::optional<Cidr> parse_cidr(std::string_view text, std::string& error);

struct ListenerConfig {
    Endpoint address;
    ListenerTls tls = ListenerTls::starttls;
    // The connection starts with a PROXY v1/v2 header from one of trusted_proxies; the
    // address it carries is the client's.
    bool proxy_protocol = false;
    std::vector<Cidr> trusted_proxies;
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
    // Resumption with session tickets, sealed with keys shared by all workers and kept
    // across reloads; each key seals for ticket_key_rotation and opens for twice that.
    bool session_tickets = true;
    Duration ticket_key_rotation = std::chrono::hours(12);
    // Threads that make full handshakes' signatures away from the event loops; 0 = each
    // loop signs itself (measured cheaper where workers = CPUs: docs/performance.md).
    // Read at start only (a reload keeps the running pool).
    unsigned signing_threads = 0;
};

struct BackendConfig {
    Endpoint address;                 // the first of `addresses`
    std::vector<Endpoint> addresses;  // tried in this order (failover); never empty once loaded
    BackendIdentity identity = BackendIdentity::none;
    BackendTls tls = BackendTls::none;
    // starttls-verify: CA bundle (PEM) and the name the certificate must carry (empty =
    // the host of the backend address being connected to).
    std::filesystem::path ca_file = "/etc/ssl/certs/ca-certificates.crt";
    std::string tls_name;
    Duration connect_timeout = std::chrono::seconds(10);
    Duration reply_timeout = std::chrono::minutes(5);        // per backend reply
    Duration data_reply_timeout = std::chrono::minutes(10);  // after end-of-data
    // true: a client's pipelined group ending with DATA goes to a backend that offers
    // PIPELINING in one write; false: lock-step, one command outstanding at a time.
    // What each keeps from an out-of-step backend: proxy/upstream.hpp, README.
    bool pipelining = false;
    // How often the backends' EHLO capabilities are asked again (0 = only at start and
    // on reload), and how long a backend that failed is skipped.
    Duration probe_interval = std::chrono::minutes(1);
    Duration unhealthy_time = std::chrono::seconds(30);
};

struct PasswordHashing {
    std::uint64_t opslimit = 3;                    // Argon2id t (iterations)
    std::uint64_t memlimit = 64ull * 1024 * 1024;  // Argon2id m, bytes
};

struct AuthConfig {
    std::filesystem::path users_file;  // resolved against the config file's folder
    bool mechanism_plain = true;
    bool mechanism_login = true;
    Duration failure_delay = std::chrono::seconds(2);
    PasswordHashing hashing;
    int min_password_score = 3;  // zxcvbn score 0..4 a new password must reach
    // Brute force: this many failures from one client address (IPv6: its /64) or for
    // one user name within the period, then `lockout`. count 0 = unlimited (off).
    Rate max_failures{10, std::chrono::minutes(10)};
    Duration lockout = std::chrono::minutes(15);
    // Password spraying: this many distinct failing user names from one network (/24,
    // IPv6 /48) within the period, then the network is locked for `spray_lockout`.
    Rate spray_max_users{20, std::chrono::hours(1)};
    Duration spray_lockout = std::chrono::hours(1);
    // An address that logged in within this long is exempt from network lockouts.
    Duration spray_exemption = std::chrono::hours(24);
    Duration cache_ttl = std::chrono::minutes(5);  // verified-credential cache; 0 = off
    std::uint64_t max_pending_verifications = 16;  // Argon2id running or queued
    unsigned hash_threads = 0;  // 0 = one per CPU but one (at least 1, at most 8)
};

struct LimitsConfig {
    std::uint64_t message_size = 50ull * 1024 * 1024;
    std::uint64_t recipients_per_message = 100;
    Duration command_timeout = std::chrono::minutes(5);
    BareLineEndings bare_line_endings = BareLineEndings::reject;
    Duration preauth_timeout = std::chrono::seconds(30);  // connect to successful AUTH
    Duration data_timeout = std::chrono::minutes(15);     // 354 to end of data
    std::uint64_t max_bad_commands = 20;                  // per session, then 421
    // Longest DATA text line (octets, without CRLF and transparency dot) passed to the
    // backend unchanged; a message with a longer one is refused, nothing delivered.
    std::uint64_t max_line_length = 64 * 1024;
};

// [rate_limits]: defaults for every user; a user's own rate_limits replace them.
// A Rate with count 0 is unlimited.
struct RateLimits {
    Rate messages;    // taken at MAIL
    Rate recipients;  // taken at RCPT
    Rate bytes;       // taken at end of DATA (count in bytes)
};

enum class HeaderFrom { off, envelope, senders };

struct PolicyConfig {
    HeaderFrom header_from = HeaderFrom::off;
};

struct LogConfig {
    LogFormat format = LogFormat::json;
    LogLevel level = LogLevel::info;
};

// [metrics]: Prometheus text at /metrics, plus /healthz and /readyz, on one address.
struct MetricsConfig {
    std::optional<Endpoint> address;  // nullopt = off (key absent or "")
};

// [state]: where rate-limit and lockout counters live. "memory" keeps them in this
// process; "redis" shares them between gateways (see src/state/).
enum class StateBackend { memory, redis };
enum class StateErrorMode { local, fail_closed };

struct StateConfig {
    StateBackend backend = StateBackend::memory;
    std::string address;                  // as written: "redis://host:port" or "unix:/path"
    std::string host;                     // TCP: a name or numeric address
    std::uint16_t port = 6379;            // TCP
    std::filesystem::path unix_socket;    // set for "unix:/path"
    std::filesystem::path password_file;  // empty = no AUTH
    std::string password;                 // read from password_file at load
    Duration timeout = std::chrono::milliseconds(50);  // per call
    StateErrorMode on_error = StateErrorMode::local;
    std::string key_prefix = "portcullis:";
};

struct Config {
    std::filesystem::path file;  // the file this snapshot was read from (absolute)
    ServerConfig server;
    std::vector<ListenerConfig> listeners;
    TlsConfig tls;
    BackendConfig backend;
    AuthConfig auth;
    LimitsConfig limits;
    RateLimits rate_limits;
    PolicyConfig policy;
    LogConfig log;
    MetricsConfig metrics;
    StateConfig state;
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
