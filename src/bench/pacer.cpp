#include "bench/pacer.hpp"

#include <algorithm>
#include <cmath>

#include "bench/client.hpp"

namespace portcullis::bench {

Pacer::Pacer(uv_loop_t* loop, double per_second)
    : per_second_(per_second), start_ns_(uv_hrtime()), timer_(loop) {}

std::uint64_t Pacer::due_tokens(std::uint64_t now_ns) const {
    return static_cast<std::uint64_t>(static_cast<double>(now_ns - start_ns_) * per_second_ / 1e9);
}

bool Pacer::acquire(Client& client) {
    if (stopped_) {
        return false;
    }
    if (waiting_.empty()) {
        const std::uint64_t due = due_tokens(uv_hrtime());
        // Tokens nobody asked for do not pile up: at most one is ever waiting.
        granted_ = std::max(granted_, due > 0 ? due - 1 : 0);
        if (granted_ < due) {
            ++granted_;
            return true;
        }
    }
    waiting_.push_back(&client);
    schedule();
    return false;
}

void Pacer::release() {
    const std::uint64_t due = due_tokens(uv_hrtime());
    while (!stopped_ && !waiting_.empty() && granted_ < due) {
        Client* next = waiting_.front();
        waiting_.pop_front();
        if (next->wants_message()) {
            ++granted_;
            next->start_message();
        }
    }
    schedule();
}

void Pacer::schedule() {
    if (stopped_ || waiting_.empty() || timer_.active()) {
        return;
    }
    // libuv timers have millisecond resolution: wake at the next token's millisecond.
    const double next_ns = static_cast<double>(granted_ + 1) * 1e9 / per_second_;
    const double now_ns = static_cast<double>(uv_hrtime() - start_ns_);
    const auto wait_ms =
        static_cast<std::uint64_t>(std::max(1.0, std::ceil((next_ns - now_ns) / 1e6)));
    timer_.start(wait_ms, [this] { release(); });
}

void Pacer::stop() {
    stopped_ = true;
    waiting_.clear();
    timer_.stop();
}

}  // namespace portcullis::bench
