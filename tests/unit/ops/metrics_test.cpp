#include <catch2/catch.hpp>

#include <string>

#include "ops/metrics.hpp"

using namespace portcullis::ops;

namespace {

// The value of one sample line ("name{labels} value"), or -1 when absent.
double sample(const std::string& text, const std::string& series) {
    const std::string key = "\n" + series + " ";
    const std::size_t at = text.find(key);
    if (at == std::string::npos) {
        return -1;
    }
    return std::stod(text.substr(at + key.size()));
}

}  // namespace

TEST_CASE("every metric family is exposed from the start, with its labels", "[ops][metrics]") {
    Metrics m;
    const std::string text = "\n" + m.serialize();
    CHECK(sample(text, "portcullis_messages_total{result=\"accepted\"}") == 0);
    CHECK(sample(text, "portcullis_messages_total{result=\"temporary_failure\"}") == 0);
    CHECK(sample(text, "portcullis_messages_total{result=\"permanent_failure\"}") == 0);
    CHECK(sample(text,
                 "portcullis_auth_attempts_total{mechanism=\"LOGIN\",result=\"locked_out\"}") == 0);
    CHECK(sample(text, "portcullis_tls_handshakes_total{version=\"TLSv1.3\"}") == 0);
    CHECK(sample(text, "portcullis_rate_limit_rejections_total{limit=\"bytes\"}") == 0);
    CHECK(sample(text, "portcullis_sender_rejections_total{check=\"header_from\"}") == 0);
    CHECK(sample(text, "portcullis_backend_end_of_data_seconds_count") == 0);
    CHECK(text.find("# TYPE portcullis_backend_end_of_data_seconds histogram") !=
          std::string::npos);
    CHECK(text.find("# TYPE portcullis_connections_current gauge") != std::string::npos);
    CHECK(text.find("# HELP portcullis_relayed_bytes_total ") != std::string::npos);
}

TEST_CASE("events land on the right series", "[ops][metrics]") {
    Metrics m;
    m.listener_connections("0.0.0.0:587").Increment();
    m.listener_connections("0.0.0.0:587").Increment();  // the same child
    m.tls_handshake("TLSv1.2");
    m.tls_handshake("SSLv3");  // anything unexpected is "other"
    m.tls_handshake_failed();
    m.auth(AuthMechanism::login, AuthResult::locked_out);
    m.auth(AuthMechanism::plain, AuthResult::success);
    m.message(MessageResult::temporary_failure);
    m.bytes_relayed(1500);
    m.rate_limited(RateLimitKind::recipients);
    m.sender_rejected(SenderCheck::envelope);
    m.backend_connect_failed();
    m.end_of_data_latency(0.02);
    m.end_of_data_latency(7);
    m.set_connections_current(3);
    const std::string text = "\n" + m.serialize();
    CHECK(sample(text, "portcullis_connections_total{listener=\"0.0.0.0:587\"}") == 2);
    CHECK(sample(text, "portcullis_tls_handshakes_total{version=\"TLSv1.2\"}") == 1);
    CHECK(sample(text, "portcullis_tls_handshakes_total{version=\"other\"}") == 1);
    CHECK(sample(text, "portcullis_tls_handshake_failures_total") == 1);
    CHECK(sample(text,
                 "portcullis_auth_attempts_total{mechanism=\"LOGIN\",result=\"locked_out\"}") == 1);
    CHECK(sample(text, "portcullis_auth_attempts_total{mechanism=\"PLAIN\",result=\"success\"}") ==
          1);
    CHECK(sample(text, "portcullis_auth_attempts_total{mechanism=\"PLAIN\",result=\"failure\"}") ==
          0);
    CHECK(sample(text, "portcullis_messages_total{result=\"temporary_failure\"}") == 1);
    CHECK(sample(text, "portcullis_relayed_bytes_total") == 1500);
    CHECK(sample(text, "portcullis_rate_limit_rejections_total{limit=\"recipients\"}") == 1);
    CHECK(sample(text, "portcullis_sender_rejections_total{check=\"envelope\"}") == 1);
    CHECK(sample(text, "portcullis_backend_connect_failures_total") == 1);
    CHECK(sample(text, "portcullis_backend_end_of_data_seconds_count") == 2);
    CHECK(sample(text, "portcullis_backend_end_of_data_seconds_bucket{le=\"0.025\"}") == 1);
    CHECK(sample(text, "portcullis_backend_end_of_data_seconds_bucket{le=\"10\"}") == 2);
    CHECK(sample(text, "portcullis_backend_end_of_data_seconds_sum") == Approx(7.02));
    CHECK(sample(text, "portcullis_connections_current") == 3);
}
