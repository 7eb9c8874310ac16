#include "proxy/backends.hpp"

#include <algorithm>

namespace portcullis::proxy {

void BackendState::configure(const std::vector<config::Endpoint>& endpoints) {
    std::lock_guard lock(mutex_);
    configured_.clear();
    for (const auto& endpoint : endpoints) {
        configured_.push_back(endpoint.text());
    }
    std::erase_if(entries_, [this](const auto& item) {
        return std::find(configured_.begin(), configured_.end(), item.first) == configured_.end();
    });
    recompute();
}

bool BackendState::is_down(const Entry& entry, util::Clock::time_point now) const {
    return entry.down && now < entry.down_until;
}

std::vector<config::Endpoint> BackendState::order(
    const std::vector<config::Endpoint>& configured) const {
    const auto now = clock_.now();
    std::vector<config::Endpoint> up;
    std::vector<std::pair<util::Clock::time_point, config::Endpoint>> down;
    {
        std::lock_guard lock(mutex_);
        for (const auto& endpoint : configured) {
            const auto it = entries_.find(endpoint.text());
            if (it != entries_.end() && is_down(it->second, now)) {
                down.emplace_back(it->second.down_until, endpoint);
            } else {
                up.push_back(endpoint);
            }
        }
    }
    std::stable_sort(down.begin(), down.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& item : down) {
        up.push_back(std::move(item.second));
    }
    return up;
}

void BackendState::mark_failed(const config::Endpoint& endpoint, config::Duration hold) {
    std::lock_guard lock(mutex_);
    Entry& entry = entries_[endpoint.text()];
    entry.down = true;
    entry.down_until = clock_.now() + std::chrono::duration_cast<util::Clock::duration>(hold);
}

void BackendState::mark_healthy(const config::Endpoint& endpoint) {
    std::lock_guard lock(mutex_);
    entries_[endpoint.text()].down = false;
}

bool BackendState::healthy(const config::Endpoint& endpoint) const {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(endpoint.text());
    return it == entries_.end() || !is_down(it->second, clock_.now());
}

bool BackendState::record(const config::Endpoint& endpoint, const smtp::Extensions& extensions) {
    std::lock_guard lock(mutex_);
    Entry& entry = entries_[endpoint.text()];
    if (entry.extensions == extensions) {
        return false;
    }
    entry.extensions = extensions;
    const auto before = common_;
    recompute();
    return !before || !common_ || !(*before == *common_);
}

std::shared_ptr<const smtp::Extensions> BackendState::common() const {
    std::lock_guard lock(mutex_);
    return common_;
}

void BackendState::recompute() {
    std::vector<smtp::Extensions> known;
    for (const auto& [name, entry] : entries_) {
        const bool counted =
            configured_.empty() ||
            std::find(configured_.begin(), configured_.end(), name) != configured_.end();
        if (counted && entry.extensions) {
            known.push_back(*entry.extensions);
        }
    }
    common_ = known.empty()
                  ? nullptr
                  : std::make_shared<const smtp::Extensions>(smtp::common_extensions(known));
}

ClientOffer client_offer(const smtp::Extensions* common, std::uint64_t own_size_limit) {
    ClientOffer offer;
    offer.parameters.size_limit = own_size_limit;
    if (common == nullptr) {
        return offer;  // the conservative set: nothing beyond what the gateway does itself
    }
    if (common->size && common->max_size != 0) {
        offer.parameters.size_limit = std::min(own_size_limit, common->max_size);
    }
    offer.parameters.forward_size = common->size;
    offer.parameters.eight_bit_mime = common->eight_bit_mime;
    offer.parameters.smtputf8 = common->smtputf8;
    offer.parameters.dsn = common->dsn;
    offer.enhanced_status_codes = common->enhanced_status_codes;
    return offer;
}

}  // namespace portcullis::proxy
