#include "auth/hash_pool.hpp"

#include <algorithm>
#include <thread>

namespace portcullis::auth {

namespace {

constexpr unsigned kMaxDefaultThreads = 8;
constexpr int kHashingNice = 10;

// One CPU is left to the event loops: hashing that fills every CPU delays replies to
// clients by whole scheduler ticks, however low its priority.
unsigned default_threads(unsigned threads) {
    if (threads != 0) {
        return threads;
    }
    const unsigned cpus = std::thread::hardware_concurrency();
    return std::clamp(cpus > 1 ? cpus - 1 : 1u, 1u, kMaxDefaultThreads);
}

}  // namespace

HashPool::HashPool(unsigned threads) : util::WorkPool(default_threads(threads), kHashingNice) {}

}  // namespace portcullis::auth
