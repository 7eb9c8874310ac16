// A listening TCP socket on one event loop. Every worker binds its own socket to the
// same address with SO_REUSEPORT, so the kernel spreads connections and no lock sits
// on the accept path.
#pragma once

#include <uv.h>

#include <functional>
#include <stdexcept>
#include <string>

#include "config/config.hpp"

namespace portcullis::net {

class ListenError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// SMTP listeners are shared by the workers of one process; a listener only one loop
// serves (the metrics endpoint) binds exclusively, so a second process configured with
// the same address fails at start instead of silently taking half of the requests.
enum class PortSharing { per_worker, exclusive };

// Fails (ListenError naming the address) when some other socket already listens on
// `address`, e.g. a second gateway started with the same configuration: the workers'
// SO_REUSEPORT would otherwise let it bind quietly and take a share of the connections.
// Call once per listener before the workers bind theirs.
void check_port_free(const config::Endpoint& address);

class Listener {
  public:
    using OnConnection = std::function<void(uv_stream_t* server)>;
    // Throws ListenError naming the address and the cause.
    Listener(uv_loop_t* loop, const config::Endpoint& address, OnConnection on_connection,
             PortSharing sharing = PortSharing::per_worker);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

  private:
    struct State;
    State* state_;
};

}  // namespace portcullis::net
