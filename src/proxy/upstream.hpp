// proxy/: the session (client-side state machine) and the upstream (backend) side.
// Upstream: one connection to the backend MTA. It reads the greeting, says EHLO (HELO
// for an old server), learns the capabilities, then sends commands in order and hands
// back exactly one parsed reply per command. It never passes bytes through raw.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "net/stream.hpp"
#include "smtp/backend_reply.hpp"

namespace portcullis::proxy {

class UpstreamEvents {
  public:
    virtual ~UpstreamEvents() = default;
    // The reply to the oldest command still waiting. May destroy the Upstream.
    virtual void on_upstream_reply(const smtp::BackendReply& reply) = 0;
    // The backend is gone or misbehaved; no more replies will come. May destroy it.
    virtual void on_upstream_failed(std::string_view reason) = 0;
    // The write queue drained (used to resume reading DATA from the client).
    virtual void on_upstream_drained() = 0;
};

struct BackendCapabilities {
    bool pipelining = false;
    bool size = false;
    std::uint64_t max_size = 0;  // 0 = no limit announced
    bool eight_bit_mime = false;
    bool enhanced_status_codes = false;
    bool esmtp = false;  // answered EHLO (otherwise HELO only)
};

class Upstream final : private net::StreamHandler {
  public:
    Upstream(uv_loop_t* loop, const config::BackendConfig& backend, std::string ehlo_name,
             UpstreamEvents& events);
    ~Upstream() override;
    Upstream(const Upstream&) = delete;
    Upstream& operator=(const Upstream&) = delete;

    // Resolves, connects, greets. Commands sent before it is ready wait in order.
    void start();

    // Sends one command line (CRLF included) that expects one reply, which arrives
    // through on_upstream_reply in order. `timeout` bounds the wait for that reply.
    void send_command(std::string line, config::Duration timeout);

    // Sends message content (already re-encoded); no reply is expected for it.
    void send_data(std::string_view bytes);

    std::size_t queued_bytes() const;
    bool ready() const { return phase_ == Phase::ready; }
    const BackendCapabilities& capabilities() const { return caps_; }
    std::string_view endpoint() const { return endpoint_text_; }

  private:
    enum class Phase { idle, resolving, connecting, greeting, ehlo, helo, ready, failed };
    struct PendingCommand {
        std::string line;
        config::Duration timeout;
    };
    struct Resolve;

    void connect_to(const sockaddr* address);
    void on_connected(int status);
    void on_stream_data(std::string_view data) override;
    void on_stream_end(int status) override;
    void on_stream_drained() override;
    void handle_reply(const smtp::BackendReply& reply);
    void handle_handshake_reply(const smtp::BackendReply& reply);
    void learn_capabilities(const smtp::BackendReply& reply);
    void pump();
    void write_command(PendingCommand command);
    void arm_reply_timer();
    void fail(std::string reason);

    uv_loop_t* loop_;
    const config::BackendConfig& backend_;
    std::string ehlo_name_;
    std::string endpoint_text_;
    UpstreamEvents& events_;
    std::unique_ptr<net::TcpStream> stream_;
    net::Timer timer_;
    Resolve* resolve_ = nullptr;  // owned by libuv until its callback runs
    Phase phase_ = Phase::idle;
    BackendCapabilities caps_;
    smtp::ReplyParser parser_;
    std::string input_;
    std::deque<PendingCommand> unsent_;            // waiting for ready / pipelining
    std::deque<config::Duration> awaiting_reply_;  // written, reply not yet seen
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace portcullis::proxy
