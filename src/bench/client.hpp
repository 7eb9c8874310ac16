// One benchmark connection: connect, greeting, EHLO, STARTTLS, EHLO, AUTH, then
// MAIL/RCPT/DATA (pipelined when offered), the body and ".", repeated, then QUIT.
// Every reply is checked against the one code it must have; anything else ends the
// connection as a failure. The owner decides whether and when to connect again.
#pragma once

#include <openssl/ssl.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bench/message.hpp"
#include "bench/options.hpp"
#include "bench/stamped_stream.hpp"
#include "net/stream.hpp"
#include "smtp/backend_reply.hpp"
#include "tls/session.hpp"

namespace portcullis::bench {

class Client;

// What a client reports; every callback runs on the loop thread, inside the client's
// own I/O callbacks, so implementations must not destroy clients synchronously.
class ClientEvents {
  public:
    virtual ~ClientEvents() = default;
    // Rate cap: true = send the next message now; false = the owner calls
    // Client::start_message() later.
    virtual bool may_start_message(Client& client) = 0;
    // `first`: the first message of its session (its time includes what the server does
    // before the first transaction, such as opening its backend connection).
    // `latency_ns`: from the first command's write until the bench read the final reply.
    // `socket_latency_ns`: the server's part of it: until that reply reached the socket
    // (kernel receive timestamp), less the time the bench took between a reply reaching
    // its socket and its next request in the same transaction (the body after 354).
    virtual void on_message(std::uint64_t latency_ns, std::uint64_t socket_latency_ns,
                            bool first) = 0;
    virtual void on_session() = 0;
    // A connection is ready for its first message (greeting, EHLO, TLS and AUTH done):
    // `setup_ns` from the start of the connect. Where a server's work during a burst of
    // new connections goes: into this, or into the first message's latency.
    virtual void on_session_ready(std::uint64_t /*setup_ns*/) {}
    virtual void on_failure(const std::string& reason) = 0;
    // A connection's socket is closed: its reads, and those with a kernel timestamp.
    virtual void on_reads(std::uint64_t /*reads*/, std::uint64_t /*stamped*/) {}
    // Idle mode: the connection reached its idle state (greeting read, TLS done).
    virtual void on_idle_ready(Client& client) = 0;
    // The connection is over; a value = connect again after that many milliseconds.
    virtual std::optional<std::uint64_t> on_connection_over(Client& client, bool failed) = 0;
    // A TLS handshake finished (reported so the run can say what was negotiated).
    virtual void on_tls_established(std::string_view /*version*/, std::string_view /*cipher*/,
                                    bool /*resumed*/) {}
};

// Shared by all clients of a run; outlives them.
struct ClientSetup {
    const Options* options = nullptr;
    const Script* script = nullptr;
    SSL_CTX* tls = nullptr;
    sockaddr_storage address{};
    bool idle = false;
};

class Client final : private net::StreamHandler {
  public:
    Client(uv_loop_t* loop, const ClientSetup& setup, ClientEvents& events);
    // --stagger: this many messages (at least 1) in the first connection only.
    void set_first_session_quota(unsigned messages);
    ~Client() override;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void connect();
    // Sends the next transaction if the client is waiting for permission to.
    void start_message();
    bool wants_message() const { return wants_message_; }
    // Idle mode: the connection is set up and being held.
    bool idle_ready() const { return idle_ready_; }
    // Drops the connection without reporting anything; no callbacks afterwards.
    void stop();

  private:
    enum class Expect {
        greeting,
        ehlo,
        starttls,
        auth,
        auth_login,
        login_user,
        mail,
        rcpt,
        data,
        dot,
        quit,
    };
    static int expected_code(Expect e);
    static const char* expect_name(Expect e);

    // net::StreamHandler
    void on_stream_data(std::string_view data) override;
    void on_stream_end(int status) override;

    void on_connected(int status);
    void receive_plaintext(std::string_view data);
    void handle_reply(const smtp::BackendReply& reply);
    void advance(Expect e, const smtp::BackendReply& reply);
    void after_greeting();
    void after_ehlo(const smtp::BackendReply& reply);
    void after_quit();
    void begin_tls();
    bool start_tls();
    void authenticate();
    void next_message();
    void message_done();
    void note_client_turn();
    void become_idle();

    void send(std::string_view bytes);
    void send_expecting(std::string_view bytes, Expect e);
    void expect(Expect e);
    void arm_reply_timer();
    void fail(std::string reason);
    void end_connection(bool failed);
    void teardown();

    uv_loop_t* loop_;
    const ClientSetup& setup_;
    ClientEvents& events_;
    net::Timer reply_timer_;
    net::Timer defer_timer_;

    // per connection
    std::unique_ptr<StampedStream> stream_;
    std::unique_ptr<tls::TlsSession> tls_;
    bssl::UniquePtr<SSL_SESSION> resume_session_;  // --resume: offered on the next connection
    smtp::ReplyParser parser_;
    std::string in_;
    std::deque<Expect> expected_;
    bool over_ = true;
    bool upgrade_pending_ = false;  // STARTTLS accepted; switch once input is consumed
    bool quitting_ = false;         // 221 received, waiting for the server to close
    bool pipelining_ = false;
    bool wants_message_ = false;
    bool idle_ready_ = false;
    unsigned sent_in_session_ = 0;
    unsigned session_quota_ = 0;  // messages before QUIT in this connection
    unsigned first_quota_ = 0;    // --stagger: the first connection's, then 0
    std::uint64_t message_started_ns_ = 0;
    std::uint64_t client_turns_ns_ = 0;  // this message's time between a reply and our next request
    std::uint64_t connect_started_ns_ = 0;
    bool ready_reported_ = false;  // on_session_ready() sent for this connection
};

}  // namespace portcullis::bench
