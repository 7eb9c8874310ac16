#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "util/clock.hpp"
#include "util/sharded_table.hpp"

using namespace portcullis;
using namespace std::chrono_literals;

namespace {

struct Counter {
    int n = 0;
    util::Clock::time_point until{};
    bool idle(util::Clock::time_point now) const { return now >= until; }
};

}  // namespace

TEST_CASE("manual clock moves only when told", "[util][clock]") {
    util::ManualClock clock;
    const auto t0 = clock.now();
    CHECK(clock.now() == t0);
    clock.advance(1500ms);
    CHECK(clock.now() - t0 == 1500ms);
    CHECK(t0.time_since_epoch() > 24h);  // "now - window" never goes below the epoch
}

TEST_CASE("sharded table: update creates, inspect does not", "[util][sharded]") {
    util::ManualClock clock;
    util::ShardedTable<Counter> table(1024);
    CHECK(table.inspect("a", [](const Counter* c) { return c == nullptr; }));
    CHECK(table.size() == 0);
    table.update("a", clock.now(), [](Counter& c) { ++c.n; });
    const int n = table.update("a", clock.now(), [](Counter& c) { return ++c.n; });
    CHECK(n == 2);
    CHECK(table.inspect("a", [](const Counter* c) { return c->n; }) == 2);
    CHECK(table.size() == 1);
    table.clear();
    CHECK(table.size() == 0);
}

TEST_CASE("sharded table stays within its capacity, dropping idle entries first",
          "[util][sharded]") {
    util::ManualClock clock;
    util::ShardedTable<Counter> table(160);  // 10 per shard
    CHECK(table.capacity() == 160);
    // keys that stay busy for an hour; fewer than one shard holds, wherever they land
    constexpr int kBusy = 9;
    for (int i = 0; i < kBusy; ++i) {
        table.update("busy" + std::to_string(i), clock.now(),
                     [&](Counter& c) { c.until = clock.now() + 1h; });
    }
    clock.advance(1s);
    // a flood of keys that are idle at once
    for (int i = 0; i < 10000; ++i) {
        table.update("idle" + std::to_string(i), clock.now(), [](Counter&) {});
        REQUIRE(table.size() <= table.capacity());
    }
    // the busy entries survived the flood: only idle ones were dropped
    int busy = 0;
    for (int i = 0; i < kBusy; ++i) {
        busy += table.inspect("busy" + std::to_string(i),
                              [](const Counter* c) { return c != nullptr ? 1 : 0; });
    }
    CHECK(busy == kBusy);
}

TEST_CASE("when nothing is idle, busy entries still make room (the stalest first)",
          "[util][sharded]") {
    util::ManualClock clock;
    util::ShardedTable<Counter> table(16);  // 1 per shard
    const auto forever = clock.now() + 24h;
    table.update("old", clock.now(), [&](Counter& c) { c.until = forever; });
    clock.advance(1s);
    for (int i = 0; i < 1000; ++i) {
        table.update("k" + std::to_string(i), clock.now(), [&](Counter& c) { c.until = forever; });
        clock.advance(1ms);
    }
    CHECK(table.size() <= 16);
    CHECK(table.inspect("old", [](const Counter* c) { return c == nullptr; }));
}

TEST_CASE("sharded table is safe across threads", "[util][sharded]") {
    util::ManualClock clock;
    util::ShardedTable<Counter> table(4096);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                table.update("key" + std::to_string(i % 100), clock.now(),
                             [](Counter& c) { ++c.n; });
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    int total = 0;
    for (int i = 0; i < 100; ++i) {
        total += table.inspect("key" + std::to_string(i), [](const Counter* c) { return c->n; });
    }
    CHECK(total == 8000);
}
