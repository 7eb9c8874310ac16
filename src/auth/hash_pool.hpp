// The Argon2id thread pool: a util::WorkPool of its own, at nice 10, with a bounded
// number of jobs running or waiting.
//
// Argon2id does not run on libuv's shared thread pool because there it would queue in
// front of the backend's DNS lookups; a login storm must not delay mail that is
// already authenticated. When `max_pending` jobs are running or waiting, submit()
// refuses at once and the session answers 454 4.7.0: a client never waits longer than
// max_pending / threads verifications. Urgent jobs (logins from addresses known to be
// good) pass the others in the queue.
#pragma once

#include "util/work_pool.hpp"

namespace portcullis::auth {

class HashPool : public util::WorkPool {
  public:
    // `threads` 0 = one per CPU but one, at least 1 and at most 8 (each running Argon2id
    // holds its memory).
    explicit HashPool(unsigned threads);
};

}  // namespace portcullis::auth
