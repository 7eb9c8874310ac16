#include "proxy/backend_probe.hpp"

#include <algorithm>

#include "ops/log.hpp"
#include "proxy/upstream.hpp"

namespace portcullis::proxy {

namespace {
// How long a probe may wait for the backend's reply to QUIT.
constexpr auto kQuitTimeout = std::chrono::seconds(5);
}  // namespace

// One probe of one backend: greeting, EHLO (and STARTTLS when configured), QUIT.
class BackendProber::Probe final : private UpstreamEvents {
  public:
    Probe(BackendProber& owner, std::shared_ptr<const Snapshot> snapshot, config::Endpoint endpoint)
        : owner_(owner), snapshot_(std::move(snapshot)), endpoint_(std::move(endpoint)) {
        const config::Config& cfg = *snapshot_->config;
        UpstreamOptions options{
            snapshot_->backend_tls.get(), &owner_.runtime_.backends, true, {endpoint_}, {}};
        upstream_ = std::make_unique<Upstream>(owner_.loop_, cfg.backend, cfg.server.hostname,
                                               ClientFacts{}, std::move(options),
                                               static_cast<UpstreamEvents&>(*this));
    }

    void start() { upstream_->start(); }

  private:
    void on_upstream_ready(const BackendCapabilities& capabilities) override {
        answered_ = true;
        const bool changed = owner_.runtime_.backends.record(endpoint_, capabilities);
        owner_.report(endpoint_, true, smtp::describe(capabilities), changed);
        if (snapshot_->config->backend.identity == config::BackendIdentity::xclient &&
            !capabilities.xclient) {
            ops::log(ops::LogLevel::error, "backend.identity",
                     {{"backend", endpoint_.text()},
                      {"message",
                       "identity = \"xclient\" but the backend does not advertise "
                       "XCLIENT; every session through it will fail with 421 4.3.0"}});
        }
        upstream_->send_command("QUIT\r\n", kQuitTimeout);
    }
    void on_upstream_reply(const smtp::BackendReply&) override { owner_.finished(this); }
    void on_upstream_failed(UpstreamFailure, std::string_view reason) override {
        if (!answered_) {
            owner_.report(endpoint_, false, std::string(reason), false);
        }
        owner_.finished(this);
    }
    void on_upstream_drained() override {}

    BackendProber& owner_;
    std::shared_ptr<const Snapshot> snapshot_;  // keeps the BackendConfig alive
    config::Endpoint endpoint_;
    std::unique_ptr<Upstream> upstream_;
    bool answered_ = false;
};

BackendProber::BackendProber(uv_loop_t* loop, Runtime& runtime)
    : loop_(loop), runtime_(runtime), timer_(loop), reaper_(loop) {}

BackendProber::~BackendProber() = default;

void BackendProber::probe_now() {
    const auto snapshot = runtime_.snapshot.get();
    const config::BackendConfig& backend = snapshot->config->backend;
    runtime_.backends.configure(backend.addresses);
    running_.clear();  // a round still running is superseded
    for (const auto& endpoint : backend.addresses) {
        running_.push_back(std::make_unique<Probe>(*this, snapshot, endpoint));
    }
    // Started only once all exist: a probe may finish at once (a refused connection).
    std::vector<Probe*> starting;
    for (const auto& probe : running_) {
        starting.push_back(probe.get());
    }
    for (Probe* probe : starting) {
        const bool still_running =
            std::any_of(running_.begin(), running_.end(),
                        [probe](const std::unique_ptr<Probe>& p) { return p.get() == probe; });
        if (still_running) {
            probe->start();
        }
    }
    if (backend.probe_interval.count() > 0) {
        timer_.start(static_cast<std::uint64_t>(backend.probe_interval.count()),
                     [this] { probe_now(); });
    } else {
        timer_.stop();
    }
}

std::size_t BackendProber::backends_answering() const {
    const auto snapshot = runtime_.snapshot.get();
    std::size_t answering = 0;
    for (const auto& endpoint : snapshot->config->backend.addresses) {
        const auto it = last_ok_.find(endpoint.text());
        if (it != last_ok_.end() && it->second) {
            ++answering;
        }
    }
    return answering;
}

// Called from inside the probe's callbacks: it is destroyed on a later loop turn.
void BackendProber::finished(Probe* probe) {
    const auto it =
        std::find_if(running_.begin(), running_.end(),
                     [probe](const std::unique_ptr<Probe>& p) { return p.get() == probe; });
    if (it == running_.end()) {
        return;
    }
    retired_.push_back(std::move(*it));
    running_.erase(it);
    if (!reaper_.active()) {
        reaper_.start(0, [this] { retired_.clear(); });
    }
}

void BackendProber::report(const config::Endpoint& endpoint, bool ok, const std::string& detail,
                           bool changed) {
    const std::string name = endpoint.text();
    const auto previous = last_ok_.find(name);
    const bool news = changed || previous == last_ok_.end() || previous->second != ok;
    last_ok_[name] = ok;
    const auto common = runtime_.backends.common();
    const std::string advertised = common ? smtp::describe(*common) : "conservative (none known)";
    const auto level = !ok    ? ops::LogLevel::warn
                       : news ? ops::LogLevel::info
                              : ops::LogLevel::debug;
    ops::log(level, "backend.probe",
             {{"backend", name},
              {"result", ok ? "ok" : "failed"},
              {ok ? "capabilities" : "reason", detail},
              {"common", advertised},
              {"healthy", runtime_.backends.healthy(endpoint)}});
}

}  // namespace portcullis::proxy
