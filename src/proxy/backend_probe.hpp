// Capability discovery: asks every configured backend for its EHLO reply at start, on
// reload and every [backend] probe_interval, and records what each announced (and
// whether it answered) in the gateway-wide BackendState. Runs on one event loop (the
// supervisor's), never on a worker's.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "net/stream.hpp"
#include "proxy/runtime.hpp"

namespace portcullis::proxy {

class BackendProber final {
  public:
    BackendProber(uv_loop_t* loop, Runtime& runtime);
    ~BackendProber();
    BackendProber(const BackendProber&) = delete;
    BackendProber& operator=(const BackendProber&) = delete;

    // Takes the current snapshot's backends, forgets what is known about others, probes
    // every backend now (abandoning probes still running) and schedules the next round.
    void probe_now();

    // How many of the current snapshot's backends answered their latest probe (a
    // backend not probed yet counts as not answering): /readyz and portcullis_backends_up.
    std::size_t backends_answering() const;

  private:
    class Probe;
    void finished(Probe* probe);
    void report(const config::Endpoint& endpoint, bool ok, const std::string& detail, bool changed);

    uv_loop_t* loop_;
    Runtime& runtime_;
    std::vector<std::unique_ptr<Probe>> running_;
    std::vector<std::unique_ptr<Probe>> retired_;
    std::map<std::string, bool> last_ok_;  // per backend: did the previous probe succeed
    net::Timer timer_;
    net::Timer reaper_;
};

}  // namespace portcullis::proxy
