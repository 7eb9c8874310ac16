#include <catch2/catch.hpp>

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "auth/hash_pool.hpp"
#include "auth/password.hpp"
#include "auth/verifier.hpp"
#include "../util/gate.hpp"

#include <memory>
#include <vector>

using namespace portcullis;
using portcullis::testing::Gate;

TEST_CASE("the pool takes at most max_pending jobs running or waiting", "[auth][hashpool]") {
    Gate gate;
    std::atomic<int> ran{0};
    {
        auth::HashPool pool(2);
        CHECK(pool.threads() == 2);
        auto job = [&] {
            gate.wait();
            ++ran;
        };
        CHECK(pool.submit(job, 4));
        CHECK(pool.submit(job, 4));
        gate.wait_for_waiters(2);  // both threads busy
        CHECK(pool.submit(job, 4));
        CHECK(pool.submit(job, 4));  // two waiting
        CHECK(pool.pending() == 4);
        CHECK_FALSE(pool.submit(job, 4));  // refused at once, not queued
        CHECK(pool.pending() == 4);
        gate.open();
    }  // the destructor runs what was accepted, then joins
    CHECK(ran.load() == 4);
}

TEST_CASE("urgent jobs pass the waiting ones", "[auth][hashpool]") {
    Gate gate;
    std::vector<char> order;  // written by the pool's only thread, read after the join
    {
        auth::HashPool pool(1);
        REQUIRE(pool.submit([&] { gate.wait(); }, 10));
        gate.wait_for_waiters(1);
        CHECK(pool.submit([&] { order.push_back('a'); }, 10));
        CHECK(pool.submit([&] { order.push_back('b'); }, 10));
        CHECK(pool.submit([&] { order.push_back('X'); }, 10, true));
        CHECK(pool.submit([&] { order.push_back('Y'); }, 10, true));
        CHECK(pool.pending() == 5);
        CHECK_FALSE(pool.submit([] {}, 5, true));  // the cap holds for urgent jobs too
        gate.open();
    }
    CHECK(order == std::vector<char>{'X', 'Y', 'a', 'b'});
}

TEST_CASE("a verification reports back on its loop; a full pool refuses at once",
          "[auth][hashpool]") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    const config::PasswordHashing cheap{1, 8192};
    const std::string hash = auth::hash_password("correct horse battery", cheap);
    Gate gate;
    {
        auth::Verifier verifier(1);
        REQUIRE(verifier.pool().submit([&] { gate.wait(); }, 2));  // holds the only thread
        gate.wait_for_waiters(1);
        int calls = 0;
        bool result = false;
        auto ok = verifier.start(&loop, 2, hash, SecureString("correct horse battery"), nullptr,
                                 false, [&](bool matched) {
                                     ++calls;
                                     result = matched;
                                 });
        REQUIRE(ok);
        CHECK(verifier.pending() == 2);
        auto refused = verifier.start(&loop, 2, hash, SecureString("wrong"), nullptr, false,
                                      [&](bool) { ++calls; });
        CHECK_FALSE(refused);
        gate.open();
        uv_run(&loop, UV_RUN_DEFAULT);  // until the verification's async handle closes
        CHECK(calls == 1);
        CHECK(result);
        auto wrong = verifier.start(&loop, 2, hash, SecureString("wrong"), nullptr, false,
                                    [&](bool matched) {
                                        ++calls;
                                        result = matched;
                                    });
        REQUIRE(wrong);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(calls == 2);
        CHECK_FALSE(result);
        // a detached verification still runs but never calls back
        auto detached = verifier.start(&loop, 2, hash, SecureString("correct horse battery"),
                                       nullptr, false, [&](bool) { ++calls; });
        REQUIRE(detached);
        detached.reset();
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(calls == 2);
    }
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("overlapping verifications with the same key share one run", "[auth][hashpool]") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    const config::PasswordHashing cheap{1, 8192};
    const std::string hash = auth::hash_password("correct horse battery", cheap);
    Gate gate;
    {
        auth::Verifier verifier(1);
        REQUIRE(verifier.pool().submit([&] { gate.wait(); }, 2));
        gate.wait_for_waiters(1);
        const auth::Verifier::Key same{1, 2, 3};
        const auth::Verifier::Key other{9};
        std::vector<bool> results;
        std::vector<std::unique_ptr<auth::PendingVerification>> waits;
        for (int i = 0; i < 5; ++i) {
            waits.push_back(verifier.start(&loop, 2, hash, SecureString("correct horse battery"),
                                           &same, false, [&](bool m) { results.push_back(m); }));
            REQUIRE(waits.back());
        }
        CHECK(verifier.pending() == 2);  // the gate and one Argon2id run for all five
        // the pool is full: a different key is refused, the same key still joins
        CHECK_FALSE(verifier.start(&loop, 2, hash, SecureString("x"), &other, false, [](bool) {}));
        waits.push_back(verifier.start(&loop, 2, hash, SecureString("ignored: joins"), &same, false,
                                       [&](bool m) { results.push_back(m); }));
        CHECK(waits.back());
        // one of them leaves; the others still get the answer
        waits[2].reset();
        gate.open();
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(results == std::vector<bool>{true, true, true, true, true});
        // once finished, the key starts a new run
        bool again = false;
        auto next = verifier.start(&loop, 1, hash, SecureString("wrong"), &same, false,
                                   [&](bool m) { again = !m; });
        REQUIRE(next);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(again);
    }
    CHECK(uv_loop_close(&loop) == 0);
}
