#include "net/listener.hpp"

#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "net/stream.hpp"

namespace portcullis::net {

struct Listener::State {
    uv_tcp_t tcp{};
    OnConnection on_connection;
};

namespace {

constexpr int kBacklog = 511;

// `probing`: a bind refused because the port is taken says who may hold it.
int open_listening_socket(const config::Endpoint& address, PortSharing sharing,
                          bool probing = false) {
    sockaddr_storage ss{};
    if (!make_sockaddr(address.host, address.port, ss)) {
        throw ListenError(fmt::format("listen {}: not a numeric IP address", address.text()));
    }
    const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw ListenError(
            fmt::format("listen {}: socket: {}", address.text(), std::strerror(errno)));
    }
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (sharing == PortSharing::per_worker) {
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
    }
    if (ss.ss_family == AF_INET6) {
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    const socklen_t len = ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        const int err = errno;
        ::close(fd);
        const bool in_use = err == EADDRINUSE && probing;
        throw ListenError(fmt::format("listen {}: bind: {}{}", address.text(), std::strerror(err),
                                      in_use ? " (another process listens on it: is a second "
                                               "gateway running with this configuration?)"
                                             : ""));
    }
    return fd;
}

}  // namespace

void check_port_free(const config::Endpoint& address) {
    // SO_REUSEADDR without SO_REUSEPORT: a port in TIME_WAIT is fine, a listening
    // socket of any process is not.
    const int fd = open_listening_socket(address, PortSharing::exclusive, true);
    ::close(fd);
}

Listener::Listener(uv_loop_t* loop, const config::Endpoint& address, OnConnection on_connection,
                   PortSharing sharing)
    : state_(nullptr) {
    const int fd = open_listening_socket(address, sharing);
    auto state = std::make_unique<State>();
    state->on_connection = std::move(on_connection);
    uv_tcp_init(loop, &state->tcp);
    state->tcp.data = state.get();
    state_ = state.release();
    auto* stream = reinterpret_cast<uv_stream_t*>(&state_->tcp);
    int rc = uv_tcp_open(&state_->tcp, fd);
    if (rc == 0) {
        rc = uv_listen(stream, kBacklog, [](uv_stream_t* server, int status) {
            if (status == 0) {
                static_cast<State*>(server->data)->on_connection(server);
            }
        });
    }
    if (rc != 0) {
        if (uv_fileno(reinterpret_cast<uv_handle_t*>(&state_->tcp), nullptr) != 0) {
            ::close(fd);
        }
        uv_close(reinterpret_cast<uv_handle_t*>(&state_->tcp), [](uv_handle_t* h) {
            std::unique_ptr<State> owned(static_cast<State*>(h->data));
        });
        state_ = nullptr;
        throw ListenError(fmt::format("listen {}: {}", address.text(), uv_strerror(rc)));
    }
}

Listener::~Listener() {
    if (state_ != nullptr) {
        uv_close(reinterpret_cast<uv_handle_t*>(&state_->tcp), [](uv_handle_t* h) {
            std::unique_ptr<State> owned(static_cast<State*>(h->data));
        });
    }
}

}  // namespace portcullis::net
