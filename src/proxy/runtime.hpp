// Gateway-wide state shared by all workers: the current snapshot (config, users, TLS
// context) and the connection counters. Sessions copy the snapshot pointer when they
// start and keep it to the end, so a reload never changes a session midway.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "auth/credential_cache.hpp"
#include "auth/login_guard.hpp"
#include "auth/users.hpp"
#include "auth/verifier.hpp"
#include "config/config.hpp"
#include "proxy/backends.hpp"
#include "policy/rate_limiter.hpp"
#include "tls/ticket_keys.hpp"
#include "util/clock.hpp"
#include "util/work_pool.hpp"

namespace portcullis::proxy {

struct Snapshot {
    std::shared_ptr<const config::Config> config;
    std::shared_ptr<const auth::UsersSnapshot> users;
    std::shared_ptr<SSL_CTX> tls;          // null when no listener uses TLS
    std::shared_ptr<SSL_CTX> backend_tls;  // STARTTLS to the backend; null when tls = "none"
    std::uint64_t generation = 0;          // distinct for every snapshot loaded by this process
};

// Loads config, users file and certificates into a snapshot; throws
// config::ConfigError or tls::TlsError with the file and cause.
// Session tickets are sealed with `ticket_keys`, the same set for every snapshot.
std::shared_ptr<const Snapshot> load_snapshot(const std::filesystem::path& config_file,
                                              std::shared_ptr<tls::TicketKeys> ticket_keys);

class SnapshotHolder {
  public:
    std::shared_ptr<const Snapshot> get() const {
        std::lock_guard lock(mutex_);
        return current_;
    }
    void set(std::shared_ptr<const Snapshot> next) {
        std::lock_guard lock(mutex_);
        current_ = std::move(next);
    }

  private:
    mutable std::mutex mutex_;
    std::shared_ptr<const Snapshot> current_;
};

class ConnectionLimiter;

// Holds one connection slot; releases it when destroyed.
class ConnectionSlot {
  public:
    ConnectionSlot() = default;
    ConnectionSlot(ConnectionLimiter* limiter, std::string ip)
        : limiter_(limiter), ip_(std::move(ip)) {}
    ConnectionSlot(ConnectionSlot&& other) noexcept
        : limiter_(std::exchange(other.limiter_, nullptr)), ip_(std::move(other.ip_)) {}
    ConnectionSlot& operator=(ConnectionSlot&& other) noexcept;
    ConnectionSlot(const ConnectionSlot&) = delete;
    ConnectionSlot& operator=(const ConnectionSlot&) = delete;
    ~ConnectionSlot() { release(); }
    explicit operator bool() const { return limiter_ != nullptr; }
    void release();

  private:
    ConnectionLimiter* limiter_ = nullptr;
    std::string ip_;
};

// Enforces [server] max_connections and max_connections_per_ip across all workers.
class ConnectionLimiter {
  public:
    enum class Refusal { none, total, per_ip };
    // Empty slot and the reason when over a limit.
    ConnectionSlot acquire(const std::string& ip, std::uint64_t max_total, std::uint64_t max_per_ip,
                           Refusal& refusal);
    std::uint64_t current() const;

  private:
    friend class ConnectionSlot;
    void release(const std::string& ip);
    mutable std::mutex mutex_;
    std::uint64_t total_ = 0;
    std::unordered_map<std::string, std::uint64_t> per_ip_;
};

// Abuse-control state shared by every worker thread. It lives here rather than in the
// snapshot so that a reload keeps counters, buckets and lockouts; each part is
// sharded internally so workers rarely contend. One clock drives all of it.
class AbuseControl {
  public:
    explicit AbuseControl(const util::Clock& clock)
        : clock_(clock), rates(clock), logins(clock), credentials(clock) {}

    const util::Clock& clock() const { return clock_; }
    // The Argon2id verifier, started on first use with [auth] hash_threads of that
    // moment (a reload does not change the thread count).
    auth::Verifier& verifier(unsigned threads);

  private:
    const util::Clock& clock_;
    std::once_flag verifier_started_;
    std::unique_ptr<auth::Verifier> verifier_;

  public:
    policy::RateLimiter rates;
    auth::LoginGuard logins;
    auth::CredentialCache credentials;
};

struct Runtime {
    std::filesystem::path config_file;
    SnapshotHolder snapshot;
    ConnectionLimiter connections;
    AbuseControl abuse{util::steady_clock()};
    BackendState backends{util::steady_clock()};  // health and capabilities of the backends
    // Session-ticket keys for every snapshot's TLS context: resumption works across
    // workers and reloads. The interval is the config's ([tls] ticket_key_rotation).
    std::shared_ptr<tls::TicketKeys> ticket_keys = std::make_shared<tls::TicketKeys>(
        util::steady_clock(), config::TlsConfig{}.ticket_key_rotation);
    // Where full handshakes' signatures are made ([tls] signing_threads at start); null =
    // each event loop signs itself.
    std::unique_ptr<util::WorkPool> signing_pool;
};

}  // namespace portcullis::proxy
