#include "state/redis_link.hpp"

#include <arpa/inet.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace portcullis::state {

namespace {

constexpr std::uint64_t kMaxBackoffMs = 5000;
// Connect + AUTH + PING get at least this long: the per-call deadline is for calls.
constexpr std::uint64_t kMinHandshakeMs = 1000;

std::uint64_t ms(config::Duration d) {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(d).count()));
}

bool numeric_ip(const std::string& host) {
    std::array<unsigned char, 16> buf{};
    return inet_pton(AF_INET, host.c_str(), buf.data()) == 1 ||
           inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

Answer to_answer(const redisReply* reply) {
    Answer answer;
    if (reply == nullptr) {
        answer.error = "connection lost";
        return answer;
    }
    switch (reply->type) {
        case REDIS_REPLY_ERROR:
            answer.error = std::string(reply->str, reply->len);
            return answer;
        case REDIS_REPLY_INTEGER:
            answer.values.push_back(reply->integer);
            break;
        case REDIS_REPLY_ARRAY:
            for (std::size_t i = 0; i < reply->elements; ++i) {
                const redisReply* e = reply->element[i];
                answer.values.push_back(e != nullptr && e->type == REDIS_REPLY_INTEGER ? e->integer
                                                                                       : 0);
            }
            break;
        default:  // status ("OK", "PONG"), nil, string: no integers to pass on
            break;
    }
    answer.ok = true;
    return answer;
}

}  // namespace

// A host name lookup in flight; it outlives the link if the link goes first.
struct RedisLink::Resolve {
    uv_getaddrinfo_t req{};
    std::weak_ptr<bool> alive;
    RedisLink* link = nullptr;
};

RedisLink::RedisLink(uv_loop_t* loop, config::StateConfig settings, HealthChange health)
    : loop_(loop),
      settings_(std::move(settings)),
      health_(std::move(health)),
      deadline_timer_(loop),
      reconnect_timer_(loop) {
    connect();
}

RedisLink::~RedisLink() {
    *alive_ = false;
    if (ctx_ != nullptr) {
        redisAsyncContext* ctx = std::exchange(ctx_, nullptr);
        ctx->data = nullptr;  // the callbacks hiredis runs while freeing find no link
        redisAsyncFree(ctx);
    }
}

bool RedisLink::serves(const config::StateConfig& settings) const {
    return settings.address == settings_.address && settings.password == settings_.password;
}

void RedisLink::connect() {
    if (!settings_.unix_socket.empty()) {
        ctx_ = redisAsyncConnectUnix(settings_.unix_socket.c_str());
        handshake();
        return;
    }
    if (numeric_ip(settings_.host)) {
        connect_to(settings_.host);
        return;
    }
    // hiredis would call the blocking getaddrinfo(); resolve on libuv's pool instead.
    auto resolve = std::make_unique<Resolve>();
    resolve->alive = alive_;
    resolve->link = this;
    resolve->req.data = resolve.get();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    const int rc = uv_getaddrinfo(
        loop_, &resolve->req,
        [](uv_getaddrinfo_t* req, int status, addrinfo* result) {
            std::unique_ptr<Resolve> self(static_cast<Resolve*>(req->data));
            std::string ip;
            if (status == 0 && result != nullptr) {
                std::array<char, INET6_ADDRSTRLEN> text{};
                const void* addr =
                    result->ai_family == AF_INET
                        ? static_cast<const void*>(
                              &reinterpret_cast<sockaddr_in*>(result->ai_addr)->sin_addr)
                        : static_cast<const void*>(
                              &reinterpret_cast<sockaddr_in6*>(result->ai_addr)->sin6_addr);
                inet_ntop(result->ai_family, addr, text.data(), text.size());
                ip = text.data();
            }
            uv_freeaddrinfo(result);
            if (self->alive.expired()) {
                return;
            }
            if (ip.empty()) {
                self->link->health_(false, "cannot resolve " + self->link->settings_.host + ": " +
                                               (status != 0 ? uv_strerror(status) : "no address"));
                self->link->schedule_reconnect();
                return;
            }
            self->link->connect_to(ip);
        },
        settings_.host.c_str(), nullptr, &hints);
    if (rc != 0) {
        health_(false, std::string("cannot resolve ") + settings_.host + ": " + uv_strerror(rc));
        schedule_reconnect();
        return;
    }
    resolve.release();  // owned by the callback from now on
}

void RedisLink::connect_to(const std::string& ip) {
    ctx_ = redisAsyncConnect(ip.c_str(), settings_.port);
    handshake();
}

// Attaches the new context to the loop, then AUTH (with a password) and PING; the link
// is up when PING answers.
void RedisLink::handshake() {
    if (ctx_ == nullptr) {
        drop("out of memory");
        return;
    }
    if (ctx_->err != 0) {
        const std::string why = ctx_->errstr;
        redisAsyncFree(std::exchange(ctx_, nullptr));
        drop(why);
        return;
    }
    ctx_->data = this;
    if (redisLibuvAttach(ctx_, loop_) != REDIS_OK) {
        redisAsyncFree(std::exchange(ctx_, nullptr));
        drop("cannot attach to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ctx_, &RedisLink::on_connect);
    redisAsyncSetDisconnectCallback(ctx_, &RedisLink::on_disconnect);
    if (!settings_.password.empty()) {
        const std::uint64_t id = next_id_++;
        pending_.emplace(id, Pending{Call{nullptr, {}, {"AUTH", settings_.password}},
                                     [this](Answer a) {
                                         if (!a.ok) {
                                             drop("AUTH refused: " + a.error);
                                         }
                                     },
                                     false, true});
        send(id, pending_.at(id));
        deadlines_.emplace_back(id,
                                uv_now(loop_) + std::max(kMinHandshakeMs, ms(settings_.timeout)));
    }
    handshake_id_ = next_id_++;
    pending_.emplace(handshake_id_, Pending{Call{nullptr, {}, {"PING"}},
                                            [this](Answer a) {
                                                if (!a.ok) {
                                                    drop("PING failed: " + a.error);
                                                    return;
                                                }
                                                up_ = true;
                                                backoff_ms_ = 100;
                                                health_(true, "");
                                            },
                                            false, true});
    send(handshake_id_, pending_.at(handshake_id_));
    deadlines_.emplace_back(handshake_id_,
                            uv_now(loop_) + std::max(kMinHandshakeMs, ms(settings_.timeout)));
    if (!deadline_timer_.active()) {
        on_deadline();  // arms the timer for the earliest deadline
    }
}

void RedisLink::call(Call call, Done done) {
    // While (re)connecting the call is queued behind AUTH and PING and has its normal
    // deadline; only while waiting to reconnect is it failed at once.
    if (ctx_ == nullptr) {
        done(Answer{false, {}, "not connected"});
        return;
    }
    const std::uint64_t id = next_id_++;
    auto [it, inserted] =
        pending_.emplace(id, Pending{std::move(call), std::move(done), false, false});
    deadlines_.emplace_back(id, uv_now(loop_) + ms(settings_.timeout));
    send(id, it->second);
    if (!deadline_timer_.active()) {
        on_deadline();
    }
}

void RedisLink::send(std::uint64_t id, const Pending& pending) {
    const std::vector<std::string> argv = eval_argv(pending.call, pending.retried);
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) {
        ptrs.push_back(a.data());
        lens.push_back(a.size());
    }
    // The id travels as the callback's private pointer; it is looked up, never
    // dereferenced, so a late reply for a call that timed out is simply dropped.
    void* token = reinterpret_cast<void*>(static_cast<std::uintptr_t>(id));
    // REDIS_ERR only while the context shuts down; its disconnect callback (or the
    // deadline) then fails the call.
    (void)redisAsyncCommandArgv(ctx_, &RedisLink::on_command, token, static_cast<int>(argv.size()),
                                ptrs.data(), lens.data());
}

void RedisLink::on_command(redisAsyncContext* ctx, void* reply, void* privdata) {
    auto* link = static_cast<RedisLink*>(ctx->data);
    if (link == nullptr || link->ctx_ != ctx) {
        return;
    }
    if (reply != nullptr && link->silent_since_ != 0) {
        link->silent_since_ = 0;  // any answer, even a late one, shows Redis is back
        link->health_(true, "");
    }
    link->on_reply(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(privdata)),
                   static_cast<redisReply*>(reply));
}

void RedisLink::on_reply(std::uint64_t id, redisReply* reply) {
    auto it = pending_.find(id);
    if (it == pending_.end()) {
        return;  // timed out already
    }
    Answer answer = to_answer(reply);
    if (!answer.ok && !it->second.retried && it->second.call.script != nullptr &&
        answer.error.starts_with("NOSCRIPT")) {
        it->second.retried = true;  // first use on this server: send the body once
        send(id, it->second);
        return;
    }
    Done done = std::move(it->second.done);
    pending_.erase(it);
    std::weak_ptr<bool> alive = alive_;
    done(std::move(answer));
    if (reply == nullptr && !alive.expired() && ctx_ != nullptr) {
        drop("connection lost");
    }
}

// A call past its deadline is answered with an error at once (its late reply is
// dropped) and the connection is kept: a Redis that is merely slow under load answers
// the next call. Only when nothing at all has come back for stuck_ms() is the
// connection dropped and re-made.
void RedisLink::on_deadline() {
    if (in_deadline_) {
        return;  // a callback below made a new call; the loop below re-arms the timer
    }
    in_deadline_ = true;
    std::weak_ptr<bool> alive = alive_;
    const std::uint64_t now = uv_now(loop_);
    const std::uint64_t stuck = std::max<std::uint64_t>(1000, 10 * ms(settings_.timeout));
    while (!deadlines_.empty()) {
        const auto [id, at] = deadlines_.front();
        auto it = pending_.find(id);
        if (it == pending_.end()) {
            deadlines_.pop_front();  // answered in time
            continue;
        }
        if (at > now) {
            break;
        }
        if (it->second.internal) {
            in_deadline_ = false;
            drop("no answer to AUTH/PING when connecting");
            return;
        }
        deadlines_.pop_front();
        Done done = std::move(it->second.done);
        pending_.erase(it);
        if (silent_since_ == 0) {
            silent_since_ = now;
            health_(false,
                    "no answer within timeout (" + std::to_string(ms(settings_.timeout)) + " ms)");
        }
        done(Answer{false, {}, "timeout"});
        if (alive.expired()) {
            return;
        }
    }
    in_deadline_ = false;
    if (silent_since_ != 0 && ctx_ != nullptr && now - silent_since_ >= stuck) {
        drop("no answer for " + std::to_string(now - silent_since_) + " ms");
        return;
    }
    std::uint64_t next = deadlines_.empty() ? 0 : deadlines_.front().second;
    if (silent_since_ != 0 && (next == 0 || silent_since_ + stuck < next)) {
        next = silent_since_ + stuck;
    }
    if (next != 0) {
        deadline_timer_.start(next > now ? next - now : 1, [this] { on_deadline(); });
    }
}

void RedisLink::drop(const std::string& why) {
    up_ = false;
    silent_since_ = 0;
    if (ctx_ != nullptr) {
        redisAsyncContext* ctx = std::exchange(ctx_, nullptr);
        ctx->data = nullptr;
        redisAsyncFree(ctx);  // inside a hiredis callback it is deferred by hiredis
    }
    deadline_timer_.stop();
    deadlines_.clear();
    auto failed = std::move(pending_);
    pending_.clear();
    std::weak_ptr<bool> alive = alive_;
    health_(false, why);
    for (auto& [id, pending] : failed) {
        if (alive.expired()) {
            return;
        }
        if (!pending.internal) {
            pending.done(Answer{false, {}, why});
        }
    }
    if (!alive.expired() && !reconnect_timer_.active()) {
        schedule_reconnect();
    }
}

void RedisLink::schedule_reconnect() {
    const std::uint64_t wait = backoff_ms_;
    backoff_ms_ = std::min(kMaxBackoffMs, backoff_ms_ * 2);
    reconnect_timer_.start(wait, [this] {
        if (ctx_ == nullptr) {
            connect();
        }
    });
}

void RedisLink::on_connect(const redisAsyncContext* ctx, int status) {
    auto* link = static_cast<RedisLink*>(ctx->data);
    if (link == nullptr || link->ctx_ != ctx || status == REDIS_OK) {
        return;  // connected: the PING sent in handshake() tells when it is usable
    }
    // hiredis frees the context after this callback.
    link->ctx_ = nullptr;
    link->drop(std::string("cannot connect: ") + ctx->errstr);
}

void RedisLink::on_disconnect(const redisAsyncContext* ctx, int /*status*/) {
    auto* link = static_cast<RedisLink*>(ctx->data);
    if (link == nullptr || link->ctx_ != ctx) {
        return;
    }
    // hiredis frees the context after this callback.
    link->ctx_ = nullptr;
    link->drop(ctx->errstr[0] != '\0' ? std::string("disconnected: ") + ctx->errstr
                                      : std::string("disconnected"));
}

}  // namespace portcullis::state
