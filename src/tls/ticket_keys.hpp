// Session-ticket keys shared by every worker and kept across reloads, so a client that
// resumes lands on any worker, before or after a SIGHUP. Each key seals new tickets for
// one rotation interval; the key before it still opens tickets (which are then renewed)
// for one more interval, so no ticket outlives two intervals.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>

#include "util/clock.hpp"

namespace portcullis::tls {

struct TicketKey {
    std::array<std::uint8_t, 16> name{};      // public, sent in the ticket
    std::array<std::uint8_t, 16> aes_key{};   // AES-128-CBC
    std::array<std::uint8_t, 32> hmac_key{};  // HMAC-SHA256
    util::Clock::time_point created{};
};

class TicketKeys {
  public:
    TicketKeys(const util::Clock& clock, util::Clock::duration rotation);
    TicketKeys(const TicketKeys&) = delete;
    TicketKeys& operator=(const TicketKeys&) = delete;

    // The key new tickets are sealed with; a fresh one once the current one is a
    // rotation interval old.
    TicketKey sealing_key();

    struct Found {
        TicketKey key;
        bool renew;  // sealed with the previous key: issue a new ticket
    };
    // The key named `name`, if it may still open tickets.
    std::optional<Found> opening_key(std::span<const std::uint8_t> name);

    // Takes effect for the next key (a reload may change the interval).
    void set_rotation(util::Clock::duration rotation);
    util::Clock::duration rotation() const;

  private:
    void rotate_if_due(util::Clock::time_point now);

    const util::Clock& clock_;
    mutable std::mutex mutex_;
    util::Clock::duration rotation_;
    std::optional<TicketKey> current_;
    std::optional<TicketKey> previous_;
};

}  // namespace portcullis::tls
