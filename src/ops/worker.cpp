#include "ops/worker.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstring>

#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "smtp/reply.hpp"

namespace portcullis::ops {

namespace {
// How long a load balancer has to send its PROXY header after connecting.
constexpr std::uint64_t kProxyHeaderTimeoutMs = 10'000;
// Signatures queued in the signing pool from one loop; beyond that the loop signs
// itself (a burst of handshakes is slowed, never refused).
constexpr std::size_t kMaxPendingSignatures = 256;
}  // namespace

// A connection refused at accept time (over a connection limit): it gets one 421
// line where the protocol allows it, then is closed once that line is written.
class RefusedConnection final : private net::StreamHandler {
  public:
    RefusedConnection(Worker& worker, std::unique_ptr<net::TcpStream> stream, bool send_reply)
        : worker_(worker), stream_(std::move(stream)) {
        stream_->set_handler(this);
        if (send_reply) {
            stream_->write(std::string(smtp::reply(smtp::ReplyId::too_many_connections)));
            stream_->shutdown_after_writes();
        }
    }
    bool done() const { return stream_->queued_bytes() == 0; }

  private:
    void on_stream_data(std::string_view) override {}
    void on_stream_end(int) override { finish(); }
    void on_stream_drained() override { finish(); }
    void finish() {
        stream_->set_handler(nullptr);
        worker_.retire_refused(this);
    }
    Worker& worker_;
    std::unique_ptr<net::TcpStream> stream_;
};

Worker::Worker(unsigned index, proxy::Runtime& runtime, const config::Config& cfg)
    : index_(index), runtime_(runtime) {
    uv_loop_init(&loop_);
    if (net::enable_turn_metrics(&loop_)) {
        prometheus::Histogram* turns = &metrics().loop_turns(index);
        turn_monitor_ = std::make_unique<net::LoopTurnMonitor>(
            &loop_,
            [turns](std::uint64_t busy_ns) { turns->Observe(static_cast<double>(busy_ns) / 1e9); });
    }
    id_prefix_ = randombytes_uniform(0xffff);
    reaper_ = std::make_unique<net::Timer>(&loop_);
    state_ =
        std::make_unique<state::SharedState>(&loop_, runtime.abuse.rates, runtime.abuse.logins);
    state_->warm_up(cfg.state);
    wakeup_ = std::make_unique<net::Async>(&loop_, [this] { on_wakeup(); });
    if (runtime.signing_pool) {
        signer_ = std::make_unique<proxy::LoopSigner>(&loop_, *runtime.signing_pool,
                                                      kMaxPendingSignatures);
    }
    for (const auto& listener : cfg.listeners) {
        // Resolved once here, so that counting a connection is one atomic add.
        prometheus::Counter* accepted = &metrics().listener_connections(listener.address.text());
        listeners_.push_back(std::make_unique<net::Listener>(
            &loop_, listener.address, [this, listener, accepted](uv_stream_t* server) {
                accept_one(server, listener, *accepted);
            }));
    }
}

Worker::~Worker() {
    join();
    sessions_.clear();
    retired_.clear();
    refused_.clear();
    refused_retired_.clear();
    handshakes_.clear();
    handshakes_retired_.clear();
    listeners_.clear();
    reaper_.reset();
    turn_monitor_.reset();
    wakeup_.reset();
    signer_.reset();
    state_.reset();  // closes the Redis connection's poll handle
    // Let libuv run the close callbacks of everything closed above, then close the loop.
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
}

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (::sched_getaffinity(0, sizeof(set), &set) != 0) {
        return cpus;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) {
            cpus.push_back(cpu);
        }
    }
    return cpus;
}

std::optional<int> cpu_for_worker(std::span<const int> allowed, unsigned index) {
    if (allowed.empty()) {
        return std::nullopt;
    }
    return allowed[index % allowed.size()];
}

namespace {

// Runs on the worker's own thread, before its loop starts.
void pin_this_thread(unsigned worker, int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    const int rc = ::pthread_setaffinity_np(::pthread_self(), sizeof(set), &set);
    if (rc != 0) {
        log(LogLevel::warn, "worker.cpu_affinity",
            {{"worker", worker}, {"cpu", cpu}, {"error", std::strerror(rc)}});
        return;
    }
    log(LogLevel::info, "worker.cpu_affinity", {{"worker", worker}, {"cpu", cpu}});
}

}  // namespace

void Worker::start_thread(std::optional<int> cpu) {
    thread_ = std::thread([this, cpu] {
        if (cpu) {
            pin_this_thread(index_, *cpu);
        }
        uv_run(&loop_, UV_RUN_DEFAULT);
    });
}

void Worker::join() {
    if (thread_.joinable()) {
        thread_.join();
    }
}

std::string Worker::next_session_id() {
    return fmt::format("{:04x}{:02x}{:06x}", id_prefix_, index_ & 0xff, ++session_counter_);
}

void Worker::accept_one(uv_stream_t* server, const config::ListenerConfig& listener,
                        prometheus::Counter& accepted) {
    auto stream = std::make_unique<net::TcpStream>(&loop_);
    if (!stream->accept_from(server)) {
        return;
    }
    accepted.Increment();
    if (listener.proxy_protocol) {
        begin_proxy_handshake(std::move(stream), listener);
        return;
    }
    admit(std::move(stream), listener, {}, {});
}

// A listener with proxy_protocol: only a trusted load balancer may connect, and its
// PROXY header comes first.
void Worker::begin_proxy_handshake(std::unique_ptr<net::TcpStream> stream,
                                   const config::ListenerConfig& listener) {
    const std::string peer = stream->peer_ip();
    const bool trusted =
        std::any_of(listener.trusted_proxies.begin(), listener.trusted_proxies.end(),
                    [&peer](const config::Cidr& network) { return network.contains(peer); });
    if (!trusted) {
        log(LogLevel::warn, "proxy.refused",
            {{"client", peer},
             {"listener", listener.address.text()},
             {"reason", "peer is not in trusted_proxies"}});
        auto refused = std::make_unique<RefusedConnection>(*this, std::move(stream), false);
        auto* key = refused.get();
        refused_.emplace(key, std::move(refused));
        retire_refused(key);
        return;
    }
    auto handshake = std::make_unique<proxy::ProxyHandshake>(
        &loop_, std::move(stream),
        [this, listener](proxy::ProxyHandshake& h,
                         std::optional<proxy::ProxyHandshake::Accepted> accepted,
                         std::string reason) {
            finish_proxy_handshake(h, std::move(accepted), reason, listener);
        });
    auto* key = handshake.get();
    handshakes_.emplace(key, std::move(handshake));
    key->start(kProxyHeaderTimeoutMs);
}

void Worker::finish_proxy_handshake(proxy::ProxyHandshake& handshake,
                                    std::optional<proxy::ProxyHandshake::Accepted> accepted,
                                    const std::string& reason,
                                    const config::ListenerConfig& listener) {
    auto it = handshakes_.find(&handshake);
    if (it != handshakes_.end()) {
        handshakes_retired_.push_back(std::move(it->second));  // it is on the stack
        handshakes_.erase(it);
        if (!reaper_->active()) {
            reaper_->start(0, [this] { reap(); });
        }
    }
    if (!accepted) {
        log(LogLevel::warn, "proxy.refused",
            {{"client", handshake.peer_ip()},
             {"listener", listener.address.text()},
             {"reason", reason}});
        return;  // the connection closes with the handshake
    }
    admit(std::move(accepted->stream), listener, std::move(accepted->origin),
          accepted->early_input);
}

// Takes a connection slot for the client's address and starts its session.
void Worker::admit(std::unique_ptr<net::TcpStream> stream, const config::ListenerConfig& listener,
                   proxy::ClientOrigin origin, std::string_view early_input) {
    auto snapshot = runtime_.snapshot.get();
    const std::string ip = origin.ip.empty() ? stream->peer_ip() : origin.ip;
    proxy::ConnectionLimiter::Refusal refusal{};
    proxy::ConnectionSlot slot =
        runtime_.connections.acquire(ip, snapshot->config->server.max_connections,
                                     snapshot->config->server.max_connections_per_ip, refusal);
    if (!slot) {
        metrics().refused_connection();
        log(LogLevel::warn, "connection.refused",
            {{"client", ip},
             {"reason", refusal == proxy::ConnectionLimiter::Refusal::total
                            ? "max_connections"
                            : "max_connections_per_ip"}});
        // On an implicit-TLS port a plaintext reply would only confuse the client.
        const bool plaintext = listener.tls != config::ListenerTls::implicit;
        auto refused = std::make_unique<RefusedConnection>(*this, std::move(stream), plaintext);
        auto* key = refused.get();
        refused_.emplace(key, std::move(refused));
        if (!plaintext || key->done()) {
            retire_refused(key);
        }
        return;
    }
    auto session = std::make_unique<proxy::ClientSession>(*this, std::move(stream), snapshot,
                                                          listener, next_session_id(),
                                                          std::move(slot), std::move(origin));
    auto* key = session.get();
    sessions_.emplace(key, std::move(session));
    session_count_.store(sessions_.size());
    if (draining_) {
        key->start(early_input);
        key->drain();
        return;
    }
    key->start(early_input);
}

void Worker::retire(proxy::ClientSession* session) {
    auto it = sessions_.find(session);
    if (it == sessions_.end()) {
        return;
    }
    retired_.push_back(std::move(it->second));
    sessions_.erase(it);
    session_count_.store(sessions_.size());
    if (!reaper_->active()) {
        reaper_->start(0, [this] { reap(); });
    }
}

void Worker::retire_refused(RefusedConnection* connection) {
    auto it = refused_.find(connection);
    if (it == refused_.end()) {
        return;
    }
    refused_retired_.push_back(std::move(it->second));
    refused_.erase(it);
    if (!reaper_->active()) {
        reaper_->start(0, [this] { reap(); });
    }
}

void Worker::reap() {
    retired_.clear();
    refused_retired_.clear();
    handshakes_retired_.clear();
    maybe_finish();
}

void Worker::request_drain() {
    drain_requested_.store(true);
    std::lock_guard lock(wakeup_mutex_);
    if (wakeup_) {
        wakeup_->notify();
    }
}

void Worker::request_abort() {
    abort_requested_.store(true);
    std::lock_guard lock(wakeup_mutex_);
    if (wakeup_) {
        wakeup_->notify();
    }
}

void Worker::request_stop() {
    stop_requested_.store(true);
    std::lock_guard lock(wakeup_mutex_);
    if (wakeup_) {
        wakeup_->notify();
    }
}

void Worker::on_wakeup() {
    if (drain_requested_.load() && !draining_) {
        draining_ = true;
        listeners_.clear();   // stop accepting; the kernel refuses new connections
        handshakes_.clear();  // connections still owing their PROXY header are dropped
        std::vector<proxy::ClientSession*> current;
        for (auto& [key, session] : sessions_) {
            current.push_back(key);
        }
        for (auto* session : current) {
            session->drain();
        }
    }
    if (abort_requested_.load() && !aborted_) {
        aborted_ = true;
        std::vector<proxy::ClientSession*> current;
        for (auto& [key, session] : sessions_) {
            current.push_back(key);
        }
        for (auto* session : current) {
            if (sessions_.count(session) != 0) {  // not retired by an earlier one's close
                session->shutdown_now();
            }
        }
    }
    if (stop_requested_.load()) {
        for (auto& [key, session] : sessions_) {
            retired_.push_back(std::move(session));
        }
        sessions_.clear();
        session_count_.store(0);
        handshakes_.clear();
        reap();
        return;
    }
    maybe_finish();
}

// Once draining and empty, close the last handles so uv_run returns.
void Worker::maybe_finish() {
    if (!draining_ || !sessions_.empty() || !refused_.empty() || !handshakes_.empty()) {
        return;
    }
    reaper_.reset();
    turn_monitor_.reset();  // an active prepare handle keeps the loop running
    state_.reset();         // the Redis connection's handles would keep the loop running
    signer_.reset();        // and so would its wakeup handle; no session waits for it now
    std::lock_guard lock(wakeup_mutex_);
    wakeup_.reset();
}

}  // namespace portcullis::ops
