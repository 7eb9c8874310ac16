// The verified-credential cache ([auth] cache_ttl): a busy application that logs in
// for every message pays Argon2id once per cache_ttl instead of every time.
//
// Nothing reversible is kept: an entry is a keyed BLAKE2b digest (libsodium
// crypto_generichash, key random per process) over the snapshot generation, the user
// name, the user's stored hash and the password, plus its expiry, stored under the
// user name. A login hits only with the same password against the same stored hash in
// the same snapshot, so a password change (the hash differs) or a reload (a new
// generation) misses and goes back to Argon2id. Entries expire cache_ttl after the
// Argon2id verification that made them; hits do not extend them.
#pragma once

#include <sodium.h>

#include <array>
#include <cstdint>
#include <string_view>

#include "config/units.hpp"
#include "util/clock.hpp"
#include "util/sharded_table.hpp"

namespace portcullis::auth {

class CredentialCache {
  public:
    using Digest = std::array<unsigned char, crypto_generichash_BYTES>;

    explicit CredentialCache(const util::Clock& clock, std::size_t max_entries = 1u << 16);
    ~CredentialCache();
    CredentialCache(const CredentialCache&) = delete;
    CredentialCache& operator=(const CredentialCache&) = delete;

    Digest digest(std::uint64_t generation, std::string_view user, std::string_view stored_hash,
                  std::string_view password) const;
    // True when `digest` was remembered for `user` and has not expired.
    bool contains(std::string_view user, const Digest& digest) const;
    void remember(std::string_view user, const Digest& digest, config::Duration ttl);
    std::size_t size() const { return table_.size(); }

  private:
    struct Entry {
        Digest digest{};
        util::Clock::time_point expires{};
        bool idle(util::Clock::time_point now) const { return now >= expires; }
    };
    const util::Clock& clock_;
    std::array<unsigned char, crypto_generichash_KEYBYTES> key_{};
    util::ShardedTable<Entry> table_;
};

}  // namespace portcullis::auth
