// net::LoopTurnMonitor: a turn's busy time counts the callbacks, not the poll's sleep.
#include <uv.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "net/stream.hpp"

namespace {

using portcullis::net::LoopTurnMonitor;
using portcullis::net::Timer;

void busy_wait(std::chrono::milliseconds how_long) {
    const auto until = std::chrono::steady_clock::now() + how_long;
    while (std::chrono::steady_clock::now() < until) {
    }
}

}  // namespace

TEST_CASE("a loop turn is as long as its callbacks, without the time the poll slept") {
    uv_loop_t loop{};
    REQUIRE(uv_loop_init(&loop) == 0);
    REQUIRE(portcullis::net::enable_turn_metrics(&loop));
    std::vector<std::uint64_t> turns;
    {
        auto monitor = std::make_unique<LoopTurnMonitor>(
            &loop, [&turns](std::uint64_t busy_ns) { turns.push_back(busy_ns); });
        Timer work(&loop);
        Timer wake(&loop);
        Timer done(&loop);
        // One turn does 6 ms of work; the loop then sleeps about 40 ms in its poll
        // until a turn that does nothing.
        work.start(1, [] { busy_wait(std::chrono::milliseconds(6)); });
        wake.start(50, [] {});
        done.start(70, [&monitor] { monitor.reset(); });
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(uv_loop_close(&loop) == 0);

    REQUIRE(turns.size() >= 2);  // the working turn and the empty one after the sleep
    std::uint64_t longest = 0;
    std::uint64_t total = 0;
    for (const std::uint64_t t : turns) {
        longest = std::max(longest, t);
        total += t;
    }
    CHECK(longest >= 6'000'000);
    // Had the sleeping polls been counted, the turns would add up to about 50 ms.
    CHECK(total < 40'000'000);
}

TEST_CASE("without idle-time metrics a turn would include the poll's sleep") {
    uv_loop_t loop{};
    REQUIRE(uv_loop_init(&loop) == 0);
    // Without UV_METRICS_IDLE_TIME the idle time stays 0, so a turn's time includes the
    // poll's sleep: enable_turn_metrics is what makes the numbers mean busy time.
    std::vector<std::uint64_t> turns;
    {
        auto monitor = std::make_unique<LoopTurnMonitor>(
            &loop, [&turns](std::uint64_t busy_ns) { turns.push_back(busy_ns); });
        Timer wake(&loop);
        Timer done(&loop);
        wake.start(30, [] {});
        done.start(45, [&monitor] { monitor.reset(); });
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(uv_loop_close(&loop) == 0);
    REQUIRE(!turns.empty());
    std::uint64_t total = 0;
    for (const std::uint64_t t : turns) {
        total += t;
    }
    CHECK(total >= 25'000'000);
}
