// Argon2id verification on the HashPool, never on an event loop; the result comes
// back on the loop that asked.
//
// Verifications that overlap and carry the same key (a keyed digest of the snapshot,
// user name, stored hash and password: see CredentialCache::digest) share one Argon2id
// run: when fifty connections of one application log in at once, after a restart or a
// reload, the hash is computed once and they all get its answer. Only the first of them
// takes a place among max_pending; the others join it.
#pragma once

#include <uv.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "auth/hash_pool.hpp"
#include "util/secure.hpp"

namespace portcullis::auth {

class PendingVerification;

class Verifier {
  public:
    using Key = std::array<unsigned char, 32>;
    using Done = std::function<void(bool matched)>;

    // `threads` for the HashPool (0 = one per CPU but one, at least 1, at most 8).
    explicit Verifier(unsigned threads);
    Verifier(const Verifier&) = delete;
    Verifier& operator=(const Verifier&) = delete;

    // Starts verifying `password` against `phc_hash`; `done` runs on `loop`'s thread
    // (call this there too). With a `key`, joins a verification of the same key that
    // is already running. Null when `max_pending` verifications are running or queued
    // (the caller answers 454 4.7.0). An `urgent` one passes the others in the queue.
    std::unique_ptr<PendingVerification> start(uv_loop_t* loop, std::size_t max_pending,
                                               std::string phc_hash, SecureString password,
                                               const Key* key, bool urgent, Done done);

    std::size_t pending() const { return pool_.pending(); }
    unsigned threads() const { return pool_.threads(); }
    HashPool& pool() { return pool_; }

  private:
    struct Flight;
    void run(Flight* flight);

    std::mutex mutex_;
    std::map<Key, Flight*> flights_;  // keyed verifications running or queued
    HashPool pool_;                   // last: destroyed first, while flights_ still exists
};

// One verification in flight for one session. Destroying it before the result arrives
// detaches it: the work still finishes, but `done` is not called.
class PendingVerification {
  public:
    ~PendingVerification();
    PendingVerification(const PendingVerification&) = delete;
    PendingVerification& operator=(const PendingVerification&) = delete;

    struct Job;
    explicit PendingVerification(Job* job) : job_(job) {}  // made by Verifier::start()

  private:
    Job* job_;  // owned by its uv_async_t until the result is delivered; nullptr after
};

}  // namespace portcullis::auth
