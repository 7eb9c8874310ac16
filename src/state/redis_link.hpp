// One asynchronous Redis connection on one event loop (hiredis's async API with its
// libuv adapter). Never blocks the loop: host names are resolved with uv_getaddrinfo,
// every call has a deadline, and after a failure a call fails at once
// while it waits to reconnect, so the caller can fall back without delay.
//
// Health: a connection counts as up only after PING (and AUTH, with a password)
// answered within the deadline, because a stopped Redis may still accept TCP
// connections in the kernel. A call that misses its deadline fails alone; a connection
// that answers nothing for max(1 s, 10 timeouts) is dropped, and reconnection backs off
// from 100 ms to 5 s.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "net/stream.hpp"
#include "state/scripts.hpp"

struct redisAsyncContext;
struct redisReply;

namespace portcullis::state {

struct Answer {
    bool ok = false;
    std::vector<std::int64_t> values;  // integers of the reply (an array's elements)
    std::string error;                 // when !ok: Redis's error or why there is no reply
};

class RedisLink {
  public:
    using Done = std::function<void(Answer)>;
    // Called on the loop thread when the link goes down (with why) or comes up ("").
    using HealthChange = std::function<void(bool up, std::string_view why)>;

    RedisLink(uv_loop_t* loop, config::StateConfig settings, HealthChange health);
    ~RedisLink();
    RedisLink(const RedisLink&) = delete;
    RedisLink& operator=(const RedisLink&) = delete;

    // Runs `call`; `done` gets the answer, or an error after the deadline, or at once
    // while the link waits to reconnect after a failure. `done` never runs inside
    // call() while the link is connected or connecting.
    void call(Call call, Done done);
    bool up() const { return up_; }
    // True when this link was made for the same server and password.
    bool serves(const config::StateConfig& settings) const;

  private:
    struct Pending {
        Call call;
        Done done;
        bool retried = false;   // NOSCRIPT: sent again with EVAL
        bool internal = false;  // AUTH/PING of the handshake: not failed back to anyone
    };

    void connect();
    void connect_to(const std::string& ip);
    void handshake();
    void send(std::uint64_t id, const Pending& pending);
    void on_reply(std::uint64_t id, redisReply* reply);
    void on_deadline();
    // Closes the connection, fails every pending call with `why`, schedules a reconnect.
    void drop(const std::string& why);
    void schedule_reconnect();

    static void on_connect(const redisAsyncContext* ctx, int status);
    static void on_disconnect(const redisAsyncContext* ctx, int status);
    static void on_command(redisAsyncContext* ctx, void* reply, void* privdata);

    uv_loop_t* loop_;
    config::StateConfig settings_;
    HealthChange health_;
    redisAsyncContext* ctx_ = nullptr;  // owned: freed with redisAsyncFree (or by hiredis
                                        // itself after a failed connect / disconnect)
    bool up_ = false;
    std::uint64_t next_id_ = 1;
    std::uint64_t handshake_id_ = 0;  // the PING that proves the connection
    std::unordered_map<std::uint64_t, Pending> pending_;
    std::deque<std::pair<std::uint64_t, std::uint64_t>> deadlines_;  // (id, uv_now ms)
    std::uint64_t silent_since_ = 0;  // uv_now of the first missed deadline since an answer
    bool in_deadline_ = false;
    std::uint64_t backoff_ms_ = 100;
    net::Timer deadline_timer_;
    net::Timer reconnect_timer_;
    struct Resolve;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace portcullis::state
