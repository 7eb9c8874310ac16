#include "auth/verifier.hpp"

#include <atomic>

#include "auth/password.hpp"

namespace portcullis::auth {

// Lives from start() until libuv closed its async handle. The pool thread only reads
// `hash`/`password` and writes `matched` before uv_async_send; everything else is
// touched on the loop thread.
struct PendingVerification::Job {
    uv_async_t async{};
    std::string hash;
    SecureString password;
    std::atomic<bool> matched{false};
    Done done;
    PendingVerification* owner = nullptr;  // nullptr once detached
};

namespace {

void free_job(uv_handle_t* handle) {
    delete static_cast<PendingVerification::Job*>(handle->data);
}

}  // namespace

std::unique_ptr<PendingVerification> PendingVerification::start(HashPool& pool,
                                                                std::size_t max_pending,
                                                                uv_loop_t* loop,
                                                                std::string phc_hash,
                                                                SecureString password, Done done) {
    auto* job = new Job;
    job->hash = std::move(phc_hash);
    job->password = std::move(password);
    job->done = std::move(done);
    job->async.data = job;
    uv_async_init(loop, &job->async, [](uv_async_t* handle) {
        auto* j = static_cast<Job*>(handle->data);
        if (j->owner != nullptr) {
            j->owner->job_ = nullptr;
            auto finish = std::move(j->done);
            const bool matched = j->matched.load();
            uv_close(reinterpret_cast<uv_handle_t*>(handle), free_job);
            finish(matched);
            return;
        }
        uv_close(reinterpret_cast<uv_handle_t*>(handle), free_job);  // detached
    });
    const bool queued = pool.submit(
        [job] {
            job->matched.store(verify_password(job->hash, job->password.view()));
            job->password.wipe();
            uv_async_send(&job->async);
        },
        max_pending);
    if (!queued) {
        job->password.wipe();
        uv_close(reinterpret_cast<uv_handle_t*>(&job->async), free_job);
        return nullptr;
    }
    auto pending = std::make_unique<PendingVerification>(job);
    job->owner = pending.get();
    return pending;
}

// Runs on the loop thread, as does the async callback, so no lock is needed.
PendingVerification::~PendingVerification() {
    if (job_ != nullptr) {
        job_->owner = nullptr;
    }
}

}  // namespace portcullis::auth
