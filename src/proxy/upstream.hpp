// proxy/: the session (client-side state machine) and the upstream (backend) side.
// Upstream: one connection to the backend MTA. It connects (failing over to the next
// backend on a connect failure or a non-220 greeting), sends a PROXY header when
// configured, reads the greeting, says EHLO (HELO for an old server), optionally
// STARTTLS and EHLO again, optionally XCLIENT with the client's identity and EHLO
// again, learns the capabilities, then sends commands in order and hands back exactly
// one parsed reply per command. It never passes bytes through raw.
//
// Commands go out in lock-step, one outstanding at a time, except for a group a client
// pipelined that ends with DATA (MAIL, RCPT..., DATA, queued between hold_commands()
// and release_commands(true)): with [backend] pipelining on and PIPELINING offered, it
// goes out in one write and its replies are matched in order. Either way a reply is
// only ever taken as the answer to a command that is waiting: any byte that arrives
// while no reply is awaited, and a read that holds more replies than are awaited (or
// bytes after the last awaited one), mean the backend is out of step (an injected or
// duplicated reply) and close it before any reply of that read is handed on. The
// session adds that each reply must fit its command (354 only to DATA; DATA only 354
// or an error; 354 only with an accepted recipient) and holds a group's replies until
// its DATA is answered, so a reply sequence shifted by an extra reply is caught at the
// DATA before anything of the group is relayed or any message content is sent.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "net/stream.hpp"
#include "smtp/backend_reply.hpp"
#include "smtp/extensions.hpp"
#include "tls/session.hpp"

namespace portcullis::proxy {

class BackendState;

using BackendCapabilities = smtp::Extensions;

// Why an upstream gave up; decides what the client is told.
enum class UpstreamFailure {
    unavailable,  // no backend reachable, or it failed or went away (421 4.4.1 / 451 4.4.2)
    identity,  // the backend cannot be told who the client is: no XCLIENT, or refused (421 4.3.0)
    tls,       // STARTTLS not offered or refused, handshake or certificate failed (421 4.3.0)
    protocol,  // the backend broke the dialog: a reply nobody waits for, bytes left over
               // after the awaited reply, a malformed reply (421 4.4.2, and the client goes)
};

class UpstreamEvents {
  public:
    virtual ~UpstreamEvents() = default;
    // The handshake is done (greeting, EHLO, STARTTLS, XCLIENT): commands go out now.
    // May destroy the Upstream.
    virtual void on_upstream_ready(const BackendCapabilities&) {}
    // The reply to the oldest command still waiting. May destroy the Upstream.
    virtual void on_upstream_reply(const smtp::BackendReply& reply) = 0;
    // The backend is gone or misbehaved; no more replies will come. May destroy it.
    virtual void on_upstream_failed(UpstreamFailure failure, std::string_view reason) = 0;
    // The write queue drained (used to resume reading DATA from the client).
    virtual void on_upstream_drained() = 0;
};

// What the backend is told about the client (XCLIENT, PROXY header).
struct ClientFacts {
    std::string ip;  // the real client (from the socket or a PROXY header)
    std::uint16_t port = 0;
    std::string local_ip;  // the address the client connected to
    std::uint16_t local_port = 0;
    std::string helo;   // the client's HELO/EHLO argument
    bool esmtp = true;  // the client said EHLO
    std::string login;  // the authenticated user
};

struct UpstreamOptions {
    SSL_CTX* tls = nullptr;         // client context for backend STARTTLS; null when tls = "none"
    BackendState* state = nullptr;  // health and capabilities to read and update; may be null
    // A capability probe: no XCLIENT (there is no client), and a PROXY header carries the
    // gateway's own addresses.
    bool probe = false;
    // Backends to try, in order; empty = backend.addresses, healthy ones first.
    std::vector<config::Endpoint> endpoints;
    // The client session's id, carried by every log line of this connection ("" for a
    // probe, which belongs to no session).
    std::string session;
};

class Upstream final : private net::StreamHandler {
  public:
    Upstream(uv_loop_t* loop, const config::BackendConfig& backend, std::string ehlo_name,
             ClientFacts client, UpstreamOptions options, UpstreamEvents& events);
    ~Upstream() override;
    Upstream(const Upstream&) = delete;
    Upstream& operator=(const Upstream&) = delete;

    // Resolves, connects, greets. Commands sent before it is ready wait in order.
    void start();

    // Sends one command line (CRLF included) that expects one reply, which arrives
    // through on_upstream_reply in order. `timeout` bounds the wait for that reply.
    void send_command(std::string line, config::Duration timeout);

    // Sends message content (already re-encoded); no reply is expected for it. Written
    // (or encrypted) at once: the caller's buffer is copied only for what the socket
    // cannot take now.
    void send_data(std::string_view bytes);

    // While held, commands wait in order. On release they go out together in one write
    // when `together` (a pipelined group ending with DATA) and pipelining() is true,
    // else in lock-step.
    void hold_commands();
    void release_commands(bool together);
    // Commands may be outstanding together: the backend offers PIPELINING and
    // [backend] pipelining is on.
    bool pipelining() const;

    std::size_t queued_bytes() const;
    bool ready() const { return phase_ == Phase::ready; }
    const BackendCapabilities& capabilities() const { return caps_; }
    // The backend of the current (or last) attempt, "host:port".
    std::string_view endpoint() const { return endpoint_text_; }

  private:
    enum class Phase {
        idle,
        resolving,
        connecting,
        greeting,
        ehlo,
        helo,
        starttls,
        tls_handshake,
        xclient,
        ready,
        failed
    };
    struct PendingCommand {
        std::string line;
        config::Duration timeout;
    };
    struct Resolve;

    // connection attempts and failover
    void connect_next();
    void reset_connection();
    void attempt_failed(std::string reason);
    void connect_to(const sockaddr* address);
    void on_connected(int status);
    void send_proxy_header();

    // input
    void on_stream_data(std::string_view data) override;
    void on_stream_end(int status) override;
    void on_stream_drained() override;
    void consume_plaintext(std::string_view data);
    smtp::ReplyParser::Result parse_next(std::size_t& offset);
    void consume_replies();
    void consume_handshake_replies();
    void handle_reply(const smtp::BackendReply& reply);

    // handshake
    void handle_handshake_reply(const smtp::BackendReply& reply);
    void send_handshake(std::string line);
    void after_ehlo();
    void start_xclient();
    void start_tls();
    void on_tls_established();
    void become_ready();
    std::string helo_name() const;

    // commands
    void pump();
    void send_unsent(std::size_t count);
    void write_out(std::string_view plain);
    void arm_reply_timer();
    void fail(UpstreamFailure failure, std::string reason);

    uv_loop_t* loop_;
    const config::BackendConfig& backend_;
    std::string ehlo_name_;
    ClientFacts client_;
    UpstreamOptions options_;
    UpstreamEvents& events_;
    std::vector<config::Endpoint> candidates_;
    std::size_t attempt_ = 0;  // index of the next candidate
    config::Endpoint current_;
    std::string endpoint_text_;
    std::unique_ptr<net::TcpStream> stream_;
    std::unique_ptr<tls::TlsSession> tls_;
    net::Deadline timer_;         // connect and reply timeouts; re-armed per command: lazy
    Resolve* resolve_ = nullptr;  // owned by libuv until its callback runs
    Phase phase_ = Phase::idle;
    BackendCapabilities caps_;
    bool tls_done_ = false;
    bool xclient_done_ = false;
    bool discard_input_ = false;             // drop what is buffered (after STARTTLS's 220)
    std::deque<std::string> xclient_lines_;  // XCLIENT commands not yet sent
    smtp::ReplyParser parser_;
    std::string input_;
    std::deque<PendingCommand> unsent_;            // waiting for ready / pipelining
    bool holding_ = false;                         // between hold_commands() and release_commands()
    std::deque<config::Duration> awaiting_reply_;  // written, reply not yet seen
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace portcullis::proxy
