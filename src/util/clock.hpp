// The one clock of the abuse controls (rate limits, failure windows, lockouts, the
// credential cache). Production code uses steady_clock(); unit tests drive a
// ManualClock, so no test ever sleeps to make time pass.
#pragma once

#include <atomic>
#include <chrono>

namespace portcullis::util {

class Clock {
  public:
    using duration = std::chrono::steady_clock::duration;
    using time_point = std::chrono::steady_clock::time_point;
    virtual ~Clock() = default;
    virtual time_point now() const = 0;
};

// std::chrono::steady_clock: monotonic, unaffected by wall-clock changes.
class SteadyClock final : public Clock {
  public:
    time_point now() const override { return std::chrono::steady_clock::now(); }
};

// The process-wide steady clock.
inline const Clock& steady_clock() {
    static const SteadyClock clock;
    return clock;
}

// A clock that moves only when told to; safe to read from several threads.
class ManualClock final : public Clock {
  public:
    // Starts well away from the epoch so that "now - window" never underflows.
    ManualClock()
        : ticks_(std::chrono::duration_cast<duration>(std::chrono::hours(24 * 365)).count()) {}
    time_point now() const override { return time_point(duration(ticks_.load())); }
    template <class Rep, class Period>
    void advance(std::chrono::duration<Rep, Period> d) {
        ticks_.fetch_add(std::chrono::duration_cast<duration>(d).count());
    }

  private:
    std::atomic<duration::rep> ticks_;
};

}  // namespace portcullis::util
