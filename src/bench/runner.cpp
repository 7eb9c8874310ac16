#include "bench/runner.hpp"

#include <algorithm>

namespace portcullis::bench {
namespace {

constexpr std::uint64_t kRetryAfterFailureMs = 10;
// A turn this long delays every reply that arrives meanwhile by up to as much: the
// latencies it overlaps measure the load generator, not the server.
constexpr std::uint64_t kLongTurnNs = 1'000'000;

std::uint64_t to_ms(double seconds) {
    return static_cast<std::uint64_t>(seconds * 1000.0);
}

double seconds_since(std::uint64_t start_ns) {
    return static_cast<double>(uv_hrtime() - start_ns) / 1e9;
}

// Drives the loop until nothing is pending, then closes it.
void drain_loop(uv_loop_t* loop) {
    uv_run(loop, UV_RUN_DEFAULT);
}

}  // namespace

// ---------------------------------------------------------------- load

LoadRun::LoadRun(uv_loop_t* loop, const ClientSetup& setup)
    : loop_(loop),
      setup_(setup),
      options_(*setup.options),
      phase_timer_(loop),
      finish_timer_(loop),
      turn_monitor_(std::in_place, loop, [this](std::uint64_t busy_ns) { on_turn(busy_ns); }) {}

void LoadRun::on_turn(std::uint64_t busy_ns) {
    if (phase_ != Phase::measure) {
        return;
    }
    loop_turns_.add(busy_ns);
    if (busy_ns >= kLongTurnNs) {
        long_turns_ns_ += busy_ns;
    }
}

LoadReport LoadRun::run() {
    if (options_.rate > 0) {
        pacer_ = std::make_unique<Pacer>(loop_, options_.rate);
    }
    const unsigned n = options_.messages_per_connection;
    for (unsigned i = 0; i < options_.clients; ++i) {
        clients_.push_back(
            std::make_unique<Client>(loop_, setup_, static_cast<ClientEvents&>(*this)));
        if (options_.stagger) {
            clients_.back()->set_first_session_quota(
                staggered_first_session(i, options_.clients, n));
        }
    }
    for (auto& client : clients_) {
        client->connect();
    }
    if (options_.warmup_s > 0) {
        phase_timer_.start(to_ms(options_.warmup_s), [this] { begin_window(); });
    } else {
        begin_window();
    }
    drain_loop(loop_);
    clients_.clear();  // closes their timers
    drain_loop(loop_);
    report_.latency = latencies_.summary();
    report_.first_latency = first_latencies_.summary();
    report_.later_latency = later_latencies_.summary();
    report_.socket_latency = socket_latencies_.summary();
    report_.setup_latency = setups_.summary();
    report_.loop_turn = loop_turns_.summary();
    report_.long_turns_s = static_cast<double>(long_turns_ns_) / 1e9;
    return report_;
}

void LoadRun::begin_window() {
    phase_ = Phase::measure;
    server_start_ = sample_processes(options_.watch_pids);
    bench_cpu_start_ = self_cpu_seconds();
    window_start_ns_ = uv_hrtime();
    phase_timer_.start(to_ms(options_.duration_s), [this] { end_window(); });
}

void LoadRun::end_window() {
    if (phase_ != Phase::measure) {
        return;
    }
    phase_ = Phase::done;
    report_.elapsed_s = seconds_since(window_start_ns_);
    const ProcUsage server_end = sample_processes(options_.watch_pids);
    report_.bench_cpu_s = self_cpu_seconds() - bench_cpu_start_;
    report_.watched = !options_.watch_pids.empty() && server_start_.alive > 0 &&
                      server_end.alive == server_start_.alive;
    report_.server_cpu_s = server_end.cpu_s - server_start_.cpu_s;
    report_.server_rss_kib = server_end.rss_kib;
    phase_timer_.stop();
    request_finish();
}

// Clients call in from their own I/O callbacks: tear down on a later loop turn.
void LoadRun::request_finish() {
    finish_timer_.start(0, [this] { finish(); });
}

void LoadRun::finish() {
    turn_monitor_.reset();
    if (pacer_) {
        pacer_->stop();
    }
    for (auto& client : clients_) {
        client->stop();
    }
}

void LoadRun::on_reads(std::uint64_t reads, std::uint64_t stamped) {
    report_.reads += reads;
    report_.stamped_reads += stamped;
}

bool LoadRun::may_start_message(Client& client) {
    if (phase_ == Phase::done) {
        return false;
    }
    return !pacer_ || pacer_->acquire(client);
}

void LoadRun::on_message(std::uint64_t latency_ns, std::uint64_t socket_latency_ns, bool first) {
    if (phase_ == Phase::warmup) {
        ++report_.warmup_messages;
        return;
    }
    if (phase_ != Phase::measure) {
        return;
    }
    ++report_.messages;
    latencies_.add(latency_ns);
    socket_latencies_.add(socket_latency_ns);
    (first ? first_latencies_ : later_latencies_).add(latency_ns);
    if (options_.max_messages > 0 && report_.messages >= options_.max_messages) {
        end_window();
    }
}

void LoadRun::on_session_ready(std::uint64_t setup_ns) {
    if (phase_ == Phase::measure) {
        setups_.add(setup_ns);
    }
}

void LoadRun::on_session() {
    if (phase_ == Phase::measure) {
        ++report_.sessions;
    }
}

void LoadRun::on_failure(const std::string& reason) {
    if (phase_ == Phase::warmup) {
        ++report_.warmup_failures;
    } else if (phase_ == Phase::measure) {
        ++report_.failures;
    } else {
        return;
    }
    ++report_.failure_reasons[reason];
    if (report_.failures + report_.warmup_failures > options_.max_failures &&
        phase_ != Phase::done) {
        report_.stopped_early = true;
        if (phase_ == Phase::warmup) {
            begin_window();
        }
        end_window();
    }
}

std::optional<std::uint64_t> LoadRun::on_connection_over(Client&, bool failed) {
    if (phase_ == Phase::done) {
        return std::nullopt;
    }
    if (phase_ == Phase::measure) {
        ++report_.connections;
    }
    return failed ? kRetryAfterFailureMs : 0;
}

void LoadRun::on_tls_established(std::string_view version, std::string_view cipher, bool resumed) {
    if (report_.tls.empty()) {
        report_.tls = std::string(version) + " " + std::string(cipher);
    }
    if (phase_ == Phase::measure) {
        ++report_.tls_handshakes;
        report_.tls_resumed += resumed ? 1 : 0;
    }
}

// ---------------------------------------------------------------- idle

void IdleRun::on_tls_established(std::string_view version, std::string_view cipher, bool) {
    if (report_.tls.empty()) {
        report_.tls = std::string(version) + " " + std::string(cipher);
    }
}

IdleRun::IdleRun(uv_loop_t* loop, const ClientSetup& setup)
    : loop_(loop),
      setup_(setup),
      options_(*setup.options),
      step_timer_(loop),
      sample_timer_(loop),
      deadline_timer_(loop) {}

IdleReport IdleRun::run() {
    report_.requested = options_.idle;
    report_.bench_rss_before_kib = self_rss_kib();
    const ProcUsage before = sample_processes(options_.watch_pids);
    report_.rss_before_kib = before.rss_kib;
    report_.watched = !options_.watch_pids.empty() && before.alive > 0;
    start_ns_ = uv_hrtime();
    // Bound the set-up phase: a server that stops answering must not hang the run.
    const double limit_s = options_.timeout_s + static_cast<double>(options_.idle) / 50.0;
    deadline_timer_.start(to_ms(limit_s), [this] { settled(); });
    open_more();
    drain_loop(loop_);
    clients_.clear();
    drain_loop(loop_);
    return report_;
}

void IdleRun::open_more() {
    while (opened_ < options_.idle && in_progress_ < options_.idle_parallel) {
        clients_.push_back(
            std::make_unique<Client>(loop_, setup_, static_cast<ClientEvents&>(*this)));
        ++opened_;
        ++in_progress_;
        clients_.back()->connect();
    }
    if (!sampling_ && in_progress_ == 0 && opened_ == options_.idle) {
        settled();
    }
}

void IdleRun::on_idle_ready(Client&) {
    ++holding_;
    --in_progress_;
    report_.setup_s = seconds_since(start_ns_);
    if (!sampling_) {
        step_timer_.start(0, [this] { open_more(); });
    }
}

void IdleRun::on_failure(const std::string& reason) {
    ++report_.failures;
    ++report_.failure_reasons[reason];
}

std::optional<std::uint64_t> IdleRun::on_connection_over(Client& client, bool) {
    if (client.idle_ready()) {
        --holding_;  // dropped by the server while held
    } else {
        --in_progress_;
        if (!sampling_) {
            step_timer_.start(0, [this] { open_more(); });
        }
    }
    return std::nullopt;
}

void IdleRun::settled() {
    if (sampling_) {
        return;
    }
    sampling_ = true;
    deadline_timer_.stop();
    step_timer_.stop();
    sample_timer_.start(to_ms(options_.settle_s), [this] {
        const ProcUsage after = sample_processes(options_.watch_pids);
        report_.rss_after_kib = after.rss_kib;
        report_.watched = report_.watched && after.alive > 0;
        report_.ready = holding_;
        report_.bench_rss_after_kib = self_rss_kib();
        sample_timer_.start(to_ms(options_.hold_s), [this] { finish(); });
    });
}

void IdleRun::finish() {
    for (auto& client : clients_) {
        client->stop();
    }
}

}  // namespace portcullis::bench
