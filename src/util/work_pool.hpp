// A few threads of their own at a lower CPU priority than the event loops, with a
// bounded number of jobs running or waiting: the Argon2id pool (auth::HashPool) and the
// TLS signing pool (tls/signing.hpp) are each one of these.
//
// When `max_pending` jobs are running or waiting, submit() refuses at once: the queue
// never grows without bound. Urgent jobs pass the others in the queue.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace portcullis::util {

class WorkPool {
  public:
    // `threads` at least 1; each runs at `nice` (Linux applies nice per thread), so a
    // busy pool yields the CPU to the event loops.
    WorkPool(unsigned threads, int nice);
    // Runs every job already accepted, then joins the threads.
    ~WorkPool();
    WorkPool(const WorkPool&) = delete;
    WorkPool& operator=(const WorkPool&) = delete;

    // Thread-safe. Queues `job` unless `max_pending` jobs are running or waiting. An
    // `urgent` job runs before every waiting job that is not.
    bool submit(std::function<void()> job, std::size_t max_pending, bool urgent = false);
    std::size_t pending() const;
    unsigned threads() const { return static_cast<unsigned>(threads_.size()); }

  private:
    void run(int nice);
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> urgent_;
    std::deque<std::function<void()>> queue_;
    std::size_t running_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace portcullis::util
