// One event loop on its own thread, with its own listening sockets (SO_REUSEPORT) and
// the sessions it accepted. Other threads talk to it only through request_*().
#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <unordered_map>
#include <vector>

#include "net/listener.hpp"
#include "net/stream.hpp"
#include "proxy/client_session.hpp"
#include "proxy/loop_signer.hpp"
#include "proxy/proxy_handshake.hpp"
#include "proxy/runtime.hpp"

namespace prometheus {
class Counter;
}

namespace portcullis::ops {

class RefusedConnection;

// The CPUs this process may run on (sched_getaffinity), in ascending order; empty if
// the kernel would not say.
std::vector<int> allowed_cpus();
// [server] cpu_affinity = "auto": worker `index` gets the index-th allowed CPU, wrapping
// around when there are more workers than CPUs; nullopt when none are known.
std::optional<int> cpu_for_worker(std::span<const int> allowed, unsigned index);

class Worker final : public proxy::SessionHost {
  public:
    // Binds every listener of `cfg`; throws net::ListenError naming the address.
    Worker(unsigned index, proxy::Runtime& runtime, const config::Config& cfg);
    ~Worker() override;
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // `cpu`: pin the loop thread to that CPU first ([server] cpu_affinity); a refusal
    // is logged and the worker runs unpinned.
    void start_thread(std::optional<int> cpu = std::nullopt);
    void join();

    // Thread-safe: stop accepting and let sessions finish (idle ones get 421 now).
    void request_drain();
    // Thread-safe: the drain timeout passed; every session is answered 421 and closed.
    void request_abort();
    // Thread-safe: close every remaining session now.
    void request_stop();
    std::size_t session_count() const { return session_count_.load(); }

    uv_loop_t* loop() override { return &loop_; }
    proxy::Runtime& runtime() override { return runtime_; }
    state::SharedState& shared_state() override { return *state_; }
    tls::Signer* signer() override { return signer_.get(); }
    void retire(proxy::ClientSession* session) override;
    void retire_refused(RefusedConnection* connection);

  private:
    void accept_one(uv_stream_t* server, const config::ListenerConfig& listener,
                    prometheus::Counter& accepted);
    void begin_proxy_handshake(std::unique_ptr<net::TcpStream> stream,
                               const config::ListenerConfig& listener);
    void finish_proxy_handshake(proxy::ProxyHandshake& handshake,
                                std::optional<proxy::ProxyHandshake::Accepted> accepted,
                                const std::string& reason, const config::ListenerConfig& listener);
    void admit(std::unique_ptr<net::TcpStream> stream, const config::ListenerConfig& listener,
               proxy::ClientOrigin origin, std::string_view early_input);
    void on_wakeup();
    void reap();
    void maybe_finish();
    std::string next_session_id();

    unsigned index_;
    proxy::Runtime& runtime_;
    uv_loop_t loop_{};
    std::vector<std::unique_ptr<net::Listener>> listeners_;
    std::unordered_map<proxy::ClientSession*, std::unique_ptr<proxy::ClientSession>> sessions_;
    std::vector<std::unique_ptr<proxy::ClientSession>> retired_;
    std::unordered_map<RefusedConnection*, std::unique_ptr<RefusedConnection>> refused_;
    std::vector<std::unique_ptr<RefusedConnection>> refused_retired_;
    // Connections on proxy_protocol listeners still owing their PROXY header.
    std::unordered_map<proxy::ProxyHandshake*, std::unique_ptr<proxy::ProxyHandshake>> handshakes_;
    std::vector<std::unique_ptr<proxy::ProxyHandshake>> handshakes_retired_;
    std::unique_ptr<net::Timer> reaper_;
    std::unique_ptr<net::LoopTurnMonitor> turn_monitor_;
    std::unique_ptr<state::SharedState> state_;  // this loop's Redis connection, if any
    std::unique_ptr<proxy::LoopSigner> signer_;  // null when the loops sign themselves
    std::mutex wakeup_mutex_;  // request_*() from other threads vs. maybe_finish()
    std::unique_ptr<net::Async> wakeup_;
    std::atomic<bool> drain_requested_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> abort_requested_{false};
    bool draining_ = false;
    bool aborted_ = false;
    std::atomic<std::size_t> session_count_{0};
    std::uint64_t session_counter_ = 0;
    std::uint32_t id_prefix_ = 0;
    std::thread thread_;
};

}  // namespace portcullis::ops
