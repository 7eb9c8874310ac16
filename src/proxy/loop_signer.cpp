#include "proxy/loop_signer.hpp"

#include <mutex>
#include <utility>
#include <vector>

#include "ops/metrics.hpp"

namespace portcullis::proxy {

// Finished signatures waiting for their loop. `wakeup` is only touched under `mutex`
// and is null once the loop's signer is gone, so a late job never wakes a closed handle.
struct LoopSigner::Inbox {
    std::mutex mutex;
    std::vector<std::pair<Done, std::vector<std::uint8_t>>> finished;
    net::Async* wakeup = nullptr;

    void post(Done done, std::vector<std::uint8_t> signature) {
        std::lock_guard lock(mutex);
        if (wakeup == nullptr) {
            return;
        }
        finished.emplace_back(std::move(done), std::move(signature));
        wakeup->notify();
    }
};

LoopSigner::LoopSigner(uv_loop_t* loop, util::WorkPool& pool, std::size_t max_pending)
    : pool_(pool), max_pending_(max_pending), inbox_(std::make_shared<Inbox>()) {
    wakeup_ = std::make_unique<net::Async>(loop, [this] { deliver(); });
    inbox_->wakeup = wakeup_.get();
}

LoopSigner::~LoopSigner() {
    std::vector<std::pair<Done, std::vector<std::uint8_t>>> dropped;
    {
        std::lock_guard lock(inbox_->mutex);
        inbox_->wakeup = nullptr;
        dropped.swap(inbox_->finished);
    }
    wakeup_.reset();
}

void LoopSigner::start(tls::SignatureRequest request, Done done) {
    // std::function copies its target: the key (move-only) travels in a shared_ptr.
    auto shared = std::make_shared<tls::SignatureRequest>(std::move(request));
    auto job = [inbox = inbox_, shared, done = std::move(done)] {
        inbox->post(done, tls::make_signature(*shared));
    };
    const bool queued = pool_.submit(job, max_pending_);
    if (!queued) {
        job();  // the pool is full: sign here, rather than fail the handshake
    }
    ops::metrics().tls_signature(queued);
}

void LoopSigner::deliver() {
    std::vector<std::pair<Done, std::vector<std::uint8_t>>> batch;
    {
        std::lock_guard lock(inbox_->mutex);
        batch.swap(inbox_->finished);
    }
    for (auto& [done, signature] : batch) {
        done(std::move(signature));
    }
}

}  // namespace portcullis::proxy
