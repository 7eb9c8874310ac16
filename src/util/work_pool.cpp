#include "util/work_pool.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

namespace portcullis::util {

WorkPool::WorkPool(unsigned threads, int nice) {
    for (unsigned i = 0; i < std::max(threads, 1u); ++i) {
        threads_.emplace_back([this, nice] { run(nice); });
    }
}

WorkPool::~WorkPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) {
        t.join();
    }
}

bool WorkPool::submit(std::function<void()> job, std::size_t max_pending, bool urgent) {
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

std::size_t WorkPool::pending() const {
    std::lock_guard lock(mutex_);
    return running_ + urgent_.size() + queue_.size();
}

void WorkPool::run(int nice) {
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
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

}  // namespace portcullis::util
