#include "tls/ticket_keys.hpp"

#include <openssl/rand.h>

#include <algorithm>

namespace portcullis::tls {
namespace {

TicketKey make_key(util::Clock::time_point now) {
    TicketKey key;
    RAND_bytes(key.name.data(), key.name.size());
    RAND_bytes(key.aes_key.data(), key.aes_key.size());
    RAND_bytes(key.hmac_key.data(), key.hmac_key.size());
    key.created = now;
    return key;
}

}  // namespace

TicketKeys::TicketKeys(const util::Clock& clock, util::Clock::duration rotation)
    : clock_(clock), rotation_(rotation) {}

void TicketKeys::rotate_if_due(util::Clock::time_point now) {
    if (current_ && now - current_->created < rotation_) {
        return;
    }
    // A current key more than two intervals old opens nothing any more either.
    if (current_ && now - current_->created < 2 * rotation_) {
        previous_ = current_;
    } else {
        previous_.reset();
    }
    current_ = make_key(now);
}

TicketKey TicketKeys::sealing_key() {
    std::lock_guard lock(mutex_);
    rotate_if_due(clock_.now());
    return *current_;
}

std::optional<TicketKeys::Found> TicketKeys::opening_key(std::span<const std::uint8_t> name) {
    std::lock_guard lock(mutex_);
    const auto now = clock_.now();
    rotate_if_due(now);
    const auto matches = [&](const std::optional<TicketKey>& key) {
        return key && std::equal(name.begin(), name.end(), key->name.begin(), key->name.end());
    };
    if (matches(current_)) {
        return Found{*current_, false};
    }
    // Rotation happens when a key is used, so a quiet spell can leave an old key here.
    if (matches(previous_) && now - previous_->created < 2 * rotation_) {
        return Found{*previous_, true};
    }
    return std::nullopt;
}

void TicketKeys::set_rotation(util::Clock::duration rotation) {
    std::lock_guard lock(mutex_);
    rotation_ = rotation;
}

util::Clock::duration TicketKeys::rotation() const {
    std::lock_guard lock(mutex_);
    return rotation_;
}

}  // namespace portcullis::tls
