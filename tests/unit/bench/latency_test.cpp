#include <catch2/catch.hpp>

#include <cstdint>

#include "bench/latency.hpp"

using namespace portcullis::bench;

TEST_CASE("latency buckets: exact below 1.024 ms, then within 1/64", "[bench]") {
    for (std::uint64_t us = 0; us < 1024; ++us) {
        REQUIRE(LatencyHistogram::bucket_upper_us(LatencyHistogram::bucket_of(us)) == us);
    }
    std::size_t previous = LatencyHistogram::bucket_of(1023);
    for (std::uint64_t us = 1024; us < (std::uint64_t{1} << 30); us = us * 21 / 20 + 1) {
        const std::size_t b = LatencyHistogram::bucket_of(us);
        const std::uint64_t upper = LatencyHistogram::bucket_upper_us(b);
        INFO("us " << us);
        REQUIRE(b >= previous);
        REQUIRE(upper >= us);
        REQUIRE(static_cast<double>(upper - us) <= static_cast<double>(us) / 64.0);
        previous = b;
    }
}

TEST_CASE("latency percentiles are nearest-rank", "[bench]") {
    LatencyHistogram h;
    REQUIRE(h.summary().count == 0);
    for (std::uint64_t us = 1; us <= 100; ++us) {
        h.add(us * 1000);  // 1..100 us
    }
    REQUIRE(h.percentile_us(0.50) == 50);
    REQUIRE(h.percentile_us(0.99) == 99);
    REQUIRE(h.percentile_us(1.0) == 100);
    const LatencySummary s = h.summary();
    REQUIRE(s.count == 100);
    REQUIRE(s.max_ms == Approx(0.1));
    REQUIRE(s.mean_ms == Approx(0.0505));

    LatencyHistogram slow;
    for (int i = 0; i < 98; ++i) {
        slow.add(500'000);  // 0.5 ms
    }
    slow.add(42'000'000);  // 42 ms
    slow.add(45'000'000);  // 45 ms
    REQUIRE(slow.summary().p50_ms == Approx(0.5));
    REQUIRE(slow.summary().p99_ms >= 42.0);
    REQUIRE(slow.summary().p99_ms <= 42.0 * (1 + 1.0 / 64));
    REQUIRE(slow.summary().max_ms == Approx(45.0));
}
