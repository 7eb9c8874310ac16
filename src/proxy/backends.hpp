// Gateway-wide knowledge about the backends, shared by every worker and the prober:
// which backends are healthy (failover skips the others for a while) and which SMTP
// extensions each announced in its EHLO (the gateway advertises to clients only what
// the backends support). Thread-safe; one clock drives it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "smtp/extensions.hpp"
#include "util/clock.hpp"

namespace portcullis::proxy {

class BackendState {
  public:
    explicit BackendState(const util::Clock& clock) : clock_(clock) {}
    BackendState(const BackendState&) = delete;
    BackendState& operator=(const BackendState&) = delete;

    // The configured backends (at start and on reload); what is known about others is
    // forgotten.
    void configure(const std::vector<config::Endpoint>& endpoints);

    // `configured` in the order to try: the healthy ones in configured order, then the
    // unhealthy ones, soonest to recover first (so that a session still gets a chance
    // when every backend is marked down).
    std::vector<config::Endpoint> order(const std::vector<config::Endpoint>& configured) const;

    // A failed connection (connect error, timeout, non-220 greeting): skip the backend
    // for `hold`. A backend that answered is healthy again.
    void mark_failed(const config::Endpoint& endpoint, config::Duration hold);
    void mark_healthy(const config::Endpoint& endpoint);
    bool healthy(const config::Endpoint& endpoint) const;

    // What `endpoint` announced in its latest EHLO. True when that changed what the
    // backends have in common.
    bool record(const config::Endpoint& endpoint, const smtp::Extensions& extensions);

    // What every configured backend that has answered supports; null until one answered
    // (then the gateway offers only the conservative set).
    std::shared_ptr<const smtp::Extensions> common() const;

  private:
    struct Entry {
        std::optional<smtp::Extensions> extensions;
        bool down = false;
        util::Clock::time_point down_until{};
    };
    bool is_down(const Entry& entry, util::Clock::time_point now) const;
    void recompute();  // mutex_ held

    const util::Clock& clock_;
    mutable std::mutex mutex_;
    std::vector<std::string> configured_;  // Endpoint::text() of each configured backend
    std::unordered_map<std::string, Entry> entries_;
    std::shared_ptr<const smtp::Extensions> common_;
};

// What the gateway offers a client, given what the backends have in common (`common`,
// null = nothing known yet) and its own message size limit: SIZE is the smaller of the
// two limits; 8BITMIME, SMTPUTF8, DSN and ENHANCEDSTATUSCODES only when the backends
// have them.
struct ClientOffer {
    smtp::Offer parameters;
    bool enhanced_status_codes = false;
};
ClientOffer client_offer(const smtp::Extensions* common, std::uint64_t own_size_limit);

}  // namespace portcullis::proxy
