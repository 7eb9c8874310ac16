#include "ops/metrics_server.hpp"

#include "ops/http.hpp"
#include "ops/log.hpp"

namespace portcullis::ops {

namespace {
constexpr std::uint64_t kRequestTimeoutMs = 5'000;  // to send the whole request
constexpr std::uint64_t kWriteTimeoutMs = 10'000;   // for the response to leave
// Scrapers and probes connect a few at a time; more is a misbehaving client.
constexpr std::size_t kMaxConnections = 32;
}  // namespace

class MetricsServer::Connection final : private net::StreamHandler {
  public:
    Connection(MetricsServer& owner, std::unique_ptr<net::TcpStream> stream)
        : owner_(owner), stream_(std::move(stream)), timer_(owner.loop_) {
        stream_->set_handler(this);
    }
    ~Connection() override { stream_->set_handler(nullptr); }

    void start() {
        stream_->start_reading();
        timer_.start(kRequestTimeoutMs, [this] { respond_error(408, "request timeout"); });
    }
    void refuse() { respond_error(503, "too many connections"); }

  private:
    void on_stream_data(std::string_view data) override {
        if (responded_) {
            return;
        }
        received_.append(data);
        const http::Parse parse = http::parse_request(received_);
        switch (parse.state) {
            case http::Parse::State::incomplete:
                return;
            case http::Parse::State::bad:
                respond_error(parse.status, parse.reason);
                return;
            case http::Parse::State::complete:
                break;
        }
        HttpReply reply = owner_.route_(parse.path);
        log(LogLevel::debug, "metrics.request",
            {{"client", stream_->peer_ip()}, {"path", parse.path}, {"status", reply.status}});
        send(http::response(reply.status, reply.content_type, reply.body));
    }
    void on_stream_end(int) override { done(); }
    void on_stream_drained() override {
        if (responded_) {
            done();
        }
    }

    void respond_error(int status, std::string_view reason) {
        log(LogLevel::warn, "metrics.request",
            {{"client", stream_->peer_ip()}, {"status", status}, {"reason", reason}});
        send(http::response(status, "text/plain; charset=utf-8", std::string(reason) + "\n"));
    }
    void send(std::string bytes) {
        if (responded_) {
            return;
        }
        responded_ = true;
        received_.clear();
        stream_->stop_reading();
        timer_.start(kWriteTimeoutMs, [this] { done(); });
        stream_->write(std::move(bytes));
        stream_->shutdown_after_writes();
        if (stream_->queued_bytes() == 0) {
            done();
        }
    }
    void done() {
        timer_.stop();
        owner_.finished(this);
    }

    MetricsServer& owner_;
    std::unique_ptr<net::TcpStream> stream_;
    net::Timer timer_;
    std::string received_;
    bool responded_ = false;
};

MetricsServer::MetricsServer(uv_loop_t* loop, const config::Endpoint& address, Route route)
    : loop_(loop), route_(std::move(route)), reaper_(loop) {
    listener_ = std::make_unique<net::Listener>(
        loop, address, [this](uv_stream_t* server) { accept(server); },
        net::PortSharing::exclusive);
}

MetricsServer::~MetricsServer() {
    listener_.reset();
    connections_.clear();
    retired_.clear();
}

void MetricsServer::accept(uv_stream_t* server) {
    auto stream = std::make_unique<net::TcpStream>(loop_);
    if (!stream->accept_from(server)) {
        return;
    }
    auto connection = std::make_unique<Connection>(*this, std::move(stream));
    auto* key = connection.get();
    const bool over = connections_.size() >= kMaxConnections;
    connections_.emplace(key, std::move(connection));
    if (over) {
        key->refuse();
    } else {
        key->start();
    }
}

// Called from inside the connection's callbacks: it is destroyed on a later loop turn.
void MetricsServer::finished(Connection* connection) {
    auto it = connections_.find(connection);
    if (it == connections_.end()) {
        return;
    }
    retired_.push_back(std::move(it->second));
    connections_.erase(it);
    if (!reaper_.active()) {
        reaper_.start(0, [this] { retired_.clear(); });
    }
}

}  // namespace portcullis::ops
