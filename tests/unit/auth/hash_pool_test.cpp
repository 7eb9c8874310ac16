#include <catch2/catch.hpp>

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "auth/hash_pool.hpp"
#include "auth/password.hpp"
#include "auth/verifier.hpp"

using namespace portcullis;

namespace {

// Holds pool threads until opened, so tests can fill the pool deterministically.
class Gate {
  public:
    void wait() {
        std::unique_lock lock(mutex_);
        ++waiting_;
        changed_.notify_all();
        changed_.wait(lock, [this] { return open_; });
    }
    void wait_for_waiters(int n) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return waiting_ >= n; });
    }
    void open() {
        std::lock_guard lock(mutex_);
        open_ = true;
        changed_.notify_all();
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    int waiting_ = 0;
    bool open_ = false;
};

}  // namespace

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

TEST_CASE("a verification reports back on its loop; a full pool refuses at once",
          "[auth][hashpool]") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    const config::PasswordHashing cheap{1, 8192};
    const std::string hash = auth::hash_password("correct horse battery", cheap);
    Gate gate;
    {
        auth::HashPool pool(1);
        REQUIRE(pool.submit([&] { gate.wait(); }, 2));  // occupies the only thread
        gate.wait_for_waiters(1);
        int calls = 0;
        bool result = false;
        auto ok = auth::PendingVerification::start(pool, 2, &loop, hash,
                                                   SecureString("correct horse battery"),
                                                   [&](bool matched) {
                                                       ++calls;
                                                       result = matched;
                                                   });
        REQUIRE(ok);
        auto refused = auth::PendingVerification::start(pool, 2, &loop, hash,
                                                        SecureString("wrong"),
                                                        [&](bool) { ++calls; });
        CHECK_FALSE(refused);
        gate.open();
        uv_run(&loop, UV_RUN_DEFAULT);  // until the verification's async handle closes
        CHECK(calls == 1);
        CHECK(result);
        auto wrong = auth::PendingVerification::start(pool, 2, &loop, hash, SecureString("wrong"),
                                                      [&](bool matched) {
                                                          ++calls;
                                                          result = matched;
                                                      });
        REQUIRE(wrong);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(calls == 2);
        CHECK_FALSE(result);
        // a detached verification still runs but never calls back
        auto detached = auth::PendingVerification::start(
            pool, 2, &loop, hash, SecureString("correct horse battery"), [&](bool) { ++calls; });
        REQUIRE(detached);
        detached.reset();
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(calls == 2);
    }
    CHECK(uv_loop_close(&loop) == 0);
}
