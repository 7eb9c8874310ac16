// The two kinds of run: a load run (clients sending messages for a measured window)
// and an idle run (many connections held open while the servers' RSS is sampled).
#pragma once

#include <uv.h>

#include <memory>
#include <optional>
#include <vector>

#include "bench/client.hpp"
#include "bench/pacer.hpp"
#include "bench/procfs.hpp"
#include "bench/report.hpp"

namespace portcullis::bench {

class LoadRun final : private ClientEvents {
  public:
    LoadRun(uv_loop_t* loop, const ClientSetup& setup);
    // Runs the loop until the window is over and every connection is closed.
    LoadReport run();

  private:
    enum class Phase { warmup, measure, done };

    bool may_start_message(Client& client) override;
    void on_message(std::uint64_t latency_ns, std::uint64_t socket_latency_ns, bool first) override;
    void on_reads(std::uint64_t reads, std::uint64_t stamped) override;
    void on_session() override;
    void on_session_ready(std::uint64_t setup_ns) override;
    void on_failure(const std::string& reason) override;
    void on_idle_ready(Client&) override {}
    std::optional<std::uint64_t> on_connection_over(Client& client, bool failed) override;
    void on_tls_established(std::string_view version, std::string_view cipher,
                            bool resumed) override;

    void on_turn(std::uint64_t busy_ns);
    void begin_window();
    void end_window();
    void request_finish();
    void finish();

    ReceiveTimestampsOn timestamps_on_;  // before any client connects
    uv_loop_t* loop_;
    const ClientSetup& setup_;
    const Options& options_;
    std::vector<std::unique_ptr<Client>> clients_;
    std::unique_ptr<Pacer> pacer_;
    net::Timer phase_timer_;
    net::Timer finish_timer_;
    Phase phase_ = Phase::warmup;
    std::uint64_t window_start_ns_ = 0;
    LatencyHistogram latencies_;
    LatencyHistogram first_latencies_;   // first messages of their sessions
    LatencyHistogram later_latencies_;   // the others
    LatencyHistogram socket_latencies_;  // the server's part: until replies reached the socket
    LatencyHistogram setups_;            // connect to ready for the first message
    LatencyHistogram loop_turns_;        // this loop's busy time per turn, in the window
    std::uint64_t long_turns_ns_ = 0;    // sum of the turns of kLongTurnNs or more
    std::optional<net::LoopTurnMonitor>
        turn_monitor_;  // an active handle: reset to let the loop end
    ProcUsage server_start_;
    double bench_cpu_start_ = 0;
    LoadReport report_;
};

class IdleRun final : private ClientEvents {
  public:
    IdleRun(uv_loop_t* loop, const ClientSetup& setup);
    IdleReport run();

  private:
    bool may_start_message(Client&) override { return false; }
    void on_message(std::uint64_t, std::uint64_t, bool) override {}
    void on_session() override {}
    void on_failure(const std::string& reason) override;
    void on_idle_ready(Client& client) override;
    std::optional<std::uint64_t> on_connection_over(Client& client, bool failed) override;
    void on_tls_established(std::string_view version, std::string_view cipher,
                            bool resumed) override;

    void open_more();
    void settled();
    void finish();

    uv_loop_t* loop_;
    const ClientSetup& setup_;
    const Options& options_;
    std::vector<std::unique_ptr<Client>> clients_;
    unsigned opened_ = 0;
    unsigned in_progress_ = 0;
    unsigned holding_ = 0;  // connections set up and idle right now
    bool sampling_ = false;
    std::uint64_t start_ns_ = 0;
    net::Timer step_timer_;      // opens more connections on a later loop turn
    net::Timer sample_timer_;    // settle, sample, hold
    net::Timer deadline_timer_;  // bounds the set-up phase
    IdleReport report_;
};

}  // namespace portcullis::bench
