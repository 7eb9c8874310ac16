// A bounded, thread-safe table of per-key state (rate-limit buckets, failure windows,
// lockouts) shared by every worker thread.
//
// Keys are spread over 16 shards, each with its own mutex, so worker threads rarely
// wait for each other. Keys are hashed with SipHash (libsodium crypto_shorthash) under
// a per-process random key, so nobody can choose user names or addresses that pile up
// in one bucket. Every shard holds at most max_entries / 16 entries: when a new key
// arrives at a full shard, entries whose state has run out (Value::idle(now)) are
// dropped first, then the least recently touched one, so memory stays bounded whatever
// a client sends.
#pragma once

#include <sodium.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "util/clock.hpp"

namespace portcullis::util {

// Value must be default-constructible and have `bool idle(Clock::time_point now) const`
// (true when forgetting it changes nothing: windows expired, no lockout running).
template <class Value>
class ShardedTable {
  public:
    static constexpr std::size_t kShards = 16;

    explicit ShardedTable(std::size_t max_entries)
        : per_shard_(max_entries / kShards > 0 ? max_entries / kShards : 1) {
        if (sodium_init() < 0) {
            std::abort();  // libsodium cannot work at all; nothing sensible to do
        }
        crypto_shorthash_keygen(key_.data());
    }
    ShardedTable(const ShardedTable&) = delete;
    ShardedTable& operator=(const ShardedTable&) = delete;

    // Runs fn(Value&) under the shard's lock, creating the entry (default value) when
    // absent; returns what fn returns. fn must not touch this table.
    template <class Fn>
    auto update(std::string_view key, Clock::time_point now, Fn&& fn) {
        const HashedKey hashed{key, hash(key)};
        Shard& shard = shards_[hashed.hash % kShards];
        std::lock_guard lock(shard.mutex);
        auto it = shard.map.find(hashed);
        if (it == shard.map.end()) {
            if (shard.map.size() >= per_shard_) {
                make_room(shard, now);
            }
            it = shard.map.emplace(std::string(key), Entry{}).first;
        }
        it->second.touched = now;
        return fn(it->second.value);
    }

    // Runs fn(const Value*) under the shard's lock; the pointer is null when the key
    // is absent. Does not create an entry.
    template <class Fn>
    auto inspect(std::string_view key, Fn&& fn) const {
        const HashedKey hashed{key, hash(key)};
        const Shard& shard = shards_[hashed.hash % kShards];
        std::lock_guard lock(shard.mutex);
        auto it = shard.map.find(hashed);
        return fn(it == shard.map.end() ? static_cast<const Value*>(nullptr) : &it->second.value);
    }

    void clear() {
        for (Shard& shard : shards_) {
            std::lock_guard lock(shard.mutex);
            shard.map.clear();
        }
    }

    std::size_t size() const {
        std::size_t n = 0;
        for (const Shard& shard : shards_) {
            std::lock_guard lock(shard.mutex);
            n += shard.map.size();
        }
        return n;
    }

    std::size_t capacity() const { return per_shard_ * kShards; }

  private:
    struct Entry {
        Value value{};
        Clock::time_point touched{};
    };
    // A key with its SipHash, computed once per lookup: it picks the shard, and the
    // map's lookup takes it as it is (no second hash, no std::string copy of the key).
    struct HashedKey {
        std::string_view text;
        std::uint64_t hash;
    };
    struct KeyHash {
        using is_transparent = void;
        const std::array<unsigned char, crypto_shorthash_KEYBYTES>* key;
        std::size_t operator()(const std::string& s) const {
            return static_cast<std::size_t>(siphash(*key, s) >> 8);  // low bits pick the shard
        }
        std::size_t operator()(const HashedKey& k) const {
            return static_cast<std::size_t>(k.hash >> 8);
        }
    };
    struct KeyEqual {
        using is_transparent = void;
        bool operator()(const std::string& a, const std::string& b) const { return a == b; }
        bool operator()(const HashedKey& a, const std::string& b) const { return a.text == b; }
        bool operator()(const std::string& a, const HashedKey& b) const { return a == b.text; }
    };
    struct Shard {
        explicit Shard(const std::array<unsigned char, crypto_shorthash_KEYBYTES>* key)
            : map(16, KeyHash{key}) {}
        mutable std::mutex mutex;
        std::unordered_map<std::string, Entry, KeyHash, KeyEqual> map;
    };

    static std::uint64_t siphash(const std::array<unsigned char, crypto_shorthash_KEYBYTES>& key,
                                 std::string_view text) {
        std::array<unsigned char, crypto_shorthash_BYTES> out{};
        crypto_shorthash(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                         text.size(), key.data());
        std::uint64_t v = 0;
        std::memcpy(&v, out.data(), sizeof v);
        return v;
    }
    std::uint64_t hash(std::string_view key) const { return siphash(key_, key); }

    // Drops idle entries; if none was idle, drops the least recently touched one.
    void make_room(Shard& shard, Clock::time_point now) {
        for (auto it = shard.map.begin(); it != shard.map.end();) {
            it = it->second.value.idle(now) ? shard.map.erase(it) : std::next(it);
        }
        if (shard.map.size() < per_shard_) {
            return;
        }
        auto oldest = shard.map.begin();
        for (auto it = shard.map.begin(); it != shard.map.end(); ++it) {
            if (it->second.touched < oldest->second.touched) {
                oldest = it;
            }
        }
        shard.map.erase(oldest);
    }

    template <std::size_t... I>
    static std::array<Shard, kShards> make_shards(
        const std::array<unsigned char, crypto_shorthash_KEYBYTES>* key,
        std::index_sequence<I...>) {
        return {{(static_cast<void>(I), Shard(key))...}};
    }

    std::size_t per_shard_;
    std::array<unsigned char, crypto_shorthash_KEYBYTES> key_{};
    std::array<Shard, kShards> shards_ = make_shards(&key_, std::make_index_sequence<kShards>{});
};

}  // namespace portcullis::util
