// The first step on a listener with proxy_protocol = true: the load balancer's PROXY
// header (v1 or v2) must be the first bytes on the connection and arrive within a time
// limit. The connection is handed on with the addresses the header carried, or given up.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "net/stream.hpp"
#include "proxy/client_session.hpp"

namespace portcullis::proxy {

class ProxyHandshake final : private net::StreamHandler {
  public:
    struct Accepted {
        std::unique_ptr<net::TcpStream> stream;  // still reading; set a new handler at once
        ClientOrigin origin;
        std::string early_input;  // bytes that came right behind the header
    };
    // Runs once: with the accepted connection, or nullopt and why it was refused. The
    // handshake object itself must not be destroyed inside the callback.
    using Done = std::function<void(ProxyHandshake&, std::optional<Accepted>, std::string)>;

    ProxyHandshake(uv_loop_t* loop, std::unique_ptr<net::TcpStream> stream, Done done);
    ~ProxyHandshake() override;
    ProxyHandshake(const ProxyHandshake&) = delete;
    ProxyHandshake& operator=(const ProxyHandshake&) = delete;

    void start(std::uint64_t timeout_ms);
    const std::string& peer_ip() const { return peer_ip_; }

  private:
    void on_stream_data(std::string_view data) override;
    void on_stream_end(int status) override;
    void finish(std::optional<Accepted> accepted, std::string reason);

    std::unique_ptr<net::TcpStream> stream_;
    net::Timer timer_;
    Done done_;
    std::string peer_ip_;
    std::string buffer_;
    bool finished_ = false;
};

}  // namespace portcullis::proxy
