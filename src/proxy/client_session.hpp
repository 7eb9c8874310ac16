// The client side of one SMTP session: an explicit state machine fed by parsed lines,
// with one ordered queue of replies (local ones and the backend's), so a pipelining
// client always gets its answers in order and never an answer meant for another
// command.
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/users.hpp"
#include "auth/verifier.hpp"
#include "net/stream.hpp"
#include "proxy/runtime.hpp"
#include "proxy/backends.hpp"
#include "proxy/upstream.hpp"
#include "smtp/command.hpp"
#include "smtp/data_codec.hpp"
#include "smtp/header_from.hpp"
#include "smtp/line_reader.hpp"
#include "smtp/reply.hpp"
#include "smtp/sasl.hpp"
#include "state/shared_state.hpp"
#include "tls/session.hpp"

namespace portcullis::proxy {

class ClientSession;

// What a session needs from the worker that owns it.
class SessionHost {
  public:
    virtual ~SessionHost() = default;
    virtual uv_loop_t* loop() = 0;
    // Gateway-wide state: rate limits, lockouts, credential cache, hashing pool.
    virtual Runtime& runtime() = 0;
    // Where rate limits and lockouts are decided (this process or Redis); one per loop.
    virtual state::SharedState& shared_state() = 0;
    // Where this loop's TLS sessions get their handshake signatures (null = sign here).
    virtual tls::Signer* signer() = 0;
    // Hands the finished session back; it is destroyed on a later loop turn.
    virtual void retire(ClientSession* session) = 0;
};

// Where a client connected from and to: the socket's addresses, or on a listener with
// proxy_protocol the addresses a trusted load balancer's PROXY header carried.
struct ClientOrigin {
    std::string ip;  // empty = take all four from the socket
    std::uint16_t port = 0;
    std::string local_ip;
    std::uint16_t local_port = 0;
    std::string proxy;  // the load balancer's address when the others came from PROXY
};

class ClientSession final : private net::StreamHandler, private UpstreamEvents {
  public:
    ClientSession(SessionHost& host, std::unique_ptr<net::TcpStream> client,
                  std::shared_ptr<const Snapshot> snapshot, const config::ListenerConfig& listener,
                  std::string id, ConnectionSlot slot, ClientOrigin origin = {});
    ~ClientSession() override;
    ClientSession(const ClientSession&) = delete;
    ClientSession& operator=(const ClientSession&) = delete;

    // `early_input`: bytes that arrived right behind a PROXY header, before the session.
    void start(std::string_view early_input = {});
    // Graceful stop: an idle session gets 421 now, a busy one after its transaction.
    void drain();
    // The drain timeout passed: 421 now, whatever the session is doing (a message in
    // progress is abandoned by closing the backend connection).
    void shutdown_now();
    const std::string& id() const { return id_; }

  private:
    enum class Phase { command, sasl, data, closing };
    // state: waiting for the shared state (rate limit or lockout answer; see resume()).
    enum class Wait { none, auth_verify, auth_delay, data_barrier, data_reply, state };
    // backend_ready: a reply of the gateway's own (235) held until the backend session
    // is up or has failed, not a reply the backend owes.
    enum class Expect { none, mail, rcpt, data, end_of_data, rset, silent, backend_ready };
    enum class After { none, close, start_tls };
    enum class DataFailure {
        none,
        too_big,
        bare_line_ending,
        line_too_long,  // a DATA text line over [limits] max_line_length
        backend_lost,
        header_from_invalid,
        header_from_not_allowed,
    };

    struct MessageRecord {
        std::string from;
        std::uint64_t recipients = 0;
        std::uint64_t size = 0;
    };
    struct PendingReply {
        bool ready = false;
        std::string text;
        Expect expect = Expect::none;
        After after = After::none;
        std::optional<MessageRecord> message;
    };
    // A reply the backend gives (or owes), as opposed to one of the gateway's own.
    static bool owed_by_backend(const PendingReply& r) {
        return r.expect != Expect::none && r.expect != Expect::backend_ready;
    }

    // net::StreamHandler (client socket)
    void on_stream_data(std::string_view data) override;
    void on_stream_end(int status) override;
    void on_stream_drained() override;
    // UpstreamEvents (backend)
    void on_upstream_ready(const BackendCapabilities& capabilities) override;
    void on_upstream_reply(const smtp::BackendReply& reply) override;
    void release_backend_ready();
    // The commands forwarded while the upstream holds them (one read's worth).
    struct Batch {
        std::size_t commands = 0;
        bool ends_with_data = false;
    };
    std::string_view misfit(Expect expect, const smtp::BackendReply& reply) const;
    void on_upstream_failed(UpstreamFailure failure, std::string_view reason) override;
    void on_upstream_drained() override;

    // input
    void receive_plaintext(std::string_view data);
    void process_input();
    bool process_one();
    bool pump_data();
    void handle_line(std::string_view line);
    void handle_command(const smtp::Command& command);
    void handle_ehlo(const smtp::Command& command, bool extended);
    void handle_starttls(const smtp::Command& command);
    void handle_auth(const smtp::Command& command);
    void handle_sasl_line(std::string_view line);
    void handle_sasl_step(smtp::SaslExchange::Step step);
    void handle_mail(const smtp::Command& command);
    void handle_rcpt(const smtp::Command& command);
    void handle_data(const smtp::Command& command);
    void handle_rset();
    bool require_auth();
    void verify_credentials(smtp::Credentials credentials, std::string_view mechanism);
    void verify_unlocked(smtp::Credentials credentials, std::string name, std::string mechanism,
                         const state::LoginCheck& check);
    void finish_verification(bool matched, std::string name, std::string mechanism, bool authzid_ok,
                             bool cached, std::optional<auth::CredentialCache::Digest> digest);
    void accept_login(const auth::User* user, const std::string& name, const std::string& mechanism,
                      bool cached, const std::optional<auth::CredentialCache::Digest>& digest);
    void fail_auth(const std::string& name, const std::string& mechanism, std::string_view reason,
                   bool counted);
    void record_failure(const std::string& name, bool busy);
    void state_unavailable(std::string_view operation, std::string_view user);
    template <class T>
    std::function<void(T)> resume(std::function<void(T)> then);
    void check_rate(policy::Limit limit, const config::Rate& rate, std::uint64_t cost,
                    smtp::ReplyId reply_id, std::function<void(bool)> then);
    bool rate_refused(policy::Limit limit, std::uint64_t cost, smtp::ReplyId reply_id,
                      const policy::RateDecision& decision);
    void check_header_from(std::string_view chunk, bool at_end);
    void start_data_phase();
    void finish_data();
    void abort_transaction(DataFailure failure, std::string_view why);
    void reset_transaction();
    void release_wait();

    // replies
    void reply(smtp::ReplyId id, After after = After::none);
    void reply_text(std::string text, After after = After::none);
    void expect_backend(Expect expect, std::optional<MessageRecord> message = std::nullopt);
    bool has_unready_replies() const;
    void flush_replies();
    void send_to_client(std::string_view bytes);
    void start_tls();
    void begin_tls();  // the server side of TLS on this connection (implicit or STARTTLS)

    // backend
    bool ensure_upstream();
    // What this client is offered (EHLO keywords, MAIL/RCPT parameters), fixed at EHLO.
    const ClientOffer& offer();
    void forward(std::string line, Expect expect, config::Duration timeout);

    // lifecycle
    void arm_idle_timer();
    void on_preauth_timeout();
    void on_data_timeout();
    void count_bad_command(smtp::ReplyId id);
    void begin_close();
    void finish_close(std::string_view reason);
    void update_read_pressure();
    void maybe_finish_drain();

    const config::Config& cfg() const { return *snapshot_->config; }

    SessionHost& host_;
    AbuseControl& abuse_;
    std::unique_ptr<net::TcpStream> client_;
    std::shared_ptr<const Snapshot> snapshot_;
    config::ListenerConfig listener_;
    std::string id_;
    ConnectionSlot slot_;
    std::string client_ip_;
    std::uint16_t client_port_ = 0;
    std::string local_ip_;  // the address the client connected to
    std::uint16_t local_port_ = 0;
    std::string proxy_peer_;  // the load balancer, when the addresses came from PROXY
    std::chrono::steady_clock::time_point started_;

    net::Deadline idle_timer_;  // re-armed per command: lazy
    net::Timer auth_timer_;
    net::Timer close_timer_;
    net::Timer preauth_timer_;  // connect to successful AUTH ([limits] preauth_timeout)
    net::Timer data_timer_;     // 354 to end of data ([limits] data_timeout)
    std::unique_ptr<tls::TlsSession> tls_;
    std::unique_ptr<Upstream> upstream_;
    std::unique_ptr<auth::PendingVerification> verification_;
    std::optional<smtp::SaslExchange> sasl_;
    std::optional<smtp::DataDecoder> decoder_;

    Phase phase_ = Phase::command;
    Wait wait_ = Wait::none;
    Batch batch_;
    bool group_in_flight_ = false;  // a pipelined group's DATA is not answered yet
    smtp::LineReader reader_{smtp::kMaxCommandLine};
    std::string in_;          // plaintext from the client not yet processed
    std::size_t in_pos_ = 0;  // first unprocessed byte in in_
    std::string data_out_;    // re-encoded DATA on its way to the backend
    std::deque<PendingReply> replies_;
    bool processing_ = false;
    bool draining_ = false;
    bool closing_queued_ = false;     // a closing reply is queued: read no more commands
    std::uint64_t bad_commands_ = 0;  // since the session's last delivered message

    // session facts
    bool helo_done_ = false;
    bool esmtp_ = false;                // the client said EHLO
    std::optional<ClientOffer> offer_;  // set at EHLO (or first use)
    std::string helo_name_;
    const auth::User* user_ = nullptr;  // points into snapshot_->users
    config::RateLimits rate_limits_;    // the user's, set at AUTH

    // transaction
    bool mail_open_ = false;
    std::string mail_from_;
    std::uint64_t rcpt_sent_ = 0;
    std::uint64_t rcpt_accepted_ = 0;
    bool smtputf8_ = false;  // MAIL declared SMTPUTF8
    DataFailure data_failure_ = DataFailure::none;
    std::optional<smtp::HeaderFromScanner> header_from_;  // while the header is checked
    std::uint64_t messages_ = 0;
    std::chrono::steady_clock::time_point end_of_data_sent_;  // for the latency histogram

    // shared state (Wait::state)
    std::uint64_t state_calls_ = 0;  // the answer resume() waits for carries this number
    std::optional<smtp::Credentials> pending_credentials_;  // while the lockout check runs

    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace portcullis::proxy
