#include "bench/latency.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace portcullis::bench {

std::size_t LatencyHistogram::bucket_of(std::uint64_t us) {
    if (us < kExact) {
        return static_cast<std::size_t>(us);
    }
    const unsigned exponent = std::min<unsigned>(std::bit_width(us) - 1, kMaxExponent);
    if (exponent == kMaxExponent && us >= (std::uint64_t{1} << (kMaxExponent + 1))) {
        return kBuckets - 1;
    }
    const unsigned shift = exponent - kSubBits;
    const std::uint64_t mantissa = (us >> shift) - (std::uint64_t{1} << kSubBits);
    return kExact + (exponent - 10) * (std::size_t{1} << kSubBits) +
           static_cast<std::size_t>(mantissa);
}

std::uint64_t LatencyHistogram::bucket_upper_us(std::size_t bucket) {
    if (bucket < kExact) {
        return bucket;
    }
    const std::size_t above = bucket - kExact;
    const unsigned exponent = 10 + static_cast<unsigned>(above >> kSubBits);
    const std::uint64_t mantissa = above & ((std::size_t{1} << kSubBits) - 1);
    const unsigned shift = exponent - kSubBits;
    return (((std::uint64_t{1} << kSubBits) + mantissa + 1) << shift) - 1;
}

void LatencyHistogram::add(std::uint64_t ns) {
    ++counts_[bucket_of(ns / 1000)];
    ++count_;
    max_ns_ = std::max(max_ns_, ns);
    sum_ns_ += static_cast<long double>(ns);
}

std::uint64_t LatencyHistogram::percentile_us(double p) const {
    if (count_ == 0) {
        return 0;
    }
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(count_))));
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < counts_.size(); ++b) {
        seen += counts_[b];
        if (seen >= rank) {
            return std::min(bucket_upper_us(b), max_ns_ / 1000);
        }
    }
    return max_ns_ / 1000;
}

LatencySummary LatencyHistogram::summary() const {
    LatencySummary s;
    s.count = count_;
    if (count_ == 0) {
        return s;
    }
    s.p50_ms = static_cast<double>(percentile_us(0.50)) / 1e3;
    s.p90_ms = static_cast<double>(percentile_us(0.90)) / 1e3;
    s.p99_ms = static_cast<double>(percentile_us(0.99)) / 1e3;
    s.max_ms = static_cast<double>(max_ns_) / 1e6;
    s.mean_ms = static_cast<double>(sum_ns_ / static_cast<long double>(count_)) / 1e6;
    return s;
}

}  // namespace portcullis::bench
