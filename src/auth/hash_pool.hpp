// The Argon2id thread pool: a few threads of their own, at a lower CPU priority than
// the event loops, with a bounded number of jobs running or waiting.
//
// Argon2id does not run on libuv's shared thread pool because there it would queue in
// front of the backend's DNS lookups; a login storm must not delay mail that is
// already authenticated. When `max_pending` jobs are running or waiting, submit()
// refuses at once and the session answers 454 4.7.0: the queue never grows without
// bound, and a client never waits longer than max_pending / threads verifications.
// Urgent jobs (logins from addresses known to be good) pass the others in the queue.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace portcullis::auth {

class HashPool {
  public:
    // `threads` 0 = one per CPU but one, at least 1 and at most 8 (each running Argon2id
    // holds its memory).
    explicit HashPool(unsigned threads);
    // Runs every job already accepted, then joins the threads.
    ~HashPool();
    HashPool(const HashPool&) = delete;
    HashPool& operator=(const HashPool&) = delete;

    // Thread-safe. Queues `job` unless `max_pending` jobs are running or waiting. An
    // `urgent` job runs before every waiting job that is not.
    bool submit(std::function<void()> job, std::size_t max_pending, bool urgent = false);
    std::size_t pending() const;
    unsigned threads() const { return static_cast<unsigned>(threads_.size()); }

  private:
    void run();
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> urgent_;
    std::deque<std::function<void()>> queue_;
    std::size_t running_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace portcullis::auth
