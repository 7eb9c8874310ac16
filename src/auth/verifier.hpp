// Argon2id verification on the HashPool, never on an event loop; the result comes
// back on the loop that asked.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "auth/hash_pool.hpp"
#include "util/secure.hpp"

namespace portcullis::auth {

// One verification in flight. Destroying it before the result arrives detaches it:
// the work still finishes on the pool, but `done` is not called.
class PendingVerification {
  public:
    using Done = std::function<void(bool matched)>;
    // Null when the pool already has `max_pending` jobs (the caller answers 454).
    // Call on `loop`'s thread; `done` runs there.
    static std::unique_ptr<PendingVerification> start(HashPool& pool, std::size_t max_pending,
                                                      uv_loop_t* loop, std::string phc_hash,
                                                      SecureString password, Done done);
    ~PendingVerification();
    PendingVerification(const PendingVerification&) = delete;
    PendingVerification& operator=(const PendingVerification&) = delete;

    struct Job;
    explicit PendingVerification(Job* job) : job_(job) {}  // use start()

  private:
    Job* job_;  // owned by its uv_async_t until the result is delivered; nullptr after
};

}  // namespace portcullis::auth
