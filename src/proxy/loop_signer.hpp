// The tls::Signer of one event loop: handshake signatures are made on the gateway's
// signing pool (a util::WorkPool shared by the workers) and their results come back
// through one uv_async handle of this loop, in the order they finished.
#pragma once

#include <uv.h>

#include <cstddef>
#include <memory>

#include "net/stream.hpp"
#include "tls/signing.hpp"
#include "util/work_pool.hpp"

namespace portcullis::proxy {

class LoopSigner final : public tls::Signer {
  public:
    // At most `max_pending` signatures wait in the pool at once (for all loops); one
    // beyond that is made on this loop, still delivered on a later loop turn.
    LoopSigner(uv_loop_t* loop, util::WorkPool& pool, std::size_t max_pending);
    // Signatures still on their way are dropped (their sessions are gone too).
    ~LoopSigner() override;
    LoopSigner(const LoopSigner&) = delete;
    LoopSigner& operator=(const LoopSigner&) = delete;

    void start(tls::SignatureRequest request, Done done) override;

  private:
    struct Inbox;
    void deliver();

    util::WorkPool& pool_;
    std::size_t max_pending_;
    std::shared_ptr<Inbox> inbox_;  // shared with the jobs in the pool
    std::unique_ptr<net::Async> wakeup_;
};

}  // namespace portcullis::proxy
