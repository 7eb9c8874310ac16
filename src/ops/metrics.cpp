#include "ops/metrics.hpp"

#include <prometheus/text_serializer.h>

namespace portcullis::ops {

namespace {

// Backend end-of-data latency: a local MTA answers in milliseconds, one that scans for
// viruses or spam in seconds; data_reply_timeout defaults to 10 minutes.
const prometheus::Histogram::BucketBoundaries kLatencyBuckets{
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};

// Loop turns: a healthy turn takes tens of microseconds; milliseconds delay every
// session on that worker by as much.
const prometheus::Histogram::BucketBoundaries kLoopTurnBuckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1};

constexpr std::array<std::string_view, 2> kMechanisms{"PLAIN", "LOGIN"};
constexpr std::array<std::string_view, 4> kAuthResults{"success", "failure", "locked_out", "busy"};
constexpr std::array<std::string_view, 3> kMessageResults{"accepted", "temporary_failure",
                                                          "permanent_failure"};
constexpr std::array<std::string_view, 3> kRateLimits{"messages", "recipients", "bytes"};
constexpr std::array<std::string_view, 2> kSenderChecks{"envelope", "header_from"};
constexpr std::array<std::string_view, 3> kTlsVersions{"TLSv1.2", "TLSv1.3", "other"};

template <class T>
prometheus::Family<T>& family(prometheus::Registry& registry, const std::string& name,
                              const std::string& help);

template <>
prometheus::Family<prometheus::Counter>& family(prometheus::Registry& registry,
                                                const std::string& name, const std::string& help) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

template <>
prometheus::Family<prometheus::Gauge>& family(prometheus::Registry& registry,
                                              const std::string& name, const std::string& help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
    auto& reg = *registry_;
    connections_total_ = &family<prometheus::Counter>(
        reg, "portcullis_connections_total", "Client connections accepted, by listener address.");
    connections_current_ = &family<prometheus::Gauge>(reg, "portcullis_connections_current",
                                                      "Client sessions open now (all listeners).")
                                .Add({});
    refused_ = &family<prometheus::Counter>(
                    reg, "portcullis_connections_refused_total",
                    "Client connections refused over max_connections or max_connections_per_ip.")
                    .Add({});

    auto& tls = family<prometheus::Counter>(reg, "portcullis_tls_handshakes_total",
                                            "Completed client TLS handshakes, by TLS version.");
    for (std::size_t i = 0; i < kTlsVersions.size(); ++i) {
        tls_versions_[i] = &tls.Add({{"version", std::string(kTlsVersions[i])}});
    }
    tls_failures_ = &family<prometheus::Counter>(reg, "portcullis_tls_handshake_failures_total",
                                                 "Client TLS handshakes that failed.")
                         .Add({});
    tls_resumed_ = &family<prometheus::Counter>(
                        reg, "portcullis_tls_resumed_total",
                        "Client TLS handshakes that resumed a session (a ticket was accepted).")
                        .Add({});
    auto& signatures = family<prometheus::Counter>(
        reg, "portcullis_tls_signatures_total",
        "Full handshakes' signatures given to the signing pool ([tls] signing_threads): "
        "where=pool, or where=loop when the pool was full and the event loop signed.");
    tls_signed_pool_ = &signatures.Add({{"where", "pool"}});
    tls_signed_loop_ = &signatures.Add({{"where", "loop"}});

    auto& auth = family<prometheus::Counter>(
        reg, "portcullis_auth_attempts_total",
        "Completed AUTH exchanges, by mechanism and result (success, failure = wrong or unknown "
        "credentials, locked_out = refused during a lockout, busy = 454 hashing queue full).");
    for (std::size_t m = 0; m < kMechanisms.size(); ++m) {
        for (std::size_t r = 0; r < kAuthResults.size(); ++r) {
            auth_[m][r] = &auth.Add({{"mechanism", std::string(kMechanisms[m])},
                                     {"result", std::string(kAuthResults[r])}});
        }
    }
    lockouts_ = &family<prometheus::Counter>(reg, "portcullis_auth_lockouts_total",
                                             "Lockouts started (per address, user or network).")
                     .Add({});

    auto& messages = family<prometheus::Counter>(
        reg, "portcullis_messages_total",
        "Messages whose end of data got the backend's verdict, by result (2xx accepted, 4xx or "
        "backend lost temporary_failure, 5xx permanent_failure).");
    for (std::size_t i = 0; i < kMessageResults.size(); ++i) {
        messages_[i] = &messages.Add({{"result", std::string(kMessageResults[i])}});
    }
    bytes_ = &family<prometheus::Counter>(reg, "portcullis_relayed_bytes_total",
                                          "Message bytes (as received) the backend accepted.")
                  .Add({});

    auto& rates = family<prometheus::Counter>(reg, "portcullis_rate_limit_rejections_total",
                                              "Commands refused by a per-user rate limit.");
    for (std::size_t i = 0; i < kRateLimits.size(); ++i) {
        rate_limits_[i] = &rates.Add({{"limit", std::string(kRateLimits[i])}});
    }
    auto& senders = family<prometheus::Counter>(
        reg, "portcullis_sender_rejections_total",
        "Messages refused because the user may not send as that sender (envelope MAIL FROM or "
        "header From).");
    for (std::size_t i = 0; i < kSenderChecks.size(); ++i) {
        senders_[i] = &senders.Add({{"check", std::string(kSenderChecks[i])}});
    }

    backend_connect_failures_ =
        &family<prometheus::Counter>(
             reg, "portcullis_backend_connect_failures_total",
             "Backend connection attempts that failed (connect error, timeout, no 220 greeting), "
             "sessions and probes alike.")
             .Add({});
    eod_latency_ = &prometheus::BuildHistogram()
                        .Name("portcullis_backend_end_of_data_seconds")
                        .Help("Time from sending end of data to the backend until its reply.")
                        .Register(reg)
                        .Add({}, kLatencyBuckets);
    loop_turns_ = &prometheus::BuildHistogram()
                       .Name("portcullis_loop_turn_seconds")
                       .Help(
                           "Busy time of one event-loop turn (every callback between two "
                           "polls), per worker.")
                       .Register(reg);
    draining_ = &family<prometheus::Gauge>(reg, "portcullis_draining",
                                           "1 after SIGTERM/SIGINT while sessions finish, else 0.")
                     .Add({});
    backends_up_ =
        &family<prometheus::Gauge>(reg, "portcullis_backends_up",
                                   "Configured backends that answered their last capability probe.")
             .Add({});
    state_available_ =
        &family<prometheus::Gauge>(
             reg, "portcullis_state_available",
             "1 while the [state] store answers (always 1 with backend = \"memory\"), "
             "0 during a Redis outage.")
             .Add({});
    state_available_->Set(1);
    state_outages_ = &family<prometheus::Counter>(reg, "portcullis_state_outages_total",
                                                  "Times the Redis state store became unavailable.")
                          .Add({});
    state_errors_ = &family<prometheus::Counter>(
                         reg, "portcullis_state_errors_total",
                         "Rate-limit and lockout calls that Redis did not answer in time.")
                         .Add({});
    auto& outcomes = family<prometheus::Counter>(
        reg, "portcullis_state_fallbacks_total",
        "Calls Redis did not answer, by what on_state_error made of them: answered from local "
        "state (local) or refused with 451 (refused).");
    state_outcomes_[0] = &outcomes.Add({{"outcome", "local"}});
    state_outcomes_[1] = &outcomes.Add({{"outcome", "refused"}});
}

namespace {

// Moves a counter up to a total kept elsewhere (never down: a counter only grows).
void advance_to(prometheus::Counter& counter, std::uint64_t total) {
    const double target = static_cast<double>(total);
    if (target > counter.Value()) {
        counter.Increment(target - counter.Value());
    }
}

}  // namespace

void Metrics::set_shared_state(const SharedStateReading& reading) {
    state_available_->Set(reading.available ? 1 : 0);
    advance_to(*state_outages_, reading.outages);
    advance_to(*state_errors_, reading.errors);
    advance_to(*state_outcomes_[0], reading.fallbacks);
    advance_to(*state_outcomes_[1], reading.refusals);
}

prometheus::Counter& Metrics::listener_connections(std::string_view listener) {
    return connections_total_->Add({{"listener", std::string(listener)}});
}

prometheus::Histogram& Metrics::loop_turns(unsigned worker) {
    return loop_turns_->Add({{"worker", std::to_string(worker)}}, kLoopTurnBuckets);
}

void Metrics::tls_handshake(std::string_view version) {
    std::size_t i = 0;
    while (i + 1 < kTlsVersions.size() && kTlsVersions[i] != version) {
        ++i;
    }
    tls_versions_[i]->Increment();
}

void Metrics::auth(AuthMechanism mechanism, AuthResult result) {
    auth_[static_cast<std::size_t>(mechanism)][static_cast<std::size_t>(result)]->Increment();
}

void Metrics::message(MessageResult result) {
    messages_[static_cast<std::size_t>(result)]->Increment();
}

void Metrics::rate_limited(RateLimitKind kind) {
    rate_limits_[static_cast<std::size_t>(kind)]->Increment();
}

void Metrics::sender_rejected(SenderCheck check) {
    senders_[static_cast<std::size_t>(check)]->Increment();
}

std::string Metrics::serialize() const {
    return prometheus::TextSerializer().Serialize(registry_->Collect());
}

Metrics& metrics() {
    static Metrics instance;
    return instance;
}

}  // namespace portcullis::ops
