#include "proxy/proxy_handshake.hpp"

#include <fmt/format.h>

#include "smtp/proxy_header.hpp"

namespace portcullis::proxy {

ProxyHandshake::ProxyHandshake(uv_loop_t* loop, std::unique_ptr<net::TcpStream> stream, Done done)
    : stream_(std::move(stream)), timer_(loop), done_(std::move(done)) {
    peer_ip_ = stream_->peer_ip();
    stream_->set_handler(this);
}

ProxyHandshake::~ProxyHandshake() {
    if (stream_) {
        stream_->set_handler(nullptr);
    }
}

void ProxyHandshake::start(std::uint64_t timeout_ms) {
    timer_.start(timeout_ms, [this, timeout_ms] {
        finish(std::nullopt, fmt::format("no PROXY header within {} ms", timeout_ms));
    });
    stream_->start_reading();
}

void ProxyHandshake::on_stream_data(std::string_view data) {
    if (finished_) {
        return;
    }
    buffer_.append(data);
    const auto result = smtp::parse_proxy_header(buffer_);
    switch (result.status) {
        case smtp::ProxyParseResult::Status::need_more:
            return;  // the parser bounds what it waits for
        case smtp::ProxyParseResult::Status::error:
            finish(std::nullopt, "invalid PROXY header: " + result.error);
            return;
        case smtp::ProxyParseResult::Status::header:
            break;
    }
    Accepted accepted;
    const smtp::ProxyHeader& header = result.header;
    if (header.local) {
        // LOCAL / UNKNOWN: the load balancer speaks for itself (e.g. a health check).
        accepted.origin = ClientOrigin{peer_ip_, stream_->peer_port(), stream_->local_ip(),
                                       stream_->local_port(), peer_ip_};
    } else {
        accepted.origin = ClientOrigin{header.source.ip, header.source.port, header.destination.ip,
                                       header.destination.port, peer_ip_};
    }
    accepted.early_input = buffer_.substr(result.consumed);
    finish(std::move(accepted), {});
}

void ProxyHandshake::on_stream_end(int status) {
    finish(std::nullopt, status == UV_EOF
                             ? std::string("connection closed before a complete PROXY header")
                             : fmt::format("connection error: {}", uv_strerror(status)));
}

void ProxyHandshake::finish(std::optional<Accepted> accepted, std::string reason) {
    if (finished_) {
        return;
    }
    finished_ = true;
    timer_.stop();
    stream_->set_handler(nullptr);
    if (accepted) {
        accepted->stream = std::move(stream_);
    } else {
        stream_->stop_reading();
    }
    auto done = std::move(done_);
    done(*this, std::move(accepted), std::move(reason));
}

}  // namespace portcullis::proxy
