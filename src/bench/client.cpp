#include "bench/client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <cctype>

namespace portcullis::bench {
namespace {

constexpr std::uint64_t kQuitGraceMs = 2000;  // after 221, wait this long for the close

std::uint64_t to_ms(double seconds) {
    return static_cast<std::uint64_t>(seconds * 1000.0);
}

// First word of an EHLO keyword line, upper-cased ("AUTH PLAIN LOGIN" -> "AUTH").
std::string keyword(std::string_view line) {
    std::string word(line.substr(0, line.find(' ')));
    std::transform(word.begin(), word.end(), word.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return word;
}

bool offers(const smtp::BackendReply& ehlo, std::string_view wanted) {
    return std::any_of(ehlo.lines.begin() + (ehlo.lines.empty() ? 0 : 1), ehlo.lines.end(),
                       [&](const std::string& line) { return keyword(line) == wanted; });
}

std::string reply_summary(const smtp::BackendReply& reply) {
    std::string text = std::to_string(reply.code);
    if (!reply.lines.empty() && !reply.lines.front().empty()) {
        text += " " + reply.lines.front().substr(0, 60);
    }
    return text;
}

}  // namespace

Client::Client(uv_loop_t* loop, const ClientSetup& setup, ClientEvents& events)
    : loop_(loop), setup_(setup), events_(events), reply_timer_(loop), defer_timer_(loop) {}

Client::~Client() = default;

void Client::set_first_session_quota(unsigned messages) {
    first_quota_ = std::max(1u, messages);
}

int Client::expected_code(Expect e) {
    switch (e) {
        case Expect::greeting:
        case Expect::starttls:
            return 220;
        case Expect::auth:
            return 235;
        case Expect::auth_login:
        case Expect::login_user:
            return 334;
        case Expect::data:
            return 354;
        case Expect::quit:
            return 221;
        case Expect::ehlo:
        case Expect::mail:
        case Expect::rcpt:
        case Expect::dot:
            return 250;
    }
    return 0;
}

const char* Client::expect_name(Expect e) {
    switch (e) {
        case Expect::greeting:
            return "greeting";
        case Expect::ehlo:
            return "EHLO";
        case Expect::starttls:
            return "STARTTLS";
        case Expect::auth:
            return "AUTH";
        case Expect::auth_login:
            return "AUTH LOGIN";
        case Expect::login_user:
            return "AUTH LOGIN user";
        case Expect::mail:
            return "MAIL";
        case Expect::rcpt:
            return "RCPT";
        case Expect::data:
            return "DATA";
        case Expect::dot:
            return "end of data";
        case Expect::quit:
            return "QUIT";
    }
    return "?";
}

// ---------------------------------------------------------------- connection lifecycle

void Client::connect() {
    teardown();
    if (first_quota_ > 0) {
        session_quota_ = std::exchange(first_quota_, 0u);
    }
    over_ = false;
    ready_reported_ = false;
    connect_started_ns_ = uv_hrtime();
    stream_ = std::make_unique<StampedStream>(loop_);
    stream_->set_handler(this);
    stream_->connect(reinterpret_cast<const sockaddr*>(&setup_.address),
                     [this](int status) { on_connected(status); });
    reply_timer_.start(to_ms(setup_.options->timeout_s), [this] { fail("timeout connecting"); });
}

void Client::on_connected(int status) {
    if (over_) {
        return;
    }
    if (status != 0) {
        fail(std::string("connect: ") + uv_err_name(status));
        return;
    }
    stream_->start_reading();
    if (setup_.options->mode == Mode::implicit && !start_tls()) {
        return;
    }
    expect(Expect::greeting);
}

void Client::stop() {
    over_ = true;
    wants_message_ = false;
    reply_timer_.stop();
    defer_timer_.stop();
    teardown();
}

void Client::teardown() {
    if (stream_) {
        events_.on_reads(stream_->reads(), stream_->stamped_reads());
    }
    stream_.reset();
    if (tls_ && setup_.options->resume) {
        if (auto issued = tls_->take_issued_session()) {
            resume_session_ = std::move(issued);
        }
    }
    tls_.reset();
    parser_ = smtp::ReplyParser();
    in_.clear();
    expected_.clear();
    upgrade_pending_ = false;
    quitting_ = false;
    pipelining_ = false;
    wants_message_ = false;
    idle_ready_ = false;
    sent_in_session_ = 0;
    session_quota_ = setup_.options->messages_per_connection;
}

void Client::fail(std::string reason) {
    if (over_) {
        return;
    }
    events_.on_failure(reason);
    end_connection(true);
}

// Never destroys the stream here: we may be inside one of its callbacks. The deferred
// timer tears the connection down (and maybe reconnects) on a later loop turn.
void Client::end_connection(bool failed) {
    if (over_) {
        return;
    }
    over_ = true;
    wants_message_ = false;
    reply_timer_.stop();
    if (stream_) {
        stream_->stop_reading();
    }
    const auto again = events_.on_connection_over(*this, failed);
    defer_timer_.start(again.value_or(0), [this, reconnect = again.has_value()] {
        teardown();
        if (reconnect) {
            connect();
        }
    });
}

// ---------------------------------------------------------------- input

void Client::on_stream_data(std::string_view data) {
    if (over_) {
        return;
    }
    if (!tls_) {
        receive_plaintext(data);
        return;
    }
    std::string plain;
    std::string to_peer;
    const bool was_established = tls_->established();
    const auto status = tls_->receive(data, plain, to_peer);
    if (!was_established && tls_->established()) {
        events_.on_tls_established(tls_->version(), tls_->cipher(), tls_->resumed());
    }
    if (!to_peer.empty()) {
        stream_->write(std::move(to_peer));
    }
    if (over_) {
        return;  // the write failed
    }
    if (status == tls::TlsSession::Status::failed) {
        fail("tls: " + tls_->error());
        return;
    }
    if (!plain.empty()) {
        receive_plaintext(plain);
    }
    if (!over_ && status == tls::TlsSession::Status::closed) {
        if (quitting_) {
            end_connection(false);
        } else {
            fail("server sent close_notify");
        }
    }
}

void Client::on_stream_end(int status) {
    if (over_) {
        return;
    }
    if (quitting_) {
        end_connection(false);
        return;
    }
    const char* waiting = expected_.empty() ? "nothing" : expect_name(expected_.front());
    if (status == UV_EOF) {
        fail(fmt::format("connection closed by server (waiting for {})", waiting));
    } else {
        fail(fmt::format("{} (waiting for {})", uv_err_name(status), waiting));
    }
}

void Client::receive_plaintext(std::string_view data) {
    in_.append(data);
    std::size_t pos = 0;
    while (!over_ && !upgrade_pending_ && pos < in_.size()) {
        auto result = parser_.next(std::string_view(in_).substr(pos));
        pos += result.consumed;
        if (result.status == smtp::ReplyParser::Status::need_more) {
            break;
        }
        if (result.status == smtp::ReplyParser::Status::error) {
            fail("malformed reply: " + result.error);
            return;
        }
        handle_reply(result.reply);
    }
    if (over_) {
        return;
    }
    in_.erase(0, pos);
    if (upgrade_pending_) {
        if (!in_.empty()) {
            fail("bytes after the STARTTLS reply");
            return;
        }
        begin_tls();
    }
}

void Client::handle_reply(const smtp::BackendReply& reply) {
    if (expected_.empty()) {
        fail("unsolicited reply " + reply_summary(reply));
        return;
    }
    const Expect e = expected_.front();
    expected_.pop_front();
    if (reply.code != expected_code(e)) {
        fail(fmt::format("{}: {}", expect_name(e), reply_summary(reply)));
        return;
    }
    if (expected_.empty()) {
        reply_timer_.stop();
    } else {
        arm_reply_timer();
    }
    advance(e, reply);
}

// The next step after the expected reply to `e` arrived.
void Client::advance(Expect e, const smtp::BackendReply& reply) {
    const Script& s = *setup_.script;
    switch (e) {
        case Expect::greeting:
            return after_greeting();
        case Expect::ehlo:
            return after_ehlo(reply);
        case Expect::starttls:
            upgrade_pending_ = true;  // receive_plaintext() switches once input is consumed
            return;
        case Expect::auth_login:
            return send_expecting(s.login_user, Expect::login_user);
        case Expect::login_user:
            return send_expecting(s.login_pass, Expect::auth);
        case Expect::auth:
            return next_message();
        case Expect::mail:
            if (!pipelining_) {
                note_client_turn();
                send_expecting(s.rcpt, Expect::rcpt);
            }
            return;
        case Expect::rcpt:
            if (!pipelining_) {
                note_client_turn();
                send_expecting(s.data, Expect::data);
            }
            return;
        case Expect::data:
            note_client_turn();
            return send_expecting(s.body, Expect::dot);
        case Expect::dot:
            return message_done();
        case Expect::quit:
            return after_quit();
    }
}

void Client::after_greeting() {
    const Options& o = *setup_.options;
    if (setup_.idle && !(o.mode == Mode::starttls && o.idle_tls)) {
        become_idle();
    } else {
        send_expecting(setup_.script->ehlo, Expect::ehlo);
    }
}

void Client::after_quit() {
    quitting_ = true;
    events_.on_session();
    reply_timer_.start(kQuitGraceMs, [this] { end_connection(false); });
}

void Client::after_ehlo(const smtp::BackendReply& reply) {
    const Options& o = *setup_.options;
    if (o.mode == Mode::starttls && !tls_) {
        if (!offers(reply, "STARTTLS")) {
            fail("STARTTLS not offered");
            return;
        }
        send_expecting(setup_.script->starttls, Expect::starttls);
        return;
    }
    pipelining_ = o.pipelining && offers(reply, "PIPELINING");
    if (setup_.idle) {
        become_idle();
    } else if (o.auth != AuthMech::none) {
        authenticate();
    } else {
        next_message();
    }
}

// Starts the client handshake (offering the last session with --resume); false when
// the connection is over.
bool Client::start_tls() {
    tls_ = std::make_unique<tls::TlsSession>(setup_.tls, tls::TlsSession::Role::client,
                                             setup_.options->server_name);
    if (setup_.options->resume) {
        tls_->offer_session(resume_session_.get());
    }
    std::string hello;
    const auto st = tls_->start(hello);
    if (!hello.empty()) {
        stream_->write(std::move(hello));
    }
    if (over_) {
        return false;
    }
    if (st == tls::TlsSession::Status::failed) {
        fail("tls: " + tls_->error());
        return false;
    }
    return true;
}

void Client::begin_tls() {
    upgrade_pending_ = false;
    if (!start_tls()) {
        return;
    }
    // Held by the TLS session until the handshake is done.
    send_expecting(setup_.script->ehlo, Expect::ehlo);
}

void Client::authenticate() {
    if (setup_.options->auth == AuthMech::plain) {
        send_expecting(setup_.script->auth_plain, Expect::auth);
    } else {
        send_expecting(setup_.script->auth_login, Expect::auth_login);
    }
}

void Client::become_idle() {
    reply_timer_.stop();
    idle_ready_ = true;
    events_.on_idle_ready(*this);
}

// ---------------------------------------------------------------- messages

void Client::next_message() {
    if (!ready_reported_) {
        ready_reported_ = true;
        events_.on_session_ready(uv_hrtime() - connect_started_ns_);
    }
    wants_message_ = true;
    if (events_.may_start_message(*this)) {
        start_message();
    }
}

void Client::start_message() {
    if (over_ || !wants_message_) {
        return;
    }
    wants_message_ = false;
    const Script& s = *setup_.script;
    message_started_ns_ = uv_hrtime();
    client_turns_ns_ = 0;
    if (pipelining_) {
        send(s.transaction);
        expect(Expect::mail);
        expect(Expect::rcpt);
        expect(Expect::data);
    } else {
        send_expecting(s.mail, Expect::mail);
    }
}

// The server's reply is in; until our next request the time is the bench's own.
void Client::note_client_turn() {
    const std::uint64_t now = uv_hrtime();
    const std::uint64_t arrived = stream_->last_receive_ns();
    client_turns_ns_ += now > arrived ? now - arrived : 0;
}

void Client::message_done() {
    const std::uint64_t now = uv_hrtime();
    const std::uint64_t arrived = stream_->last_receive_ns();
    const std::uint64_t server_ns = arrived > message_started_ns_ + client_turns_ns_
                                        ? arrived - message_started_ns_ - client_turns_ns_
                                        : 0;
    events_.on_message(now - message_started_ns_, server_ns, sent_in_session_ == 0);
    if (over_) {
        return;
    }
    if (++sent_in_session_ < session_quota_) {
        next_message();
    } else {
        send_expecting(setup_.script->quit, Expect::quit);
    }
}

// ---------------------------------------------------------------- output

void Client::send(std::string_view bytes) {
    if (over_) {
        return;
    }
    if (!tls_) {
        stream_->write(std::string(bytes));
        return;
    }
    std::string out;
    const auto st = tls_->send(bytes, out);
    if (!out.empty()) {
        stream_->write(std::move(out));
    }
    if (st == tls::TlsSession::Status::failed) {
        fail("tls: " + tls_->error());
    }
}

void Client::send_expecting(std::string_view bytes, Expect e) {
    send(bytes);
    expect(e);
}

void Client::expect(Expect e) {
    if (over_) {
        return;
    }
    expected_.push_back(e);
    if (expected_.size() == 1) {
        arm_reply_timer();
    }
}

void Client::arm_reply_timer() {
    reply_timer_.start(to_ms(setup_.options->timeout_s), [this] {
        fail(fmt::format("timeout waiting for {} reply",
                         expected_.empty() ? "a" : expect_name(expected_.front())));
    });
}

}  // namespace portcullis::bench
