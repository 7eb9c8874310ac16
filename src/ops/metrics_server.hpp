// The HTTP endpoint of [metrics] address: /metrics, /healthz, /readyz. It runs on the
// supervisor's loop (the main thread), never on a worker's, so a slow scraper costs
// the mail path nothing. Small and strict: one GET per connection, at most 8 KiB of
// request, 5 s to send it, Connection: close, a bounded number of connections.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "net/listener.hpp"
#include "net/stream.hpp"

namespace portcullis::ops {

struct HttpReply {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

class MetricsServer {
  public:
    // Answers one path ("/metrics"); 404 for paths it does not know.
    using Route = std::function<HttpReply(std::string_view path)>;

    // Throws net::ListenError naming the address and the cause.
    MetricsServer(uv_loop_t* loop, const config::Endpoint& address, Route route);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

  private:
    class Connection;
    void accept(uv_stream_t* server);
    void finished(Connection* connection);

    uv_loop_t* loop_;
    Route route_;
    std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
    std::vector<std::unique_ptr<Connection>> retired_;
    net::Timer reaper_;
    std::unique_ptr<net::Listener> listener_;
};

}  // namespace portcullis::ops
