#include "bench/report.hpp"

#include "ops/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace portcullis::bench {
namespace {

constexpr double kMB = 1e6;  // throughput is reported in MB/s with MB = 10^6 bytes

double per_second(std::uint64_t count, double seconds) {
    return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

double megabytes(const Options& o, std::uint64_t messages) {
    return static_cast<double>(messages) * static_cast<double>(o.message_size) / kMB;
}

// Server CPU per unit, or a JSON null / "-" when the unit count is zero.
std::string ratio_or(double cpu, double units, double scale, const char* none) {
    if (units <= 0) {
        return none;
    }
    return fmt::format("{:.1f}", cpu / units * scale);
}

std::string json_failures(const FailureCounts& reasons) {
    std::string out = "{";
    for (const auto& [reason, count] : reasons) {
        if (out.size() > 1) {
            out += ",";
        }
        out += ops::json_quote(reason) + ":" + std::to_string(count);
    }
    return out + "}";
}

std::string json_watch(const std::vector<int>& pids) {
    std::string out = "[";
    for (const int pid : pids) {
        out += (out.size() > 1 ? "," : "") + std::to_string(pid);
    }
    return out + "]";
}

void print_failures_text(const FailureCounts& reasons, std::ostream& out) {
    std::vector<std::pair<std::string, std::uint64_t>> sorted(reasons.begin(), reasons.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.second > b.second; });
    for (std::size_t i = 0; i < sorted.size() && i < 8; ++i) {
        out << fmt::format("  {:>8}  {}\n", sorted[i].second, sorted[i].first);
    }
}

}  // namespace

void print_load_text(const Options& o, const LoadReport& r, std::ostream& out) {
    out << fmt::format(
        "portcullis-bench: {} {}:{}  AUTH {}  {} clients  {} msg/conn  {} B/msg  "
        "rate cap {}\n",
        mode_name(o.mode), o.host, o.port, auth_name(o.auth), o.clients, o.messages_per_connection,
        o.message_size, o.rate > 0 ? fmt::format("{:.0f}/s", o.rate) : std::string("none"));
    if (!r.tls.empty()) {
        out << "tls         " << r.tls
            << fmt::format("  ({} handshakes in the window, {} resumed)\n", r.tls_handshakes,
                           r.tls_resumed);
    }
    out << fmt::format("window      {:.2f} s after {:.1f} s warmup{}\n", r.elapsed_s, o.warmup_s,
                       r.stopped_early ? "  (STOPPED EARLY: too many failures)" : "");
    out << fmt::format("messages    {:>10}  {:>10.1f} /s\n", r.messages,
                       per_second(r.messages, r.elapsed_s));
    out << fmt::format("sessions    {:>10}  {:>10.1f} /s\n", r.sessions,
                       per_second(r.sessions, r.elapsed_s));
    out << fmt::format("throughput  {:>10.2f} MB/s (MB = 10^6 bytes of message content)\n",
                       megabytes(o, r.messages) / std::max(r.elapsed_s, 1e-9));
    out << fmt::format("latency     p50 {:.3f} ms  p90 {:.3f} ms  p99 {:.3f} ms  max {:.3f} ms\n",
                       r.latency.p50_ms, r.latency.p90_ms, r.latency.p99_ms, r.latency.max_ms);
    out << fmt::format(
        "  socket    p50 {:.3f} ms  p90 {:.3f} ms  p99 {:.3f} ms  max {:.3f} ms  (until replies "
        "reached the socket, without the bench's own delays)\n",
        r.socket_latency.p50_ms, r.socket_latency.p90_ms, r.socket_latency.p99_ms,
        r.socket_latency.max_ms);
    if (r.reads > 0 && r.stamped_reads < r.reads) {
        out << fmt::format(
            "  warning: {} of {} reads had no kernel receive timestamp; those count from the "
            "read itself\n",
            r.reads - r.stamped_reads, r.reads);
    }
    if (r.first_latency.count > 0 && r.later_latency.count > 0) {
        out << fmt::format(
            "  first     p50 {:.3f} ms  p99 {:.3f} ms  ({} first messages of their sessions)\n"
            "  later     p50 {:.3f} ms  p99 {:.3f} ms\n",
            r.first_latency.p50_ms, r.first_latency.p99_ms, r.first_latency.count,
            r.later_latency.p50_ms, r.later_latency.p99_ms);
    }
    if (r.setup_latency.count > 0) {
        out << fmt::format(
            "set-up      p50 {:.3f} ms  p99 {:.3f} ms  max {:.3f} ms  (connect until ready for "
            "the first message, {} connections)\n",
            r.setup_latency.p50_ms, r.setup_latency.p99_ms, r.setup_latency.max_ms,
            r.setup_latency.count);
    }
    out << fmt::format(
        "bench loop  turns p99 {:.3f} ms  max {:.3f} ms; turns of 1 ms or more: {:.1f} ms "
        "({:.2f} % of the window)\n",
        r.loop_turn.p99_ms, r.loop_turn.max_ms, r.long_turns_s * 1e3,
        100.0 * r.long_turns_s / std::max(r.elapsed_s, 1e-9));
    out << fmt::format("failures    {} (warmup: {})\n", r.failures, r.warmup_failures);
    print_failures_text(r.failure_reasons, out);
    if (r.watched) {
        out << fmt::format(
            "server cpu  {:.2f} s: {} us/message  {} us/session  {} ms/MB  (rss {} KiB)\n",
            r.server_cpu_s, ratio_or(r.server_cpu_s, double(r.messages), 1e6, "-"),
            ratio_or(r.server_cpu_s, double(r.sessions), 1e6, "-"),
            ratio_or(r.server_cpu_s, megabytes(o, r.messages), 1e3, "-"), r.server_rss_kib);
    }
    out << fmt::format("bench cpu   {:.2f} s\n", r.bench_cpu_s);
}

void print_load_json(const Options& o, const LoadReport& r, std::ostream& out) {
    const double mb = megabytes(o, r.messages);
    out << "{"
        << fmt::format(
               "\"kind\":\"load\",\"mode\":\"{}\",\"target\":\"{}:{}\",\"auth\":\"{}\","
               "\"clients\":{},\"messages_per_connection\":{},\"message_size\":{},"
               "\"rate_cap\":{},\"warmup_s\":{},\"tls\":{},",
               mode_name(o.mode), o.host, o.port, auth_name(o.auth), o.clients,
               o.messages_per_connection, o.message_size, o.rate, o.warmup_s,
               ops::json_quote(r.tls))
        << fmt::format(
               "\"elapsed_s\":{:.4f},\"messages\":{},\"sessions\":{},\"connections\":{},"
               "\"tls_handshakes\":{},\"tls_resumed\":{},"
               "\"messages_per_s\":{:.2f},\"sessions_per_s\":{:.2f},\"mb_per_s\":{:.3f},",
               r.elapsed_s, r.messages, r.sessions, r.connections, r.tls_handshakes, r.tls_resumed,
               per_second(r.messages, r.elapsed_s), per_second(r.sessions, r.elapsed_s),
               mb / std::max(r.elapsed_s, 1e-9))
        << fmt::format(
               "\"latency_ms\":{{\"count\":{},\"p50\":{:.4f},\"p90\":{:.4f},\"p99\":{:.4f},"
               "\"max\":{:.4f},\"mean\":{:.4f}}},",
               r.latency.count, r.latency.p50_ms, r.latency.p90_ms, r.latency.p99_ms,
               r.latency.max_ms, r.latency.mean_ms)
        << fmt::format(
               "\"first_latency_ms\":{{\"count\":{},\"p50\":{:.4f},\"p99\":{:.4f}}},"
               "\"later_latency_ms\":{{\"count\":{},\"p50\":{:.4f},\"p99\":{:.4f}}},",
               r.first_latency.count, r.first_latency.p50_ms, r.first_latency.p99_ms,
               r.later_latency.count, r.later_latency.p50_ms, r.later_latency.p99_ms)
        << fmt::format(
               "\"socket_latency_ms\":{{\"count\":{},\"p50\":{:.4f},\"p90\":{:.4f},"
               "\"p99\":{:.4f},\"max\":{:.4f},\"mean\":{:.4f}}},"
               "\"reads\":{},\"stamped_reads\":{},",
               r.socket_latency.count, r.socket_latency.p50_ms, r.socket_latency.p90_ms,
               r.socket_latency.p99_ms, r.socket_latency.max_ms, r.socket_latency.mean_ms, r.reads,
               r.stamped_reads)
        << fmt::format(
               "\"setup_latency_ms\":{{\"count\":{},\"p50\":{:.4f},\"p99\":{:.4f},"
               "\"max\":{:.4f}}},",
               r.setup_latency.count, r.setup_latency.p50_ms, r.setup_latency.p99_ms,
               r.setup_latency.max_ms)
        << fmt::format(
               "\"bench_loop\":{{\"turns\":{},\"turn_p99_ms\":{:.4f},\"turn_max_ms\":{:.4f},"
               "\"long_turns_ms\":{:.3f},\"long_turns_share\":{:.5f}}},",
               r.loop_turn.count, r.loop_turn.p99_ms, r.loop_turn.max_ms, r.long_turns_s * 1e3,
               r.long_turns_s / std::max(r.elapsed_s, 1e-9))
        << fmt::format(
               "\"failures\":{},\"warmup_messages\":{},\"warmup_failures\":{},"
               "\"stopped_early\":{},\"failure_reasons\":{},",
               r.failures, r.warmup_messages, r.warmup_failures, r.stopped_early,
               json_failures(r.failure_reasons))
        << fmt::format("\"watch_pids\":{},", json_watch(o.watch_pids));
    if (r.watched) {
        out << fmt::format(
            "\"server_cpu_s\":{:.3f},\"server_cpu_us_per_message\":{},"
            "\"server_cpu_us_per_session\":{},\"server_cpu_ms_per_mb\":{},"
            "\"server_rss_kib\":{},",
            r.server_cpu_s, ratio_or(r.server_cpu_s, double(r.messages), 1e6, "null"),
            ratio_or(r.server_cpu_s, double(r.sessions), 1e6, "null"),
            ratio_or(r.server_cpu_s, mb, 1e3, "null"), r.server_rss_kib);
    }
    out << fmt::format("\"bench_cpu_s\":{:.3f}}}\n", r.bench_cpu_s);
}

void print_idle_text(const Options& o, const IdleReport& r, std::ostream& out) {
    out << fmt::format("portcullis-bench idle: {} {}:{}{}  {} connections requested\n",
                       mode_name(o.mode), o.host, o.port, o.idle_tls ? " (+STARTTLS)" : "",
                       r.requested);
    out << fmt::format("ready       {} in {:.2f} s, failures {}\n", r.ready, r.setup_s, r.failures);
    print_failures_text(r.failure_reasons, out);
    if (r.watched && r.ready > 0) {
        const double delta =
            static_cast<double>(r.rss_after_kib) - static_cast<double>(r.rss_before_kib);
        out << fmt::format("server rss  {} KiB -> {} KiB: {:.2f} KiB per idle connection\n",
                           r.rss_before_kib, r.rss_after_kib, delta / r.ready);
    }
    out << fmt::format("bench rss   {} KiB -> {} KiB\n", r.bench_rss_before_kib,
                       r.bench_rss_after_kib);
}

void print_idle_json(const Options& o, const IdleReport& r, std::ostream& out) {
    out << "{"
        << fmt::format(
               "\"kind\":\"idle\",\"mode\":\"{}\",\"target\":\"{}:{}\",\"idle_tls\":{},"
               "\"requested\":{},\"ready\":{},\"failures\":{},\"failure_reasons\":{},"
               "\"setup_s\":{:.3f},\"watch_pids\":{},\"tls\":{},",
               mode_name(o.mode), o.host, o.port, o.idle_tls, r.requested, r.ready, r.failures,
               json_failures(r.failure_reasons), r.setup_s, json_watch(o.watch_pids),
               ops::json_quote(r.tls));
    if (r.watched && r.ready > 0) {
        const double delta =
            static_cast<double>(r.rss_after_kib) - static_cast<double>(r.rss_before_kib);
        out << fmt::format(
            "\"rss_before_kib\":{},\"rss_after_kib\":{},\"rss_per_connection_kib\":{:.3f},",
            r.rss_before_kib, r.rss_after_kib, delta / r.ready);
    }
    out << fmt::format("\"bench_rss_before_kib\":{},\"bench_rss_after_kib\":{}}}\n",
                       r.bench_rss_before_kib, r.bench_rss_after_kib);
}

}  // namespace portcullis::bench
