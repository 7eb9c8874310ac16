#include "proxy/client_session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "auth/password.hpp"
#include "ops/log.hpp"
#include "policy/sender_rules.hpp"

namespace portcullis::proxy {

namespace {

using ops::LogLevel;
using smtp::ReplyId;

// Stop reading from the client while this much is queued towards either peer.
constexpr std::size_t kMaxQueuedBytes = 1024 * 1024;
// Stop reading while this much unprocessed client input waits behind a pending step.
constexpr std::size_t kMaxPendingInput = 64 * 1024;
// How long a closing session waits for its last reply to be written.
constexpr std::uint64_t kCloseGraceMs = 5000;

std::uint64_t ms(config::Duration d) {
    return static_cast<std::uint64_t>(d.count());
}

std::string first_line(const smtp::BackendReply& reply) {
    return reply.lines.empty() ? std::string() : reply.lines.front();
}

bool is_ascii_upper_equal(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::toupper(static_cast<unsigned char>(x)) ==
               std::toupper(static_cast<unsigned char>(y));
    });
}

}  // namespace

ClientSession::ClientSession(SessionHost& host, std::unique_ptr<net::TcpStream> client,
                             std::shared_ptr<const Snapshot> snapshot,
                             const config::ListenerConfig& listener, std::string id,
                             ConnectionSlot slot)
    : host_(host),
      client_(std::move(client)),
      snapshot_(std::move(snapshot)),
      listener_(listener),
      id_(std::move(id)),
      slot_(std::move(slot)),
      started_(std::chrono::steady_clock::now()),
      idle_timer_(host.loop()),
      auth_timer_(host.loop()),
      close_timer_(host.loop()) {
    client_ip_ = client_->peer_ip();
    client_port_ = client_->peer_port();
    client_->set_handler(this);
}

ClientSession::~ClientSession() {
    *alive_ = false;
}

void ClientSession::start() {
    ops::log(LogLevel::info, "connect",
             {{"session", id_},
              {"client", client_ip_},
              {"port", unsigned{client_port_}},
              {"listener", listener_.address.text()}});
    if (listener_.tls == config::ListenerTls::implicit) {
        tls_ =
            std::make_unique<tls::TlsSession>(snapshot_->tls.get(), tls::TlsSession::Role::server);
    }
    reply_text(smtp::greeting(cfg().server.hostname));
    client_->start_reading();
    arm_idle_timer();
}

void ClientSession::drain() {
    draining_ = true;
    if (phase_ == Phase::command && wait_ == Wait::none && !mail_open_ && replies_.empty()) {
        reply(ReplyId::shutting_down, After::close);
    }
}

// ---------------------------------------------------------------- client input

void ClientSession::on_stream_data(std::string_view data) {
    if (phase_ == Phase::closing) {
        return;
    }
    if (!tls_) {
        receive_plaintext(data);
        return;
    }
    const bool was_established = tls_->established();
    std::string plain;
    std::string to_peer;
    const auto status = tls_->receive(data, plain, to_peer);
    if (!to_peer.empty()) {
        client_->write(std::move(to_peer));
    }
    if (status == tls::TlsSession::Status::failed) {
        ops::log(LogLevel::info, "tls.failed",
                 {{"session", id_}, {"client", client_ip_}, {"error", tls_->error()}});
        finish_close("tls failure");
        return;
    }
    if (!was_established && tls_->established()) {
        ops::log(LogLevel::info, "tls",
                 {{"session", id_}, {"version", tls_->version()}, {"cipher", tls_->cipher()}});
    }
    if (!plain.empty()) {
        receive_plaintext(plain);
    }
    if (status == tls::TlsSession::Status::closed && phase_ != Phase::closing) {
        finish_close("client sent close_notify");
    }
}

void ClientSession::receive_plaintext(std::string_view data) {
    in_.append(data);
    process_input();
}

void ClientSession::process_input() {
    if (processing_) {
        return;  // re-entered from a callback; the outer loop continues
    }
    processing_ = true;
    std::weak_ptr<bool> alive = alive_;
    while (phase_ != Phase::closing && wait_ == Wait::none && in_pos_ < in_.size()) {
        if (!process_one() || alive.expired()) {
            break;
        }
    }
    if (alive.expired()) {
        return;
    }
    processing_ = false;
    if (in_pos_ > 0) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
    }
    if (in_.empty()) {
        in_.shrink_to_fit();  // an idle session keeps no input buffer
    }
    update_read_pressure();
    arm_idle_timer();
}

// Handles one line or one chunk of DATA; false when no progress can be made yet.
bool ClientSession::process_one() {
    if (phase_ == Phase::data) {
        return pump_data();
    }
    const auto result = reader_.next(std::string_view(in_).substr(in_pos_));
    in_pos_ += result.consumed;
    switch (result.kind) {
        case smtp::LineReader::Kind::need_more:
            return result.consumed > 0;
        case smtp::LineReader::Kind::too_long:
            if (phase_ == Phase::sasl) {
                sasl_.reset();
                phase_ = Phase::command;
            }
            reply(ReplyId::line_too_long);
            return true;
        case smtp::LineReader::Kind::line:
            handle_line(result.text);
            return true;
    }
    return false;
}

void ClientSession::handle_line(std::string_view line) {
    if (phase_ == Phase::sasl) {
        handle_sasl_line(line);
        return;
    }
    const smtp::Command command = smtp::parse_command(line);
    if (draining_ && command.verb != smtp::Verb::quit && !mail_open_) {
        reply(ReplyId::shutting_down, After::close);
        return;
    }
    handle_command(command);
}

void ClientSession::handle_command(const smtp::Command& command) {
    using smtp::Verb;
    switch (command.verb) {
        case Verb::ehlo:
            handle_ehlo(command, true);
            return;
        case Verb::helo:
            handle_ehlo(command, false);
            return;
        case Verb::starttls:
            handle_starttls(command);
            return;
        case Verb::auth:
            handle_auth(command);
            return;
        case Verb::mail:
            handle_mail(command);
            return;
        case Verb::rcpt:
            handle_rcpt(command);
            return;
        case Verb::data:
            handle_data(command);
            return;
        case Verb::rset:
            handle_rset();
            return;
        case Verb::noop:
            reply(ReplyId::ok);
            return;
        case Verb::quit:
            reply(ReplyId::closing, After::close);
            return;
        case Verb::vrfy:
            reply(ReplyId::vrfy_cannot);
            return;
        case Verb::expn:
        case Verb::help:
        case Verb::bdat:
            reply(ReplyId::not_implemented);
            return;
        case Verb::unknown:
            reply(ReplyId::syntax_unknown);
            return;
    }
}

void ClientSession::handle_ehlo(const smtp::Command& command, bool extended) {
    if (command.argument.empty()) {
        reply(ReplyId::param_syntax);
        return;
    }
    if (mail_open_) {  // EHLO/HELO reset a transaction (RFC 5321 4.1.4)
        if (upstream_) {
            forward("RSET\r\n", Expect::silent, cfg().backend.reply_timeout);
        }
        reset_transaction();
    }
    helo_done_ = true;
    helo_name_ = std::string(command.argument);
    const std::string& host = cfg().server.hostname;
    if (!extended) {
        reply_text(smtp::single(250, host));
        return;
    }
    std::vector<std::string> lines{host, "PIPELINING",
                                   fmt::format("SIZE {}", cfg().limits.message_size), "8BITMIME",
                                   "ENHANCEDSTATUSCODES"};
    const bool tls_active = tls_ != nullptr;
    if (listener_.tls == config::ListenerTls::starttls && !tls_active) {
        lines.emplace_back("STARTTLS");
    }
    const bool auth_allowed = tls_active || listener_.tls == config::ListenerTls::none;
    if (auth_allowed && user_ == nullptr) {
        std::string mechanisms = "AUTH";
        if (cfg().auth.mechanism_plain) {
            mechanisms += " PLAIN";
        }
        if (cfg().auth.mechanism_login) {
            mechanisms += " LOGIN";
        }
        lines.push_back(std::move(mechanisms));
    }
    reply_text(smtp::multiline(250, lines));
}

void ClientSession::handle_starttls(const smtp::Command& command) {
    if (listener_.tls != config::ListenerTls::starttls) {
        reply(ReplyId::not_implemented);
        return;
    }
    if (tls_) {
        reply(ReplyId::bad_sequence);
        return;
    }
    if (!command.argument.empty()) {
        reply(ReplyId::param_syntax);
        return;
    }
    reply(ReplyId::starttls_go, After::start_tls);
}

void ClientSession::start_tls() {
    // CVE-2011-0411: whatever the client pipelined after STARTTLS arrived in plaintext
    // and must never be executed as if it came over TLS.
    const std::size_t discarded = in_.size() - in_pos_;
    if (discarded > 0) {
        ops::log(LogLevel::warn, "starttls.discarded",
                 {{"session", id_}, {"client", client_ip_}, {"bytes", discarded}});
    }
    in_.clear();
    in_pos_ = 0;
    reader_ = smtp::LineReader(smtp::kMaxCommandLine);
    helo_done_ = false;
    helo_name_.clear();
    tls_ = std::make_unique<tls::TlsSession>(snapshot_->tls.get(), tls::TlsSession::Role::server);
}

// --------------------------------------------------------------------- AUTH

void ClientSession::handle_auth(const smtp::Command& command) {
    if (user_ != nullptr) {
        reply(ReplyId::already_authenticated);
        return;
    }
    if (!helo_done_ || mail_open_) {
        reply(ReplyId::bad_sequence);
        return;
    }
    if (listener_.tls == config::ListenerTls::starttls && !tls_) {
        reply(ReplyId::encryption_required);
        return;
    }
    const std::string_view argument = command.argument;
    const std::size_t space = argument.find(' ');
    const std::string_view name = argument.substr(0, space);
    const auto mechanism = smtp::parse_mechanism(name);
    const bool allowed =
        mechanism && ((*mechanism == smtp::Mechanism::plain && cfg().auth.mechanism_plain) ||
                      (*mechanism == smtp::Mechanism::login && cfg().auth.mechanism_login));
    if (!allowed) {
        reply(argument.empty() ? ReplyId::param_syntax : ReplyId::mechanism_unknown);
        return;
    }
    std::optional<std::string_view> initial;
    if (space != std::string_view::npos) {
        initial = argument.substr(space + 1);
    }
    sasl_.emplace(*mechanism);
    handle_sasl_step(sasl_->start(initial));
}

void ClientSession::handle_sasl_line(std::string_view line) {
    handle_sasl_step(sasl_->respond(line));
}

void ClientSession::handle_sasl_step(smtp::SaslExchange::Step step) {
    using Kind = smtp::SaslExchange::Step::Kind;
    switch (step.kind) {
        case Kind::challenge:
            phase_ = Phase::sasl;
            reply_text(std::move(step.challenge));
            return;
        case Kind::failed:
            phase_ = Phase::command;
            sasl_.reset();
            reply(step.error);
            return;
        case Kind::done: {
            phase_ = Phase::command;
            smtp::Credentials credentials = sasl_->take_credentials();
            const std::string_view mechanism =
                sasl_->mechanism() == smtp::Mechanism::plain ? "PLAIN" : "LOGIN";
            sasl_.reset();
            verify_credentials(std::move(credentials), mechanism);
            return;
        }
    }
}

void ClientSession::verify_credentials(smtp::Credentials credentials,
                                       std::string_view mechanism_name) {
    std::string name(credentials.authcid.view());
    const bool authzid_ok =
        credentials.authzid.empty() || credentials.authzid.view() == credentials.authcid.view();
    std::string mechanism(mechanism_name);
    const auth::User* user = snapshot_->users->find(name);
    // An unknown user costs the same Argon2id work as a known one.
    std::string hash = user != nullptr ? user->password_hash : auth::dummy_hash(cfg().auth.hashing);
    wait_ = Wait::auth_verify;
    std::weak_ptr<bool> alive = alive_;
    verification_ = auth::PendingVerification::start(
        host_.loop(), std::move(hash), std::move(credentials.password),
        [this, name, authzid_ok, mechanism](bool matched) {
            finish_verification(matched, name, mechanism, authzid_ok);
        });
    if (!verification_) {
        wait_ = Wait::none;
        ops::log(LogLevel::error, "auth",
                 {{"session", id_},
                  {"client", client_ip_},
                  {"user", name},
                  {"mechanism", mechanism},
                  {"result", "error"},
                  {"reason", "cannot queue password verification"}});
        reply(ReplyId::temp_auth_failure);
    }
}

void ClientSession::finish_verification(bool matched, std::string name, std::string mechanism,
                                        bool authzid_ok) {
    verification_.reset();
    const auth::User* user = snapshot_->users->find(name);
    std::string_view reason;
    if (user == nullptr) {
        reason = "unknown user";
    } else if (!matched) {
        reason = "wrong password";
    } else if (user->disabled) {
        reason = "user disabled";
    } else if (!authzid_ok) {
        reason = "authorization identity differs";
    }
    if (reason.empty()) {
        user_ = user;
        ops::log(LogLevel::info, "auth",
                 {{"session", id_},
                  {"client", client_ip_},
                  {"user", name},
                  {"mechanism", mechanism},
                  {"result", "success"}});
        wait_ = Wait::none;
        reply(ReplyId::auth_ok);
        ensure_upstream();  // connect early; MAIL is usually next
        process_input();
        return;
    }
    ops::log(LogLevel::warn, "auth",
             {{"session", id_},
              {"client", client_ip_},
              {"user", name},
              {"mechanism", mechanism},
              {"result", "failure"},
              {"reason", reason}});
    wait_ = Wait::auth_delay;
    auth_timer_.start(ms(cfg().auth.failure_delay), [this] {
        wait_ = Wait::none;
        reply(ReplyId::bad_credentials);
        process_input();
    });
}

// --------------------------------------------------------------- transaction

bool ClientSession::require_auth() {
    if (user_ != nullptr) {
        if (!helo_done_) {
            reply(ReplyId::bad_sequence);
            return false;
        }
        return true;
    }
    if (listener_.tls == config::ListenerTls::starttls && !tls_) {
        reply(ReplyId::starttls_first);
    } else {
        reply(ReplyId::auth_required);
    }
    return false;
}

void ClientSession::handle_mail(const smtp::Command& command) {
    if (!require_auth()) {
        return;
    }
    if (mail_open_) {
        reply(ReplyId::bad_sequence);
        return;
    }
    const smtp::PathResult parsed = smtp::parse_mail_from(command.argument);
    if (!parsed.path) {
        reply(parsed.error == smtp::PathError::bad_address     ? ReplyId::bad_address
              : parsed.error == smtp::PathError::bad_parameter ? ReplyId::param_unknown
                                                               : ReplyId::param_syntax);
        return;
    }
    const smtp::PathArgument& path = *parsed.path;
    std::string forwarded_params;
    for (const auto& parameter : path.parameters) {
        if (parameter.keyword == "SIZE") {
            std::uint64_t size = 0;
            const auto* end = parameter.value.data() + parameter.value.size();
            if (parameter.value.empty() ||
                std::from_chars(parameter.value.data(), end, size).ptr != end) {
                reply(ReplyId::param_syntax);
                return;
            }
            if (size > cfg().limits.message_size) {
                reply(ReplyId::message_too_big);
                return;
            }
            forwarded_params += fmt::format(" SIZE={}", size);
        } else if (parameter.keyword == "BODY" &&
                   (is_ascii_upper_equal(parameter.value, "7BIT") ||
                    is_ascii_upper_equal(parameter.value, "8BITMIME"))) {
            forwarded_params += " BODY=" + parameter.value;
        } else {
            reply(ReplyId::param_unknown);
            return;
        }
    }
    if (!policy::sender_allowed(user_->name, user_->senders, path.address)) {
        ops::log(LogLevel::warn, "sender.refused",
                 {{"session", id_}, {"user", user_->name}, {"from", path.address}});
        reply(ReplyId::sender_not_owned);
        return;
    }
    if (!ensure_upstream()) {
        return;
    }
    mail_open_ = true;
    mail_from_ = path.address;
    rcpt_sent_ = 0;
    rcpt_accepted_ = 0;
    forward(fmt::format("MAIL FROM:<{}>{}\r\n", path.address, forwarded_params), Expect::mail,
            cfg().backend.reply_timeout);
}

void ClientSession::handle_rcpt(const smtp::Command& command) {
    if (!require_auth()) {
        return;
    }
    if (!mail_open_) {
        reply(ReplyId::bad_sequence);
        return;
    }
    const smtp::PathResult parsed = smtp::parse_rcpt_to(command.argument);
    if (!parsed.path) {
        reply(parsed.error == smtp::PathError::bad_address     ? ReplyId::bad_address
              : parsed.error == smtp::PathError::bad_parameter ? ReplyId::param_unknown
                                                               : ReplyId::param_syntax);
        return;
    }
    if (!parsed.path->parameters.empty()) {
        reply(ReplyId::param_unknown);
        return;
    }
    if (rcpt_sent_ >= cfg().limits.recipients_per_message) {
        reply(ReplyId::too_many_recipients);
        return;
    }
    ++rcpt_sent_;
    forward(fmt::format("RCPT TO:<{}>\r\n", parsed.path->address), Expect::rcpt,
            cfg().backend.reply_timeout);
}

void ClientSession::handle_data(const smtp::Command& command) {
    if (!require_auth()) {
        return;
    }
    if (!command.argument.empty()) {
        reply(ReplyId::param_syntax);
        return;
    }
    if (!mail_open_) {
        reply(ReplyId::bad_sequence);
        return;
    }
    if (has_unready_replies()) {
        // DATA goes to the backend only once it accepted a recipient: wait for the
        // answers to the pipelined MAIL/RCPT, then decide.
        wait_ = Wait::data_barrier;
        return;
    }
    if (rcpt_accepted_ == 0 || !upstream_) {
        reply(rcpt_sent_ == 0 ? ReplyId::bad_sequence : ReplyId::no_valid_recipients);
        return;
    }
    wait_ = Wait::data_reply;
    forward("DATA\r\n", Expect::data, cfg().backend.reply_timeout);
}

void ClientSession::handle_rset() {
    reset_transaction();
    if (upstream_) {
        forward("RSET\r\n", Expect::rset, cfg().backend.reply_timeout);
    } else {
        reply(ReplyId::reset_ok);
    }
}

void ClientSession::reset_transaction() {
    mail_open_ = false;
    mail_from_.clear();
    rcpt_sent_ = 0;
    rcpt_accepted_ = 0;
    data_failure_ = DataFailure::none;
}

void ClientSession::release_wait() {
    if (wait_ == Wait::data_barrier && !has_unready_replies()) {
        wait_ = Wait::none;
        handle_data(smtp::Command{smtp::Verb::data, {}});
    }
}

// ---------------------------------------------------------------------- DATA

void ClientSession::start_data_phase() {
    phase_ = Phase::data;
    data_failure_ = DataFailure::none;
    decoder_.emplace(cfg().limits.bare_line_endings == config::BareLineEndings::normalize
                         ? smtp::BarePolicy::normalize
                         : smtp::BarePolicy::reject);
}

bool ClientSession::pump_data() {
    const auto result = decoder_->feed(std::string_view(in_).substr(in_pos_), data_out_);
    in_pos_ += result.consumed;
    // Judge the chunk before any of it leaves: a chunk with a bare line ending or past
    // the size limit never reaches the backend.
    if (data_failure_ == DataFailure::none) {
        if (decoder_->message_size() > cfg().limits.message_size) {
            abort_transaction(DataFailure::too_big, "message exceeds message_size");
        } else if (decoder_->bare_line_ending_seen() &&
                   cfg().limits.bare_line_endings == config::BareLineEndings::reject) {
            abort_transaction(DataFailure::bare_line_ending, "bare CR or LF in message");
        }
    }
    if (data_failure_ == DataFailure::none && upstream_ && !data_out_.empty()) {
        upstream_->send_data(data_out_);
    }
    data_out_.clear();
    if (result.finished) {
        finish_data();
    }
    update_read_pressure();
    return result.consumed > 0 || result.finished;
}

// Aborts the backend transaction by closing the backend connection: an end-of-data of
// our own would deliver a partial message.
void ClientSession::abort_transaction(DataFailure failure, std::string_view why) {
    data_failure_ = failure;
    ops::log(LogLevel::warn, "message.aborted",
             {{"session", id_}, {"user", user_ != nullptr ? user_->name : ""}, {"reason", why}});
    upstream_.reset();
}

void ClientSession::finish_data() {
    phase_ = Phase::command;
    const std::uint64_t size = decoder_->message_size();
    decoder_.reset();
    const DataFailure failure = data_failure_;
    MessageRecord record{mail_from_, rcpt_accepted_, size};
    reset_transaction();
    switch (failure) {
        case DataFailure::too_big:
            reply(ReplyId::message_too_big);
            return;
        case DataFailure::bare_line_ending:
            reply(ReplyId::bare_line_ending);
            return;
        case DataFailure::backend_lost:
            reply(ReplyId::backend_lost);
            return;
        case DataFailure::none:
            break;
    }
    forward(std::string(smtp::kEndOfData), Expect::end_of_data, cfg().backend.data_reply_timeout);
    replies_.back().message = std::move(record);
}

// ------------------------------------------------------------------- backend

bool ClientSession::ensure_upstream() {
    if (upstream_) {
        return true;
    }
    upstream_ = std::make_unique<Upstream>(host_.loop(), cfg().backend, cfg().server.hostname,
                                           static_cast<UpstreamEvents&>(*this));
    std::weak_ptr<bool> alive = alive_;
    upstream_->start();  // may fail at once and reset upstream_
    return !alive.expired() && upstream_ != nullptr;
}

void ClientSession::forward(std::string line, Expect expect, config::Duration timeout) {
    expect_backend(expect);
    upstream_->send_command(std::move(line), timeout);
}

void ClientSession::on_upstream_reply(const smtp::BackendReply& reply) {
    auto it = std::find_if(replies_.begin(), replies_.end(),
                           [](const PendingReply& r) { return !r.ready; });
    if (it == replies_.end()) {
        on_upstream_failed("reply without a pending command");
        return;
    }
    it->ready = true;
    it->text = reply.wire();
    switch (it->expect) {
        case Expect::mail:
            if (!reply.positive()) {
                reset_transaction();
            }
            break;
        case Expect::rcpt:
            if (reply.positive()) {
                ++rcpt_accepted_;
            }
            break;
        case Expect::data:
            wait_ = Wait::none;
            if (reply.code == 354) {
                it->text = std::string(smtp::reply(ReplyId::data_go));
                start_data_phase();
            }
            break;
        case Expect::end_of_data:
            if (it->message) {
                ++messages_;
                ops::log(reply.positive() ? LogLevel::info : LogLevel::warn, "message",
                         {{"session", id_},
                          {"user", user_->name},
                          {"from", it->message->from},
                          {"recipients", it->message->recipients},
                          {"size", it->message->size},
                          {"backend_code", reply.code},
                          {"backend_reply", first_line(reply)}});
            }
            break;
        case Expect::silent:
            it->text.clear();
            break;
        case Expect::rset:
        case Expect::none:
            break;
    }
    std::weak_ptr<bool> alive = alive_;
    flush_replies();
    if (alive.expired()) {
        return;
    }
    release_wait();
    if (alive.expired()) {
        return;
    }
    process_input();
}

void ClientSession::on_upstream_failed(std::string_view reason) {
    ops::log(LogLevel::error, "backend.error",
             {{"session", id_}, {"backend", cfg().backend.address.text()}, {"reason", reason}});
    upstream_.reset();
    bool close_after = false;
    for (auto& pending : replies_) {
        if (pending.ready) {
            continue;
        }
        pending.ready = true;
        switch (pending.expect) {
            case Expect::end_of_data:
            case Expect::data:
                pending.text = std::string(smtp::reply(ReplyId::backend_lost));
                break;
            case Expect::silent:
                pending.text.clear();
                break;
            default:
                if (!close_after) {
                    pending.text = std::string(smtp::reply(ReplyId::backend_unavailable));
                    pending.after = After::close;
                    close_after = true;
                } else {
                    pending.text.clear();
                }
        }
    }
    if (phase_ == Phase::data && data_failure_ == DataFailure::none) {
        data_failure_ = DataFailure::backend_lost;
    } else if (phase_ != Phase::data) {
        reset_transaction();
    }
    if (wait_ == Wait::data_reply || wait_ == Wait::data_barrier) {
        wait_ = Wait::none;
    }
    std::weak_ptr<bool> alive = alive_;
    flush_replies();
    if (!alive.expired()) {
        process_input();
    }
}

void ClientSession::on_upstream_drained() {
    update_read_pressure();
}

// ------------------------------------------------------------------- replies

void ClientSession::reply(ReplyId id, After after) {
    reply_text(std::string(smtp::reply(id)), after);
}

void ClientSession::reply_text(std::string text, After after) {
    replies_.push_back(PendingReply{true, std::move(text), Expect::none, after, std::nullopt});
    flush_replies();
}

void ClientSession::expect_backend(Expect expect, std::optional<MessageRecord> message) {
    replies_.push_back(PendingReply{false, {}, expect, After::none, std::move(message)});
}

bool ClientSession::has_unready_replies() const {
    return std::any_of(replies_.begin(), replies_.end(),
                       [](const PendingReply& r) { return !r.ready; });
}

// Sends every ready reply at the head of the queue, in order, and runs what must
// happen right after one (closing, switching to TLS).
void ClientSession::flush_replies() {
    std::string batch;
    while (!replies_.empty() && replies_.front().ready && phase_ != Phase::closing) {
        PendingReply head = std::move(replies_.front());
        replies_.pop_front();
        batch += head.text;
        if (head.after == After::none) {
            continue;
        }
        send_to_client(batch);
        batch.clear();
        if (head.after == After::close) {
            begin_close();
            return;
        }
        start_tls();
    }
    send_to_client(batch);
}

void ClientSession::send_to_client(std::string_view bytes) {
    if (bytes.empty()) {
        return;
    }
    if (!tls_) {
        client_->write(std::string(bytes));
        return;
    }
    std::string cipher;
    if (tls_->send(bytes, cipher) == tls::TlsSession::Status::failed) {
        ops::log(LogLevel::info, "tls.failed", {{"session", id_}, {"error", tls_->error()}});
    }
    client_->write(std::move(cipher));
}

// ----------------------------------------------------------------- lifecycle

void ClientSession::arm_idle_timer() {
    if (phase_ == Phase::closing) {
        return;
    }
    if (wait_ != Wait::none) {
        idle_timer_.stop();  // we owe the client an answer; the backend timeout applies
        return;
    }
    idle_timer_.start(ms(cfg().limits.command_timeout), [this] {
        ops::log(LogLevel::info, "timeout", {{"session", id_}, {"client", client_ip_}});
        if (phase_ == Phase::data) {
            upstream_.reset();  // abort the unfinished message
        }
        replies_.clear();
        reply(ReplyId::timeout, After::close);
    });
}

void ClientSession::update_read_pressure() {
    if (phase_ == Phase::closing) {
        return;
    }
    const bool backlog = client_->queued_bytes() > kMaxQueuedBytes ||
                         (upstream_ && upstream_->queued_bytes() > kMaxQueuedBytes) ||
                         in_.size() - in_pos_ > kMaxPendingInput;
    if (backlog) {
        client_->stop_reading();
    } else {
        client_->start_reading();
    }
}

void ClientSession::on_stream_drained() {
    if (phase_ == Phase::closing) {
        finish_close("closed");
        return;
    }
    update_read_pressure();
}

void ClientSession::on_stream_end(int status) {
    if (phase_ == Phase::data) {
        ops::log(LogLevel::warn, "message.aborted",
                 {{"session", id_},
                  {"user", user_ != nullptr ? user_->name : ""},
                  {"reason", "client disconnected during DATA"}});
    }
    finish_close(status == UV_EOF ? "client closed" : uv_strerror(status));
}

void ClientSession::begin_close() {
    phase_ = Phase::closing;
    idle_timer_.stop();
    client_->stop_reading();
    if (tls_) {
        std::string cipher;
        tls_->close_notify(cipher);
        client_->write(std::move(cipher));
    }
    if (client_->queued_bytes() == 0) {
        finish_close("closed");
        return;
    }
    close_timer_.start(kCloseGraceMs, [this] { finish_close("close timeout"); });
}

void ClientSession::finish_close(std::string_view reason) {
    if (*alive_ == false) {
        return;
    }
    *alive_ = false;
    phase_ = Phase::closing;
    idle_timer_.stop();
    auth_timer_.stop();
    close_timer_.stop();
    client_->set_handler(nullptr);
    client_->stop_reading();
    verification_.reset();
    if (upstream_ && upstream_->ready() && !mail_open_) {
        upstream_->send_command("QUIT\r\n", std::chrono::seconds(1));
    }
    upstream_.reset();
    slot_.release();
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started_);
    ops::log(LogLevel::info, "disconnect",
             {{"session", id_},
              {"client", client_ip_},
              {"reason", reason},
              {"messages", messages_},
              {"duration_ms", static_cast<std::int64_t>(elapsed.count())}});
    host_.retire(this);
}

}  // namespace portcullis::proxy
