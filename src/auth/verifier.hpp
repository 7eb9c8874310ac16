// Argon2id verification on the libuv thread pool, never on an event loop.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "util/secure.hpp"

namespace portcullis::auth {

// One verification in flight. Destroying it before the result arrives detaches it:
// the work still finishes on the pool, but `done` is not called.
class PendingVerification {
  public:
    using Done = std::function<void(bool matched)>;
    static std::unique_ptr<PendingVerification> start(uv_loop_t* loop, std::string phc_hash,
                                                      SecureString password, Done done);
    ~PendingVerification();
    PendingVerification(const PendingVerification&) = delete;
    PendingVerification& operator=(const PendingVerification&) = delete;

    struct Job;
    explicit PendingVerification(Job* job) : job_(job) {}  // use start()

  private:
    Job* job_;  // owned by libuv until its after-work callback; nullptr after
};

}  // namespace portcullis::auth
