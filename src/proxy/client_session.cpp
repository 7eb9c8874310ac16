#include "proxy/client_session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include "auth/password.hpp"
#include "ops/log.hpp"
#include "ops/metrics.hpp"
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

// The reply for a MAIL/RCPT parameter the gateway does not pass on.
ReplyId param_reply(smtp::ParamVerdict verdict) {
    switch (verdict) {
        case smtp::ParamVerdict::unsupported:
            return ReplyId::param_unknown;
        case smtp::ParamVerdict::too_big:
            return ReplyId::message_too_big;
        case smtp::ParamVerdict::needs_smtputf8:
            return ReplyId::smtputf8_required;
        case smtp::ParamVerdict::syntax:
        case smtp::ParamVerdict::ok:
            break;
    }
    return ReplyId::param_syntax;
}

// MAIL's SIZE= value (check_mail validated it), if the client declared one.
std::optional<std::uint64_t> declared_message_size(const smtp::PathArgument& path) {
    for (const auto& parameter : path.parameters) {
        std::uint64_t size = 0;
        const char* end = parameter.value.data() + parameter.value.size();
        if (parameter.keyword == "SIZE" &&
            std::from_chars(parameter.value.data(), end, size).ptr == end) {
            return size;
        }
    }
    return std::nullopt;
}

ops::AuthMechanism mechanism_of(std::string_view name) {
    return name == "LOGIN" ? ops::AuthMechanism::login : ops::AuthMechanism::plain;
}

ops::RateLimitKind rate_limit_kind(policy::Limit limit) {
    switch (limit) {
        case policy::Limit::messages:
            return ops::RateLimitKind::messages;
        case policy::Limit::recipients:
            return ops::RateLimitKind::recipients;
        case policy::Limit::bytes:
            break;
    }
    return ops::RateLimitKind::bytes;
}

ReplyId upstream_failure_reply(UpstreamFailure failure) {
    switch (failure) {
        case UpstreamFailure::identity:
            return ReplyId::backend_identity_failed;
        case UpstreamFailure::tls:
            return ReplyId::backend_tls_failed;
        case UpstreamFailure::protocol:
            return ReplyId::backend_out_of_step;
        case UpstreamFailure::unavailable:
            break;
    }
    return ReplyId::backend_unavailable;
}

}  // namespace

// Wraps `then` for a shared-state answer: the session reads no input until it comes
// (Wait::state), and an answer that arrives after the session closed, after a timeout
// reset the wait, or for an earlier call is dropped without touching anything.
template <class T>
std::function<void(T)> ClientSession::resume(std::function<void(T)> then) {
    const std::uint64_t call = ++state_calls_;
    wait_ = Wait::state;
    return [this, alive = std::weak_ptr<bool>(alive_), call, then = std::move(then)](T answer) {
        if (alive.expired() || wait_ != Wait::state || call != state_calls_) {
            return;
        }
        wait_ = Wait::none;
        then(std::move(answer));
        if (!alive.expired()) {
            process_input();  // returns at once when called from inside process_input
        }
    };
}

ClientSession::ClientSession(SessionHost& host, std::unique_ptr<net::TcpStream> client,
                             std::shared_ptr<const Snapshot> snapshot,
                             const config::ListenerConfig& listener, std::string id,
                             ConnectionSlot slot, ClientOrigin origin)
    : host_(host),
      abuse_(host.runtime().abuse),
      client_(std::move(client)),
      snapshot_(std::move(snapshot)),
      listener_(listener),
      id_(std::move(id)),
      slot_(std::move(slot)),
      started_(std::chrono::steady_clock::now()),
      idle_timer_(host.loop()),
      auth_timer_(host.loop()),
      close_timer_(host.loop()),
      preauth_timer_(host.loop()),
      data_timer_(host.loop()) {
    if (origin.ip.empty()) {
        client_ip_ = client_->peer_ip();
        client_port_ = client_->peer_port();
        local_ip_ = client_->local_ip();
        local_port_ = client_->local_port();
    } else {
        client_ip_ = std::move(origin.ip);
        client_port_ = origin.port;
        local_ip_ = std::move(origin.local_ip);
        local_port_ = origin.local_port;
        proxy_peer_ = std::move(origin.proxy);
    }
    client_->set_handler(this);
}

ClientSession::~ClientSession() {
    *alive_ = false;
}

void ClientSession::start(std::string_view early_input) {
    ops::log(LogLevel::info, "connect",
             {{"session", id_},
              {"client", client_ip_},
              {"port", unsigned{client_port_}},
              {"listener", listener_.address.text()},
              {"proxy", proxy_peer_}});
    if (listener_.tls == config::ListenerTls::implicit) {
        begin_tls();
    }
    reply_text(smtp::greeting(cfg().server.hostname));
    client_->start_reading();
    arm_idle_timer();
    preauth_timer_.start(ms(cfg().limits.preauth_timeout), [this] { on_preauth_timeout(); });
    if (!early_input.empty()) {
        on_stream_data(early_input);  // what the client sent right behind a PROXY header
    }
}

void ClientSession::drain() {
    draining_ = true;
    maybe_finish_drain();
}

// While draining, a session with nothing in progress is told 421 at once (not only at
// its next command), so that a finished transaction frees the gateway to exit.
void ClientSession::maybe_finish_drain() {
    if (draining_ && phase_ == Phase::command && wait_ == Wait::none && !mail_open_ &&
        replies_.empty() && !closing_queued_ && in_pos_ >= in_.size()) {
        closing_queued_ = true;
        reply(ReplyId::shutting_down, After::close);
    }
}

void ClientSession::shutdown_now() {
    if (phase_ == Phase::closing || !*alive_) {
        return;
    }
    ops::log(LogLevel::info, "timeout",
             {{"session", id_}, {"client", client_ip_}, {"kind", "drain"}});
    if (phase_ == Phase::data || mail_open_) {
        ops::log(LogLevel::warn, "message.aborted",
                 {{"session", id_},
                  {"user", user_ != nullptr ? user_->name : ""},
                  {"reason", "drain_timeout"}});
    }
    // Closing the backend connection is the only abort that cannot deliver a partial
    // message: an end-of-data of ours would commit it.
    upstream_.reset();
    verification_.reset();
    auth_timer_.stop();
    data_timer_.stop();
    sasl_.reset();
    decoder_.reset();
    header_from_.reset();
    phase_ = Phase::command;
    wait_ = Wait::none;
    replies_.clear();
    reset_transaction();
    closing_queued_ = true;
    reply(ReplyId::shutting_down, After::close);
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
    std::string to_peer;
    const std::size_t before = in_.size();
    // Decrypted straight into the input buffer: one copy less per byte.
    const auto status = tls_->receive(data, in_, to_peer);
    const bool got_plain = in_.size() > before;
    if (!to_peer.empty()) {
        client_->write(std::move(to_peer));
    }
    if (status == tls::TlsSession::Status::failed) {
        if (!was_established) {
            ops::metrics().tls_handshake_failed();
        }
        ops::log(LogLevel::info, "tls.failed",
                 {{"session", id_}, {"client", client_ip_}, {"error", tls_->error()}});
        finish_close("tls failure");
        return;
    }
    if (!was_established && tls_->established()) {
        ops::metrics().tls_handshake(tls_->version());
        if (tls_->resumed()) {
            ops::metrics().tls_resumed();
        }
        ops::log(LogLevel::info, "tls",
                 {{"session", id_},
                  {"version", tls_->version()},
                  {"cipher", tls_->cipher()},
                  {"resumed", tls_->resumed()}});
    }
    if (got_plain) {
        process_input();
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
    // Commands of one read (a pipelined MAIL, RCPT..., DATA) reach the backend together.
    batch_ = Batch{};
    Upstream* held = upstream_.get();
    if (held != nullptr) {
        held->hold_commands();
    }
    while (phase_ != Phase::closing && !closing_queued_ && wait_ == Wait::none &&
           in_pos_ < in_.size()) {
        if (!process_one() || alive.expired()) {
            break;
        }
    }
    if (alive.expired()) {
        return;
    }
    if (held != nullptr && held == upstream_.get()) {
        // may fail the backend, and with it this session
        const bool together = batch_.commands > 1 && batch_.ends_with_data;
        group_in_flight_ = group_in_flight_ || (together && held->pipelining());
        held->release_commands(together);
        if (alive.expired()) {
            return;
        }
    }
    processing_ = false;
    if (in_pos_ > 0) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
    }
    if (in_.empty() && phase_ != Phase::data) {
        // An idle session keeps no input buffer; during DATA it is kept, since the
        // next read would only allocate and fault it in again.
        in_.shrink_to_fit();
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
        case smtp::LineReader::Kind::runaway:
            // A "line" tens of KiB long is no mistake: stop reading and close.
            ops::log(LogLevel::warn, "line_too_long",
                     {{"session", id_},
                      {"client", client_ip_},
                      {"bytes", std::uint64_t{smtp::kMaxSkippedLine}},
                      {"phase", phase_ == Phase::sasl ? "auth" : "command"}});
            sasl_.reset();
            phase_ = Phase::command;
            closing_queued_ = true;
            reply(ReplyId::line_too_long, After::close);
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
    if (command.bad_bytes != smtp::BadBytes::none) {
        // Refused before any handler looks at it: such a line never reaches the backend
        // (not even inside an EHLO name passed on by XCLIENT).
        ops::log(LogLevel::info, "command.refused",
                 {{"session", id_},
                  {"client", client_ip_},
                  {"reason", command.bad_bytes == smtp::BadBytes::control ? "control character"
                                                                          : "8-bit byte"}});
        reply(ReplyId::bad_characters);
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
    esmtp_ = extended;
    helo_name_ = std::string(command.argument);
    // What the backends support now is what this client is offered from here on.
    offer_ = client_offer(host_.runtime().backends.common().get(), cfg().limits.message_size);
    const std::string& host = cfg().server.hostname;
    if (!extended) {
        reply_text(smtp::single(250, host));
        return;
    }
    // PIPELINING is the gateway's own; the rest only when the backends have it too.
    std::vector<std::string> lines{host, "PIPELINING",
                                   fmt::format("SIZE {}", offer_->parameters.size_limit)};
    if (offer_->parameters.eight_bit_mime) {
        lines.emplace_back("8BITMIME");
    }
    if (offer_->parameters.smtputf8) {
        lines.emplace_back("SMTPUTF8");
    }
    if (offer_->parameters.dsn) {
        lines.emplace_back("DSN");
    }
    if (offer_->enhanced_status_codes) {
        lines.emplace_back("ENHANCEDSTATUSCODES");
    }
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
    begin_tls();
}

void ClientSession::begin_tls() {
    tls_ = std::make_unique<tls::TlsSession>(snapshot_->tls.get(), tls::TlsSession::Role::server);
    // The signature comes back on this loop; the handshake goes on as if bytes arrived.
    tls_->sign_with(host_.signer(), [this] { on_stream_data({}); });
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
    std::string mechanism(mechanism_name);
    // The credentials wait here (not in the callback: they are move-only secrets) while
    // the shared state answers whether a lockout runs.
    pending_credentials_.emplace(std::move(credentials));
    host_.shared_state().check(cfg().state, client_ip_, name, auth::GuardSettings::from(cfg().auth),
                               resume<std::optional<state::LoginCheck>>(
                                   [this, name, mechanism](std::optional<state::LoginCheck> check) {
                                       smtp::Credentials held = std::move(*pending_credentials_);
                                       pending_credentials_.reset();
                                       if (!check) {
                                           state_unavailable("auth", name);
                                           return;
                                       }
                                       verify_unlocked(std::move(held), name, mechanism, *check);
                                   }));
}

void ClientSession::verify_unlocked(smtp::Credentials credentials, std::string name,
                                    std::string mechanism, const state::LoginCheck& check) {
    const bool authzid_ok =
        credentials.authzid.empty() || credentials.authzid.view() == credentials.authcid.view();
    // Locked out: no Argon2id at all, and the same 535 after the same delay as a wrong
    // password, so that even the right password learns nothing.
    if (check.scope != auth::LockScope::none) {
        fail_auth(name, mechanism,
                  "locked out (" + std::string(auth::scope_name(check.scope)) + ")", false);
        return;
    }
    const auth::User* user = snapshot_->users->find(name);
    // An unknown user costs the same Argon2id work as a known one.
    std::string hash = user != nullptr ? user->password_hash : auth::dummy_hash(cfg().auth.hashing);
    // The digest finds the credential cache entry and lets identical logins that
    // overlap share one Argon2id run.
    const auth::CredentialCache::Digest digest =
        abuse_.credentials.digest(snapshot_->generation, name, hash, credentials.password.view());
    const bool cache = user != nullptr && cfg().auth.cache_ttl.count() > 0;
    if (cache && abuse_.credentials.contains(name, digest)) {
        finish_verification(true, std::move(name), std::move(mechanism), authzid_ok, true,
                            std::nullopt);
        return;
    }
    std::optional<auth::CredentialCache::Digest> remember;
    if (cache) {
        remember = digest;
    }
    // Addresses that logged in recently have a quarter of the verification queue kept
    // for them and pass the others in it, so a flood of guesses from elsewhere neither
    // locks them out nor makes them wait behind it.
    const bool known_good = check.known_good;
    const std::uint64_t max_pending = cfg().auth.max_pending_verifications;
    const std::uint64_t limit = known_good ? max_pending : max_pending - max_pending / 4;
    wait_ = Wait::auth_verify;
    verification_ =
        abuse_.verifier(cfg().auth.hash_threads)
            .start(host_.loop(), limit, std::move(hash), std::move(credentials.password), &digest,
                   known_good, [this, name, authzid_ok, mechanism, remember](bool matched) {
                       finish_verification(matched, name, mechanism, authzid_ok, false, remember);
                   });
    if (!verification_) {
        wait_ = Wait::none;
        ops::metrics().auth(mechanism_of(mechanism), ops::AuthResult::busy);
        ops::log(LogLevel::warn, "auth",
                 {{"session", id_},
                  {"client", client_ip_},
                  {"user", name},
                  {"mechanism", mechanism},
                  {"result", "busy"},
                  {"reason", "too many password verifications pending"}});
        record_failure(name, true);
        reply(ReplyId::auth_busy);
    }
}

void ClientSession::finish_verification(bool matched, std::string name, std::string mechanism,
                                        bool authzid_ok, bool cached,
                                        std::optional<auth::CredentialCache::Digest> digest) {
    verification_.reset();
    const auth::User* user = snapshot_->users->find(name);
    std::string reason;
    if (user == nullptr) {
        reason = "unknown user";
    } else if (!matched) {
        reason = "wrong password";
    } else if (user->disabled) {
        reason = "user disabled";
    } else if (!authzid_ok) {
        reason = "authorization identity differs";
    }
    if (!reason.empty()) {
        fail_auth(name, mechanism, reason, true);
        return;
    }
    // A lockout that began while this verification was running refuses it too.
    host_.shared_state().check(
        cfg().state, client_ip_, name, auth::GuardSettings::from(cfg().auth),
        resume<std::optional<state::LoginCheck>>(
            [this, name, mechanism, cached, digest](std::optional<state::LoginCheck> check) {
                if (!check) {
                    state_unavailable("auth", name);
                } else if (check->scope != auth::LockScope::none) {
                    fail_auth(name, mechanism,
                              "locked out (" + std::string(auth::scope_name(check->scope)) + ")",
                              false);
                } else {
                    accept_login(snapshot_->users->find(name), name, mechanism, cached, digest);
                }
            }));
}

void ClientSession::accept_login(const auth::User* user, const std::string& name,
                                 const std::string& mechanism, bool cached,
                                 const std::optional<auth::CredentialCache::Digest>& digest) {
    const auth::GuardSettings guard = auth::GuardSettings::from(cfg().auth);
    user_ = user;
    rate_limits_ = auth::effective_rate_limits(*user, cfg().rate_limits);
    preauth_timer_.stop();
    host_.shared_state().record_success(cfg().state, client_ip_, guard);
    if (digest) {
        abuse_.credentials.remember(name, *digest, cfg().auth.cache_ttl);
    }
    ops::metrics().auth(mechanism_of(mechanism), ops::AuthResult::success);
    ops::log(LogLevel::info, "auth",
             {{"session", id_},
              {"client", client_ip_},
              {"user", name},
              {"mechanism", mechanism},
              {"result", "success"},
              {"cached", cached}});
    wait_ = Wait::none;
    // The backend session is opened now (MAIL is usually next) and, as nginx does, 235
    // goes out once it is up or has failed: the client's first transaction then never
    // waits for the backend's greeting and EHLO. Commands pipelined behind AUTH are
    // read meanwhile and wait in the backend connection's queue as usual.
    if (ensure_upstream() && !upstream_->ready()) {
        replies_.push_back(PendingReply{false, std::string(smtp::reply(ReplyId::auth_ok)),
                                        Expect::backend_ready, After::none, std::nullopt});
    } else {
        reply(ReplyId::auth_ok);
    }
    process_input();
}

// Counts a failed login (`busy`: a 454, against the address alone) in the shared
// state. Each lockout is logged once, by the session whose attempt started it; the
// answer may come after this session ended, so the callback holds copies only.
void ClientSession::record_failure(const std::string& name, bool busy) {
    host_.shared_state().record_failure(
        cfg().state, client_ip_, name, auth::GuardSettings::from(cfg().auth), busy,
        [session = id_, client = client_ip_](std::vector<auth::LockoutStarted> started) {
            for (const auto& lockout : started) {
                ops::metrics().lockout_started();
                ops::log(LogLevel::warn, "auth.lockout",
                         {{"session", session},
                          {"client", client},
                          {"scope", auth::scope_name(lockout.scope)},
                          {"key", lockout.key},
                          {"failures", lockout.failures},
                          {"duration_ms", ms(lockout.duration)}});
            }
        });
}

// [state] on_state_error = "fail-closed" and the shared state did not answer: the
// operation is refused with a temporary error, never decided without the state.
void ClientSession::state_unavailable(std::string_view operation, std::string_view user) {
    ops::log(LogLevel::warn, "state.refused",
             {{"session", id_}, {"client", client_ip_}, {"user", user}, {"operation", operation}});
    reply(ReplyId::state_unavailable);
}

// Logs the failure, counts it towards lockouts when `counted` (a refusal because of a
// running lockout is not), and answers 535 after failure_delay.
void ClientSession::fail_auth(const std::string& name, const std::string& mechanism,
                              std::string_view reason, bool counted) {
    // Not counted = refused because a lockout is running.
    ops::metrics().auth(mechanism_of(mechanism),
                        counted ? ops::AuthResult::failure : ops::AuthResult::locked_out);
    ops::log(LogLevel::warn, "auth",
             {{"session", id_},
              {"client", client_ip_},
              {"user", name},
              {"mechanism", mechanism},
              {"result", "failure"},
              {"reason", reason}});
    if (counted) {
        record_failure(name, false);
    }
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
    const smtp::ParamOutcome params = smtp::check_mail(path, offer().parameters);
    if (params.verdict != smtp::ParamVerdict::ok) {
        reply(param_reply(params.verdict));
        return;
    }
    const std::string& forwarded_params = params.forward;
    const std::optional<std::uint64_t> declared_size = declared_message_size(path);
    if (!policy::sender_allowed(user_->name, user_->senders, path.address)) {
        ops::metrics().sender_rejected(ops::SenderCheck::envelope);
        ops::log(LogLevel::warn, "sender.refused",
                 {{"session", id_}, {"user", user_->name}, {"from", path.address}});
        reply(ReplyId::sender_not_owned);
        return;
    }
    // A declared size that the byte limit can never or not now take is refused before
    // the message is sent; only then is the message counted.
    auto open = [this, address = path.address, forwarded = forwarded_params,
                 smtputf8 = params.smtputf8](bool allowed) {
        if (!allowed || !ensure_upstream()) {
            return;
        }
        mail_open_ = true;
        mail_from_ = address;
        rcpt_sent_ = 0;
        rcpt_accepted_ = 0;
        smtputf8_ = smtputf8;
        forward(fmt::format("MAIL FROM:<{}>{}\r\n", address, forwarded), Expect::mail,
                cfg().backend.reply_timeout);
    };
    auto count_message = [this, open](bool allowed) {
        if (!allowed) {
            return;
        }
        check_rate(policy::Limit::messages, rate_limits_.messages, 1, ReplyId::rate_limited, open);
    };
    if (declared_size) {
        check_rate(policy::Limit::bytes, rate_limits_.bytes, *declared_size, ReplyId::rate_limited,
                   count_message);
    } else {
        count_message(true);
    }
}

// Checks (and for messages and recipients, takes from) the user's bucket in the shared
// state, then calls `then(allowed)`; when the limit is reached it first queues
// `reply_id` with a retry hint. The bytes limit is only peeked at here: bytes are
// taken at end of DATA. A cost the bucket can never hold gets 552 5.3.4 like any
// message over the size limit. Fail-closed without an answer: 451 4.3.0.
void ClientSession::check_rate(policy::Limit limit, const config::Rate& rate, std::uint64_t cost,
                               ReplyId reply_id, std::function<void(bool)> then) {
    if (rate.unlimited()) {
        then(true);
        return;
    }
    const bool take = limit != policy::Limit::bytes || reply_id == ReplyId::rate_limited_data;
    host_.shared_state().take(
        cfg().state, user_->name, limit, rate, cost, take,
        resume<std::optional<policy::RateDecision>>(
            [this, limit, cost, reply_id, then](std::optional<policy::RateDecision> decision) {
                if (!decision) {
                    state_unavailable(policy::limit_name(limit), user_->name);
                    then(false);
                    return;
                }
                then(!rate_refused(limit, cost, reply_id, *decision));
            }));
}

// Logs and answers a refused rate decision; false when it was allowed.
bool ClientSession::rate_refused(policy::Limit limit, std::uint64_t cost, ReplyId reply_id,
                                 const policy::RateDecision& decision) {
    if (decision.allowed) {
        return false;
    }
    const auto retry = static_cast<std::uint64_t>(decision.retry_after.count());
    ops::metrics().rate_limited(rate_limit_kind(limit));
    ops::log(LogLevel::warn, "rate_limit",
             {{"session", id_},
              {"user", user_->name},
              {"limit", policy::limit_name(limit)},
              {"cost", cost},
              {"retry_after_s", retry},
              {"never", decision.never}});
    if (decision.never) {
        reply(ReplyId::message_too_big);
    } else {
        reply_text(smtp::with_retry_hint(reply_id, policy::limit_name(limit), retry));
    }
    return true;
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
    const smtp::ParamOutcome params = smtp::check_rcpt(*parsed.path, offer().parameters, smtputf8_);
    if (params.verdict != smtp::ParamVerdict::ok) {
        reply(param_reply(params.verdict));
        return;
    }
    if (rcpt_sent_ >= cfg().limits.recipients_per_message) {
        reply(ReplyId::too_many_recipients);
        return;
    }
    check_rate(policy::Limit::recipients, rate_limits_.recipients, 1, ReplyId::rate_limited,
               [this, line = fmt::format("RCPT TO:<{}>{}\r\n", parsed.path->address,
                                         params.forward)](bool allowed) mutable {
                   if (!allowed) {
                       return;
                   }
                   if (!mail_open_ || !upstream_) {  // the backend went while we waited
                       reply(ReplyId::backend_lost);
                       return;
                   }
                   ++rcpt_sent_;
                   forward(std::move(line), Expect::rcpt, cfg().backend.reply_timeout);
               });
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
    const bool replies_owed = has_unready_replies();
    const bool pipelined = batch_.commands > 0 && upstream_ && upstream_->pipelining();
    if (replies_owed && !(rcpt_sent_ > 0 && pipelined)) {
        // Without pipelining, DATA goes to the backend only once it accepted a
        // recipient: wait for the answers to the pipelined MAIL/RCPT, then decide. With
        // it, DATA follows them in the same write, and a backend with no accepted
        // recipient refuses it (RFC 2920); one that says 354 then is out of step.
        wait_ = Wait::data_barrier;
        return;
    }
    if (!replies_owed && (rcpt_accepted_ == 0 || !upstream_)) {
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
    smtputf8_ = false;
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
    if (cfg().policy.header_from != config::HeaderFrom::off) {
        header_from_.emplace(true);  // it reads the re-encoded, dot-stuffed chunks
    }
    data_timer_.start(ms(cfg().limits.data_timeout), [this] { on_data_timeout(); });
}

// Feeds the re-encoded chunk to the header From scanner (at the end of the message,
// finishes it) and aborts the transaction once it refuses.
void ClientSession::check_header_from(std::string_view chunk, bool at_end) {
    if (!header_from_) {
        return;
    }
    using Verdict = smtp::HeaderFromScanner::Verdict;
    Verdict verdict = header_from_->feed(chunk);
    if (verdict == Verdict::pending && at_end) {
        verdict = header_from_->finish();
    }
    if (verdict == Verdict::pending) {
        return;
    }
    const std::string address = header_from_->address();
    header_from_.reset();
    if (data_failure_ != DataFailure::none) {
        return;  // already refused for another reason
    }
    if (verdict != Verdict::one) {
        abort_transaction(DataFailure::header_from_invalid,
                          "header From refused: " + std::string(smtp::verdict_name(verdict)));
        return;
    }
    const bool allowed = cfg().policy.header_from == config::HeaderFrom::envelope
                             ? !mail_from_.empty() && policy::same_address(address, mail_from_)
                             : policy::sender_allowed(user_->name, user_->senders, address);
    if (!allowed) {
        ops::metrics().sender_rejected(ops::SenderCheck::header_from);
        abort_transaction(DataFailure::header_from_not_allowed,
                          "header From <" + address + "> not allowed");
    }
}

bool ClientSession::pump_data() {
    // A chunk of plain lines (the usual case) goes to the backend straight from the
    // input buffer; only other chunks are re-encoded into data_out_.
    const auto result =
        decoder_->next_chunk(std::string_view(in_).substr(in_pos_), data_out_, true);
    if (result.consumed == 0 && !result.finished) {
        return false;  // an unfinished line: wait for more
    }
    const std::string_view out = result.wire;
    in_pos_ += result.consumed;
    // Judge the chunk before any of it leaves: a chunk with a bare line ending, past
    // the size limit or with a refused header From never reaches the backend.
    const std::uint64_t message_limit = offer().parameters.size_limit;  // SIZE advertised
    std::uint64_t size_limit = message_limit;
    if (!rate_limits_.bytes.unlimited()) {
        size_limit = std::min(size_limit, rate_limits_.bytes.count);  // could never pass
    }
    if (data_failure_ == DataFailure::none) {
        if (decoder_->message_size() > size_limit) {
            abort_transaction(DataFailure::too_big, size_limit < message_limit
                                                        ? "message exceeds the bytes rate limit"
                                                        : "message exceeds message_size");
        } else if (decoder_->longest_line() > cfg().limits.max_line_length) {
            // Checked before the chunk leaves, so the backend never gets more than
            // max_line_length octets of any line, and never the end of that message.
            abort_transaction(DataFailure::line_too_long, "text line over max_line_length");
        } else if (decoder_->bare_line_ending_seen() &&
                   cfg().limits.bare_line_endings == config::BareLineEndings::reject) {
            abort_transaction(DataFailure::bare_line_ending, "bare CR or LF in message");
        } else {
            check_header_from(out, result.finished);
        }
    }
    if (result.finished) {
        finish_data();  // sends the last chunk together with the end-of-data line
    } else if (data_failure_ == DataFailure::none && upstream_ && !out.empty()) {
        upstream_->send_data(out);
    }
    data_out_.clear();  // keeps its capacity for the next chunk; finish_data releases it
    update_read_pressure();
    return result.consumed > 0 || result.finished;
}

// Aborts the backend transaction by closing the backend connection: an end-of-data of
// our own would deliver a partial message.
void ClientSession::abort_transaction(DataFailure failure, std::string_view why) {
    header_from_.reset();
    data_failure_ = failure;
    ops::log(LogLevel::warn, "message.aborted",
             {{"session", id_}, {"user", user_ != nullptr ? user_->name : ""}, {"reason", why}});
    upstream_.reset();
}

void ClientSession::finish_data() {
    // The last chunk is owned from here on by whoever sends it: with a shared state the
    // byte limit's answer comes later, when data_out_ may hold another message's data.
    std::string tail = std::exchange(data_out_, std::string());
    phase_ = Phase::command;
    data_timer_.stop();
    header_from_.reset();
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
        case DataFailure::line_too_long:
            reply(ReplyId::data_line_too_long);
            return;
        case DataFailure::backend_lost:
            reply(ReplyId::backend_lost);
            return;
        case DataFailure::header_from_invalid:
            reply(ReplyId::header_from_invalid);
            return;
        case DataFailure::header_from_not_allowed:
            reply(ReplyId::header_from_not_allowed);
            return;
        case DataFailure::none:
            break;
    }
    // The byte limit is taken now that the size is known. Over it, the message is not
    // committed: the backend connection is closed instead of ending the data.
    check_rate(
        policy::Limit::bytes, rate_limits_.bytes, size, ReplyId::rate_limited_data,
        [this, record = std::move(record), tail = std::move(tail)](bool allowed) mutable {
            if (!allowed) {
                ops::log(LogLevel::warn, "message.aborted",
                         {{"session", id_}, {"user", user_->name}, {"reason", "bytes rate limit"}});
                upstream_.reset();
                return;
            }
            if (!upstream_) {  // the backend went while the shared state answered
                reply(ReplyId::backend_lost);
                return;
            }
            // The last chunk and the end-of-data line in one write.
            tail += smtp::kEndOfData;
            end_of_data_sent_ = std::chrono::steady_clock::now();
            forward(std::move(tail), Expect::end_of_data, cfg().backend.data_reply_timeout);
            replies_.back().message = std::move(record);
        });
}

// ------------------------------------------------------------------- backend

bool ClientSession::ensure_upstream() {
    if (upstream_) {
        return true;
    }
    ClientFacts facts;  // what XCLIENT or a PROXY header tells the backend
    facts.ip = client_ip_;
    facts.port = client_port_;
    facts.local_ip = local_ip_;
    facts.local_port = local_port_;
    facts.helo = helo_name_;
    facts.esmtp = esmtp_;
    facts.login = user_ != nullptr ? user_->name : std::string();
    UpstreamOptions options{
        snapshot_->backend_tls.get(), &host_.runtime().backends, false, {}, id_};
    upstream_ = std::make_unique<Upstream>(host_.loop(), cfg().backend, cfg().server.hostname,
                                           std::move(facts), std::move(options),
                                           static_cast<UpstreamEvents&>(*this));
    std::weak_ptr<bool> alive = alive_;
    upstream_->start();  // may fail at once and reset upstream_
    return !alive.expired() && upstream_ != nullptr;
}

const ClientOffer& ClientSession::offer() {
    if (!offer_) {  // a client that never said EHLO
        offer_ = client_offer(host_.runtime().backends.common().get(), cfg().limits.message_size);
    }
    return *offer_;
}

void ClientSession::forward(std::string line, Expect expect, config::Duration timeout) {
    ++batch_.commands;
    batch_.ends_with_data = expect == Expect::data;
    expect_backend(expect);
    upstream_->send_command(std::move(line), timeout);
}

void ClientSession::on_upstream_reply(const smtp::BackendReply& reply) {
    auto it = std::find_if(replies_.begin(), replies_.end(),
                           [](const PendingReply& r) { return !r.ready && owed_by_backend(r); });
    if (it == replies_.end()) {
        on_upstream_failed(UpstreamFailure::unavailable, "reply without a pending command");
        return;
    }
    if (const std::string_view why = misfit(it->expect, reply); !why.empty()) {
        on_upstream_failed(UpstreamFailure::protocol,
                           fmt::format("backend answered {} with {}", why, reply.code));
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
            group_in_flight_ = false;  // the group was answered in step
            wait_ = Wait::none;
            if (reply.code == 354) {
                it->text = std::string(smtp::reply(ReplyId::data_go));
                start_data_phase();
            }
            break;
        case Expect::end_of_data:
            if (reply.positive()) {
                bad_commands_ = 0;  // a client that delivers is not a prober
            }
            ops::metrics().end_of_data_latency(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - end_of_data_sent_)
                    .count());
            ops::metrics().message(reply.positive()   ? ops::MessageResult::accepted
                                   : reply.code < 500 ? ops::MessageResult::temporary_failure
                                                      : ops::MessageResult::permanent_failure);
            if (reply.positive() && it->message) {
                ops::metrics().bytes_relayed(it->message->size);
            }
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
        case Expect::backend_ready:  // never found above
            break;
    }
    // DATA waiting behind this reply is sent first, so that a pipelined MAIL, RCPT,
    // DATA is answered in one write (flush_replies holds replies while any is owed).
    std::weak_ptr<bool> alive = alive_;
    release_wait();
    if (alive.expired()) {
        return;
    }
    flush_replies();
    if (alive.expired()) {
        return;
    }
    process_input();
    if (!alive.expired()) {
        maybe_finish_drain();
    }
}

// A reply that cannot be the answer to the command it is matched with: what that
// command was, or "" when it fits. It shows a shifted reply sequence (an extra or a
// missing reply) at the latest at the DATA that ends a pipelined group, before any
// reply of the group is relayed and before any message content is sent.
std::string_view ClientSession::misfit(Expect expect, const smtp::BackendReply& reply) const {
    const bool intermediate = reply.code >= 300 && reply.code < 400;
    if (expect == Expect::data) {
        if (reply.code == 354 && rcpt_accepted_ == 0) {
            return "DATA without an accepted recipient";
        }
        return reply.code == 354 || reply.code >= 400 ? "" : "DATA";
    }
    return intermediate ? "a command that takes no data" : "";
}

void ClientSession::on_upstream_ready(const BackendCapabilities&) {
    release_backend_ready();
    flush_replies();
}

// The held 235 is true either way: the login succeeded. After a failure the next
// transaction opens a new backend connection.
void ClientSession::release_backend_ready() {
    for (auto& pending : replies_) {
        if (pending.expect == Expect::backend_ready) {
            pending.ready = true;
        }
    }
}

void ClientSession::on_upstream_failed(UpstreamFailure failure, std::string_view reason) {
    const std::string backend(upstream_ ? upstream_->endpoint() : cfg().backend.address.text());
    ops::log(LogLevel::error, "backend.error",
             {{"session", id_},
              {"client", client_ip_},
              {"backend", backend},
              {"reason", reason},
              {"failure", failure == UpstreamFailure::identity   ? "identity"
                          : failure == UpstreamFailure::tls      ? "tls"
                          : failure == UpstreamFailure::protocol ? "protocol"
                                                                 : "unavailable"}});
    upstream_.reset();
    // A pipelined group's replies are only trusted once its DATA was answered in step:
    // out of step before that, the backend's replies held for the group are withdrawn
    // (they may belong to other commands) and the client is told 421 instead.
    const bool distrust_held =
        std::exchange(group_in_flight_, false) && failure == UpstreamFailure::protocol;
    bool close_after = false;
    bool told = false;  // some command of the client's got its answer here
    release_backend_ready();
    for (auto& pending : replies_) {
        if (pending.ready && !(distrust_held && owed_by_backend(pending))) {
            continue;
        }
        pending.ready = true;
        told = told || pending.expect != Expect::silent;
        switch (pending.expect) {
            case Expect::end_of_data:
                ops::metrics().message(ops::MessageResult::temporary_failure);
                pending.text = std::string(smtp::reply(ReplyId::backend_lost));
                break;
            case Expect::data:
                pending.text = std::string(smtp::reply(ReplyId::backend_lost));
                break;
            case Expect::silent:
                pending.text.clear();
                break;
            default:
                if (!close_after) {
                    pending.text = std::string(smtp::reply(upstream_failure_reply(failure)));
                    pending.after = After::close;
                    close_after = true;
                } else {
                    pending.text.clear();
                }
        }
    }
    if (phase_ == Phase::data && data_failure_ == DataFailure::none) {
        // Also for a backend that answered in the middle of DATA (e.g. an early 554):
        // its reply is not relayed; the client's "." gets 451 4.4.2 and the next
        // transaction opens a new backend connection.
        data_failure_ = DataFailure::backend_lost;
    } else if (phase_ != Phase::data) {
        reset_transaction();
        if (failure == UpstreamFailure::protocol && !told && !closing_queued_) {
            // Out of step while no command was waiting for it: the client is told
            // anyway and the session ends, rather than silently reconnecting.
            closing_queued_ = true;
            reply(ReplyId::backend_out_of_step, After::close);
        }
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
    count_bad_command(id);
}

// Protocol errors count towards [limits] max_bad_commands; at the limit the session
// gets 421 4.7.0 after the error reply, and no further command is read.
void ClientSession::count_bad_command(ReplyId id) {
    switch (id) {
        case ReplyId::syntax_unknown:
        case ReplyId::bad_characters:
        case ReplyId::line_too_long:
        case ReplyId::param_syntax:
        case ReplyId::bad_base64:
        case ReplyId::not_implemented:
        case ReplyId::bad_sequence:
        case ReplyId::already_authenticated:
        case ReplyId::mechanism_unknown:
        case ReplyId::auth_required:
        case ReplyId::starttls_first:
        case ReplyId::encryption_required:
        case ReplyId::bad_address:
        case ReplyId::param_unknown:
            break;
        default:
            return;
    }
    if (closing_queued_ || phase_ == Phase::closing ||
        ++bad_commands_ < cfg().limits.max_bad_commands) {
        return;
    }
    ops::log(LogLevel::warn, "bad_commands",
             {{"session", id_}, {"client", client_ip_}, {"count", bad_commands_}});
    closing_queued_ = true;
    reply(ReplyId::too_many_bad_commands, After::close);
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
// happen right after one (closing, switching to TLS). While a reply to a command the
// client already sent is still owed by the backend, the ready ones are held
// (RFC 2920 allows it): a pipelined group is answered with one write and one TLS
// record. A client that waits for each reply has only one command outstanding, so
// it is never held up by this.
void ClientSession::flush_replies() {
    if (phase_ != Phase::closing && has_unready_replies()) {
        return;
    }
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
        ops::log(LogLevel::info, "tls.failed",
                 {{"session", id_}, {"client", client_ip_}, {"error", tls_->error()}});
    }
    client_->write(std::move(cipher));
}

// ----------------------------------------------------------------- lifecycle

void ClientSession::arm_idle_timer() {
    if (phase_ == Phase::closing) {
        return;
    }
    if (wait_ != Wait::none) {
        idle_timer_.disarm();  // we owe the client an answer; the backend timeout applies
        return;
    }
    idle_timer_.arm(ms(cfg().limits.command_timeout), [this] {
        ops::log(LogLevel::info, "timeout",
                 {{"session", id_}, {"client", client_ip_}, {"kind", "idle"}});
        if (phase_ == Phase::data) {
            upstream_.reset();  // abort the unfinished message
        }
        replies_.clear();
        reply(ReplyId::timeout, After::close);
    });
}

// [limits] preauth_timeout: a client that has not authenticated by now is dropped,
// however busy it keeps the connection (a byte a second, endless failed AUTHs).
void ClientSession::on_preauth_timeout() {
    if (user_ != nullptr || phase_ == Phase::closing) {
        return;
    }
    ops::log(LogLevel::info, "timeout",
             {{"session", id_}, {"client", client_ip_}, {"kind", "preauth"}});
    verification_.reset();
    pending_credentials_.reset();
    auth_timer_.stop();
    sasl_.reset();
    phase_ = Phase::command;
    wait_ = Wait::none;  // a shared-state answer still on its way is dropped by resume()
    replies_.clear();
    closing_queued_ = true;
    reply(ReplyId::auth_deadline, After::close);
}

// [limits] data_timeout: DATA must end this long after 354, however slowly it trickles.
void ClientSession::on_data_timeout() {
    if (phase_ != Phase::data) {
        return;
    }
    ops::log(LogLevel::info, "timeout",
             {{"session", id_}, {"client", client_ip_}, {"kind", "data"}});
    ops::log(LogLevel::warn, "message.aborted",
             {{"session", id_},
              {"user", user_ != nullptr ? user_->name : ""},
              {"reason", "data_timeout"}});
    upstream_.reset();  // abort the unfinished message
    decoder_.reset();
    header_from_.reset();
    phase_ = Phase::command;
    replies_.clear();
    closing_queued_ = true;
    reply(ReplyId::data_timeout, After::close);
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
    idle_timer_.disarm();
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
    idle_timer_.disarm();
    auth_timer_.stop();
    close_timer_.stop();
    preauth_timer_.stop();
    data_timer_.stop();
    client_->set_handler(nullptr);
    client_->stop_reading();
    verification_.reset();
    if (upstream_ && upstream_->ready() && !mail_open_) {
        upstream_->release_commands(false);  // closing inside process_input's batch
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
