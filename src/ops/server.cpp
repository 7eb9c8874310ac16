#include "ops/server.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <iostream>
#include <thread>

#include "auth/password.hpp"
#include "net/listener.hpp"
#include "net/stream.hpp"
#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/metrics_server.hpp"
#include "ops/security.hpp"
#include "ops/worker.hpp"
#include "proxy/backend_probe.hpp"
#include "state/shared_state.hpp"
#include "tls/context.hpp"

namespace portcullis::ops {
namespace {

constexpr std::uint64_t kDrainPollMs = 100;
// After the drain timeout every session was sent 421; this long for those lines to be
// written (a session's own close grace is 5 s) before the rest are simply closed.
constexpr auto kAbortGrace = std::chrono::seconds(6);

void print_load_error(const std::exception& error) {
    if (const auto* config_error = dynamic_cast<const config::ConfigError*>(&error)) {
        for (const auto& diagnostic : config_error->diagnostics()) {
            std::cerr << diagnostic.text() << "\n";
        }
        return;
    }
    std::cerr << error.what() << "\n";
}

// Signing threads run a little below the loops: an established session's next message
// goes first, a handshake's signature right after.
constexpr int kSigningNice = 5;

unsigned worker_count(const config::Config& cfg) {
    if (cfg.server.workers > 0) {
        return cfg.server.workers;
    }
    const unsigned cpus = std::thread::hardware_concurrency();
    return cpus > 0 ? cpus : 1;
}

std::string_view tls_mode_name(config::ListenerTls tls) {
    switch (tls) {
        case config::ListenerTls::starttls:
            return "starttls";
        case config::ListenerTls::implicit:
            return "implicit";
        case config::ListenerTls::none:
            return "none";
    }
    return "none";
}

// The main thread's loop: signals, reload, drain, the backend prober and the metrics
// endpoint. Workers do all the mail work, so nothing here ever blocks a session: a
// reload builds the new snapshot here (reading files, loading certificates) while the
// workers keep serving with the old one, then swaps it in under a short lock.
class Supervisor {
  public:
    Supervisor(proxy::Runtime& runtime, std::vector<std::unique_ptr<Worker>>& workers)
        : runtime_(runtime), workers_(workers) {
        uv_loop_init(&loop_);
        for (int signum : {SIGTERM, SIGINT, SIGHUP}) {
            auto handle = std::make_unique<uv_signal_t>();
            uv_signal_init(&loop_, handle.get());
            handle->data = this;
            uv_signal_start(handle.get(), on_signal, signum);
            signals_.push_back(std::move(handle));
        }
        uv_timer_init(&loop_, &poll_timer_);
        poll_timer_.data = this;
        prober_ = std::make_unique<proxy::BackendProber>(&loop_, runtime_);
    }

    ~Supervisor() {
        metrics_server_.reset();
        prober_.reset();  // its handles close in the uv_run below
        for (auto& handle : signals_) {
            uv_close(reinterpret_cast<uv_handle_t*>(handle.get()), nullptr);
        }
        uv_close(reinterpret_cast<uv_handle_t*>(&poll_timer_), nullptr);
        uv_run(&loop_, UV_RUN_DEFAULT);  // runs the close callbacks; handles freed below
        uv_loop_close(&loop_);
    }

    // Binds [metrics] address when set; throws net::ListenError naming it.
    void start_metrics() {
        const auto snapshot = runtime_.snapshot.get();
        const auto& address = snapshot->config->metrics.address;
        if (!address) {
            return;
        }
        metrics_server_ = std::make_unique<MetricsServer>(
            &loop_, *address, [this](std::string_view path) { return route(path); });
        metrics_address_ = address->text();
        log(LogLevel::info, "metrics.listen", {{"address", metrics_address_}});
    }

    void run() {
        prober_->probe_now();  // what the backends support, before clients ask
        uv_run(&loop_, UV_RUN_DEFAULT);
    }

  private:
    static void on_signal(uv_signal_t* handle, int signum) {
        auto* self = static_cast<Supervisor*>(handle->data);
        if (signum == SIGHUP) {
            self->reload();
        } else {
            self->begin_drain(signum);
        }
    }

    HttpReply route(std::string_view path) {
        const std::size_t configured = runtime_.snapshot.get()->config->backend.addresses.size();
        const std::size_t answering = prober_->backends_answering();
        if (path == "/metrics") {
            Metrics& m = metrics();
            m.set_connections_current(static_cast<double>(runtime_.connections.current()));
            m.set_draining(draining_);
            m.set_backends_up(static_cast<double>(answering));
            const state::Stats& st = state::stats();
            m.set_shared_state({.available = st.available.load(std::memory_order_relaxed),
                                .outages = st.outages.load(std::memory_order_relaxed),
                                .errors = st.errors.load(std::memory_order_relaxed),
                                .fallbacks = st.fallbacks.load(std::memory_order_relaxed),
                                .refusals = st.refusals.load(std::memory_order_relaxed)});
            return {200, "text/plain; version=0.0.4; charset=utf-8", m.serialize()};
        }
        if (path == "/healthz") {
            return {200, "text/plain; charset=utf-8", "ok\n"};
        }
        if (path == "/readyz") {
            if (draining_) {
                return {503, "text/plain; charset=utf-8", "not ready: draining\n"};
            }
            if (answering == 0) {
                return {503, "text/plain; charset=utf-8",
                        "not ready: no backend answered its last probe\n"};
            }
            return {200, "text/plain; charset=utf-8",
                    fmt::format("ready: {} of {} backends answering\n", answering, configured)};
        }
        return {404, "text/plain; charset=utf-8", "not found\n"};
    }

    void reload() {
        try {
            auto next = proxy::load_snapshot(runtime_.config_file, runtime_.ticket_keys);
            if (const auto problems = secret_file_problems(*next->config); !problems.empty()) {
                throw std::runtime_error(problems.front());
            }
            const auto previous = runtime_.snapshot.get();
            if (next->config->listeners.size() != previous->config->listeners.size()) {
                log(LogLevel::warn, "reload.listeners",
                    {{"message", "listener changes take effect after a restart"}});
            }
            const auto& metrics_address = next->config->metrics.address;
            if ((metrics_address ? metrics_address->text() : std::string()) != metrics_address_) {
                log(LogLevel::warn, "reload.metrics",
                    {{"message", "a change of [metrics] address takes effect after a restart"}});
            }
            configure_logging(next->config->log);
            runtime_.ticket_keys->set_rotation(next->config->tls.ticket_key_rotation);
            runtime_.snapshot.set(std::move(next));
            log(LogLevel::info, "reload", {{"result", "success"}});
            prober_->probe_now();  // the backends or their capabilities may have changed
        } catch (const std::exception& error) {
            log(LogLevel::error, "reload",
                {{"result", "failure"},
                 {"error", error.what()},
                 {"message", "keeping the previous configuration"}});
        }
    }

    void begin_drain(int signum) {
        if (draining_) {
            if (signum == SIGINT) {
                force_stop();  // a second Ctrl-C means now
            }
            return;
        }
        draining_ = true;
        drain_timeout_ = runtime_.snapshot.get()->config->server.drain_timeout;
        log(LogLevel::info, "shutdown",
            {{"signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"},
             {"sessions", runtime_.connections.current()},
             {"drain_timeout_ms", static_cast<std::int64_t>(drain_timeout_.count())}});
        for (auto& worker : workers_) {
            worker->request_drain();
        }
        drain_started_ = std::chrono::steady_clock::now();
        uv_timer_start(&poll_timer_, on_poll, kDrainPollMs, kDrainPollMs);
    }

    static void on_poll(uv_timer_t* timer) {
        auto* self = static_cast<Supervisor*>(timer->data);
        std::size_t sessions = 0;
        for (auto& worker : self->workers_) {
            sessions += worker->session_count();
        }
        const auto waited = std::chrono::steady_clock::now() - self->drain_started_;
        if (sessions == 0) {
            uv_stop(&self->loop_);
        } else if (!self->aborted_ && waited >= self->drain_timeout_) {
            self->abort_sessions(sessions);
        } else if (self->aborted_ && waited >= self->drain_timeout_ + kAbortGrace) {
            self->force_stop();
        }
    }

    // The drain timeout passed: every session still open is answered 421 and closed.
    void abort_sessions(std::size_t sessions) {
        aborted_ = true;
        log(LogLevel::warn, "shutdown.timeout",
            {{"sessions", sessions},
             {"drain_timeout_ms", static_cast<std::int64_t>(drain_timeout_.count())}});
        for (auto& worker : workers_) {
            worker->request_abort();
        }
    }

    void force_stop() {
        log(LogLevel::warn, "shutdown.forced", {{"sessions", runtime_.connections.current()}});
        for (auto& worker : workers_) {
            worker->request_stop();
        }
        uv_stop(&loop_);
    }

    proxy::Runtime& runtime_;
    std::vector<std::unique_ptr<Worker>>& workers_;
    uv_loop_t loop_{};
    std::vector<std::unique_ptr<uv_signal_t>> signals_;
    uv_timer_t poll_timer_{};
    std::unique_ptr<proxy::BackendProber> prober_;
    std::unique_ptr<MetricsServer> metrics_server_;
    std::string metrics_address_;  // bound at start; "" = none
    bool draining_ = false;
    bool aborted_ = false;  // the drain timeout passed; sessions were sent 421
    config::Duration drain_timeout_{};
    std::chrono::steady_clock::time_point drain_started_;
};

}  // namespace

int serve(const std::filesystem::path& config_file) {
    ::signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) {
        std::cerr << "portcullis: libsodium failed to initialise\n";
        return 1;
    }
    proxy::Runtime runtime;
    runtime.config_file = config_file;
    try {
        runtime.snapshot.set(proxy::load_snapshot(config_file, runtime.ticket_keys));
    } catch (const std::exception& error) {
        print_load_error(error);
        return 1;
    }
    const auto snapshot = runtime.snapshot.get();
    const config::Config& cfg = *snapshot->config;
    if (const auto problems = secret_file_problems(cfg); !problems.empty()) {
        for (const auto& problem : problems) {
            std::cerr << problem << "\n";
        }
        return 1;
    }
    configure_logging(cfg.log);
    runtime.ticket_keys->set_rotation(cfg.tls.ticket_key_rotation);
    // Warm the dummy hash now so the first unknown-user login is not slower than others.
    auth::dummy_hash(cfg.auth.hashing);

    if (cfg.tls.signing_threads > 0) {
        runtime.signing_pool =
            std::make_unique<util::WorkPool>(cfg.tls.signing_threads, kSigningNice);
    }
    std::vector<std::unique_ptr<Worker>> workers;
    try {
        for (const auto& listener : cfg.listeners) {
            net::check_port_free(listener.address);
        }
        for (unsigned i = 0; i < worker_count(cfg); ++i) {
            workers.push_back(std::make_unique<Worker>(i, runtime, cfg));
        }
    } catch (const std::exception& error) {
        log(LogLevel::error, "listen.failed", {{"error", error.what()}});
        std::cerr << "portcullis: " << error.what() << "\n";
        return 1;
    }
    // The supervisor binds [metrics] address now, with the listeners (before privileges
    // are dropped).
    auto supervisor = std::make_unique<Supervisor>(runtime, workers);
    try {
        supervisor->start_metrics();
    } catch (const std::exception& error) {
        log(LogLevel::error, "listen.failed", {{"error", error.what()}, {"what", "metrics"}});
        std::cerr << "portcullis: [metrics] address: " << error.what() << "\n";
        return 1;
    }
    // Listening sockets are bound (ports below 1024 need root); nothing else does.
    if (!cfg.server.user.empty()) {
        try {
            drop_privileges(cfg.server.user);
            log(LogLevel::info, "privileges.dropped", {{"user", cfg.server.user}});
        } catch (const std::exception& error) {
            log(LogLevel::error, "privileges.failed", {{"error", error.what()}});
            std::cerr << "portcullis: " << error.what() << "\n";
            return 1;
        }
    } else if (::geteuid() == 0) {
        log(LogLevel::warn, "privileges.root",
            {{"message", "running as root; set [server] user to drop privileges after binding"}});
    }
    for (const auto& listener : cfg.listeners) {
        log(LogLevel::info, "listen",
            {{"address", listener.address.text()},
             {"tls", tls_mode_name(listener.tls)},
             {"workers", static_cast<unsigned>(workers.size())}});
        if (listener.tls == config::ListenerTls::none) {
            log(LogLevel::warn, "listen.plaintext",
                {{"address", listener.address.text()},
                 {"message", "tls = \"none\" sends passwords in clear text; for tests only"}});
        }
    }
    // Taken on the main thread before any worker pins itself: the process's own mask
    // (a container's cpuset, a taskset) is what the workers share out.
    const std::vector<int> cpus = cfg.server.cpu_affinity ? allowed_cpus() : std::vector<int>{};
    for (unsigned i = 0; i < workers.size(); ++i) {
        workers[i]->start_thread(cfg.server.cpu_affinity ? cpu_for_worker(cpus, i) : std::nullopt);
    }
    supervisor->run();
    supervisor.reset();
    for (auto& worker : workers) {
        worker->request_stop();
    }
    workers.clear();  // joins each thread
    log(LogLevel::info, "stopped", {});
    return 0;
}

namespace {

// Reads one line with a deadline from a blocking socket (or TLS over it).
bool read_greeting(int fd, SSL* ssl, std::string& line) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    char c = 0;
    while (line.size() < 512) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return false;
        }
        pollfd pfd{fd, POLLIN, 0};
        if ((ssl == nullptr || SSL_pending(ssl) == 0) &&
            ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
            return false;
        }
        const int n = ssl != nullptr ? SSL_read(ssl, &c, 1) : static_cast<int>(::read(fd, &c, 1));
        if (n <= 0) {
            return false;
        }
        if (c == '\n') {
            return true;
        }
        line.push_back(c);
    }
    return false;
}

}  // namespace

int healthcheck(const std::filesystem::path& config_file) {
    std::shared_ptr<const config::Config> cfg;
    try {
        cfg = config::load_config(config_file);
    } catch (const std::exception& error) {
        print_load_error(error);
        return 1;
    }
    // A listener that greets at once; behind PROXY only when there is no other (then the
    // header says UNKNOWN, which a listener accepts from its trusted_proxies only).
    const auto direct = std::find_if(cfg->listeners.begin(), cfg->listeners.end(),
                                     [](const auto& l) { return !l.proxy_protocol; });
    const auto& listener = direct != cfg->listeners.end() ? *direct : cfg->listeners.front();
    sockaddr_storage ss{};
    std::string host = listener.address.host;
    if (host == "0.0.0.0") {
        host = "127.0.0.1";
    } else if (host == "::") {
        host = "::1";
    }
    if (!net::make_sockaddr(host, listener.address.port, ss)) {
        std::cerr << "healthcheck: bad listener address " << listener.address.text() << "\n";
        return 1;
    }
    const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const socklen_t len = ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        std::cerr << "healthcheck: cannot connect to " << listener.address.text() << ": "
                  << std::strerror(errno) << "\n";
        ::close(fd);
        return 1;
    }
    if (listener.proxy_protocol) {
        constexpr std::string_view kUnknown = "PROXY UNKNOWN\r\n";
        if (::write(fd, kUnknown.data(), kUnknown.size()) !=
            static_cast<ssize_t>(kUnknown.size())) {
            std::cerr << "healthcheck: cannot send a PROXY header to " << listener.address.text()
                      << "\n";
            ::close(fd);
            return 1;
        }
    }
    tls::SslCtxPtr ctx;
    SSL* ssl = nullptr;
    if (listener.tls == config::ListenerTls::implicit) {
        ctx = tls::make_client_context();
        ssl = SSL_new(ctx.get());
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1) {
            std::cerr << "healthcheck: TLS handshake with " << listener.address.text()
                      << " failed\n";
            SSL_free(ssl);
            ::close(fd);
            return 1;
        }
    }
    std::string line;
    const bool ok = read_greeting(fd, ssl, line) && line.rfind("220 ", 0) == 0;
    if (ssl != nullptr) {
        SSL_free(ssl);
    }
    ::close(fd);
    if (!ok) {
        std::cerr << "healthcheck: " << listener.address.text() << " did not answer 220\n";
        return 1;
    }
    std::cout << "healthy: " << listener.address.text() << "\n";
    return 0;
}

}  // namespace portcullis::ops
