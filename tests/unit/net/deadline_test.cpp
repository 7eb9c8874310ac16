// net::Deadline: a lazily re-armed timeout fires at the deadline of its last arm(),
// never before it, once; disarm() keeps it from firing.
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <optional>

#include "net/stream.hpp"

namespace {

using portcullis::net::Deadline;
using portcullis::net::Timer;

struct Loop {
    uv_loop_t loop{};
    Loop() { REQUIRE(uv_loop_init(&loop) == 0); }
    ~Loop() {
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    std::uint64_t now() {
        uv_update_time(&loop);
        return uv_now(&loop);
    }
};

}  // namespace

TEST_CASE("a deadline pushed back fires at the last deadline, once") {
    Loop l;
    const std::uint64_t start = l.now();
    std::optional<std::uint64_t> fired_at;
    int fired = 0;
    {
        Deadline deadline(&l.loop);
        Timer push(&l.loop);
        auto on_fire = [&] {
            ++fired;
            fired_at = l.now();
        };
        deadline.arm(30, on_fire);
        // At 20 ms, push it to 20 + 40 = 60 ms: the 30 ms timer fires early and waits on.
        push.start(20, [&] { deadline.arm(40, on_fire); });
        uv_run(&l.loop, UV_RUN_DEFAULT);
        CHECK_FALSE(deadline.armed());
    }
    REQUIRE(fired == 1);
    CHECK(*fired_at - start >= 60);
    CHECK(*fired_at - start < 200);
}

TEST_CASE("a deadline brought forward fires at the earlier time") {
    Loop l;
    const std::uint64_t start = l.now();
    std::optional<std::uint64_t> fired_at;
    {
        Deadline deadline(&l.loop);
        deadline.arm(10'000, [&] { FAIL("the first arm fired"); });
        deadline.arm(20, [&] { fired_at = l.now(); });
        // The 10 s timer was moved, not kept: the loop ends after the 20 ms one.
        uv_run(&l.loop, UV_RUN_DEFAULT);
    }
    REQUIRE(fired_at);
    CHECK(*fired_at - start >= 20);
    CHECK(*fired_at - start < 200);
}

TEST_CASE("a disarmed deadline does not fire, and can be armed again") {
    Loop l;
    int first = 0;
    int second = 0;
    {
        Deadline deadline(&l.loop);
        deadline.arm(20, [&] { ++first; });
        deadline.disarm();
        CHECK_FALSE(deadline.armed());
        Timer rearm(&l.loop);
        rearm.start(40, [&] { deadline.arm(10, [&] { ++second; }); });
        uv_run(&l.loop, UV_RUN_DEFAULT);
    }
    CHECK(first == 0);
    CHECK(second == 1);
}

TEST_CASE("the callback may destroy its deadline") {
    Loop l;
    auto deadline = std::make_unique<Deadline>(&l.loop);
    bool fired = false;
    deadline->arm(5, [&] {
        fired = true;
        deadline.reset();
    });
    uv_run(&l.loop, UV_RUN_DEFAULT);
    CHECK(fired);
    CHECK_FALSE(deadline);
}

TEST_CASE("a disarmed deadline does not keep its loop running") {
    Loop l;
    const std::uint64_t start = l.now();
    {
        Deadline deadline(&l.loop);
        deadline.arm(5'000, [] { FAIL("fired"); });
        deadline.disarm();                // lazily: the 5 s timer stays due, but unreferenced
        uv_run(&l.loop, UV_RUN_DEFAULT);  // returns: nothing referenced is active
    }
    CHECK(l.now() - start < 1'000);
}
