// Prometheus metrics of the whole process (docs/metrics.md lists each one).
//
// One registry for the process lifetime, so a reload keeps every value. The label
// children are resolved once, when the registry is built: an event on a worker thread
// is one atomic add on a counter it already holds, never a label lookup or a lock
// (the end-of-data histogram, once per message, takes prometheus-cpp's short mutex).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace portcullis::ops {

enum class AuthResult { success, failure, locked_out, busy };
enum class AuthMechanism { plain, login };
enum class MessageResult { accepted, temporary_failure, permanent_failure };
enum class RateLimitKind { messages, recipients, bytes };
enum class SenderCheck { envelope, header_from };

class Metrics {
  public:
    Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // Per [[listener]] address, registered at start (listeners change only on restart).
    // The returned counter lives as long as the Metrics.
    prometheus::Counter& listener_connections(std::string_view listener);

    // Busy time of one event-loop turn of worker `worker` (net::LoopTurnMonitor);
    // registered by the worker at start, observed once per turn by that worker only.
    prometheus::Histogram& loop_turns(unsigned worker);

    void tls_handshake(std::string_view version);  // "TLSv1.2", "TLSv1.3"; others: "other"
    void tls_resumed() { tls_resumed_->Increment(); }
    void tls_handshake_failed() { tls_failures_->Increment(); }
    // A handshake signature handed to the signing pool, or made on the loop because the
    // pool was full.
    void tls_signature(bool on_pool) {
        (on_pool ? tls_signed_pool_ : tls_signed_loop_)->Increment();
    }
    void auth(AuthMechanism mechanism, AuthResult result);
    void lockout_started() { lockouts_->Increment(); }
    void message(MessageResult result);
    void bytes_relayed(std::uint64_t bytes) { bytes_->Increment(static_cast<double>(bytes)); }
    void rate_limited(RateLimitKind kind);
    void sender_rejected(SenderCheck check);
    void backend_connect_failed() { backend_connect_failures_->Increment(); }
    void end_of_data_latency(double seconds) { eod_latency_->Observe(seconds); }
    void refused_connection() { refused_->Increment(); }

    // Values read from elsewhere at scrape time (supervisor thread).
    void set_connections_current(double value) { connections_current_->Set(value); }
    void set_draining(bool draining) { draining_->Set(draining ? 1 : 0); }
    void set_backends_up(double value) { backends_up_->Set(value); }
    // [state] (shared rate limits and lockouts): the process-wide counters kept by
    // state::stats(), copied in at scrape time; counters only move forward.
    struct SharedStateReading {
        bool available = true;
        std::uint64_t outages = 0;
        std::uint64_t errors = 0;
        std::uint64_t fallbacks = 0;
        std::uint64_t refusals = 0;
    };
    void set_shared_state(const SharedStateReading& reading);

    // The Prometheus text exposition format (version 0.0.4) of every metric.
    std::string serialize() const;

  private:
    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Counter>* connections_total_ = nullptr;
    prometheus::Gauge* connections_current_ = nullptr;
    prometheus::Counter* refused_ = nullptr;
    std::array<prometheus::Counter*, 3> tls_versions_{};  // TLSv1.2, TLSv1.3, other
    prometheus::Counter* tls_failures_ = nullptr;
    prometheus::Counter* tls_resumed_ = nullptr;
    prometheus::Counter* tls_signed_pool_ = nullptr;
    prometheus::Counter* tls_signed_loop_ = nullptr;
    std::array<std::array<prometheus::Counter*, 4>, 2> auth_{};  // [mechanism][result]
    prometheus::Counter* lockouts_ = nullptr;
    std::array<prometheus::Counter*, 3> messages_{};
    prometheus::Counter* bytes_ = nullptr;
    std::array<prometheus::Counter*, 3> rate_limits_{};
    std::array<prometheus::Counter*, 2> senders_{};
    prometheus::Counter* backend_connect_failures_ = nullptr;
    prometheus::Histogram* eod_latency_ = nullptr;
    prometheus::Family<prometheus::Histogram>* loop_turns_ = nullptr;
    prometheus::Gauge* draining_ = nullptr;
    prometheus::Gauge* backends_up_ = nullptr;
    prometheus::Gauge* state_available_ = nullptr;
    prometheus::Counter* state_outages_ = nullptr;
    prometheus::Counter* state_errors_ = nullptr;
    std::array<prometheus::Counter*, 2> state_outcomes_{};  // local, refused
};

// The process's metrics (built on first use; thread-safe). Like the log, it is
// process-wide rather than part of a config snapshot, so a reload keeps the values.
Metrics& metrics();

}  // namespace portcullis::ops
