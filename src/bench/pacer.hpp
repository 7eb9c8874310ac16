// Rate cap for --rate: hands out permissions to start a message at a steady pace over
// all clients (a token bucket holding at most one token), so latency can be measured
// at a chosen load instead of at saturation.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>

#include "net/stream.hpp"

namespace portcullis::bench {

class Client;

class Pacer {
  public:
    Pacer(uv_loop_t* loop, double per_second);
    Pacer(const Pacer&) = delete;
    Pacer& operator=(const Pacer&) = delete;

    // True when `client` may start now; otherwise it is queued and started later.
    bool acquire(Client& client);
    void stop();

  private:
    std::uint64_t due_tokens(std::uint64_t now_ns) const;
    void release();
    void schedule();

    double per_second_;
    std::uint64_t start_ns_;
    std::uint64_t granted_ = 0;
    std::deque<Client*> waiting_;
    net::Timer timer_;
    bool stopped_ = false;
};

}  // namespace portcullis::bench
