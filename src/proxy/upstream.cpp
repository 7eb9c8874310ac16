#include "proxy/upstream.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "proxy/backends.hpp"
#include "smtp/proxy_header.hpp"
#include "smtp/xclient.hpp"

namespace portcullis::proxy {

namespace {
// A backend reply larger than this without a line end is treated as hostile.
constexpr std::size_t kMaxBufferedReply = 64 * 1024;
// Longest client HELO name repeated to the backend in EHLO after XCLIENT.
constexpr std::size_t kMaxHeloName = 255;

std::uint64_t ms(config::Duration d) {
    return static_cast<std::uint64_t>(d.count());
}

// A HELO name that can be repeated in our own EHLO: a domain or an address literal,
// without spaces or anything a backend could take for more than one argument.
bool repeatable_helo(std::string_view name) {
    return !name.empty() && name.size() <= kMaxHeloName &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == ':' || c == '[' || c == ']';
           });
}

// The start of what a backend sent, safe for a log line.
std::string printable_prefix(std::string_view bytes) {
    constexpr std::size_t kShown = 64;
    std::string out;
    for (const char c : bytes.substr(0, kShown)) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\r') {
            out += "\\r";
        } else if (c == '\n') {
            out += "\\n";
        } else if (u < 0x20 || u >= 0x7F) {
            out += fmt::format("\\x{:02x}", u);
        } else {
            out.push_back(c);
        }
    }
    if (bytes.size() > kShown) {
        out += "...";
    }
    return out;
}

bool is_ip(const std::string& host) {
    sockaddr_storage ss{};
    return net::make_sockaddr(host, 0, ss);
}
}  // namespace

struct Upstream::Resolve {
    uv_getaddrinfo_t req{};
    Upstream* owner = nullptr;
};

Upstream::Upstream(uv_loop_t* loop, const config::BackendConfig& backend, std::string ehlo_name,
                   ClientFacts client, UpstreamOptions options, UpstreamEvents& events)
    : loop_(loop),
      backend_(backend),
      ehlo_name_(std::move(ehlo_name)),
      client_(std::move(client)),
      options_(std::move(options)),
      events_(events),
      current_(backend.address),
      endpoint_text_(backend.address.text()),
      stream_(std::make_unique<net::TcpStream>(loop)),
      timer_(loop) {}

Upstream::~Upstream() {
    *alive_ = false;
    if (resolve_ != nullptr) {
        resolve_->owner = nullptr;  // the callback frees it
    }
    stream_->set_handler(nullptr);
}

// ------------------------------------------------------- attempts and failover

void Upstream::start() {
    if (!options_.endpoints.empty()) {
        candidates_ = options_.endpoints;
    } else if (options_.state != nullptr) {
        candidates_ = options_.state->order(backend_.addresses);
    } else {
        candidates_ = backend_.addresses;
    }
    if (candidates_.empty()) {
        candidates_.push_back(backend_.address);
    }
    connect_next();
}

// Everything that belongs to one connection attempt goes; the command queue stays.
void Upstream::reset_connection() {
    if (resolve_ != nullptr) {
        resolve_->owner = nullptr;
        resolve_ = nullptr;
    }
    stream_->set_handler(nullptr);
    stream_ = std::make_unique<net::TcpStream>(loop_);
    tls_.reset();
    timer_.disarm();
    caps_ = BackendCapabilities{};
    tls_done_ = false;
    xclient_done_ = false;
    discard_input_ = false;
    xclient_lines_.clear();
    parser_ = smtp::ReplyParser();
    input_.clear();
    awaiting_reply_.clear();
}

void Upstream::connect_next() {
    reset_connection();
    current_ = candidates_[attempt_++];
    endpoint_text_ = current_.text();
    stream_->set_handler(this);
    timer_.arm(ms(backend_.connect_timeout), [this] { attempt_failed("connect timeout"); });
    sockaddr_storage ss{};
    if (net::make_sockaddr(current_.host, current_.port, ss)) {
        connect_to(reinterpret_cast<const sockaddr*>(&ss));
        return;
    }
    phase_ = Phase::resolving;
    auto resolve = std::make_unique<Resolve>();
    resolve->owner = this;
    resolve->req.data = resolve.get();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    const std::string port = std::to_string(current_.port);
    const int rc = uv_getaddrinfo(
        loop_, &resolve->req,
        [](uv_getaddrinfo_t* req, int status, addrinfo* result) {
            std::unique_ptr<Resolve> owned(static_cast<Resolve*>(req->data));
            Upstream* self = owned->owner;
            if (self != nullptr) {
                self->resolve_ = nullptr;
                if (status != 0 || result == nullptr) {
                    self->attempt_failed(fmt::format("cannot resolve {}: {}", self->endpoint_text_,
                                                     uv_strerror(status)));
                } else {
                    self->connect_to(result->ai_addr);
                }
            }
            uv_freeaddrinfo(result);
        },
        current_.host.c_str(), port.c_str(), &hints);
    if (rc != 0) {
        attempt_failed(fmt::format("cannot resolve {}: {}", endpoint_text_, uv_strerror(rc)));
        return;
    }
    resolve_ = resolve.release();
}

// This backend did not let us in (connect failure, timeout, non-220 greeting): mark it
// unhealthy and try the next one.
void Upstream::attempt_failed(std::string reason) {
    if (phase_ == Phase::failed) {
        return;
    }
    ops::metrics().backend_connect_failed();
    if (options_.state != nullptr) {
        options_.state->mark_failed(current_, backend_.unhealthy_time);
    }
    if (attempt_ >= candidates_.size()) {
        fail(UpstreamFailure::unavailable, std::move(reason));
        return;
    }
    ops::log(ops::LogLevel::warn, "backend.failover",
             {{"session", options_.session},
              {"backend", endpoint_text_},
              {"reason", reason},
              {"next", candidates_[attempt_].text()},
              {"unhealthy_ms", static_cast<std::int64_t>(backend_.unhealthy_time.count())}});
    connect_next();
}

void Upstream::connect_to(const sockaddr* address) {
    phase_ = Phase::connecting;
    stream_->connect(address, [this](int status) { on_connected(status); });
}

void Upstream::on_connected(int status) {
    if (status != 0) {
        attempt_failed(
            fmt::format("connect to {} failed: {}", endpoint_text_, uv_strerror(status)));
        return;
    }
    phase_ = Phase::greeting;
    std::weak_ptr<bool> alive = alive_;
    const net::TcpStream* stream = stream_.get();
    send_proxy_header();
    if (alive.expired() || phase_ != Phase::greeting || stream_.get() != stream) {
        return;  // the write failed: failed for good, or moved on to the next backend
    }
    stream_->start_reading();
    // The greeting must arrive within the connect timeout that is still running.
}

// identity = "proxy-v1" / "proxy-v2": the very first bytes on the connection.
void Upstream::send_proxy_header() {
    const auto identity = backend_.identity;
    if (identity != config::BackendIdentity::proxy_v1 &&
        identity != config::BackendIdentity::proxy_v2) {
        return;
    }
    smtp::ProxyEndpoint source{client_.ip, client_.port};
    smtp::ProxyEndpoint destination{client_.local_ip, client_.local_port};
    if (options_.probe) {  // the probe is the gateway's own connection
        source = {stream_->local_ip(), stream_->local_port()};
        destination = {stream_->peer_ip(), stream_->peer_port()};
    }
    stream_->write(identity == config::BackendIdentity::proxy_v1
                       ? smtp::build_proxy_v1(source, destination)
                       : smtp::build_proxy_v2(source, destination));
}

// ---------------------------------------------------------------------- input

void Upstream::on_stream_data(std::string_view data) {
    if (!tls_) {
        consume_plaintext(data);
        return;
    }
    std::string plain;
    std::string to_peer;
    const auto status = tls_->receive(data, plain, to_peer);
    std::weak_ptr<bool> alive = alive_;
    if (!to_peer.empty()) {
        stream_->write(std::move(to_peer));
        if (alive.expired() || phase_ == Phase::failed) {
            return;
        }
    }
    if (status == tls::TlsSession::Status::failed) {
        const std::string verify = tls_->verify_error();
        fail(UpstreamFailure::tls,
             fmt::format("TLS with backend {} failed: {}{}", endpoint_text_, tls_->error(),
                         verify.empty() ? "" : " (certificate: " + verify + ")"));
        return;
    }
    if (status == tls::TlsSession::Status::closed) {
        fail(UpstreamFailure::unavailable, "backend closed the TLS session");
        return;
    }
    if (phase_ == Phase::tls_handshake && tls_->established()) {
        on_tls_established();
        if (alive.expired() || phase_ == Phase::failed) {
            return;
        }
    }
    if (!plain.empty()) {
        consume_plaintext(plain);
    }
}

void Upstream::consume_plaintext(std::string_view data) {
    if (phase_ == Phase::ready && awaiting_reply_.empty()) {
        // Nothing was asked, so nothing may come (an unsolicited, extra or early reply,
        // e.g. a 554 in the middle of DATA). Never keep it for later.
        fail(UpstreamFailure::protocol,
             fmt::format("backend sent {} bytes while no reply was awaited: {}", data.size(),
                         printable_prefix(data)));
        return;
    }
    input_.append(data);
    if (phase_ == Phase::ready) {
        consume_replies();
    } else {
        consume_handshake_replies();
    }
}

// The next reply in input_ from `offset` (advanced past what was used). A malformed
// one fails the upstream (status error: stop at once).
smtp::ReplyParser::Result Upstream::parse_next(std::size_t& offset) {
    auto result = parser_.next(std::string_view(input_).substr(offset));
    offset += result.consumed;
    if (result.status == smtp::ReplyParser::Status::error) {
        fail(UpstreamFailure::protocol, "malformed reply from backend: " + result.error);
    }
    return result;
}

// Ready: every complete reply of this read is parsed before any is handed on, so a
// read holding more replies than commands are waiting (or bytes after the last awaited
// reply) is refused as a whole, and none of its replies reaches a client.
void Upstream::consume_replies() {
    std::vector<smtp::BackendReply> replies;
    std::size_t offset = 0;
    while (offset < input_.size()) {
        auto result = parse_next(offset);
        if (result.status == smtp::ReplyParser::Status::error) {
            return;
        }
        if (result.status == smtp::ReplyParser::Status::need_more) {
            break;
        }
        replies.push_back(std::move(result.reply));
        if (replies.size() == awaiting_reply_.size() && offset < input_.size()) {
            fail(UpstreamFailure::protocol,
                 fmt::format("backend sent more than the awaited {} repl{} (last {}): {}",
                             replies.size(), replies.size() == 1 ? "y" : "ies", replies.back().code,
                             printable_prefix(std::string_view(input_).substr(offset))));
            return;
        }
    }
    input_.erase(0, offset);
    if (input_.size() > kMaxBufferedReply) {
        fail(UpstreamFailure::protocol, "backend reply too long");
        return;
    }
    std::weak_ptr<bool> alive = alive_;
    for (const auto& reply : replies) {
        handle_reply(reply);
        if (alive.expired() || phase_ == Phase::failed) {
            return;
        }
    }
}

// Greeting, EHLO, STARTTLS, XCLIENT: one command at a time, one reply each.
void Upstream::consume_handshake_replies() {
    std::weak_ptr<bool> alive = alive_;
    std::size_t offset = 0;
    while (offset < input_.size()) {
        const auto result = parse_next(offset);
        if (result.status == smtp::ReplyParser::Status::error) {
            return;
        }
        if (result.status == smtp::ReplyParser::Status::need_more) {
            break;
        }
        if (offset < input_.size() && phase_ != Phase::starttls) {
            // Exactly one reply was awaited; whatever follows it in the same read was
            // sent before we asked anything (a duplicated or injected reply).
            fail(UpstreamFailure::protocol,
                 fmt::format("backend sent more than the awaited {} reply: {}", result.reply.code,
                             printable_prefix(std::string_view(input_).substr(offset))));
            return;
        }
        handle_reply(result.reply);
        if (alive.expired() || phase_ == Phase::failed) {
            return;
        }
        if (discard_input_) {
            // Whatever came with or after the 220 to STARTTLS was sent in the clear
            // before the handshake: never believe it.
            discard_input_ = false;
            input_.clear();
            parser_ = smtp::ReplyParser();
            return;
        }
    }
    input_.erase(0, offset);
    if (input_.size() > kMaxBufferedReply) {
        fail(UpstreamFailure::protocol, "backend reply too long");
    }
}

void Upstream::handle_reply(const smtp::BackendReply& reply) {
    if (phase_ != Phase::ready) {
        handle_handshake_reply(reply);
        return;
    }
    if (awaiting_reply_.empty()) {
        // A reply nobody asked for: the backend is out of step. Never relay it.
        fail(UpstreamFailure::protocol,
             fmt::format("unexpected reply from backend: {}", reply.code));
        return;
    }
    awaiting_reply_.pop_front();
    arm_reply_timer();
    std::weak_ptr<bool> alive = alive_;
    events_.on_upstream_reply(reply);
    if (!alive.expired()) {
        pump();
    }
}

// ------------------------------------------------------------------ handshake

void Upstream::handle_handshake_reply(const smtp::BackendReply& reply) {
    switch (phase_) {
        case Phase::greeting:
            if (reply.code != 220) {
                attempt_failed(fmt::format("backend greeting was {}", reply.code));
                return;
            }
            if (options_.state != nullptr) {
                options_.state->mark_healthy(current_);
            }
            phase_ = Phase::ehlo;
            send_handshake(fmt::format("EHLO {}\r\n", helo_name()));
            return;
        case Phase::ehlo:
            if (reply.code == 250) {
                caps_ = smtp::parse_ehlo(reply.lines);
                after_ehlo();
                return;
            }
            if (reply.permanent() && !tls_done_ && !xclient_done_) {
                phase_ = Phase::helo;  // a server from before ESMTP
                send_handshake(fmt::format("HELO {}\r\n", helo_name()));
                return;
            }
            fail(UpstreamFailure::unavailable,
                 fmt::format("backend refused EHLO with {}", reply.code));
            return;
        case Phase::helo:
            if (reply.code != 250) {
                fail(UpstreamFailure::unavailable,
                     fmt::format("backend refused HELO with {}", reply.code));
                return;
            }
            caps_ = BackendCapabilities{};
            after_ehlo();
            return;
        case Phase::starttls:
            if (reply.code != 220) {
                fail(UpstreamFailure::tls,
                     fmt::format("backend refused STARTTLS with {}", reply.code));
                return;
            }
            discard_input_ = true;
            start_tls();
            return;
        case Phase::xclient:
            if (reply.code != 220) {
                fail(UpstreamFailure::identity,
                     fmt::format("backend refused XCLIENT with {} {}", reply.code,
                                 reply.lines.empty() ? "" : reply.lines.front()));
                return;
            }
            if (!xclient_lines_.empty()) {
                std::string next = std::move(xclient_lines_.front());
                xclient_lines_.pop_front();
                send_handshake(std::move(next));
                return;
            }
            xclient_done_ = true;
            phase_ = Phase::ehlo;  // XCLIENT starts a new session: EHLO again
            send_handshake(fmt::format("EHLO {}\r\n", helo_name()));
            return;
        default:
            fail(UpstreamFailure::unavailable,
                 fmt::format("unexpected reply from backend: {}", reply.code));
            return;
    }
}

// One handshake command; each reply must come within connect_timeout.
void Upstream::send_handshake(std::string line) {
    timer_.arm(ms(backend_.connect_timeout),
               [this] { fail(UpstreamFailure::unavailable, "backend handshake timeout"); });
    write_out(line);
}

// After every EHLO/HELO: STARTTLS first when configured, then XCLIENT, then ready.
void Upstream::after_ehlo() {
    if (backend_.tls != config::BackendTls::none && !tls_done_) {
        if (!caps_.starttls) {
            fail(UpstreamFailure::tls, caps_.esmtp
                                           ? "backend does not offer STARTTLS"
                                           : "backend answers only HELO, so it cannot do STARTTLS");
            return;
        }
        phase_ = Phase::starttls;
        send_handshake("STARTTLS\r\n");
        return;
    }
    if (backend_.identity == config::BackendIdentity::xclient && !options_.probe &&
        !xclient_done_) {
        start_xclient();
        return;
    }
    become_ready();
}

void Upstream::start_xclient() {
    if (!caps_.xclient) {
        fail(UpstreamFailure::identity,
             "backend does not advertise XCLIENT, so it cannot be told the client's identity");
        return;
    }
    const std::vector<smtp::XclientAttribute> attributes{
        {"ADDR", smtp::xclient_address(client_.ip)},
        {"PORT", std::to_string(client_.port)},
        {"NAME", std::string(smtp::kXclientUnavailable)},
        {"HELO", client_.helo.empty() ? std::string(smtp::kXclientUnavailable) : client_.helo},
        {"LOGIN", client_.login},
        {"PROTO", client_.esmtp ? "ESMTP" : "SMTP"},
        {"DESTADDR", smtp::xclient_address(client_.local_ip)},
        {"DESTPORT", std::to_string(client_.local_port)},
    };
    auto lines = smtp::build_xclient(attributes, caps_.xclient_attributes);
    if (!lines) {
        fail(UpstreamFailure::identity, "the login name is too long for XCLIENT");
        return;
    }
    const bool has_addr =
        std::find(caps_.xclient_attributes.begin(), caps_.xclient_attributes.end(), "ADDR") !=
        caps_.xclient_attributes.end();
    if (lines->empty() || !has_addr) {
        fail(UpstreamFailure::identity, "backend's XCLIENT does not accept the client address");
        return;
    }
    xclient_lines_.assign(std::make_move_iterator(lines->begin()),
                          std::make_move_iterator(lines->end()));
    phase_ = Phase::xclient;
    std::string first = std::move(xclient_lines_.front());
    xclient_lines_.pop_front();
    send_handshake(std::move(first));
}

// The name in our EHLO/HELO: once the backend believes it talks to the client (after
// XCLIENT, or from the start behind a PROXY header) the client's own HELO name, so the
// backend records what the client said; otherwise, and for probes, the gateway's.
std::string Upstream::helo_name() const {
    const auto identity = backend_.identity;
    const bool as_client =
        !options_.probe && (xclient_done_ || identity == config::BackendIdentity::proxy_v1 ||
                            identity == config::BackendIdentity::proxy_v2);
    return as_client && repeatable_helo(client_.helo) ? client_.helo : ehlo_name_;
}

void Upstream::start_tls() {
    const std::string name = backend_.tls_name.empty() ? current_.host : backend_.tls_name;
    tls_ = std::make_unique<tls::TlsSession>(options_.tls, tls::TlsSession::Role::client,
                                             is_ip(name) ? std::string() : name);
    if (backend_.tls == config::BackendTls::starttls_verify && !tls_->expect_peer_name(name)) {
        fail(UpstreamFailure::tls, "cannot set the expected certificate name " + name);
        return;
    }
    phase_ = Phase::tls_handshake;
    timer_.arm(ms(backend_.connect_timeout),
               [this] { fail(UpstreamFailure::tls, "backend TLS handshake timeout"); });
    std::string hello;
    const auto status = tls_->start(hello);
    std::weak_ptr<bool> alive = alive_;
    if (!hello.empty()) {
        stream_->write(std::move(hello));
        if (alive.expired() || phase_ == Phase::failed) {
            return;
        }
    }
    if (status == tls::TlsSession::Status::failed) {
        fail(UpstreamFailure::tls, "TLS with backend failed: " + tls_->error());
    }
}

void Upstream::on_tls_established() {
    tls_done_ = true;
    ops::log(ops::LogLevel::debug, "backend.tls",
             {{"session", options_.session},
              {"backend", endpoint_text_},
              {"version", tls_->version()},
              {"cipher", tls_->cipher()},
              {"verified", backend_.tls == config::BackendTls::starttls_verify}});
    phase_ = Phase::ehlo;  // STARTTLS forgets everything: EHLO again
    send_handshake(fmt::format("EHLO {}\r\n", helo_name()));
}

void Upstream::become_ready() {
    phase_ = Phase::ready;
    timer_.disarm();
    if (options_.state != nullptr) {
        options_.state->record(current_, caps_);
    }
    ops::log(ops::LogLevel::debug, "backend.ready",
             {{"session", options_.session},
              {"backend", endpoint_text_},
              {"capabilities", smtp::describe(caps_)},
              {"tls", tls_done_},
              {"xclient", xclient_done_}});
    std::weak_ptr<bool> alive = alive_;
    events_.on_upstream_ready(caps_);
    if (!alive.expired()) {
        pump();
    }
}

// ------------------------------------------------------------------- commands

void Upstream::send_command(std::string line, config::Duration timeout) {
    unsent_.push_back(PendingCommand{std::move(line), timeout});
    pump();
}

void Upstream::send_data(std::string_view bytes) {
    if (phase_ == Phase::failed) {
        return;
    }
    write_out(bytes);
}

void Upstream::hold_commands() {
    holding_ = true;
}

void Upstream::release_commands(bool together) {
    holding_ = false;
    if (together && pipelining()) {
        send_unsent(unsent_.size());
    } else {
        pump();
    }
}

bool Upstream::pipelining() const {
    return phase_ == Phase::ready && backend_.pipelining && caps_.pipelining;
}

// Lock-step: the next command goes out only once the previous one was answered.
void Upstream::pump() {
    if (phase_ != Phase::ready || holding_ || !awaiting_reply_.empty()) {
        return;
    }
    send_unsent(1);
}

// Writes the first `count` unsent commands in one write; their replies are awaited in
// order.
void Upstream::send_unsent(std::size_t count) {
    count = std::min(count, unsent_.size());
    if (phase_ != Phase::ready || count == 0) {
        return;
    }
    const bool was_idle = awaiting_reply_.empty();
    std::string batch;
    for (std::size_t i = 0; i < count; ++i) {
        PendingCommand command = std::move(unsent_.front());
        unsent_.pop_front();
        awaiting_reply_.push_back(command.timeout);
        batch += command.line;
    }
    if (was_idle) {
        arm_reply_timer();
    }
    write_out(batch);
}

// Plaintext out, through TLS once it is up.
void Upstream::write_out(std::string_view plain) {
    if (!tls_) {
        stream_->write(plain);  // copied only if the socket cannot take it now
        return;
    }
    std::string cipher;
    const auto status = tls_->send(plain, cipher);
    std::weak_ptr<bool> alive = alive_;
    if (!cipher.empty()) {
        stream_->write(std::move(cipher));
        if (alive.expired()) {
            return;
        }
    }
    if (status == tls::TlsSession::Status::failed) {
        fail(UpstreamFailure::tls, "TLS with backend failed: " + tls_->error());
    }
}

void Upstream::arm_reply_timer() {
    if (awaiting_reply_.empty()) {
        timer_.disarm();
        return;
    }
    timer_.arm(ms(awaiting_reply_.front()),
               [this] { fail(UpstreamFailure::unavailable, "backend reply timeout"); });
}

void Upstream::on_stream_end(int status) {
    std::string reason = status == UV_EOF
                             ? std::string("backend closed the connection")
                             : fmt::format("backend connection error: {}", uv_strerror(status));
    if (phase_ == Phase::connecting || phase_ == Phase::greeting) {
        attempt_failed(std::move(reason));  // never greeted us: try the next backend
        return;
    }
    fail(UpstreamFailure::unavailable, std::move(reason));
}

void Upstream::on_stream_drained() {
    events_.on_upstream_drained();
}

std::size_t Upstream::queued_bytes() const {
    return stream_->queued_bytes();
}

void Upstream::fail(UpstreamFailure failure, std::string reason) {
    if (phase_ == Phase::failed) {
        return;
    }
    phase_ = Phase::failed;
    timer_.disarm();
    stream_->stop_reading();
    stream_->set_handler(nullptr);
    events_.on_upstream_failed(failure, reason);  // may destroy *this: nothing after this line
}

}  // namespace portcullis::proxy
