// Per-message latencies in a fixed-size log-linear histogram, so memory stays bounded
// however long a run is: exact to the microsecond below 1.024 ms, then 64 buckets per
// power of two (a bucket is at most 1/64 = 1.6 % wide). Percentiles are nearest-rank
// and report the bucket's upper bound (never below the true value); max and mean are
// exact.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace portcullis::bench {

struct LatencySummary {
    std::uint64_t count = 0;
    double p50_ms = 0;
    double p90_ms = 0;
    double p99_ms = 0;
    double max_ms = 0;
    double mean_ms = 0;
};

class LatencyHistogram {
  public:
    void add(std::uint64_t ns);
    LatencySummary summary() const;
    // Nearest-rank percentile in microseconds (0 < p <= 1); 0 when empty.
    std::uint64_t percentile_us(double p) const;

    static std::size_t bucket_of(std::uint64_t us);
    static std::uint64_t bucket_upper_us(std::size_t bucket);

  private:
    static constexpr std::size_t kExact = 1024;   // 1 us buckets below this many us
    static constexpr unsigned kSubBits = 6;       // 64 buckets per power of two above
    static constexpr unsigned kMaxExponent = 40;  // ~12.7 days; larger values are clamped
    static constexpr std::size_t kBuckets =
        kExact + (kMaxExponent - 10 + 1) * (std::size_t{1} << kSubBits);

    std::array<std::uint64_t, kBuckets> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t max_ns_ = 0;
    long double sum_ns_ = 0;
};

}  // namespace portcullis::bench
