// Results of a run and how they are printed: text for people, one JSON object for
// scripts (bench/compare.sh). Every number comes from the run itself.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "bench/latency.hpp"
#include "bench/options.hpp"

namespace portcullis::bench {

using FailureCounts = std::map<std::string, std::uint64_t>;

struct LoadReport {
    std::string tls;       // version and cipher of the first handshake, if any
    double elapsed_s = 0;  // the measured window
    std::uint64_t messages = 0;
    std::uint64_t sessions = 0;
    std::uint64_t connections = 0;     // connections that ended in the window
    std::uint64_t tls_handshakes = 0;  // completed in the window
    std::uint64_t tls_resumed = 0;     // of those, resumed sessions (--resume)
    std::uint64_t failures = 0;
    std::uint64_t warmup_messages = 0;
    std::uint64_t warmup_failures = 0;
    bool stopped_early = false;  // --max-failures reached
    FailureCounts failure_reasons;
    LatencySummary latency;
    LatencySummary first_latency;  // first messages of their sessions
    LatencySummary later_latency;  // every other message
    // The server's part of `latency`: until the final reply reached the bench's socket
    // (kernel receive timestamp), without the bench's own time between a reply and its
    // next request (StampedStream, Client::on_message).
    LatencySummary socket_latency;
    std::uint64_t reads = 0;          // socket reads of every connection closed
    std::uint64_t stamped_reads = 0;  // of those, with a kernel receive timestamp
    LatencySummary setup_latency;     // connect until ready for the first message
    LatencySummary loop_turn;         // the bench's own busy time per loop turn
    double long_turns_s = 0;          // window time spent in turns of 1 ms or more
    bool watched = false;             // --watch-pid given and readable at both ends of the window
    double server_cpu_s = 0;
    std::uint64_t server_rss_kib = 0;  // at the end of the window
    double bench_cpu_s = 0;
};

struct IdleReport {
    std::string tls;
    unsigned requested = 0;
    unsigned ready = 0;
    std::uint64_t failures = 0;
    FailureCounts failure_reasons;
    double setup_s = 0;  // first connect to last connection ready
    bool watched = false;
    std::uint64_t rss_before_kib = 0;
    std::uint64_t rss_after_kib = 0;
    std::uint64_t bench_rss_before_kib = 0;
    std::uint64_t bench_rss_after_kib = 0;
};

void print_load_text(const Options& o, const LoadReport& r, std::ostream& out);
void print_load_json(const Options& o, const LoadReport& r, std::ostream& out);
void print_idle_text(const Options& o, const IdleReport& r, std::ostream& out);
void print_idle_json(const Options& o, const IdleReport& r, std::ostream& out);

}  // namespace portcullis::bench
