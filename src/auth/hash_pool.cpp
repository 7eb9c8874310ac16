#include "auth/hash_pool.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

namespace portcullis::auth {

namespace {

constexpr unsigned kMaxDefaultThreads = 8;
// Hashing yields the CPU to the event loops (Linux applies nice per thread).
constexpr int kHashingNice = 10;

}  // namespace

HashPool::HashPool(unsigned threads) {
    if (threads == 0) {
        // One CPU is left to the event loops: hashing that fills every CPU delays
        // replies to clients by whole scheduler ticks, however low its priority.
        const unsigned cpus = std::thread::hardware_concurrency();
        threads = std::clamp(cpus > 1 ? cpus - 1 : 1u, 1u, kMaxDefaultThreads);
    }
    for (unsigned i = 0; i < threads; ++i) {
        threads_.emplace_back([this] { run(); });
    }
}

HashPool::~HashPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) {
        t.join();
    }
}

bool HashPool::submit(std::function<void()> job, std::size_t max_pending, bool urgent) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || running_ + urgent_.size() + queue_.size() >= max_pending) {
            return false;
        }
        (urgent ? urgent_ : queue_).push_back(std::move(job));
    }
    wake_.notify_one();
    return true;
}

std::size_t HashPool::pending() const {
    std::lock_guard lock(mutex_);
    return running_ + urgent_.size() + queue_.size();
}

void HashPool::run() {
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kHashingNice);
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !urgent_.empty() || !queue_.empty(); });
        auto& from = !urgent_.empty() ? urgent_ : queue_;
        if (from.empty()) {
            return;  // stopping, and every accepted job has run
        }
        auto job = std::move(from.front());
        from.pop_front();
        ++running_;
        lock.unlock();
        job();
        job = nullptr;  // destroy captures outside the lock
        lock.lock();
        --running_;
    }
}

}  // namespace portcullis::auth
