#include "proxy/runtime.hpp"

#include <atomic>

#include "tls/context.hpp"

namespace portcullis::proxy {

std::shared_ptr<const Snapshot> load_snapshot(const std::filesystem::path& config_file,
                                              std::shared_ptr<tls::TicketKeys> ticket_keys) {
    static std::atomic<std::uint64_t> generations{0};
    auto snapshot = std::make_shared<Snapshot>();
    snapshot->generation = ++generations;
    snapshot->config = config::load_config(config_file);
    snapshot->users = auth::load_users(snapshot->config->auth.users_file);
    bool any_tls = false;
    for (const auto& listener : snapshot->config->listeners) {
        any_tls = any_tls || listener.tls != config::ListenerTls::none;
    }
    if (any_tls) {
        snapshot->tls = std::shared_ptr<SSL_CTX>(
            tls::make_server_context(snapshot->config->tls, std::move(ticket_keys)).release(),
            SSL_CTX_free);
    }
    if (snapshot->config->backend.tls != config::BackendTls::none) {
        snapshot->backend_tls = std::shared_ptr<SSL_CTX>(
            tls::make_backend_context(snapshot->config->backend).release(), SSL_CTX_free);
    }
    return snapshot;
}

auth::Verifier& AbuseControl::verifier(unsigned threads) {
    std::call_once(verifier_started_,
                   [&] { verifier_ = std::make_unique<auth::Verifier>(threads); });
    return *verifier_;
}

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& other) noexcept {
    if (this != &other) {
        release();
        limiter_ = std::exchange(other.limiter_, nullptr);
        ip_ = std::move(other.ip_);
    }
    return *this;
}

void ConnectionSlot::release() {
    if (limiter_ != nullptr) {
        limiter_->release(ip_);
        limiter_ = nullptr;
    }
}

ConnectionSlot ConnectionLimiter::acquire(const std::string& ip, std::uint64_t max_total,
                                          std::uint64_t max_per_ip, Refusal& refusal) {
    std::lock_guard lock(mutex_);
    if (total_ >= max_total) {
        refusal = Refusal::total;
        return {};
    }
    auto& count = per_ip_[ip];
    if (count >= max_per_ip) {
        refusal = Refusal::per_ip;
        if (count == 0) {
            per_ip_.erase(ip);
        }
        return {};
    }
    ++count;
    ++total_;
    refusal = Refusal::none;
    return ConnectionSlot(this, ip);
}

void ConnectionLimiter::release(const std::string& ip) {
    std::lock_guard lock(mutex_);
    --total_;
    auto it = per_ip_.find(ip);
    if (it != per_ip_.end() && --it->second == 0) {
        per_ip_.erase(it);
    }
}

std::uint64_t ConnectionLimiter::current() const {
    std::lock_guard lock(mutex_);
    return total_;
}

}  // namespace portcullis::proxy
