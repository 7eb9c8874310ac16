#include "auth/credential_cache.hpp"

namespace portcullis::auth {

namespace {

// Length-prefixed, so that ("ab", "c") and ("a", "bc") never hash alike.
void absorb(crypto_generichash_state& state, std::string_view part) {
    const std::uint64_t length = part.size();
    std::array<unsigned char, 8> prefix{};
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        prefix[i] = static_cast<unsigned char>(length >> (8 * i));
    }
    crypto_generichash_update(&state, prefix.data(), prefix.size());
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(part.data()),
                              part.size());
}

}  // namespace

CredentialCache::CredentialCache(const util::Clock& clock, std::size_t max_entries)
    : clock_(clock), table_(max_entries) {
    crypto_generichash_keygen(key_.data());
}

CredentialCache::~CredentialCache() {
    sodium_memzero(key_.data(), key_.size());
}

CredentialCache::Digest CredentialCache::digest(std::uint64_t generation, std::string_view user,
                                                std::string_view stored_hash,
                                                std::string_view password) const {
    crypto_generichash_state state;
    crypto_generichash_init(&state, key_.data(), key_.size(), crypto_generichash_BYTES);
    std::array<unsigned char, 8> gen{};
    for (std::size_t i = 0; i < gen.size(); ++i) {
        gen[i] = static_cast<unsigned char>(generation >> (8 * i));
    }
    crypto_generichash_update(&state, gen.data(), gen.size());
    absorb(state, user);
    absorb(state, stored_hash);
    absorb(state, password);
    Digest out{};
    crypto_generichash_final(&state, out.data(), out.size());
    sodium_memzero(&state, sizeof state);
    return out;
}

bool CredentialCache::contains(std::string_view user, const Digest& digest) const {
    const auto now = clock_.now();
    return table_.inspect(user, [&](const Entry* e) {
        return e != nullptr && now < e->expires &&
               sodium_memcmp(e->digest.data(), digest.data(), digest.size()) == 0;
    });
}

void CredentialCache::remember(std::string_view user, const Digest& digest, config::Duration ttl) {
    if (ttl.count() <= 0) {
        return;
    }
    const auto now = clock_.now();
    table_.update(user, now, [&](Entry& e) {
        e.digest = digest;
        e.expires = now + std::chrono::duration_cast<util::Clock::duration>(ttl);
    });
}

}  // namespace portcullis::auth
