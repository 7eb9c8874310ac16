#include "proxy/upstream.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "ops/log.hpp"

namespace portcullis::proxy {

namespace {
// A backend reply larger than this without a line end is treated as hostile.
constexpr std::size_t kMaxBufferedReply = 64 * 1024;

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}
}  // namespace

struct Upstream::Resolve {
    uv_getaddrinfo_t req{};
    Upstream* owner = nullptr;
};

Upstream::Upstream(uv_loop_t* loop, const config::BackendConfig& backend, std::string ehlo_name,
                   UpstreamEvents& events)
    : loop_(loop),
      backend_(backend),
      ehlo_name_(std::move(ehlo_name)),
      endpoint_text_(backend.address.text()),
      events_(events),
      stream_(std::make_unique<net::TcpStream>(loop)),
      timer_(loop) {
    stream_->set_handler(this);
}

Upstream::~Upstream() {
    *alive_ = false;
    if (resolve_ != nullptr) {
        resolve_->owner = nullptr;  // the callback frees it
    }
}

void Upstream::start() {
    timer_.start(static_cast<std::uint64_t>(backend_.connect_timeout.count()),
                 [this] { fail("connect timeout"); });
    sockaddr_storage ss{};
    if (net::make_sockaddr(backend_.address.host, backend_.address.port, ss)) {
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
    const std::string port = std::to_string(backend_.address.port);
    const int rc = uv_getaddrinfo(
        loop_, &resolve->req,
        [](uv_getaddrinfo_t* req, int status, addrinfo* result) {
            std::unique_ptr<Resolve> owned(static_cast<Resolve*>(req->data));
            Upstream* self = owned->owner;
            if (self != nullptr) {
                self->resolve_ = nullptr;
                if (status != 0 || result == nullptr) {
                    self->fail(fmt::format("cannot resolve {}: {}", self->endpoint_text_,
                                           uv_strerror(status)));
                } else {
                    self->connect_to(result->ai_addr);
                }
            }
            uv_freeaddrinfo(result);
        },
        backend_.address.host.c_str(), port.c_str(), &hints);
    if (rc != 0) {
        fail(fmt::format("cannot resolve {}: {}", endpoint_text_, uv_strerror(rc)));
        return;
    }
    resolve_ = resolve.release();
}

void Upstream::connect_to(const sockaddr* address) {
    phase_ = Phase::connecting;
    stream_->connect(address, [this](int status) { on_connected(status); });
}

void Upstream::on_connected(int status) {
    if (status != 0) {
        fail(fmt::format("connect to {} failed: {}", endpoint_text_, uv_strerror(status)));
        return;
    }
    phase_ = Phase::greeting;
    stream_->start_reading();
    // The greeting must arrive within the connect timeout that is still running.
}

void Upstream::on_stream_data(std::string_view data) {
    input_.append(data);
    std::weak_ptr<bool> alive = alive_;
    std::size_t offset = 0;
    while (offset < input_.size()) {
        auto result = parser_.next(std::string_view(input_).substr(offset));
        offset += result.consumed;
        if (result.status == smtp::ReplyParser::Status::need_more) {
            break;
        }
        if (result.status == smtp::ReplyParser::Status::error) {
            fail("malformed reply from backend: " + result.error);
            return;
        }
        handle_reply(result.reply);
        if (alive.expired() || phase_ == Phase::failed) {
            return;
        }
    }
    input_.erase(0, offset);
    if (input_.size() > kMaxBufferedReply) {
        fail("backend reply too long");
    }
}

void Upstream::handle_reply(const smtp::BackendReply& reply) {
    if (phase_ != Phase::ready) {
        handle_handshake_reply(reply);
        return;
    }
    if (awaiting_reply_.empty()) {
        // A reply nobody asked for: the backend is out of step. Never relay it.
        fail(fmt::format("unexpected reply from backend: {}", reply.code));
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

void Upstream::handle_handshake_reply(const smtp::BackendReply& reply) {
    switch (phase_) {
        case Phase::greeting:
            if (reply.code != 220) {
                fail(fmt::format("backend greeting was {}", reply.code));
                return;
            }
            phase_ = Phase::ehlo;
            stream_->write(fmt::format("EHLO {}\r\n", ehlo_name_));
            return;
        case Phase::ehlo:
            if (reply.code == 250) {
                caps_.esmtp = true;
                learn_capabilities(reply);
                break;
            }
            if (reply.permanent()) {
                phase_ = Phase::helo;  // a server from before ESMTP
                stream_->write(fmt::format("HELO {}\r\n", ehlo_name_));
                return;
            }
            fail(fmt::format("backend refused EHLO with {}", reply.code));
            return;
        case Phase::helo:
            if (reply.code != 250) {
                fail(fmt::format("backend refused HELO with {}", reply.code));
                return;
            }
            break;
        default:
            fail(fmt::format("unexpected reply from backend: {}", reply.code));
            return;
    }
    phase_ = Phase::ready;
    timer_.stop();
    ops::log(ops::LogLevel::debug, "backend.ready",
             {{"backend", endpoint_text_}, {"pipelining", caps_.pipelining}});
    pump();
}

void Upstream::learn_capabilities(const smtp::BackendReply& reply) {
    for (std::size_t i = 1; i < reply.lines.size(); ++i) {
        const std::string line = upper(reply.lines[i]);
        const std::string_view keyword = std::string_view(line).substr(0, line.find(' '));
        if (keyword == "PIPELINING") {
            caps_.pipelining = true;
        } else if (keyword == "8BITMIME") {
            caps_.eight_bit_mime = true;
        } else if (keyword == "ENHANCEDSTATUSCODES") {
            caps_.enhanced_status_codes = true;
        } else if (keyword == "SIZE") {
            caps_.size = true;
            if (line.size() > 5) {
                caps_.max_size = std::strtoull(line.c_str() + 5, nullptr, 10);
            }
        }
    }
}

void Upstream::send_command(std::string line, config::Duration timeout) {
    unsent_.push_back(PendingCommand{std::move(line), timeout});
    pump();
}

void Upstream::send_data(std::string_view bytes) {
    if (phase_ == Phase::failed) {
        return;
    }
    stream_->write(std::string(bytes));
}

// Writes what may be written now: everything when the backend pipelines, otherwise
// one command at a time.
void Upstream::pump() {
    if (phase_ != Phase::ready) {
        return;
    }
    while (!unsent_.empty() && (caps_.pipelining || awaiting_reply_.empty())) {
        PendingCommand command = std::move(unsent_.front());
        unsent_.pop_front();
        write_command(std::move(command));
    }
}

void Upstream::write_command(PendingCommand command) {
    const bool was_idle = awaiting_reply_.empty();
    awaiting_reply_.push_back(command.timeout);
    stream_->write(std::move(command.line));
    if (was_idle) {
        arm_reply_timer();
    }
}

void Upstream::arm_reply_timer() {
    if (awaiting_reply_.empty()) {
        timer_.stop();
        return;
    }
    timer_.start(static_cast<std::uint64_t>(awaiting_reply_.front().count()),
                 [this] { fail("backend reply timeout"); });
}

void Upstream::on_stream_end(int status) {
    fail(status == UV_EOF ? std::string("backend closed the connection")
                          : fmt::format("backend connection error: {}", uv_strerror(status)));
}

void Upstream::on_stream_drained() {
    events_.on_upstream_drained();
}

std::size_t Upstream::queued_bytes() const {
    return stream_->queued_bytes();
}

void Upstream::fail(std::string reason) {
    if (phase_ == Phase::failed) {
        return;
    }
    phase_ = Phase::failed;
    timer_.stop();
    stream_->stop_reading();
    stream_->set_handler(nullptr);
    events_.on_upstream_failed(reason);  // may destroy *this: nothing after this line
}

}  // namespace portcullis::proxy
